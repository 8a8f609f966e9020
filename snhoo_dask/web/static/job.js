"use strict";
// The job page.  It keeps the job's videos in memory and asks the service only for what
// changed since its last look (?since=cursor); filters run on that data, and only one page
// of rows is ever in the document, so a job of 100,000 videos stays as quick as one of ten.
const STATUS_LABELS = {queued: "waiting", unfinished: "not finished"};
const PER_PAGE = 100;
const RANK = {failed: 0, queued: 1, unfinished: 1};
const videos = new Map();  // key -> the video as last sent
const rows = new WeakMap();  // a video object -> its <tr> (rebuilt only when the video changes)
let sorted = [], shown = [], page = 0, cursor = null, dirty = true;
const pos = new Map();  // key -> its index in `sorted`, so a changed video is swapped in place
const keyOf = v => v.key || v.out_rel;
const videoUrl = v => `/jobs/${encodeURIComponent(JOB_ID)}/out/${keyOf(v)}/`;
const running = v => v.state === "running" && (v.status === "queued" || v.status == null);

function statusText(v) {
  if (running(v)) return v.pieces ? `running (${v.pieces_done || 0} of ${plural(v.pieces, "piece")})` : "running";
  return STATUS_LABELS[v.status] || v.status;
}

function rowFor(v) {
  let tr = rows.get(v);
  if (tr) return tr;
  const done = v.status === "ok" || v.status === "partial" || v.status === "skipped";
  const sheet = done ? el("a", {href: videoUrl(v), class: "sheet-link", title: "all images of " + v.out_rel},
    el("img", {class: "sheet", loading: "lazy", alt: "frames of " + v.out_rel,
               src: `/jobs/${encodeURIComponent(JOB_ID)}/sheet?v=${encodeURIComponent(keyOf(v))}`})) : "";
  tr = el("tr", {class: "st-" + (running(v) ? "running" : v.status), "data-video": v.out_rel},
    el("td", {class: "path"}, el("a", {href: videoUrl(v), class: "video-link"}, v.out_rel)),
    el("td", {class: "status"}, statusText(v)),
    el("td", {}, v.worker || ""),
    el("td", {class: "num"}, v.frames == null ? "" : v.frames),
    el("td", {class: "num"}, v.seconds == null ? "" : Number(v.seconds).toFixed(2)),
    el("td", {class: "reason"}, v.reason || ""),
    el("td", {}, sheet));
  rows.set(v, tr);
  return tr;
}

const rank = v => running(v) ? 1 : (RANK[v.status] ?? 2);

function resort() {
  sorted = Array.from(videos.values());
  sorted.sort((a, b) => rank(a) - rank(b) || (a.out_rel < b.out_rel ? -1 : a.out_rel > b.out_rel ? 1 : 0));
  pos.clear();
  sorted.forEach((v, i) => pos.set(keyOf(v), i));
}

function refilter() {
  const status = document.getElementById("filter-status").value;
  const text = document.getElementById("filter-text").value.trim().toLowerCase();
  // "not finished": waiting in a running job, or left over by one that ended.
  const matches = v => !status || (status === "running" ? running(v) :
    v.status === status || (status === "queued" && v.status === "unfinished"));
  shown = (status || text) ? sorted.filter(v => matches(v) && (!text || v.out_rel.toLowerCase().includes(text)))
                           : sorted;
}

function renderVideos() {
  if (dirty) { resort(); dirty = false; }
  refilter();  // on the data: 100,000 names take milliseconds, rows are made for one page only
  const pages = Math.max(1, Math.ceil(shown.length / PER_PAGE));
  page = Math.min(page, pages - 1);
  const slice = shown.slice(page * PER_PAGE, (page + 1) * PER_PAGE);
  const body = document.querySelector("#videos tbody");
  const want = slice.map(rowFor);
  // Only touch the document where the page's rows differ from what is there.
  if (want.length !== body.children.length || want.some((tr, i) => body.children[i] !== tr)) {
    body.replaceChildren(...want);
  }
  document.getElementById("shown").textContent =
    shown.length === videos.size ? plural(videos.size, "video") : `${shown.length} of ${plural(videos.size, "video")} shown`;
  document.getElementById("pager").hidden = pages < 2;
  document.getElementById("page-at").textContent = `page ${page + 1} of ${pages}`;
  document.getElementById("page-prev").disabled = page === 0;
  document.getElementById("page-next").disabled = page >= pages - 1;
}

function card(n, label, cls) { return el("div", {class: "card " + (cls || "")}, el("b", {}, n), label); }

function renderProgress(j) {
  const p = j.progress;
  const text = document.getElementById("progress-text");
  let frac = j.total ? j.done / j.total : 0;
  if (p && p.frames_expected) {
    frac = Math.min(1, (p.frames_done || 0) / p.frames_expected);
    const parts = [`${fmtCount(p.frames_done || 0)} of ${fmtCount(p.frames_expected)} frames`];
    if (p.rate_fps) parts.push(`${fmtCount(Math.round(p.rate_fps))} frames/s`);
    if (p.eta_s != null && j.running) parts.push(`about ${fmtSeconds(p.eta_s)} left`);
    text.textContent = parts.join(" · ");
    text.hidden = false;
  } else {
    text.hidden = true;
  }
  document.getElementById("bar").style.width = 100 * frac + "%";
}

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
    card(j.total, j.total === 1 ? "video" : "videos"), card(j.ok, "ok", "ok"),
    card(j.partial_videos, "partial", j.partial_videos ? "partial" : ""), card(j.skipped, "skipped"),
    card(j.failed, "failed", j.failed ? "failed" : ""), card(j.images, j.images === 1 ? "image" : "images"),
    card(fmtSeconds(j.elapsed), "elapsed"));
  renderProgress(j);
  document.getElementById("resume-form").hidden = j.running || !["interrupted", "error"].includes(j.state);
  document.getElementById("stop-form").hidden = !j.running;
  document.getElementById("report-link").hidden = !j.has_report || j.running;
}

// What the answer changed: a video that keeps its place in the order (the same rank) is
// swapped in place; only one that moves (it failed, it finished) costs a new sort.
function merge(j) {
  cursor = j.cursor;
  if (!j.partial) {
    videos.clear();
    for (const v of j.videos) videos.set(keyOf(v), v);
    dirty = true;
    return true;
  }
  for (const v of j.videos) {
    const k = keyOf(v), old = videos.get(k);
    videos.set(k, v);
    if (!dirty && old && rank(old) === rank(v) && pos.has(k)) sorted[pos.get(k)] = v;
    else dirty = true;
  }
  return j.videos.length > 0;
}

let finalFetches = 0;
poll(async () => {
  const base = `/api/jobs/${encodeURIComponent(JOB_ID)}`;
  const j = await getJSON(cursor == null ? base : `${base}?since=${cursor}`);
  renderJob(j);
  if (merge(j)) renderVideos();
  // Keep polling while it runs, and a few times after (the report appears just after the end).
  if (j.running || j.state === "running") { finalFetches = 0; return true; }
  return ++finalFetches < 3;
}, 1000);
const again = () => { page = 0; renderVideos(); };
document.getElementById("filter-status").addEventListener("change", again);
document.getElementById("filter-text").addEventListener("input", again);
document.getElementById("page-prev").addEventListener("click", () => { page--; renderVideos(); });
document.getElementById("page-next").addEventListener("click", () => { page++; renderVideos(); });
