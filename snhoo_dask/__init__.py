"""snhoo-dask: turn folders of videos into still images, one Dask task per video.

The public names, for a script that runs jobs without the command line::

    from distributed import Client
    from snhoo_dask import JobSpec, build_job

    job = build_job(JobSpec(roots=("/media/disk1/videos",), out="/srv/frames", every=30))
    with Client("tcp://scheduler:8786") as client:
        summary = job.run(client)  # one record per video in /srv/frames/manifest.jsonl

They are imported on first use, so ``import snhoo_dask`` stays cheap (a worker importing
one module of the package does not pay for Dask's client or the web).  The packages and
the flow of a job: docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "JobSpec": "jobs.spec",
    "build_job": "jobs.spec",
    "Job": "jobs.job",
    "Summary": "jobs.summary",
    "Settings": "settings",
    "Selection": "frames.selection",
    "parse_selection": "frames.parsing",
    "Video": "model",
    "VideoRecord": "model",
    "SnhooError": "errors",
    "UsageError": "errors",
    "VideoError": "errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'snhoo_dask' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
