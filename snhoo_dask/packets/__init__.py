"""Decode-less fast paths: plans made from the packets, without decoding what is skipped.

- ``table``: the packet table of one video (every packet read once and classed, none decoded).
- ``thinning``: the fast plans built on the packet table; every image
  a fast plan writes is checked against ffmpeg's frame log, and a plan that cannot prove
  itself raises ``FastPathRejected`` (the video is then decoded the plain way).
- ``h264_refs``: which H.264 pictures later pictures reference (what may be skipped);
  ``h264_headers`` reads the headers that say so and writes the stand-ins'.
- ``pieces``: cutting one long video into pieces that workers decode side by side.
"""

from .pieces import cut, pieces_wanted
from .table import refusal, scan
from .thinning import fast_plan

__all__ = ["cut", "fast_plan", "pieces_wanted", "refusal", "scan"]
