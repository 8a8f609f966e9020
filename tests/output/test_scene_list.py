"""scenes.csv against PySceneDetect's own writer: the same cut frames and frame rate must give
the same file, column by column (``scenedetect`` is in the test extra)."""

from __future__ import annotations

import csv
import io
from fractions import Fraction

import pytest

from snhoo_dask.output.scenes import SCENE_COLUMNS, scenes_csv, timecode

scenedetect = pytest.importorskip("scenedetect")
from scenedetect import FrameTimecode  # noqa: E402
from scenedetect.output import write_scene_list  # noqa: E402


def theirs(cuts: list[int], frames: int, rate: Fraction) -> list[list[str]]:
    """PySceneDetect's scene list CSV for shots starting at ``cuts`` (frame 0 first) of a
    video of ``frames`` frames, in its header-first form (``--skip-cuts``)."""
    bounds = [*cuts, frames]
    scenes = [
        (FrameTimecode(a, rate), FrameTimecode(b, rate)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    buf = io.StringIO()
    write_scene_list(buf, scenes, include_cut_list=False)
    return list(csv.reader(io.StringIO(buf.getvalue())))


@pytest.mark.parametrize(
    ("cuts", "frames", "rate"),
    [
        ([0, 40, 70], 105, Fraction(25)),
        ([0, 1, 299, 4321], 90_000, Fraction(30000, 1001)),  # NTSC, past the hour
        ([0, 1798, 1799], 1800, Fraction(30)),  # one-frame shot at 59.97 s
    ],
)
def test_scenes_csv_is_what_pyscenedetect_writes_for_the_same_cuts(cuts, frames, rate):
    ours = list(
        csv.reader(
            io.StringIO(
                scenes_csv([(c, float(c / rate)) for c in cuts], frames, float(frames / rate)).decode()
            )
        )
    )
    expected = theirs(cuts, frames, rate)
    assert ours[0] == SCENE_COLUMNS == expected[0]
    assert len(ours) == len(expected) == len(cuts) + 1
    for column, name in enumerate(SCENE_COLUMNS):
        assert [r[column] for r in ours[1:]] == [r[column] for r in expected[1:]], name


@pytest.mark.parametrize("seconds", [0.0, 0.0005, 1.6, 59.9996, 3599.9999, 3725.25, 86399.001])
def test_timecodes_round_as_pyscenedetect_does(seconds):
    assert timecode(seconds) == FrameTimecode(seconds, 1000.0).get_timecode(nearest_frame=False)
