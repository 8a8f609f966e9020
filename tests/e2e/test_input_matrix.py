"""Every image the tool writes is the right frame, on every kind of input (tests/matrix.py),
for every selection, on every way of extracting it.

The definition the product follows: frame k is the k-th picture ffmpeg's decoder
presents for the video stream plain ffmpeg picks, as its exact crop (``-flags unaligned``),
after edit lists, in presentation order, each decoded picture once; its time is its
presentation timestamp minus the first picture's; rotation tags applied, container colour
tags honoured, as plain ``ffmpeg -i FILE -vsync passthrough out%d.png`` does.  ``tests/oracle.py`` decodes each input with plain ffmpeg and
ffprobe only; nothing here trusts snhoo_dask's own probing.

For each input x selection x path, one ``snhoo-dask run`` over a root holding many inputs
(the tool runs them in parallel), then per video:

* oracle 1 (``test_matches_definition``): each image named k is frame k (the closest of
  frames k-3..k+3, and close enough: colours and rotation right), the set of names is
  exactly what the selection takes, ``frames.csv`` has each frame's time within 1 ms, and
  the record agrees; a record may be ``failed`` (with a reason) only for a damaged input,
  and ``ok`` never with a wrong or missing image;
* oracle 2 (``test_same_images_as_decode_all``): the default path's images (and a split
  video's) are byte for byte ``--decode-all``'s.

By default a representative subset runs (see ``PLAN``); ``SNHOO_FULL_MATRIX=1`` runs the
whole cross product.  ``SNHOO_MATRIX_CACHE=DIR`` keeps the generated inputs and the
oracle's decodes between sessions.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import matrix
import oracle
import pytest

pytestmark = pytest.mark.slow

FULL = os.environ.get("SNHOO_FULL_MATRIX") == "1"

SHORT = [i for i in matrix.ids() if "long" not in matrix.INPUTS[i].tags]
LONG = matrix.ids("long") if FULL else ["long-h264-mp4"]
# By default the sparse selections run on every input less the ones that only repeat
# another in a second container (the MOV twins of the MP4 rotations but one, the remuxes of
# VP9 and AV1, the second carphone, the 720p sample) ...
REPEATS = {"rot90-mov", "rot180-mp4", "rot270-mov", "vp9-mkv", "av1-webm", "skv-bigbuckbunny",
           "skv-carphone-distorted"}  # fmt: skip
# ... and every frame ("all") on one input of each kind that goes wrong differently.
ALL_SUBSET = [
    "h264-mp4", "rot90-mp4", "avi-h264", "vp9-webm", "cut-mp4", "cut-mkv", "concat-mp4",
    "reschange-ts", "colr709-mp4", "vfr-mkv", "hevc-radl-mp4", "damaged-mp4", "two-streams-mkv",
    "crop-mp4",
]  # fmt: skip
BATCHES = {
    "short": SHORT if FULL else [i for i in SHORT if i not in REPEATS],
    "all": SHORT if FULL else ALL_SUBSET,
    "long": LONG,
}

TIMES = {"short": matrix.TIMES_SHORT, "all": matrix.TIMES_SHORT, "long": matrix.TIMES_LONG}


@dataclass(frozen=True)
class Case:
    """One ``snhoo-dask run``: a batch of inputs, a selection, a path, an image format."""

    batch: str
    kind: str  # all, every, fps, frames, times, keyframes
    path: str  # a key of matrix.PATHS
    fmt: str

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.path}-{self.fmt}"


SELECTIONS = matrix.SELECTIONS
SPARSE = [k for k in SELECTIONS if k != "all"]


def plan() -> list[Case]:
    """The runs.  By default each selection on both paths where they differ (every, fps,
    frames and times decode less by default; all and keyframes decode the same way on
    both, so once), one jpg run, and the long input split; the full matrix everything."""
    both = SELECTIONS if FULL else ["every", "fps", "frames", "times"]
    cases = []
    for kind in SELECTIONS:
        batch = "all" if kind == "all" else "short"
        for path in ("default", "decode-all") if kind in both else ("default",):
            cases.append(Case(batch, kind, path, "png"))
    cases.append(Case("short", "every", "default", "jpg"))
    for kind in SELECTIONS if FULL else ["every", "fps"]:
        for path in ("split", "decode-all"):
            cases.append(Case("long", kind, path, "png"))
    if FULL:
        for kind in ("every", "frames", "keyframes"):
            cases.append(Case("short", kind, "decode-all", "jpg"))
        cases.append(Case("short", "frames", "default", "jpg"))
        cases.append(Case("short", "keyframes", "default", "jpg"))
        for kind in ("all", "every", "fps"):
            cases.append(Case("long", kind, "split-decode-all", "png"))
    return cases


PLAN = plan()
CHECKS = [(case, i) for case in PLAN for i in BATCHES[case.batch]]
# Oracle 2: a path that decodes less (or in pieces) against --decode-all of the same run.
PAIRS = [
    (case, Case(case.batch, case.kind, "decode-all", case.fmt), i)
    for case in PLAN
    if case.path in ("default", "split") and Case(case.batch, case.kind, "decode-all", case.fmt) in PLAN
    for i in BATCHES[case.batch]
]


class Matrix:
    """The session's inputs, oracles and runs, each made once, when first asked for."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cache = matrix.cache_dir(os.path.join(base, "inputs"))
        self.oracle_cache = os.path.join(self.cache, "oracle")
        self._paths: dict[str, str] = {}
        self._oracles: dict[str, oracle.Oracle] = {}
        self._runs: dict[Case, tuple[matrix.Run, oracle.Selection]] = {}
        self._unavailable: dict[str, str] = {}

    def path(self, id: str) -> str:
        """The input's file, built on first use; a test of an input this machine cannot
        make (an encoder missing) or the oracle cannot judge is skipped, saying why."""
        if id in self._unavailable:
            pytest.skip(self._unavailable[id])
        if id not in self._paths:
            try:
                self._paths.update(matrix.build([id], self.cache))
            except RuntimeError as e:  # ffmpeg failed: say so once, skip its tests
                self._unavailable[id] = f"{id} could not be made here: {e}"
                pytest.skip(self._unavailable[id])
        return self._paths[id]

    def oracle(self, id: str) -> oracle.Oracle:
        if id not in self._oracles:
            try:
                self._oracles[id] = oracle.decode(self.path(id), self.oracle_cache)
            except oracle.OracleError as e:
                self._unavailable[id] = f"no oracle for {id}: {e}"
                pytest.skip(self._unavailable[id])
        return self._oracles[id]

    def available(self, ids: list[str]) -> list[str]:
        out = []
        for i in ids:
            try:
                self.oracle(i)
            except pytest.skip.Exception:
                continue
            out.append(i)
        return out

    def run(self, case: Case) -> tuple[matrix.Run, oracle.Selection]:
        if case not in self._runs:
            ids = self.available(BATCHES[case.batch])
            paths = {i: self.path(i) for i in ids}
            sel = matrix.selection(case.kind, [len(self.oracle(i)) for i in ids], TIMES[case.batch])
            root = matrix.make_root(os.path.join(self.base, "roots", case.batch), paths)
            out = os.path.join(self.base, "out", f"{case.batch}-{case.id}")
            shutil.rmtree(out, ignore_errors=True)
            self._runs[case] = (matrix.run_tool(root, out, sel.args(), case.path, case.fmt), sel)
        return self._runs[case]


