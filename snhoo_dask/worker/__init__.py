"""The bodies of the Dask tasks: what runs on a worker, one video (or piece) at a time.

- ``extract``: one video: open it safely, probe, stage, plan, decode, write, publish, record.
- ``split_video``: a long video as pieces on several workers, then joined into one output.
- ``source``: reading the source file discovery saw, and nothing else.
- ``staging``: a local copy of a video on a network disk before decoding it.
- ``pause``: a test hook that holds a task at a named point.

Only ``jobs.tasks`` imports this package on the client side.
"""

from .extract import extract_video
from .split_video import extract_piece, join_pieces, plan_split

__all__ = ["extract_piece", "extract_video", "join_pieces", "plan_split"]
