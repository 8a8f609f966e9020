"""OUT/report.html: one self-contained page per job, rebuilt from the manifest and frame folders.

Self-contained means no network fetch at all: Bokeh's JavaScript is inlined
(``bokeh.resources.INLINE``) and contact sheets are embedded as data URIs, because a
lab network usually cannot reach a CDN and the file is meant to be mailed or copied.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import time
from collections import defaultdict

from PIL import Image

from .layout import video_dir
from .manifest import latest_run

REPORT = "report.html"
# Beyond this many videos the report lists every video but only embeds this many sheets,
# so a job of thousands of videos still gives a file a browser opens quickly.
MAX_SHEETS = 400
SHEET_FRAMES = 4
THUMB_WIDTH = 128
_STATUS_ORDER = {"failed": 0, "ok": 1, "skipped": 2}


def sheet_frames(folder: str, n: int = SHEET_FRAMES) -> list[str]:
    """Paths of ``n`` frames spread evenly over a finished video folder (first to last)."""
    names: list[str] = []
    try:
        with open(os.path.join(folder, "frames.csv"), encoding="utf-8", newline="") as f:
            names = [row["file"] for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        try:
            names = sorted(e for e in os.listdir(folder) if e.endswith((".jpg", ".png")))
        except OSError:
            return []
    if len(names) > n:
        step = (len(names) - 1) / (n - 1) if n > 1 else 0
        names = [names[round(i * step)] for i in range(n)]
    return [os.path.join(folder, name) for name in names]


def contact_sheet(folder: str, n: int = SHEET_FRAMES, width: int = THUMB_WIDTH) -> bytes | None:
    """A JPEG strip of a few frames of one video, or None if the folder has no frames."""
    thumbs = []
    for path in sheet_frames(folder, n):
        try:
            with Image.open(path) as im:
                im.draft("RGB", (width, width))  # JPEG: decode at reduced size, much faster
                im = im.convert("RGB")
                im.thumbnail((width, width * 3))
                thumbs.append(im.copy())
        except OSError:
            continue
    if not thumbs:
        return None
    gap = 2
    height = max(t.height for t in thumbs)
    sheet = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1), height), "white")
    x = 0
    for t in thumbs:
        sheet.paste(t, (x, 0))
        x += t.width + gap
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def summarize(records: list[dict]) -> dict:
    """Counts, images and wall time of one run's records."""
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for r in records:
        counts[r.get("status")] = counts.get(r.get("status"), 0) + 1
    processed = [r for r in records if r.get("status") in ("ok", "failed") and r.get("finished_at")]
    start = min((r["finished_at"] - (r.get("seconds") or 0) for r in processed), default=None)
    end = max((r["finished_at"] for r in processed), default=None)
    return {
        "total": len(records),
        **counts,
        "images": sum(r.get("frames") or 0 for r in records if r.get("status") == "ok"),
        "elapsed": (end - start) if start is not None else 0.0,
        "started": start,
        "run": records[-1].get("run") if records else None,
        "workers": sorted({str(r["worker"]) for r in processed if r.get("worker")}),
    }


def ordered(records: list[dict]) -> list[dict]:
    """Failures first, then by path, so the problems are what a reader sees first."""
    return sorted(records, key=lambda r: (_STATUS_ORDER.get(r.get("status"), 3), r.get("out") or ""))