@pytest.fixture(scope="module")
def mx(tmp_path_factory) -> Matrix:
    return Matrix(str(tmp_path_factory.mktemp("matrix")))


def _verdict(mx: Matrix, case: Case, id: str) -> oracle.Verdict:
    mx.oracle(id)  # skips an input this machine cannot make or judge
    run, sel = mx.run(case)
    crash = run.crashed()
    if crash:
        _report(1, case, id, None, {"crash": [crash[-300:]]})
        pytest.fail(f"the run crashed: {' '.join(run.args)}\n{crash}")
    filename = os.path.basename(mx.path(id))
    return oracle.judge(
        run.folder(filename),
        run.records.get(filename),
        mx.oracle(id),
        sel,
        case.fmt,
        may_fail="damaged" in matrix.INPUTS[id].tags,
    )


def _report(oracle_no: int, case: Case, id: str, status: str | None, problems: dict | None) -> None:
    """One line per check into ``$SNHOO_MATRIX_REPORT`` (JSON lines), when set: the table
    ``scripts/stress_matrix.py --table FILE`` prints."""
    path = os.environ.get("SNHOO_MATRIX_REPORT")
    if path:
        line = {"oracle": oracle_no, "input": id, "selection": case.kind, "path": case.path}
        line.update({"format": case.fmt, "status": status, "problems": problems or {}})
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


