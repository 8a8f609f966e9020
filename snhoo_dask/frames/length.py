"""How long a video is: what its header claims, and whether to believe it.

The container's header says how many frames a video has, and the truncation check
compares the frames ffmpeg decoded with that: a copy cut off half-way still carries the
header of the whole video.  But a header can also be plain wrong (damaged, or forged to
make a worker plan a trillion seconds of frames).  The two cannot be told apart by the
frames, only by the claim itself: no container stores a frame in less than a byte, so a
header claiming more frames than its file has bytes cannot be describing that file.
"""

from __future__ import annotations


def believable(claimed_frames: int, size: int) -> bool:
    """Whether ``size`` bytes could hold the ``claimed_frames`` the header says."""
    return claimed_frames <= size


def cut_short(duration: float | None, reached: float, frame: float) -> bool:
    """The decoded pictures end earlier than the header's ``duration`` (seconds), beyond its
    usual error (a cut-off file); ``reached``: the last picture's time plus one ``frame``.
    A header that states no duration (None) can tell no truncation.

    Time, not a count of frames: a variable-rate file has fewer frames than its duration
    times its nominal rate, but its last picture is still at its end."""
    if duration is None:
        return False
    return reached < duration - max(2 * frame, duration / 50)


def false_claim(duration: float | None, claimed_frames: int, size: int) -> str:
    """The record's words for a header whose length was not believed."""
    return (
        f"nothing after the video's real end: its header claims {duration or 0:g} s "
        f"({claimed_frames} frames), more frames than its {size} bytes can hold, so the "
        "header is wrong; the frames the file holds were taken"
    )
