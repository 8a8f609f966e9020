#!/usr/bin/env python3
"""Stress the frame definition: x264 setting variants and the input matrix, every
selection, every path, judged by the plain-ffmpeg oracle.

    python scripts/stress_matrix.py                       # x264 variants + matrix, all selections
    python scripts/stress_matrix.py --inputs x264 --selections every,frames
    python scripts/stress_matrix.py --inputs h264-mp4,avi-h264 --details
    python scripts/stress_matrix.py --table report.jsonl  # the table of a test run's report
                                                          # (SNHOO_MATRIX_REPORT=report.jsonl pytest ...)

Inputs come from tests/matrix.py (built once into --cache, default $SNHOO_MATRIX_CACHE or
/tmp/snhoo-matrix, and reused while their recipes are unchanged); the oracle is
tests/oracle.py.  For each selection and path, one ``snhoo-dask run`` over a root holding
every input; the long inputs (36 s) also run split into pieces (--split-seconds 5
--workers 2).  Then, per input, oracle 1 (each image is its frame, the set of images is
the selection's, frames.csv times within 1 ms, the record agrees) and oracle 2 (the
default path's images, and the split path's, are --decode-all's byte for byte).

The table has one row per input and one column per selection; each cell is
``<default>/<decode-all>`` (``<split>/<decode-all>`` for long inputs), oracle 2 after a
space.  ``ok``, or letters for what is wrong:

    F  the record failed (a damaged input may: then ``f``)   X  the run crashed
    C  images missing or extra (count)                       R  an image is another frame
    P  the right frame with wrong pixels (colours)           S  an image of the wrong size
    T  frames.csv (a time, a row)                            M  the record (frames, missing)
    =  same bytes as --decode-all                            #  bytes differ from --decode-all
    .  not run

Runs the installed ``snhoo-dask``; it needs ffmpeg, ffprobe and the package's Python
dependencies (and Pillow, numpy), nothing else.  Exit status 1 if any case fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import matrix  # noqa: E402
import oracle  # noqa: E402

LETTERS = {"failed": "F", "count": "C", "frame": "R", "pixels": "P", "size": "S", "csv": "T"}
LETTERS.update({"record": "M", "crash": "X", "traceback": "X"})


def cell(result: dict | None) -> str:
    if result is None:
        return "."
    problems = result.get("problems") or {}
    if not problems:
        return "f" if result.get("status") == "failed" else "ok"
    return "".join(sorted({LETTERS.get(k, "?") for k in problems}, key="XFCSRPTM".index))


def table(results: list[dict], details: bool = False) -> tuple[str, int]:
    """The table of ``results`` (one dict per check: oracle, input, selection, path,
    format, status, problems) and the number of failing checks."""
    runs = [r for r in results if r["oracle"] == 0]  # a run that printed a traceback
    inputs = list(dict.fromkeys(r["input"] for r in results if r["oracle"] != 0))
    selections = [s for s in matrix.SELECTIONS if any(r["selection"] == s for r in results)]
    by = {}
    for r in results:
        by[(r["oracle"], r["input"], r["selection"], r["path"], r["format"])] = r
    formats = list(dict.fromkeys(r["format"] for r in results))
    lines, failing = [], sum(1 for r in results if r.get("problems"))
    for fmt in formats:
        rows = []
        for i in inputs:
            if not any(r["input"] == i and r["format"] == fmt for r in results):
                continue
            cells = []
            for s in selections:
                paths = [p for p in ("default", "split") if (1, i, s, p, fmt) in by] or ["default"]
                parts = []
                for p in paths:
                    a = cell(by.get((1, i, s, p, fmt)))
                    b = cell(by.get((1, i, s, "decode-all", fmt)))
                    two = by.get((2, i, s, p, fmt))
                    eq = "." if two is None else ("=" if not two.get("problems") else "#")
                    parts.append(f"{a}/{b} {eq}")
                cells.append(" ".join(parts))
            rows.append((i, cells))
        width = max([len(i) for i, _ in rows] + [len(fmt) + 8])
        widths = [max([len(s)] + [len(c[n]) for _, c in rows]) for n, s in enumerate(selections)]
        head = f"{'input (' + fmt + ')':<{width}}  " + "  ".join(
            f"{s:<{w}}" for s, w in zip(selections, widths, strict=True)
        )
        lines += [head, "-" * len(head)]
        for i, cells in rows:
            lines.append(
                f"{i:<{width}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
            )
        lines.append("")
    for r in runs:
        trace = r["problems"]["traceback"][0].strip().splitlines()
        lines.append(f"run {r['selection']} {r['path']} {r['format']} printed a traceback: {trace[-1]}")
    if details:
        lines.append("failures:")
        for r in results:
            if r.get("problems") and r["oracle"] != 0:
                v = oracle.Verdict(r["input"], r.get("status"), r["problems"])
                where = f"{r['input']} {r['selection']} {r['path']} {r['format']} (oracle {r['oracle']})"
                lines.append(f"  {where}: {v.summary(limit=4)}")
    return "\n".join(lines), failing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--inputs", default="x264,matrix", help="x264, matrix, long, all, or ids (comma-separated)"
    )
    ap.add_argument("--selections", default=",".join(matrix.SELECTIONS))
    ap.add_argument(
        "--paths",
        default="default,decode-all",
        help="paths for the short inputs; the long ones run split and decode-all "
        "(and split-decode-all when named here)",
    )
    ap.add_argument("--format", default="png", choices=["png", "jpg"])
    ap.add_argument(
        "--cache", help="where inputs are kept (default $SNHOO_MATRIX_CACHE or /tmp/snhoo-matrix)"
    )
    ap.add_argument("--work", help="where roots and outputs go (default: a temporary folder, removed)")
    ap.add_argument("--no-long", action="store_true", help="leave out the long inputs and the split path")
    ap.add_argument("--details", action="store_true", help="list every failure after the table")
    ap.add_argument("--json", help="also write every check as JSON lines here")
    ap.add_argument("--table", help="print the table of a report (JSON lines) and exit")
    args = ap.parse_args(argv)

    if args.table:
        with open(args.table, encoding="utf-8") as f:
            results = [json.loads(line) for line in f if line.strip()]
        text, failing = table(results, args.details)
        print(text)
        print(f"{failing} failing of {len(results)} checks")
        return 1 if failing else 0

    ids = []
    for item in args.inputs.split(","):
        if item == "x264":
            ids += matrix.ids("x264-variant")
        elif item == "matrix":
            ids += [i for i in matrix.ids() if "long" not in matrix.INPUTS[i].tags]
        elif item == "long":
            ids += matrix.ids("long")
        elif item == "all":
            ids += matrix.ids(exclude=("source",))
        elif item in matrix.INPUTS:
            ids.append(item)
        else:
            ap.error(f"unknown input {item!r}; ids: {', '.join(matrix.INPUTS)}")
    ids = list(dict.fromkeys(ids))
    long_ids = [] if args.no_long else [i for i in ids if "long" in matrix.INPUTS[i].tags]
    if not args.no_long and "long" not in ids and not long_ids and args.inputs == "x264,matrix":
        long_ids = ["long-h264-mp4"]
    short_ids = [i for i in ids if i not in long_ids]
    selections = args.selections.split(",")
    paths = args.paths.split(",")
    cache = matrix.cache_dir(args.cache)
    work = args.work or tempfile.mkdtemp(prefix="snhoo-stress-")
    started = time.monotonic()

    print(f"building {len(short_ids) + len(long_ids)} inputs in {cache} ...", flush=True)
    built = matrix.build(short_ids + long_ids, cache)
    oracles = {}
    for i, p in built.items():
        try:
            oracles[i] = oracle.decode(p, os.path.join(cache, "oracle"))
        except oracle.OracleError as e:
            print(f"  {i}: no oracle ({e}); left out", flush=True)
    results: list[dict] = []
    short_paths = [p for p in paths if not p.startswith("split")]  # nothing short is cut
    batches = [("short", [i for i in short_ids if i in oracles], short_paths, matrix.TIMES_SHORT)]
    if long_ids:
        long_paths = ["split", "decode-all"] + (["split-decode-all"] if "split-decode-all" in paths else [])
        batches.append(("long", [i for i in long_ids if i in oracles], long_paths, matrix.TIMES_LONG))
    try:
        for name, batch, batch_paths, times in batches:
            if not batch:
                continue
            root = matrix.make_root(os.path.join(work, "roots", name), {i: built[i] for i in batch})
            for kind in selections:
                sel = matrix.selection(kind, [len(oracles[i]) for i in batch], times)
                runs = {}
                for path in batch_paths:
                    out = os.path.join(work, "out", f"{name}-{kind}-{path}-{args.format}")
                    shutil.rmtree(out, ignore_errors=True)
                    run = runs[path] = matrix.run_tool(root, out, sel.args(), path, args.format)
                    crash = run.crashed()
                    trace = run.traceback()
                    note = " CRASHED" if crash else (" (printed a traceback)" if trace else "")
                    print(f"  {name} {sel.name} {path}: {run.seconds:.1f} s{note}", flush=True)
                    if trace and not crash:
                        base = {"input": "(the run)", "selection": kind, "path": path, "format": args.format}
                        results.append(
                            {"oracle": 0, **base, "status": None, "problems": {"traceback": [trace]}}
                        )
                    for i in batch:
                        base = {"input": i, "selection": kind, "path": path, "format": args.format}
                        if crash:
                            results.append(
                                {"oracle": 1, **base, "status": None, "problems": {"crash": [crash[-300:]]}}
                            )
                            continue
                        filename = os.path.basename(built[i])
                        v = oracle.judge(
                            run.folder(filename),
                            run.records.get(filename),
                            oracles[i],
                            sel,
                            args.format,
                            may_fail="damaged" in matrix.INPUTS[i].tags,
                        )
                        results.append(
                            {"oracle": 1, **base, "status": v.status, "problems": v.problems or {}}
                        )
                for path in ("default", "split"):
                    if path not in runs or "decode-all" not in runs:
                        continue
                    for i in batch:
                        filename = os.path.basename(built[i])
                        a, b = runs[path].records.get(filename), runs["decode-all"].records.get(filename)
                        if not (a and b and a["status"] == b["status"] == "ok"):
                            continue
                        differ = oracle.same_bytes(
                            runs[path].folder(filename),
                            runs["decode-all"].folder(filename),
                            args.format,
                            oracles[i].unstable,
                        )
                        base = {"input": i, "selection": kind, "path": path, "format": args.format}
                        results.append(
                            {
                                "oracle": 2,
                                **base,
                                "status": "ok",
                                "problems": {"bytes": differ} if differ else {},
                            }
                        )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    text, failing = table(results, args.details)
    print()
    print(__doc__[__doc__.index("    F  the record") : __doc__.index("Runs the installed")].rstrip())
    print()
    print(text)
    print(f"{failing} failing of {len(results)} checks, {time.monotonic() - started:.0f} s")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