@pytest.mark.parametrize(("case", "id"), CHECKS, ids=[f"{i}-{c.id}" for c, i in CHECKS])
def test_matches_definition(mx: Matrix, case: Case, id: str) -> None:
    v = _verdict(mx, case, id)
    _report(1, case, id, v.status, v.problems)
    assert v.ok, f"{id} {case.kind} {case.path} {case.fmt}: {v.summary(limit=6)}"


@pytest.mark.parametrize(
    ("case", "reference", "id"), PAIRS, ids=[f"{i}-{c.kind}-{c.path}-{c.fmt}" for c, _, i in PAIRS]
)
def test_same_images_as_decode_all(mx: Matrix, case: Case, reference: Case, id: str) -> None:
    run, _ = mx.run(case)
    ref, _ = mx.run(reference)
    filename = os.path.basename(mx.path(id))
    a, b = run.records.get(filename), ref.records.get(filename)
    if not (a and b and a["status"] == b["status"] == "ok"):
        pytest.skip(
            f"not both ok ({a and a['status']}, {b and b['status']}): test_matches_definition says why"
        )
    differ = oracle.same_bytes(run.folder(filename), ref.folder(filename), case.fmt, mx.oracle(id).unstable)
    _report(2, case, id, a["status"], {"bytes": differ} if differ else None)
    assert not differ, (
        f"{id} {case.kind}: {case.path} against decode-all: {differ[:8]} ({len(differ)} in all)"
    )


@pytest.mark.parametrize("case", PLAN, ids=[f"{c.batch}-{c.id}" for c in PLAN])
def test_run_prints_no_traceback(mx: Matrix, case: Case) -> None:
    """A run that finishes (records written, exit 0 or 1) prints no Python traceback."""
    run, _ = mx.run(case)
    if run.crashed():
        pytest.skip("the run crashed: test_matches_definition says how")
    trace = run.traceback()
    if trace:
        _report(0, case, "(the run)", None, {"traceback": [trace[-300:]]})
    assert trace is None, f"{' '.join(run.args)} printed:\n{trace}"


@pytest.mark.parametrize("kind", ["every", "fps"])
def test_long_input_is_cut_into_pieces(mx: Matrix, kind: str) -> None:
    """The split cases test what they say: the long H.264 input is extracted in pieces."""
    run, _ = mx.run(Case("long", kind, "split", "png"))
    rec = run.records.get(os.path.basename(mx.path("long-h264-mp4")))
    assert rec is not None and rec["status"] == "ok", rec
    assert rec["pieces"] >= 2, f"not cut: pieces={rec['pieces']} ({' '.join(run.args)})"


# -- the oracle itself goes red on wrong output -----------------------------------------------


