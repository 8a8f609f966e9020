// The new-job page's live parts: the lab's disks (with the safe eject) and the folder picker.
// Names arrive already escaped by the service (a line break as \n, a byte that is not UTF-8
// as \xNN) and are only ever set as text, never as HTML.
"use strict";

function fmtBytes(n) {
  if (n == null) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}
function fmtVideos(n, complete) {
  if (n == null) return "?";
  return complete ? fmtCount(n) : `≥ ${fmtCount(n)}`;
}
function xsrf() {
  const input = document.querySelector("input[name=_xsrf]");
  return input ? input.value : "";
}

// -- the roots field ---------------------------------------------------------------------------

const rootsField = document.getElementById("roots");
function addRoot(path) {
  const lines = rootsField.value.split("\n").map(l => l.trim()).filter(Boolean);
  if (!lines.includes(path)) lines.push(path);
  rootsField.value = lines.join("\n");
  rootsField.dispatchEvent(new Event("input"));
  showPicked();
}
function pickedRoots() {
  return new Set(rootsField.value.split("\n").map(l => l.trim()).filter(Boolean));
}
rootsField.addEventListener("input", () => showPicked());

// -- the folder picker -------------------------------------------------------------------------

let bases = [];  // the --allow folders: {ref, path, shown, state, available}
let current = null;  // the folder shown, as /api/folders?at= answered
const status = document.getElementById("picker-status");

function refOf(path) {
  // The ref of a folder path below an --allow folder (for a disk's "Browse"), or null.
  for (const b of bases) {
    if (!b.available) continue;
    if (path === b.path) return b.ref;
    if (path.startsWith(b.path.replace(/\/$/, "") + "/")) {
      const rel = path.slice(b.path.replace(/\/$/, "").length + 1);
      return b.ref + rel.split("/").map(encodeURIComponent).join("/");
    }
  }
  return null;
}

function pickButton(path, label) {
  const b = el("button", {type: "button", class: "pick small", "data-path": path, "data-label": label}, label);
  b.addEventListener("click", () => addRoot(path));
  return b;
}

function showPicked() {
  const picked = pickedRoots();
  for (const b of document.querySelectorAll("#picker button.pick")) {
    const on = picked.has(b.dataset.path);
    b.classList.toggle("picked", on);
    b.textContent = on ? "✓ picked" : (b.dataset.label || "Pick");
    b.disabled = on;
  }
}

async function browse(ref) {
  status.textContent = "Reading…";
  let r;
  try {
    r = await fetch(ref == null ? "/api/folders" : "/api/folders?at=" + encodeURIComponent(ref), {cache: "no-store"});
  } catch (e) {
    status.textContent = "The service does not answer.";
    return;
  }
  const data = await r.json().catch(() => ({error: `HTTP ${r.status}`}));
  if (!r.ok) { status.textContent = data.error || `HTTP ${r.status}`; return; }
  status.textContent = "";
  if (ref == null) { bases = data.bases; showBases(); } else { current = data; showFolder(data); }
  showPicked();
}

function showBases() {
  current = null;
  document.getElementById("crumbs").replaceChildren(el("span", {}, "Allowed folders"));
  document.getElementById("here").replaceChildren();
  const items = bases.map(b => {
    const open = el("button", {type: "button", class: "link open"}, b.shown);
    open.addEventListener("click", () => browse(b.ref));
    if (!b.available) open.disabled = true;
    return el("li", {class: "folder" + (b.available ? "" : " gone")}, open,
      el("span", {class: "muted count"}, b.available ? "" : b.state),
      b.available ? pickButton(b.path, "Pick") : "");
  });
  document.getElementById("folders").replaceChildren(...items);
}

