"""Which frames a job takes, and how images are named by them (no Dask, no output).

- ``selection``: the selection modes (all, every, fps, frames, times, keyframes, scenes),
  and the plain decode plan for one video; ``parsing`` makes one from the options.
- ``frame_log``: ffmpeg's own per-frame log, which names every image by the frame it is.
- ``filters``: resize and dedup as ffmpeg filters.
- ``length``: what a header's length claim is worth (truncation checks).
"""

from .parsing import parse_selection
from .plans import Plan, plan
from .selection import Selection, SelectionError

__all__ = ["Plan", "Selection", "SelectionError", "parse_selection", "plan"]
