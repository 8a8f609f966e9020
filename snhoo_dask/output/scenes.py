"""A video's scene list, ``scenes.csv``, in the form PySceneDetect's ``list-scenes`` writes.

One row per shot: the columns, their order, the 1-based frame numbers and the
``HH:MM:SS.mmm`` timecodes are PySceneDetect's (``scenedetect.output.write_scene_list``):

    Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,
    End Time (seconds),Length (frames),Length (timecode),Length (seconds)

Written without the line of cut timecodes PySceneDetect puts above the header by default
(its ``list-scenes --skip-cuts`` form): with it the file is not one table, and ``csv``,
pandas' read_csv or a spreadsheet would take the cut list for the header.  The cuts are
the Start Timecode column from the second row on.

Shot k starts at the k-th image written (``--scenes`` writes the first frame of each shot);
it ends where the next starts, the last where the decoded video ends.  Times are the
frames' presentation times (frames.csv's ``timestamp``), which for a constant frame rate
are PySceneDetect's ``frame / rate``.
"""

from __future__ import annotations

import csv
import io

SCENE_COLUMNS = [
    "Scene Number",
    "Start Frame",
    "Start Timecode",
    "Start Time (seconds)",
    "End Frame",
    "End Timecode",
    "End Time (seconds)",
    "Length (frames)",
    "Length (timecode)",
    "Length (seconds)",
]
SCENES_FILE = "scenes.csv"


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``, rounded to the millisecond as PySceneDetect's ``get_timecode``."""
    seconds = max(0.0, seconds)
    hours = int(seconds / 3600)
    seconds -= hours * 3600
    minutes = int(seconds / 60)
    seconds = round(max(0.0, seconds - minutes * 60), 3)
    if int(seconds) >= 60:  # 59.9996 rounds up into the next minute
        seconds = 0.0
        minutes += 1
        if minutes >= 60:
            minutes = 0
            hours += 1
    millis = format(seconds, ".4f")[-5:-1]  # ".mmm": one more digit, cut, as theirs does
    return f"{hours:02d}:{minutes:02d}:{int(seconds):02d}{millis}"


def scene_rows(starts: list[tuple[int, float]], end_frame: int, end_seconds: float) -> list[list[str]]:
    """The rows of the scene list: ``starts`` are (frame index, seconds) of each shot's first
    frame in frame order; the video ends before frame ``end_frame``, at ``end_seconds``."""
    rows = []
    for i, (frame, start) in enumerate(starts):
        end, end_s = starts[i + 1] if i + 1 < len(starts) else (end_frame, end_seconds)
        rows.append(
            [
                f"{i + 1:d}",
                f"{frame + 1:d}",  # 1-based, first frame of the shot
                timecode(start),
                f"{start:.3f}",
                f"{end:d}",  # 1-based, last frame of the shot (0-based: the next shot's first)
                timecode(end_s),
                f"{end_s:.3f}",
                f"{end - frame:d}",
                timecode(end_s - start),
                f"{end_s - start:.3f}",
            ]
        )
    return rows


def scenes_csv(starts: list[tuple[int, float]], end_frame: int, end_seconds: float) -> bytes:
    """scenes.csv's bytes (``\\n`` line ends, as PySceneDetect writes them)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(SCENE_COLUMNS)
    out.writerows(scene_rows(starts, end_frame, end_seconds))
    return buf.getvalue().encode("utf-8")
