"""OUT/report.html: one self-contained page per job, rebuilt from the manifest and frame folders.

Self-contained means no network fetch at all: BokehJS is inlined (read from the
installed bokeh package) and draws the throughput chart from JSON in the page, and
contact sheets are embedded as data URIs, because a lab network usually cannot reach
a CDN and the file is meant to be mailed or copied.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import click
import tornado.template

from ..errors import SnhooError
from ..fs import fsafe
from ..model import FAILED, OK, PARTIAL, SKIPPED, WRITTEN, VideoRecord
from .folder import MANIFEST, REPORT, OutputDir, is_report
from .manifest import Manifest, latest_per_video, load_latest
from .sheets import video_sheet

# Beyond this many videos the report lists every video but only embeds this many sheets,
# so a job of thousands of videos still gives a file a browser opens quickly.
MAX_SHEETS = 400
MAX_FAILURES_SHOWN = 200  # in the failure table; the videos table's filter finds every one
SHEET_THREADS = 8
_STATUS_ORDER = {FAILED: 0, PARTIAL: 1, OK: 2, SKIPPED: 3}
# The core library and the plotting API; the widget/table/GL/MathJax bundles are not needed.
_BOKEHJS_FILES = ("bokeh.min.js", "bokeh-api.min.js")
# The same template system as the web pages (Tornado), with its autoescaping.
_TEMPLATES = tornado.template.Loader(os.path.join(os.path.dirname(__file__), "templates"))


def summarize(records: list[VideoRecord]) -> dict:
    """Counts, images and wall time of one run's records."""
    counts: dict[str | None, int] = {OK: 0, PARTIAL: 0, SKIPPED: 0, FAILED: 0}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    processed = [r for r in records if r.status in (*WRITTEN, FAILED) and r.finished_at]
    start = min((_end(r) - (r.seconds or 0) for r in processed), default=None)
    end = max((_end(r) for r in processed), default=0.0)
    return {
        "total": len(records),
        **counts,
        "images": sum(r.frames or 0 for r in records if r.status in WRITTEN),
        "elapsed": (end - start) if start is not None else 0.0,
        "started": start,
        "run": records[-1].run if records else None,
        # Each piece of a cut video counts under the worker that extracted it.
        "workers": sorted({w for r in processed for w in r.frames_by_worker()}),
    }


def _end(r: VideoRecord) -> float:
    """When a record that is known to be finished (its ``finished_at`` set) ended."""
    return r.finished_at or 0.0


def ordered(records: list[VideoRecord]) -> list[VideoRecord]:
    """Failures first, then by path, so the problems are what a reader sees first."""
    return sorted(records, key=lambda r: (_STATUS_ORDER.get(r.status or "", 4), r.out or ""))


def throughput_series(records: list[VideoRecord]) -> list[dict]:
    """Per worker, images written over time: the chart's data (the slope is its rate)."""
    # A cut video's images are drawn under each worker that extracted a piece of it.
    by_worker: dict[str, list[tuple[VideoRecord, int]]] = defaultdict(list)
    for r in records:
        if r.status in WRITTEN and r.finished_at and r.worker:
            for worker, frames in r.frames_by_worker().items():
                by_worker[worker].append((r, frames))
    starts = [_end(r) - (r.seconds or 0) for rs in by_worker.values() for r, _ in rs]
    t0 = min(starts, default=0.0)
    series = []
    for worker, recs in sorted(by_worker.items()):
        recs.sort(key=lambda rf: _end(rf[0]))
        first_start = _end(recs[0][0]) - (recs[0][0].seconds or 0)
        line: dict[str, Any] = {
            "worker": worker,
            "t": [first_start - t0],
            "n": [0],
            "video": [""],
            "frames": [0],
            "seconds": [0.0],
        }
        total = 0
        for r, frames in recs:
            total += frames
            line["t"].append(_end(r) - t0)
            line["n"].append(total)
            line["video"].append(_shown(r.out or r.video))
            line["frames"].append(frames)
            line["seconds"].append(r.seconds or 0.0)
        series.append(line)
    return series


