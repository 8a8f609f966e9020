"""One video's task in this process, without Dask: what a worker does per video, timed alone.

    python -m benchmarks.one_task VIDEO OUT [--scenes] [--dedup] [--every N] [--max-side N]

Used with paired timings (A and B in turn) to compare per-video work against single-machine tools (PySceneDetect),
leaving out the cluster's start, which a lab pays once per job, not per video.
"""

from __future__ import annotations

import argparse
import os
import sys

from snhoo_dask.frames.filters import parse_dedup, parse_resize
from snhoo_dask.frames.parsing import parse_selection
from snhoo_dask.fs.fsafe import identity
from snhoo_dask.model import Video
from snhoo_dask.output.folder import OutputFolder
from snhoo_dask.settings import Settings
from snhoo_dask.worker.extract import extract_video


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--scenes", action="store_true")
    ap.add_argument("--dedup", action="store_true")
    ap.add_argument("--every", type=int)
    ap.add_argument("--max-side", type=int)
    args = ap.parse_args(argv)
    video = os.path.abspath(args.video)
    root, rel = os.path.dirname(video), os.path.basename(video)
    folder = OutputFolder(args.out)
    folder.check_apart([root])
    folder.create()
    settings = Settings(
        out=folder.path,
        selection=parse_selection(every=args.every, scenes=args.scenes),
        stage="never",
        resize=parse_resize(args.max_side, None),
        dedup=parse_dedup(args.dedup),
    )
    ident = identity(os.stat(video))
    record = extract_video(
        Video(root, "v", rel, ident.size, real=os.path.realpath(video), ident=ident), settings
    )
    print(record.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
