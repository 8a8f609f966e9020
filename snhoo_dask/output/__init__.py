"""What a job leaves on disk, and reading it back.

- ``layout``: the output folder's names, temporary folders, the one-rename publish, the
  run fence, resume's completion checks.
- ``formats``: the folder and tar formats behind one ``Sink`` interface.
- ``writers``: JPEG and PNG encoders.
- ``manifest``: manifest.jsonl, one record per video per run.
- ``report`` and ``sheets``: report.html and contact sheets.
"""

from .formats import FrameRow, Sink, make_sink
from .layout import OutputDir, TmpDir, UnsafePath, publish

__all__ = ["FrameRow", "OutputDir", "Sink", "TmpDir", "UnsafePath", "make_sink", "publish"]