@functools.cache
def _bokehjs() -> str:
    """BokehJS and its plotting API, read from the installed bokeh package.

    The chart is built by BokehJS in the browser from the series' JSON: importing
    Bokeh's Python models to build it here cost about 0.5 s of CPU on every run.
    """
    spec = importlib.util.find_spec("bokeh")
    if spec is None or not spec.submodule_search_locations:
        return ""
    folder = os.path.join(spec.submodule_search_locations[0], "server", "static", "js")
    parts = []
    for name in _BOKEHJS_FILES:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def _json_for_script(value: object) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can end it early."""
    return json.dumps(value, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def render(out: str, records: list[VideoRecord], note: str | None = None) -> str:
    """The report page as one HTML string (a Tornado template: every value is escaped)."""
    s = summarize(records)
    rows = []
    sheets: list[str] = []
    listed = ordered(records)
    for r, sheet in zip(listed, _sheets(out, listed), strict=True):
        if sheet:
            sheets.append(sheet)
        rows.append(
            {
                "out": _shown(r.out),
                "status": r.status,
                "worker": _shown(r.worker),
                "frames": r.frames,
                "seconds": round(r.seconds or 0.0, 3),
                "reason": _shown(r.reason),
                "href": _link(r),
                "sheet": len(sheets) - 1 if sheet else None,
            }
        )
    failures = [r for r in rows if r["status"] == FAILED]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["started"])) if s["started"] else "-"
    page = _TEMPLATES.load("report.html").generate(
        out=_shown(out),
        s=s,
        total=len(rows),
        failures=failures[:MAX_FAILURES_SHOWN],
        failed=len(failures),
        max_sheets=MAX_SHEETS,
        # The table is drawn by the page's script from this data, a page of rows at a time,
        # with its filters run on the data: 100,000 rows never become 100,000 elements.
        rows_data=_json_for_script(rows),
        sheets_data=_json_for_script(sheets),
        plural=_plural,
        started=started,
        built=time.strftime("%Y-%m-%d %H:%M:%S"),
        state="done with failures" if s["failed"] else "done",
        # BokehJS itself and our data as escaped JSON: inserted unescaped on purpose.
        bokehjs=_bokehjs(),
        chart_data=_json_for_script(throughput_series(records)),
        css=_CSS,
        note=note,  # lines of the manifest that were skipped, if any
    )
    return page.decode("utf-8")


def _link(r: VideoRecord) -> str | None:
    """The video's output relative to the report, as a link: a folder (opened from disk, the
    browser lists it; served by ``snhoo-dask serve``, the video's page of images), or a tar."""
    if not r.out or r.status not in (*WRITTEN, SKIPPED):
        return None
    href = quote(os.fsencode(r.out), safe="/")
    return href if r.out.endswith(".tar") else href + "/"


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def _sheets(out: str, records: list[VideoRecord]) -> list[str | None]:
    """Each record's contact sheet as a data URI (None without one, and past MAX_SHEETS).

    Read by descriptor below OUT, no link inside it followed; OUT itself is the user's own
    path, resolved once here."""
    sheets: list[str | None] = [None] * len(records)
    try:
        out_fd = fsafe.open_dir(os.path.realpath(out))
    except OSError:
        return sheets

    def sheet(r: VideoRecord) -> str | None:
        if r.status not in (*WRITTEN, SKIPPED) or not r.out:
            return None
        try:
            jpeg = video_sheet(out_fd, r.out)
        except Exception:  # noqa: BLE001 - one unreadable output costs its sheet, not the report
            return None
        return _data_uri(jpeg) if jpeg else None

    try:
        # The user waits for the report after the last video: one thread per core, since
        # decoding and scaling the JPEGs release the GIL (300 clips' sheets: 1.7 s in one).
        with ThreadPoolExecutor(max(1, min(SHEET_THREADS, os.cpu_count() or 1))) as pool:
            sheets[:MAX_SHEETS] = pool.map(sheet, records[:MAX_SHEETS])
    finally:
        os.close(out_fd)
    return sheets


def _shown(text: str | None) -> str:
    """Text fit for a page: a file name's undecodable bytes become U+FFFD, not an error."""
    if text is None:
        return ""
    return os.fsencode(text).decode("utf-8", "replace")