function showFolder(data) {
  const crumbs = [el("button", {type: "button", class: "link"}, "Allowed folders")];
  crumbs[0].addEventListener("click", () => browse(null));
  for (const c of data.crumbs) {
    const b = el("button", {type: "button", class: "link"}, c.name);
    b.addEventListener("click", () => browse(c.ref));
    crumbs.push(el("span", {class: "sep"}, "/"), b);
  }
  document.getElementById("crumbs").replaceChildren(...crumbs);
  const here = [el("span", {class: "where"}, el("b", {}, data.shown), " · ",
    plural(data.videos, "video") + (data.videos_complete ? "" : " or more"))];
  if (data.path) here.push(pickButton(data.path, "Pick this folder"));
  else here.push(el("span", {class: "muted"}, "cannot be picked: " + data.why_not));
  document.getElementById("here").replaceChildren(...here);
  const items = data.folders.map(f => {
    const open = el("button", {type: "button", class: "link open", title: "Open " + f.name}, f.name + "/");
    open.addEventListener("click", () => browse(f.ref));
    const count = el("span", {class: "muted count"}, f.videos == null ? "? videos" :
      (f.videos_complete ? plural(f.videos, "video") : `≥ ${plural(f.videos, "video")}`));
    const pick = f.path ? pickButton(f.path, "Pick") : el("span", {class: "muted why", title: f.why_not}, "cannot be picked");
    return el("li", {class: "folder", "data-ref": f.ref}, open, count, pick);
  });
  if (!items.length) items.push(el("li", {class: "muted"}, "No folders in here."));
  if (data.truncated) items.push(el("li", {class: "muted"}, "More folders than shown: type the path."));
  document.getElementById("folders").replaceChildren(...items);
}

browse(null);

// -- the disk list -----------------------------------------------------------------------------

const diskTable = document.getElementById("disks");
const diskStatus = document.getElementById("disks-status");
const ejectMessage = document.getElementById("eject-message");

async function eject(name, button) {
  button.disabled = true;
  button.textContent = "Ejecting…";
  ejectMessage.hidden = false;
  ejectMessage.classList.remove("bad");
  ejectMessage.textContent = `Ejecting ${name}…`;
  try {
    const r = await fetch("/api/disks/eject", {
      method: "POST", cache: "no-store",
      headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf()},
      body: JSON.stringify({name}),
    });
    const data = await r.json().catch(() => ({error: `HTTP ${r.status}`}));
    ejectMessage.classList.toggle("bad", !r.ok);
    ejectMessage.textContent = r.ok ? data.message : `Not ejected: ${data.error || "HTTP " + r.status}`;
  } catch (e) {
    ejectMessage.classList.add("bad");
    ejectMessage.textContent = "Not ejected: the service does not answer.";
  }
  button.disabled = false;
  button.textContent = "Eject";
  refreshDisks();
}

function diskRow(d) {
  const plugged = d.state === "plugged";
  let state = d.state;
  if (d.reason && !plugged && d.state !== "not responding") state += ` (${d.reason})`;
  const actions = el("td", {class: "actions-cell"});
  if (plugged) {
    const ref = refOf(d.mountpoint);
    if (ref) {
      const b = el("button", {type: "button", class: "secondary small"}, "Browse");
      b.addEventListener("click", () => { document.getElementById("picker").open = true; browse(ref); });
      actions.append(b);
    }
    const e = el("button", {type: "button", class: "secondary small eject", "data-disk": d.name}, "Eject");
    e.addEventListener("click", () => eject(d.name, e));
    actions.append(e);
  }
  return el("tr", {class: "disk st-" + d.state.replace(/ /g, "-"), "data-disk": d.name},
    el("td", {class: "host", "data-label": "Host"}, d.host || "–"),
    el("td", {class: "path disk-name"}, el("b", {}, d.label || d.name),
      d.label && d.label !== d.name ? el("div", {class: "muted"}, d.name) : ""),
    el("td", {class: "num", "data-label": "Size"}, fmtBytes(d.size_bytes)),
    el("td", {class: "num", "data-label": "Free"}, fmtBytes(d.free_bytes)),
    el("td", {class: "state-cell"},
      el("span", {class: "state " + (plugged ? "done" : d.state === "not responding" ? "error" : "")}, state)),
    el("td", {class: "num", "data-label": "Videos"}, plugged ? fmtVideos(d.videos, d.videos_complete) : "–"),
    actions);
}

let refreshing = false;
async function refreshDisks() {
  if (refreshing) return true;
  refreshing = true;
  try {
    const r = await fetch("/api/disks", {cache: "no-store"});
    const data = await r.json().catch(() => ({error: `HTTP ${r.status}`}));
    if (!r.ok) {
      diskStatus.hidden = false;
      diskStatus.textContent = data.error || `HTTP ${r.status}`;
      return true;
    }
    const rows = data.disks.map(diskRow);
    diskTable.hidden = !rows.length;
    diskStatus.hidden = !!rows.length;
    diskStatus.textContent = rows.length ? "" : "No disks yet: plug one into a storage host and it shows here.";
    diskTable.tBodies[0].replaceChildren(...rows);
  } finally {
    refreshing = false;
  }
  return true;  // disks come and go at any time
}
poll(refreshDisks, 3000);
