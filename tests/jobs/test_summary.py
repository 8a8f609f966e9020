"""One outcome per job: the CLI's exit code and the web page's state come from the same place."""

from __future__ import annotations

import pytest

from snhoo_dask.jobs.summary import Summary
from snhoo_dask.model import VideoRecord


def record(status: str, frames: int = 0) -> VideoRecord:
    rec = VideoRecord(run="r", root="/cam", video=f"{status}.mp4", out=f"cam/{status}.mp4")
    return rec.finish(status, frames=frames, error="not a readable video: x" if status == "failed" else None)


def summary(total: int, statuses: list[str], **state) -> Summary:
    s = Summary(total=total, **state)
    for status in statuses:
        s.add(record(status, frames=10 if status == "ok" else 0))
    return s


LOST = "lost the connection to the Dask scheduler with 2 video(s) unfinished; rerun to resume"
NO_REPORT = "could not write /o/report.html: Is a directory"
UNREADABLE = [("/cam/private", "cannot list folder: Permission denied")]

# case: (videos, final statuses, how the job ended) -> (exit code, web state, words of its message)
# fmt: off
OUTCOMES = {
    "all ok or skipped": (3, "ok ok skipped", {}, 0, "done", None),
    "a video failed": (3, "ok failed skipped", {}, 1, "done_failures", "1 of 3 videos failed"),
    "interrupted": (3, "ok", dict(interrupted=True), 130, "interrupted", "stopped with 1 of 3 videos"),
    "interrupted beats failed": (3, "failed", dict(interrupted=True), 130, "interrupted", "resume to do the rest"),
    "scheduler lost": (3, "ok", dict(scheduler_lost=LOST), 1, "error", LOST),
    "manifest error": (2, "ok ok", dict(manifest_error="cannot write manifest.jsonl"), 1, "error", "manifest"),
    "unsearched folders": (1, "ok", dict(unsearched=UNREADABLE), 1, "done_failures", "could not be searched for videos: /cam/private"),
    "unfinished": (3, "ok ok", {}, 1, "error", "only 2 of 3 videos finished"),
    "no report": (2, "ok ok", dict(report_error=NO_REPORT), 1, "done_failures", NO_REPORT),
    "no report, a failure": (2, "ok failed", dict(report_error=NO_REPORT), 1, "done_failures", f"1 of 2 videos failed; {NO_REPORT}"),
    "no report, interrupted": (2, "ok", dict(interrupted=True, report_error=NO_REPORT), 130, "interrupted", NO_REPORT),
}
# fmt: on


@pytest.mark.parametrize("total, statuses, ended, exit_code, state, words", OUTCOMES.values(), ids=OUTCOMES)
def test_outcome_for_each_way_a_job_ends(total, statuses, ended, exit_code, state, words):
    s = summary(total, statuses.split(), **ended)
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