def throughput_chart(records: list[dict]):
    """A Bokeh figure: images written by each worker over time (the slope is its rate)."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    by_worker: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("status") == "ok" and r.get("finished_at") and r.get("worker"):
            by_worker[str(r["worker"])].append(r)
    starts = [r["finished_at"] - (r.get("seconds") or 0) for rs in by_worker.values() for r in rs]
    t0 = min(starts, default=0.0)
    fig = figure(
        title="Images written per worker over time (steeper = faster)",
        height=320,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,box_zoom,reset,save",
        x_axis_label="seconds since the first video started",
        y_axis_label="images written",
    )
    for i, (worker, recs) in enumerate(sorted(by_worker.items())):
        recs.sort(key=lambda r: r["finished_at"])
        first_start = recs[0]["finished_at"] - (recs[0].get("seconds") or 0)
        xs, ys, videos, frames, secs = [first_start - t0], [0], [""], [0], [0.0]
        total = 0
        for r in recs:
            total += r.get("frames") or 0
            xs.append(r["finished_at"] - t0)
            ys.append(total)
            videos.append(r.get("out") or r.get("video") or "")
            frames.append(r.get("frames") or 0)
            secs.append(r.get("seconds") or 0.0)
        src = ColumnDataSource({"t": xs, "n": ys, "video": videos, "frames": frames, "seconds": secs})
        color = Category10_10[i % 10]
        fig.line("t", "n", source=src, color=color, line_width=2, legend_label=f"worker {worker}")
        fig.scatter("t", "n", source=src, color=color, size=6)
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("video", "@video"),
                ("images", "@frames"),
                ("seconds", "@seconds{0.00}"),
                ("total", "@n"),
            ]
        )
    )
    if by_worker:
        fig.legend.location = "top_left"
    return fig


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def render(out: str, records: list[dict]) -> str:
    """The report page as one HTML string."""
    from bokeh.embed import components
    from bokeh.resources import Resources

    # Inline, and only the core library: the widget/table/GL/MathJax bundles would triple the size.
    resources = Resources(mode="inline", components=["bokeh"])

    s = summarize(records)
    script, div = components(throughput_chart(records))
    rows = ordered(records)
    failures = [r for r in rows if r.get("status") == "failed"]
    failure_rows = "".join(
        f"<tr><td>{_e(r.get('out'))}</td><td>{_e(r.get('worker'))}</td><td>{_e(r.get('error'))}</td></tr>"
        for r in failures
    )
    failure_html = (
        f"<table class='failures'><tr><th>video</th><th>worker</th><th>reason</th></tr>{failure_rows}</table>"
        if failures
        else "<p class='good'>No video failed.</p>"
    )
    video_rows = []
    for i, r in enumerate(rows):
        sheet = ""
        if r.get("status") in ("ok", "skipped") and i < MAX_SHEETS:
            jpeg = contact_sheet(video_dir(out, r.get("out") or ""))
            sheet = f"<img alt='frames of {_e(r.get('out'))}' src='{_data_uri(jpeg)}'>" if jpeg else ""
        reason = r.get("error") or (
            "; ".join(r.get("missing") or []) and "missing: " + "; ".join(r["missing"])
        )
        video_rows.append(
            f"<tr class='{_e(r.get('status'))}'><td>{_e(r.get('out'))}</td>"
            f"<td class='st'>{_e(r.get('status'))}</td><td>{_e(r.get('worker'))}</td>"
            f"<td class='num'>{_e(r.get('frames'))}</td><td class='num'>{(r.get('seconds') or 0):.2f}</td>"
            f"<td>{_e(reason)}</td><td>{sheet}</td></tr>"
        )
    more = (
        f"<p>Contact sheets are shown for the first {MAX_SHEETS} videos only.</p>"
        if len(rows) > MAX_SHEETS
        else ""
    )
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["started"])) if s["started"] else "-"
    state = "done with failures" if s["failed"] else "done"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>snhoo-dask report: {_e(out)}</title>
{resources.render()}
<style>{_CSS}</style>
</head><body>
<h1>snhoo-dask report</h1>
<p class="where">Output folder <code>{_e(out)}</code> &middot; run {_e(s["run"])} &middot; started {started}</p>
<section id="summary" class="summary">
 <div class="card"><b>{s["total"]}</b>videos</div>
 <div class="card ok"><b>{s["ok"]}</b>ok</div>
 <div class="card"><b>{s["skipped"]}</b>skipped (already done)</div>
 <div class="card {"failed" if s["failed"] else ""}"><b>{s["failed"]}</b>failed</div>
 <div class="card"><b>{s["images"]}</b>images</div>
 <div class="card"><b>{s["elapsed"]:.1f} s</b>processing time</div>
 <div class="card"><b>{len(s["workers"])}</b>workers</div>
</section>
<p class="state">State: <b>{state}</b></p>
<h2 id="failures">Failures ({len(failures)})</h2>
{failure_html}
<h2>Throughput</h2>
<div id="chart">{div}</div>
<h2>Videos</h2>
{more}
<table class="videos"><tr><th>video</th><th>status</th><th>worker</th><th>images</th><th>seconds</th>
<th>reason / missing frames</th><th>frames</th></tr>
{"".join(video_rows)}
</table>
<p class="foot">Built {time.strftime("%Y-%m-%d %H:%M:%S")} from manifest.jsonl by
<code>snhoo-dask report</code>.</p>
{script}
</body></html>
"""


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#222;max-width:1300px}
h1{margin:.2em 0}h2{margin-top:1.4em;border-bottom:1px solid #ddd;padding-bottom:.2em}
code{background:#f3f3f3;padding:0 .3em;border-radius:3px}
.where{color:#555}.summary{display:flex;flex-wrap:wrap;gap:.6em}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:7em;background:#fafafa}
.card b{display:block;font-size:1.5em}.card.ok b{color:#1a7f37}.card.failed b{color:#c62828}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #e5e5e5;padding:.35em .5em;text-align:left;vertical-align:middle}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td.st{color:#c62828;font-weight:bold}tr.ok td.st{color:#1a7f37}tr.skipped td.st{color:#666}
table.failures td{color:#8a1c1c}.good{color:#1a7f37}
img{display:block;image-rendering:auto;border:1px solid #ccc}.foot{color:#888;font-size:.85em;margin-top:2em}
"""


def build_report(out: str) -> str:
    """Write OUT/report.html for the latest run in OUT/manifest.jsonl; return its path."""
    out = os.path.abspath(out)
    records = latest_run(out)
    page = render(out, records)
    path = os.path.join(out, REPORT)
    tmp = path + ".tmp"
    # errors="surrogateescape"-born names cannot be UTF-8; replace rather than fail the report.
    with open(tmp, "w", encoding="utf-8", errors="replace") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
