"""The job's frame counts from the tasks' reports: the estimate firms up as videos are read."""

from __future__ import annotations

from snhoo_dask.jobs.progress import JobProgress
from snhoo_dask.model import FAILED, OK, Video, VideoRecord


def video(name: str, size: int) -> Video:
    return Video("/r", "r", name, size)


def record(name: str, status: str, frames: int) -> VideoRecord:
    return VideoRecord(run="x", root="/r", video=name, out=f"r/{name}", status=status, frames=frames)


def test_expected_is_extrapolated_by_size_until_every_video_is_read():
    p = JobProgress([video("a.mp4", 1000), video("b.mp4", 3000)])
    assert p.snapshot().frames_expected is None  # nothing read yet: nothing to say
    p.report({"video": "r/a.mp4", "piece": None, "expected": 100, "done": 40})
    snap = p.snapshot()
    assert (snap.frames_done, snap.frames_expected, snap.estimated) == (40, 400, True)
    assert snap.running == {"r/a.mp4": (0, 1)}
    # b is cut in 3 pieces: its plan tells the count, each piece its images.
    p.report({"video": "r/b.mp4", "piece": None, "expected": 250, "done": 0, "pieces": 3})
    p.report({"video": "r/b.mp4", "piece": 0, "expected": 90, "done": 90, "pieces": 3, "end": True})
    p.report({"video": "r/b.mp4", "piece": 1, "expected": 80, "done": 30, "pieces": 3})
    snap = p.snapshot()
    assert (snap.frames_done, snap.frames_expected, snap.estimated) == (160, 350, False)
    assert snap.running["r/b.mp4"] == (1, 3)
    # A failed video's count stops where it was (the bar never runs backwards); ok: its images.
    p.finished(record("a.mp4", FAILED, 0))
    p.finished(record("b.mp4", OK, 250))
    snap = p.snapshot()
    assert (snap.frames_done, snap.frames_expected, snap.running) == (290, 290, {})


def test_reports_of_other_videos_and_uncountable_selections():
    p = JobProgress([video("a.mp4", 1000)])
    assert not p.report({"video": "r/other.mp4", "piece": None, "expected": 5, "done": 5})
    p.report({"video": "r/a.mp4", "piece": None, "expected": None, "done": 7})  # e.g. key frames, plain
    snap = p.snapshot()
    assert (snap.frames_done, snap.frames_expected, snap.eta_s) == (7, None, None)


def test_a_video_recorded_with_its_shard_counts_as_its_own():
    # --pack shards: the record's ``out`` is the shard that holds the video's samples.
    p = JobProgress([video("a.mp4", 1000), video("b.mp4", 1000)])
    p.report({"video": "r/a.mp4", "piece": None, "expected": 10, "done": 10})
    p.report({"video": "r/b.mp4", "piece": None, "expected": 10, "done": 4})
    for name, frames in (("a.mp4", 10), ("b.mp4", 10)):
        p.finished(
            VideoRecord(run="x", root="/r", video=name, out="shards/00000.tar", status=OK, frames=frames)
        )
    snap = p.snapshot()
    assert (snap.frames_done, snap.frames_expected) == (20, 20)
