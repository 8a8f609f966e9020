"""Reading videos: stream facts (``probe``), ffmpeg's command line, the frame reader."""

from __future__ import annotations


def preload() -> None:
    """Import what a first task would import: PyAV (for the probe) and the frame reader.

    The embedded cluster's workers run in the client's process, so doing this while the
    cluster starts takes it off the first video's time: importing scikit-video waits
    about 0.1 s for ``ffmpeg -version``, which a thread can wait out meanwhile.
    """
    import av  # noqa: F401

    from . import reader  # noqa: F401
