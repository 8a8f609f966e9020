"""The names of what a job leaves in its output folder.

OUT/manifest.jsonl                 one record per video per run
OUT/report.html                    the job's report
OUT/<root name>/<rel video path>/  finished frames of one video (appears whole or not at all)
    000123.jpg ... frames.csv .snhoo-done.json
OUT/<root name>/<rel video path>.tar   the same, packed (--pack tar; see formats)
OUT/shards/, OUT/samples.parquet     --pack shards: the numbered shards and their index
OUT/.snhoo-tmp/                    folders being written; swept at start and end of a run
OUT/.snhoo.lock                    the lock of the run on OUT now (``lock``)
OUT/.snhoo-run                     which run may publish into OUT (``fence``)
"""

from __future__ import annotations

TMP_DIR = ".snhoo-tmp"
FRAGMENTS = "fragments"  # in OUT/.snhoo-tmp: the videos' tars the workers publish for the client (shards)
DONE_FILE = ".snhoo-done.json"
MANIFEST = "manifest.jsonl"
REPORT = "report.html"
SAMPLES = "samples.parquet"  # --pack shards: every sample of every published shard
SHARDS_DIR = "shards"  # --pack shards: the numbered shards
LOCK_FILE = ".snhoo.lock"
DONE_MEMBER = "__snhoo_done__"  # a tar's completion record: what .snhoo-done.json is to a folder
TAR_NAME = "frames.tar"  # the tar's name inside the video's temporary folder
TAR_SUFFIX = ".tar"
IMAGE_EXTENSIONS = (".jpg", ".png")
RUN_FILE = ".snhoo-run"  # which run holds OUT now: its tasks publish only while it does (fence)
# Names a root's output folder may not take: they are the job's own files.
RESERVED_NAMES = frozenset({TMP_DIR, DONE_FILE, MANIFEST, REPORT, REPORT + ".tmp", LOCK_FILE, RUN_FILE})
# What only an output folder of snhoo-dask (or, DONE_FILE, one video's folder in it) holds:
# an output folder is never made inside, nor around, a folder holding one (``nesting``).
# Not manifest.jsonl (a data set of the user's may have one), nor .snhoo-tmp (a run removes
# it at its end; a root of the user's may be named so).
OUT_MARKERS = (LOCK_FILE, RUN_FILE, DONE_FILE)
RUN_MARKERS = (LOCK_FILE, RUN_FILE)  # an output folder of a run, not a video's
