"""The output folder, owned by one object (``OutputFolder``) and kept in one module per concern.

- ``names``: what a job leaves in OUT, by name.
- ``opened``: OUT opened once by descriptor (``OutputDir``), everything below it reached from there.
- ``nesting``: OUT kept apart from the roots and from other runs' outputs, checked one way.
- ``folding``: how OUT's disk compares names, and the videos whose output names it would merge.
- ``lock``: one run at a time per OUT.
- ``fence``: which run's tasks may publish into OUT now.
- ``tmp``: the temporary folders in OUT/.snhoo-tmp, and their sweep.
- ``done``: done records and resume's completion checks.
- ``publish``: the one-rename publish of a video's frames.
- ``owned``: what in OUT snhoo-dask may replace, delete or append to (what it made).
- ``owner``: ``OutputFolder``, which does each of these steps for a job, once.
"""

from ...fs.fsafe import UnsafePath
from .done import complete, finished_record, previous_output, read_done, read_tar_done
from .fence import StaleRun, take_over
from .folding import FOLDING_UNKNOWN, Folding, name_clashes, probe_folding, probe_folding_at
from .lock import OutputBusy, OutputLock
from .names import (
    DONE_FILE,
    DONE_MEMBER,
    FRAGMENTS,
    IMAGE_EXTENSIONS,
    LOCK_FILE,
    MANIFEST,
    OUT_MARKERS,
    REPORT,
    RESERVED_NAMES,
    RUN_FILE,
    RUN_MARKERS,
    SAMPLES,
    SHARDS_DIR,
    TAR_NAME,
    TAR_SUFFIX,
    TMP_DIR,
)
from .opened import OutputDir, safe_dirs
from .owned import foreign, is_report, made_in_tmp
from .owner import OutputFolder
from .publish import publish
from .tmp import TmpDir, sweep_tmp

__all__ = [
    "DONE_FILE",
    "DONE_MEMBER",
    "FRAGMENTS",
    "FOLDING_UNKNOWN",
    "IMAGE_EXTENSIONS",
    "LOCK_FILE",
    "MANIFEST",
    "OUT_MARKERS",
    "REPORT",
    "RESERVED_NAMES",
    "RUN_FILE",
    "RUN_MARKERS",
    "SAMPLES",
    "SHARDS_DIR",
    "TAR_NAME",
    "TAR_SUFFIX",
    "TMP_DIR",
    "Folding",
    "OutputBusy",
    "OutputDir",
    "OutputFolder",
    "OutputLock",
    "StaleRun",
    "TmpDir",
    "UnsafePath",
    "complete",
    "finished_record",
    "foreign",
    "is_report",
    "made_in_tmp",
    "name_clashes",
    "previous_output",
    "probe_folding",
    "probe_folding_at",
    "publish",
    "read_done",
    "read_tar_done",
    "safe_dirs",
    "sweep_tmp",
    "take_over",
]