def _fake_output(folder: str, o: oracle.Oracle, frames: list[int], names: list[int] | None = None) -> dict:
    """What a correct tool would write for ``frames`` (oracle pictures as PNG, frames.csv),
    each picture saved under the name from ``names`` (by default its own index)."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rows = ["frame,timestamp,file,width,height"]
    for k, name in zip(frames, names or frames, strict=True):
        f = o.frames[k]
        Image.fromarray(o.image(k)).save(os.path.join(folder, f"{name:06d}.png"))
        t = float(o.frames[name].time) if name < len(o) else float(f.time)
        rows.append(f"{name},{t:.6f},{name:06d}.png,{f.width},{f.height}")
    with open(os.path.join(folder, "frames.csv"), "w") as fh:
        fh.write("\n".join(rows) + "\n")
    return {"status": "ok", "frames": len(frames), "missing": [], "error": None}


def test_oracle_goes_red_on_shifted_or_wrong_output(mx: Matrix, tmp_path) -> None:
    o = mx.oracle("h264-mp4")
    sel = oracle.Selection("every", "7")
    want = sorted(oracle.expected(sel, o).required)
    right = _fake_output(str(tmp_path / "right"), o, want)
    assert oracle.judge(str(tmp_path / "right"), right, o, sel, "png").ok

    # Each image one frame late (names still 0, 7, 14, ...): every image is the wrong frame.
    # (The last, 119, has no frame after it: it stays right.)
    late = _fake_output(str(tmp_path / "late"), o, [min(k + 1, len(o) - 1) for k in want], want)
    v = oracle.judge(str(tmp_path / "late"), late, o, sel, "png")
    assert set(v.problems) == {"frame"} and len(v.problems["frame"]) == len(want) - 1, v.summary()

    # The expected index shifted by one: right pictures, wrong names.
    shifted = _fake_output(str(tmp_path / "shifted"), o, want[:-1], [k + 1 for k in want[:-1]])
    v = oracle.judge(str(tmp_path / "shifted"), shifted, o, sel, "png")
    assert "count" in v.problems and "frame" in v.problems, v.summary()

    # The right frames with the colours of another matrix (BT.709 read as BT.601).
    wrong = _fake_output(str(tmp_path / "colour"), o, want)
    for k in want[:3]:
        path = str(tmp_path / "colour" / f"{k:06d}.png")
        from PIL import Image

        rgb = oracle.read_image(path).astype(float)
        rgb = rgb @ [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]
        Image.fromarray(rgb.clip(0, 255).astype("uint8")).save(path)
    v = oracle.judge(str(tmp_path / "colour"), wrong, o, sel, "png")
    assert set(v.problems) == {"pixels"} and len(v.problems["pixels"]) == 3, v.summary()

    # A frames.csv time 2 ms off.
    csv = tmp_path / "right" / "frames.csv"
    lines = csv.read_text().splitlines()
    frame, t, *rest = lines[2].split(",")
    lines[2] = ",".join([frame, f"{float(t) + 0.002:.6f}", *rest])
    csv.write_text("\n".join(lines) + "\n")
    v = oracle.judge(str(tmp_path / "right"), right, o, sel, "png")
    assert set(v.problems) == {"csv"}, v.summary()


def test_expected_sets_follow_the_definition(mx: Matrix) -> None:
    """The oracle's selections on inputs whose answer is known by construction."""
    o = mx.oracle("h264-mp4")  # 120 frames at exactly 1/30 s
    assert oracle.expected(oracle.Selection("fps", "3"), o).required == set(range(0, 120, 10))
    assert oracle.expected(oracle.Selection("keyframes"), o).required == {0, 60}
    times = oracle.expected(oracle.Selection("times", "0,0.5,1,1.234,00:02.001,3.95,4.5"), o)
    assert times.required == {0, 15, 30, 37, 60, 118} and times.optional == {119}
    # The same frames at millisecond times: 10 is at 0.333 s, within 0.5 ms of 1/3 s, so on it.
    mkv = mx.oracle("h264-mkv")
    assert sorted(oracle.expected(oracle.Selection("fps", "3"), mkv).required)[:4] == [0, 10, 20, 30]
    vfr = mx.oracle("vfr-mkv")  # every 10th source frame dropped: 9 pictures a third of a second
    assert len(vfr) == 108
    assert oracle.expected(oracle.Selection("times", "0.3"), vfr).required == {8}  # source 8 at 0.267
    gap = mx.oracle("gap-mp4")  # frame 47 (1.96 s) is shown until 602.0 s
    assert oracle.expected(oracle.Selection("times", "00:10:00,602.1"), gap).required == {47, 50}
    two = mx.oracle("two-streams-mkv")  # ffmpeg's own choice: the larger stream
    crop = mx.oracle("crop-mp4")  # the exact crop, not libavcodec's aligned 630 wide
    assert (two.frames[0].width, crop.frames[0].width, crop.frames[0].height) == (640, 624, 352)
    cut = mx.oracle("cut-mp4")  # the edit list starts it at 3.3 s: the key frame at 4 s is frame 21
    assert cut.keys[0] == 21 and abs(float(cut.frames[21].time) - 0.7) < 0.001
