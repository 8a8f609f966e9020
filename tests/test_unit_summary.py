"""One outcome per job: the CLI's exit code and the web page's state come from the same place."""

from __future__ import annotations

import pytest

from snhoo_dask.record import VideoRecord
from snhoo_dask.summary import Summary


def record(status: str, frames: int = 0) -> VideoRecord:
    rec = VideoRecord(run="r", root="/cam", video=f"{status}.mp4", out=f"cam/{status}.mp4")
    return rec.finish(status, frames=frames, error="not a readable video: x" if status == "failed" else None)


def summary(total: int, statuses: list[str], **state) -> Summary:
    s = Summary(total=total, **state)
    for status in statuses:
        s.add(record(status, frames=10 if status == "ok" else 0))
    return s


@pytest.mark.parametrize(
    "s, exit_code, state, words",
    [
        pytest.param(summary(3, ["ok", "ok", "skipped"]), 0, "done", None, id="all ok or skipped"),
        pytest.param(
            summary(3, ["ok", "failed", "skipped"]),
            1,
            "done_failures",
            "1 of 3 videos failed",
            id="a video failed",
        ),
        pytest.param(
            summary(3, ["ok"], interrupted=True),
            130,
            "interrupted",
            "stopped with 1 of 3 videos finished; resume to do the rest",
            id="interrupted",
        ),
        pytest.param(
            summary(3, ["failed"], interrupted=True),
            130,
            "interrupted",
            "1 of 3",
            id="interrupted outranks a failure",
        ),
        pytest.param(
            summary(3, ["ok"], scheduler_lost="lost the connection to the Dask scheduler"),
            1,
            "error",
            "lost the connection",
            id="scheduler lost",
        ),
        pytest.param(
            summary(2, ["ok", "ok"], manifest_error="cannot write manifest.jsonl: No space left"),
            1,
            "error",
            "cannot write manifest.jsonl",
            id="manifest not written",
        ),
        pytest.param(
            summary(1, ["ok"], unsearched=[("/cam/private", "cannot list folder: Permission denied")]),
            1,
            "done_failures",
            "1 folder(s) could not be read, so videos in them were not searched: /cam/private",
            id="unsearched folders",
        ),
        pytest.param(
            summary(3, ["ok", "ok"]), 1, "error", "only 2 of 3 videos finished", id="unfinished videos"
        ),
    ],
)
def test_outcome_for_each_way_a_job_ends(s, exit_code, state, words):
    outcome = s.outcome
    assert (outcome.exit_code, outcome.state, s.exit_code) == (exit_code, state, exit_code)
    if words is None:
        assert outcome.message is None
    else:
        assert words in outcome.message


def test_totals_count_each_status_and_images_of_ok_videos_only():
    s = summary(4, ["ok", "skipped", "failed", "ok"])
    assert (s.ok, s.skipped, s.failed, s.done, s.images) == (2, 1, 1, 4, 20)
    assert [r.video for r in s.failures] == ["failed.mp4"]


def test_a_record_without_a_final_status_is_refused():
    with pytest.raises(ValueError, match="without a final status"):
        Summary(total=1).add(VideoRecord(run="r", root="/cam", video="v.mp4", out="cam/v.mp4"))
