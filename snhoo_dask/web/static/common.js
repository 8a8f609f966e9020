// Small helpers shared by the live pages (no framework: the pages are a few tables).
"use strict";
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}
function fmtSeconds(s) {
  s = Number(s || 0);
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h} h ${m % 60} min` : `${m} min ${Math.round(s % 60)} s`;
}
function fmtCount(n) { return Number(n).toLocaleString("en-US"); }
// "1 video", "2 videos": a count with its noun.
function plural(n, word, words) { return `${fmtCount(n)} ${n === 1 ? word : (words || word + "s")}`; }
function fmtTime(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
async function getJSON(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}
// Poll while `fn` says there is more to watch; back off a little when the page is hidden.
function poll(fn, ms) {
  let timer = null;
  const tick = async () => {
    let again = true;
    try { again = await fn(); } catch (e) { console.warn(e); }
    if (again) timer = setTimeout(tick, document.hidden ? ms * 4 : ms);
  };
  tick();
  return () => clearTimeout(timer);
}