_CSS = """
[hidden]{display:none!important}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#222;max-width:1300px}
h1{margin:.2em 0}h2{margin-top:1.4em;border-bottom:1px solid #ddd;padding-bottom:.2em}
code{background:#f3f3f3;padding:0 .3em;border-radius:3px;overflow-wrap:anywhere}
.where{color:#555;overflow-wrap:anywhere}.summary{display:flex;flex-wrap:wrap;gap:.6em}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:7em;background:#fafafa}
.card b{display:block;font-size:1.5em}.card.ok b{color:#1a7f37}.card.partial b{color:#b26a00}.card.failed b{color:#c62828}
.box{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #e5e5e5;padding:.35em .5em;text-align:left;vertical-align:middle}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{overflow-wrap:anywhere;min-width:12em}td.reason{min-width:14em}
tr.failed td.st{color:#c62828;font-weight:bold}tr.ok td.st{color:#1a7f37}tr.partial td.st{color:#b26a00}tr.skipped td.st{color:#666}
table.failures td{color:#8a1c1c}.good{color:#1a7f37}
img{display:block;image-rendering:auto;border:1px solid #ccc}.foot{color:#888;font-size:.85em;margin-top:2em}
img.sheet{height:48px;cursor:zoom-in}img.sheet.big{height:auto;width:min(520px,80vw);cursor:zoom-out}
.note{border-left:4px solid #c77c00;background:#fff7e6;padding:.4em .8em}.hint{color:#555}
.filters,.pager{display:flex;flex-wrap:wrap;gap:.5em 1.2em;align-items:center;margin:.6em 0}
input,select,button{font:inherit;max-width:100%}
@media (max-width:640px){body{margin:1em}}
"""


class ReportError(SnhooError):
    """The report cannot be built; ``message`` is one line.  On the command line (``snhoo-dask
    report``) it is ``snhoo-dask: error: ...`` and exit status ``exit_code``: 2 for a folder
    that is not a job's output, 1 for a manifest that cannot be read or a report that cannot
    be written (a full disk)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def load_job_manifest(out: str) -> Manifest:
    """The latest run's block of OUT's manifest (``load_latest``), which must be there: a
    folder without one is not a job's output, and gets no report (ReportError, exit status 2)."""
    path = os.path.join(out, MANIFEST)
    try:
        return load_latest(out, missing_ok=False)
    except FileNotFoundError:
        raise ReportError(
            f"{out} holds no {MANIFEST}, so it is not the output folder of a snhoo-dask run; "
            "give the folder passed to --out",
            2,
        ) from None
    except fsafe.UnsafePath as e:
        raise ReportError(f"{path} is not used: {e}", 2) from None
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror or e}") from None


def build_report(out: str, warn=_warn) -> str:
    """Write OUT/report.html for the latest run in OUT/manifest.jsonl; return its path.

    Written through OUT's descriptor (a link in OUT's place or at report.html is never
    written through) into a temporary file renamed over the report (only over one that
    snhoo-dask wrote: a user's report.html stays, ReportError), which is removed if
    the write fails (a full disk leaves no half report behind).  Lines of the manifest
    that are not records are skipped, and ``warn`` is told how many and which (the
    report says it too).  ReportError (one line) when there is no manifest or the report
    cannot be written.
    """
    out = os.path.realpath(out)
    manifest = load_job_manifest(out)
    if manifest.problem:
        warn(manifest.problem)
    page = render(out, latest_per_video(manifest.records), manifest.problem)
    path = os.path.join(out, REPORT)
    tmp = REPORT + ".tmp"
    try:
        with OutputDir(out) as d:
            if _present(d.fd, REPORT) and not is_report(d.fd, REPORT):
                raise ReportError(
                    f"{path} is not a report snhoo-dask wrote; it is left as it is (move it away "
                    "to get this job's report)"
                )
            if is_report(d.fd, tmp, empty_too=True):
                fsafe.remove_entry(d.fd, tmp)  # ours, left by a crash; anything else there stays
            fd = fsafe.create_file(d.fd, tmp)  # a folder in its place: FileExistsError, the folder stays
            try:
                with open(fd, "wb") as f:
                    f.write(page.encode("utf-8"))
                os.rename(tmp, REPORT, src_dir_fd=d.fd, dst_dir_fd=d.fd)
            except BaseException:
                fsafe.remove_entry(d.fd, tmp)
                raise
    except OSError as e:
        raise ReportError(f"could not write {path}: {e.strerror or e}") from None
    return path


def _present(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def try_build_report(out: str, warn=_warn) -> tuple[str, str | None]:
    """``build_report``, never raising: (the report's path, None), or (its path, one line
    saying why it could not be written), for the run's outcome to carry."""
    path = os.path.join(os.path.abspath(out), REPORT)
    try:
        return build_report(out, warn), None
    except ReportError as e:
        return path, e.message
    except OSError as e:
        return path, f"could not write {path}: {e.strerror or e}"
    except Exception as e:  # noqa: BLE001 - the frames are written; the caller reports this
        detail = (str(e).splitlines() or [""])[0]
        return path, f"could not write {path}: {type(e).__name__}: {detail}"
