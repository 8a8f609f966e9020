"use strict";
const sheets = new Map();  // key -> <img>, kept across refreshes so images do not reload
// A video's key names its folder's bytes: two names can share one text (out_rel).
const STATUS_LABELS = {queued: "waiting", unfinished: "not finished"};
const keyOf = v => v.key || v.out_rel;
let lastVideos = [];

function sheetFor(v) {
  if (v.status !== "ok" && v.status !== "skipped") return "";
  if (!sheets.has(keyOf(v))) {
    sheets.set(keyOf(v), el("img", {class: "sheet", loading: "lazy", alt: "frames of " + v.out_rel,
      src: `/jobs/${encodeURIComponent(JOB_ID)}/sheet?v=${encodeURIComponent(keyOf(v))}`}));
  }
  return sheets.get(keyOf(v));
}

function renderVideos() {
  const status = document.getElementById("filter-status").value;
  const text = document.getElementById("filter-text").value.trim().toLowerCase();
  // "not finished": waiting in a running job, or left over by one that ended.
  const matches = v => !status || v.status === status || (status === "queued" && v.status === "unfinished");
  const shown = lastVideos.filter(v => matches(v) &&
                                       (!text || v.out_rel.toLowerCase().includes(text)));
  document.querySelector("#videos tbody").replaceChildren(...shown.map(v =>
    el("tr", {class: "st-" + v.status, "data-video": v.out_rel},
      el("td", {class: "path"}, v.out_rel),
      el("td", {class: "status"}, STATUS_LABELS[v.status] || v.status),
      el("td", {}, v.worker || ""),
      el("td", {class: "num"}, v.frames == null ? "" : v.frames),
      el("td", {class: "num"}, v.seconds == null ? "" : Number(v.seconds).toFixed(2)),
      el("td", {class: "reason"}, v.reason || ""),
      el("td", {}, sheetFor(v)))));
  document.getElementById("shown").textContent = `${shown.length} of ${lastVideos.length} shown`;
}

function card(n, label, cls) { return el("div", {class: "card " + (cls || "")}, el("b", {}, n), label); }

function renderJob(j) {
  const state = document.getElementById("state");
  state.textContent = j.state_label;
  state.className = "state " + j.state;
  document.getElementById("where").textContent =
    `${j.roots.join(", ")} → ${j.out} · ${j.selection} · started ${fmtTime(j.started)}` +
    (j.runs > 1 ? ` · run ${j.runs}` : "");
  const msg = document.getElementById("message");
  msg.hidden = !j.message;
  msg.textContent = j.message || "";
  document.getElementById("summary").replaceChildren(
    card(j.total, "videos"), card(j.ok, "ok", "ok"), card(j.skipped, "skipped"),
    card(j.failed, "failed", j.failed ? "failed" : ""), card(j.images, "images"),
    card(fmtSeconds(j.elapsed), "elapsed"));
  document.getElementById("bar").style.width = (j.total ? 100 * j.done / j.total : 0) + "%";
  document.getElementById("resume-form").hidden = j.running || !["interrupted", "error"].includes(j.state);
  document.getElementById("stop-form").hidden = !j.running;
  document.getElementById("report-link").hidden = !j.has_report || j.running;
}

let finalFetches = 0;
poll(async () => {
  const j = await getJSON(`/api/jobs/${encodeURIComponent(JOB_ID)}`);
  lastVideos = j.videos;
  renderJob(j);
  renderVideos();
  // Keep polling while it runs, and a few times after (the report appears just after the end).
  if (j.running || j.state === "running") { finalFetches = 0; return true; }
  return ++finalFetches < 3;
}, 1000);
document.getElementById("filter-status").addEventListener("change", renderVideos);
document.getElementById("filter-text").addEventListener("input", renderVideos);
