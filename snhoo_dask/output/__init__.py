"""What a job leaves on disk, and reading it back.

- ``folder``: the output folder and its one owner, ``OutputFolder``: names, checks apart and
  nesting, case folding, lock, run fence, temporary folders and sweep, done records and
  resume's checks, the one-rename publish (one module each).
- ``formats``: the folder and tar formats behind one ``Sink`` interface.
- ``writers``: JPEG and PNG encoders.
- ``manifest``: manifest.jsonl, one record per video per run.
- ``report`` and ``sheets``: report.html and contact sheets.
"""

from .folder import OutputDir, OutputFolder, TmpDir, UnsafePath, publish
from .formats import FrameRow, Sink, make_sink

__all__ = ["FrameRow", "OutputDir", "OutputFolder", "Sink", "TmpDir", "UnsafePath", "make_sink", "publish"]
