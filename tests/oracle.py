"""The oracle: what every image snhoo-dask writes must be, from plain ffmpeg and ffprobe
alone (no snhoo_dask code).

The definition the product follows: frame k is the k-th picture ffmpeg's decoder presents
for the video stream plain ``ffmpeg -i FILE`` picks (its own choice: the most pixels, a
default flag first, cover art last), after edit lists, in presentation order, each decoded picture
once (``-vsync passthrough``), as the stream's exact crop (``-flags unaligned``: without it
libavcodec drops a left crop that leaves its planes unaligned, 630 wide for a 624-wide stream).  Its time is its presentation timestamp minus the first
presented picture's.  Rotation tags are applied and container colour tags honoured, as
plain ``ffmpeg -i file -vsync passthrough out%d.png`` does.

``decode(path)`` runs, once per file (cached next to it):

* ``ffmpeg -flags unaligned -i FILE -an -sn -dn -vsync passthrough -autoscale 0 -vf showinfo -f rawvideo
  -pix_fmt rgb24`` (no ``-map``: ffmpeg chooses the stream, and its "Stream mapping" line
  says which): every presented picture as RGB at its own size (a stream whose size
  changes midway gives each picture at the size it was coded at), with showinfo's line
  per picture (size, timestamp, key flag);
* ``ffprobe -show_frames -select_streams INDEX`` (that stream): each picture's ``best_effort_timestamp``
  (what ffmpeg takes as the frame's time), ``pts`` and ``key_frame``.

The two must agree on the number of pictures and their key flags, or the oracle refuses
(``OracleError``): then "what ffmpeg presents" is not one thing, and no image can be
judged against it.  Times are ffmpeg's (showinfo's): where ffprobe's differ, which is
where the file has none (AVI's last B-frames: ffmpeg's guess) or they jump back (MPEG-TS
files joined with ``cat``: ffmpeg corrects across the jump), the oracle's ``notes`` say so.

``expected(selection, oracle)`` gives the frame indices a selection takes, by the
definition; ``match(image, oracle, k)`` says which of the frames around k an image is.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

ORACLE_VERSION = 7
_SHOWINFO = re.compile(
    r"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:(\S+).*?\bs:(\d+)x(\d+)\b.*?\biskey:(\d)\s+type:(\w)"
)
_TIMEBASE = re.compile(r"config in time_base:\s*(\d+)/(\d+)")
_MAPPED = re.compile(r"^\s*Stream #0:(\d+)\S* -> #0:0", re.M)


# The decoder option that presents the stream's exact crop (see the module's docstring).
EXACT_CROP = ["-flags", "unaligned"]


class OracleError(Exception):
    """ffmpeg and ffprobe do not agree on what the file presents."""


@dataclass(frozen=True)
class Frame:
    index: int
    time: Fraction  # seconds after the first presented picture
    key: bool  # the decoder's key_frame flag
    width: int  # as presented (after rotation)
    height: int
    offset: int  # into the raw RGB file
    pict_type: str
    # The decoder reported errors and this picture came out differently with one decoding
    # thread (error concealment depends on threading): its pixels are not one thing.
    unstable: bool = False


class Oracle:
    """The pictures one file presents, with their times and key flags."""

    def __init__(self, path: str, frames: list[Frame], raw: str, notes: list[str]) -> None:
        self.path = path
        self.frames = frames
        self.notes = notes  # where ffprobe's times are not ffmpeg's (ffmpeg's are taken)
        self._raw = raw
        self._data: np.memmap | None = None
        self._alt: np.memmap | None = None

    @property
    def unstable(self) -> list[int]:
        return [f.index for f in self.frames if f.unstable]

    def images(self, k: int) -> list[np.ndarray]:
        """Frame k as the decoder may give it: one picture, or for an unstable one (see
        ``Frame.unstable``) both the multithreaded and the single-threaded decode's."""
        if not self.frames[k].unstable:
            return [self.image(k)]
        if self._alt is None:
            self._alt = np.memmap(self._raw + ".threads1", dtype=np.uint8, mode="r")
        f = self.frames[k]
        alt = np.asarray(self._alt[f.offset : f.offset + f.width * f.height * 3])
        return [self.image(k), alt.reshape(f.height, f.width, 3)]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def times(self) -> list[Fraction]:
        return [f.time for f in self.frames]

    @property
    def keys(self) -> list[int]:
        return [f.index for f in self.frames if f.key]

    def image(self, k: int) -> np.ndarray:
        """Frame k as RGB (height x width x 3, uint8), at the size it was presented."""
        if self._data is None:
            self._data = np.memmap(self._raw, dtype=np.uint8, mode="r")
        f = self.frames[k]
        return np.asarray(self._data[f.offset : f.offset + f.width * f.height * 3]).reshape(
            f.height, f.width, 3
        )

    def frame_interval(self) -> Fraction:
        """The median time between consecutive pictures (1/30 s for a 30 fps file)."""
        gaps = sorted(b - a for a, b in zip(self.times, self.times[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else Fraction(1, 30)


def _cache_folder(path: str, cache: str | None) -> str:
    st = os.stat(path)
    tag = f"{os.path.basename(path)}.{st.st_size}.{st.st_mtime_ns}.v{ORACLE_VERSION}"
    if cache is None:
        cache = os.path.join(os.path.dirname(os.path.abspath(path)), ".oracle")
    return os.path.join(cache, tag)


def decode(path: str, cache: str | None = None) -> Oracle:
    """The oracle of ``path``, decoded once and kept in ``cache`` (by default a folder
    ``.oracle`` beside the file)."""
    folder = _cache_folder(path, cache)
    index, raw = os.path.join(folder, "frames.json"), os.path.join(folder, "rgb.raw")
    if not os.path.exists(index):
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".oracle-", dir=os.path.dirname(folder))
        try:
            frames, notes = _decode_into(path, os.path.join(tmp, "rgb.raw"))
            with open(os.path.join(tmp, "frames.json"), "w") as f:
                json.dump(
                    {"frames": [{**asdict(fr), "time": str(fr.time)} for fr in frames], "notes": notes}, f
                )
            try:
                os.rename(tmp, folder)
            except OSError:
                if not os.path.exists(index):
                    raise
        finally:
            if os.path.isdir(tmp):
                for name in os.listdir(tmp):
                    os.unlink(os.path.join(tmp, name))
                os.rmdir(tmp)
    with open(index) as f:
        data = json.load(f)
    frames = [Frame(**{**d, "time": Fraction(d["time"])}) for d in data["frames"]]
    return Oracle(path, frames, raw, data["notes"])


def _decode_into(path: str, raw: str) -> tuple[list[Frame], list[str]]:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "info", *EXACT_CROP, "-i", "file:" + path]
    cmd += ["-an", "-sn", "-dn"]
    cmd += ["-vsync", "passthrough", "-autoscale", "0", "-vf", "showinfo", "-f", "rawvideo"]
    cmd += ["-pix_fmt", "rgb24", "-y", raw]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise OracleError(f"ffmpeg could not decode {path}: {done.stderr.strip()[-1000:]}")
    shown = [m.groups() for m in _SHOWINFO.finditer(done.stderr)]
    chosen = _MAPPED.findall(done.stderr)
    if len(chosen) != 1:
        raise OracleError(f"{path}: ffmpeg's stream mapping is not one stream: {chosen}")
    probed = probe_frames(path, chosen[0])
    if len(shown) != len(probed):
        raise OracleError(f"{path}: ffmpeg presents {len(shown)} pictures, ffprobe {len(probed)}")
    if not shown:
        raise OracleError(f"{path}: no picture decoded")
    ffmpeg_times = _showinfo_times(path, shown, done.stderr)
    if probed[0][0] is None:
        raise OracleError(f"{path}: the first picture has no timestamp")
    frames, offset, notes = [], 0, []
    first = probed[0][0]
    for k, ((_n, _pts, _pts_time, w, h, iskey, ptype), (ts, key)) in enumerate(
        zip(shown, probed, strict=True)
    ):
        # (showinfo's n restarts where the filter graph is rebuilt: a change of size)
        if bool(int(iskey)) != key:
            raise OracleError(f"{path}: picture {k}: ffmpeg says key={iskey}, ffprobe key_frame={int(key)}")
        if ffmpeg_times is not None:
            # ffmpeg's own time for the picture: where the file has none (AVI's last
            # B-frames) its guess, where the file's jump back (MPEG-TS files joined with
            # cat) corrected across the jump, as ffmpeg presents them.
            time = ffmpeg_times[k]
            if ts is not None and abs(ts - first - time) > Fraction(1, 1000):
                notes.append(f"picture {k}: ffprobe {float(ts - first):.6f} s, ffmpeg {float(time):.6f} s")
        elif ts is None:
            raise OracleError(f"{path}: picture {k} has no timestamp")
        else:
            time = ts - first
        frames.append(Frame(k, time, key, int(w), int(h), offset, ptype))
        offset += int(w) * int(h) * 3
    if os.path.getsize(raw) != offset:
        raise OracleError(f"{path}: {os.path.getsize(raw)} bytes of RGB, {offset} expected from showinfo")
    if _DECODE_ERRORS.search(_without_showinfo(done.stderr)):
        frames = _mark_unstable(path, raw, frames, notes)
    return frames, notes


_DECODE_ERRORS = re.compile(r"error while decoding|concealing|corrupt|invalid|missing picture|mmco", re.I)


def _without_showinfo(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "Parsed_showinfo" not in line)


def _mark_unstable(path: str, raw: str, frames: list[Frame], notes: list[str]) -> list[Frame]:
    """The decoder reported errors: decode again with one thread into ``raw.threads1`` and
    mark the pictures that differ (how a damaged picture is concealed depends on how the
    decoder's threads share the work, so no one decode of it is *the* picture)."""
    alt = raw + ".threads1"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", *EXACT_CROP, "-i", "file:" + path]
    cmd += ["-an", "-sn", "-dn"]
    cmd += ["-vsync", "passthrough", "-autoscale", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", alt]
    subprocess.run(cmd, capture_output=True)
    if not os.path.exists(alt) or os.path.getsize(alt) != os.path.getsize(raw):
        raise OracleError(f"{path}: a single-threaded decode gives other pictures or another number of them")
    out = []
    with open(raw, "rb") as a, open(alt, "rb") as b:
        for f in frames:
            size = f.width * f.height * 3
            differ = a.read(size) != b.read(size)
            out.append(Frame(**{**asdict(f), "unstable": differ}))
    unstable = [f.index for f in out if f.unstable]
    if unstable:
        notes.append(f"decode errors: pictures {_short(unstable, 20)} depend on the decoder's threads")
    return out


def _showinfo_times(path: str, shown, log: str) -> list[Fraction] | None:
    """showinfo's times (ffmpeg's own frame timestamps) less the first's; None where the
    time base is unclear (more than one) or a picture has none."""
    bases = set(_TIMEBASE.findall(log))
    if len(bases) != 1 or any(s[1] == "NOPTS" for s in shown):
        return None
    ((num, den),) = bases
    tb = Fraction(int(num), int(den))
    first = int(shown[0][1]) * tb
    return [int(s[1]) * tb - first for s in shown]


def probe_frames(path: str, stream: str = "v:0") -> list[tuple[Fraction | None, bool]]:
    """(presentation time in seconds, key_frame) of each picture ffprobe's decoder gives
    for ``stream`` (an index, or ffprobe's stream specifier); None for a picture with no
    timestamp."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", stream, "-show_frames", "-show_entries"]
    cmd += ["frame=pts,best_effort_timestamp,key_frame:stream=time_base", "-of", "json", "file:" + path]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise OracleError(f"ffprobe failed on {path}: {done.stderr.strip()[-1000:]}")
    data = json.loads(done.stdout)
    num, den = data["streams"][0]["time_base"].split("/")
    tb = Fraction(int(num), int(den))
    out = []
    for f in data.get("frames", []):
        ts = f.get("best_effort_timestamp", f.get("pts"))
        out.append((None if ts is None else int(ts) * tb, f["key_frame"] == 1))
    return out


# -- selections, by the definition ------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """One frame selection as the CLI takes it: ``kind`` is all, every, fps, frames, times
    or keyframes; ``value`` the option's text."""

    kind: str
    value: str = ""

    @property
    def name(self) -> str:
        return self.kind if not self.value else f"{self.kind}={self.value}"

    def args(self) -> list[str]:
        if self.kind == "all":
            return []
        if self.kind == "keyframes":
            return ["--keyframes"]
        return [f"--{self.kind}", self.value]


def parse_time(text: str) -> Fraction:
    """Seconds, ``MM:SS.mmm`` or ``HH:MM:SS.mmm``, exactly."""
    parts = text.strip().split(":")
    value = Fraction(0)
    for part in parts:
        value = value * 60 + Fraction(part)
    return value


def parse_frames(text: str) -> list[int]:
    out: list[int] = []
    for item in text.split(","):
        if "-" in item:
            a, b = item.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(item))
    return out


# How close two times are to be one (docs/frames.md): half a millisecond.
TOLERANCE = Fraction(1, 2000)


@dataclass(frozen=True)
class Expected:
    """Which frame indices a selection takes from one file: every one of ``required``
    must be written, and nothing outside ``required | optional`` (``optional``: a time
    past the last picture's end, which the tool may list as missing or answer with the
    last picture)."""

    required: frozenset[int]
    optional: frozenset[int] = frozenset()
    missing: tuple[str, ...] = ()  # requested items that do not exist in this file


def expected(sel: Selection, oracle: Oracle) -> Expected:
    n = len(oracle)
    times = oracle.times
    if sel.kind == "all":
        return Expected(frozenset(range(n)))
    if sel.kind == "every":
        return Expected(frozenset(range(0, n, int(sel.value))))
    if sel.kind == "keyframes":
        return Expected(frozenset(oracle.keys))
    if sel.kind == "fps":
        rate = Fraction(sel.value)
        firsts: dict[int, int] = {}
        for k, t in enumerate(times):
            # A time within half a millisecond of a boundary is on it (docs/frames.md):
            # Matroska's millisecond times put frame 10 of 30 fps at 0.333 s.
            firsts.setdefault(math.floor((t + TOLERANCE) * rate), k)
        return Expected(frozenset(firsts.values()))
    if sel.kind == "frames":
        asked = parse_frames(sel.value)
        return Expected(frozenset(k for k in asked if k < n), missing=tuple(str(k) for k in asked if k >= n))
    if sel.kind == "times":
        required, optional, missing = set(), set(), []
        end = times[-1] + oracle.frame_interval()
        for text in sel.value.split(","):
            t = parse_time(text)
            k = shown_at(times, t)
            if k is None:
                missing.append(text)
            elif t >= end:
                optional.add(k)
            else:
                required.add(k)
        return Expected(frozenset(required), frozenset(optional - required), tuple(missing))
    raise ValueError(f"unknown selection {sel.kind}")


def shown_at(times: list[Fraction], t: Fraction) -> int | None:
    """The last frame whose time is at most ``t`` (None before the first)."""
    best = None
    for k, ft in enumerate(times):
        if ft <= t + TOLERANCE:
            best = k
    return best


# -- comparing an image with the oracle -------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _halve(a: np.ndarray) -> np.ndarray:
    """2x2 box average: what chroma subsampling leaves comparable whatever way a decoder
    or an image writer upsamples chroma."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    a = a[:h, :w].astype(np.float32)
    return (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4


def fitted(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` at ``size`` (width, height), resized if it is not."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.BICUBIC))


def jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """``frame`` through a baseline 4:2:0 JPEG of ``quality`` and back (Pillow): what a JPEG
    of the right picture looks like, so an image writer's JPEG loss is not counted as a
    difference (a right frame is then ~41 dB away, a wrong colour matrix ~25 dB)."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def jpeg_of_planes(oracle: Oracle, k: int, quality: int) -> np.ndarray | None:
    """Frame k through a JPEG made of the decoder's own full-range 4:2:0 planes (plain ffmpeg's
    ``-pix_fmt yuvj420p``), as a writer that keeps the decoder's planes makes it; None if
    ffmpeg gives no such frame.  ``jpeg_roundtrip`` goes through RGB instead, which on
    concealment noise of a damaged file loses more than the jpg floor allows (29.7 dB on
    damaged-ts) although the frame is the right one."""
    f = oracle.frames[k]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *EXACT_CROP, "-i", "file:" + oracle.path, "-an", "-sn", "-dn"]
    cmd += ["-vf", f"select=eq(n\\,{k})", "-vsync", "passthrough", "-autoscale", "0", "-frames:v", "1"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "yuvj420p", "-"]
    done = subprocess.run(cmd, capture_output=True, timeout=300)
    w, h = f.width, f.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    if done.returncode != 0 or len(done.stdout) != w * h + 2 * cw * ch:
        return None
    data = np.frombuffer(done.stdout, dtype=np.uint8)
    y = data[: w * h].reshape(h, w)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw).repeat(2, 0).repeat(2, 1)[:h, :w]
    v = data[w * h + cw * ch :].reshape(ch, cw).repeat(2, 0).repeat(2, 1)[:h, :w]
    buf = io.BytesIO()
    # Chroma repeated 2x2 and averaged back by the 4:2:0 encoder: the decoder's planes exactly.
    Image.fromarray(np.dstack((y, u, v)), "YCbCr").save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class Match:
    k: int
    psnr: float  # against frame k, at half size (see _halve)
    best: int  # the frame among k-3..k+3 the image is closest to
    best_psnr: float
    resized: bool  # the oracle's frame had to be resized to the image's size

    def ok(self, floor: float, margin: float) -> bool:
        """The image is frame k: no frame near it is closer by more than ``margin`` dB,
        and it is within ``floor`` dB of it."""
        return self.psnr >= floor and self.psnr >= self.best_psnr - margin


def match(
    image: np.ndarray, oracle: Oracle, k: int, fmt: str = "png", quality: int = 90, reach: int = 3
) -> Match:
    """How close ``image`` is to frame k and to the frames up to ``reach`` either side:
    PSNR at half size, against each frame as the format would store it (a JPEG of it at
    ``quality`` for jpg), resized to the image's size where that differs; for an unstable
    frame (``Frame.unstable``) the nearer of its two decodes."""
    size = (image.shape[1], image.shape[0])
    if fmt == "png" and k < len(oracle) and np.array_equal(image[:, :, :3], oracle.image(k)):
        # The very picture (what a right png is here): nothing nearer can exist, unless a
        # neighbour is the same picture, which is then a tie.
        return Match(k, math.inf, k, math.inf, False)
    img = _halve(image[:, :, :3])
    scores, resized = {}, False
    for j in range(max(0, k - reach), min(len(oracle), k + reach + 1)):
        best = -math.inf
        for ref in oracle.images(j):
            resized |= j == k and (ref.shape[1], ref.shape[0]) != size
            ref = fitted(ref, size)
            if fmt == "jpg":
                ref = jpeg_roundtrip(ref, quality)
            best = max(best, _psnr_f(img, _halve(ref)))
        scores[j] = best
    best = max(scores, key=lambda j: scores[j])
    return Match(k, scores.get(k, -math.inf), best, scores[best], resized)


def identify(image: np.ndarray, oracle: Oracle, fmt: str = "png", quality: int = 90) -> tuple[int, float]:
    """The frame of the whole video ``image`` is nearest to, and how near (dB, as ``match``
    measures): for an image like none of the frames around its name."""
    size = (image.shape[1], image.shape[0])
    img = _halve(image[:, :, :3])
    rough = sorted(
        ((_psnr_f(img, _halve(fitted(oracle.image(j), size))), j) for j in range(len(oracle))), reverse=True
    )
    if fmt != "jpg":
        return rough[0][1], rough[0][0]
    fine = [
        (_psnr_f(img, _halve(jpeg_roundtrip(fitted(oracle.image(j), size), quality))), j)
        for _, j in rough[:3]
    ]
    score, j = max(fine)
    return j, score


def _psnr_f(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def read_image(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# -- judging what one run wrote for one video -------------------------------------------------

# PSNR floors (dB, at half size) an image must reach against its frame (see ``match``).
# Measured on this matrix: png images of the right frame are exact (inf) and jpg ones 34-43 dB
# from the oracle's frame through the same JPEG (34 on saturated colours); a frame read with
# the wrong colour matrix or range is ~25 dB, the next frame ~21 dB.
FLOOR = {"png": 40.0, "jpg": 30.0}
FLOOR_RESIZED = 24.0  # the oracle's picture resized to the image's (a change of size midway)
FLOOR_UNSTABLE = 0.0  # a picture whose concealment depends on threads: only which frame it is
MARGIN = {"png": 0.05, "jpg": 0.3}  # how much closer a neighbour may be (near-identical frames)


@dataclass
class Verdict:
    """What is wrong with one video's output, by kind: ``failed`` (the record), ``count``
    (images missing or extra), ``size`` (an image of the wrong size: a rotation not
    applied), ``frame`` (an image is another frame), ``pixels`` (the right frame, wrong
    colours), ``csv`` (frames.csv), ``record`` (other fields)."""

    video: str
    status: str | None = None
    problems: dict[str, list[str]] | None = None

    def add(self, kind: str, text: str) -> None:
        if self.problems is None:
            self.problems = {}
        self.problems.setdefault(kind, []).append(text)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 3) -> str:
        if not self.problems:
            return "ok"
        parts = []
        for kind, texts in self.problems.items():
            more = f" (+{len(texts) - limit} more)" if len(texts) > limit else ""
            parts.append(f"{kind}: " + "; ".join(texts[:limit]) + more)
        return " | ".join(parts)


def judge(
    folder: str,
    record: dict | None,
    oracle: Oracle,
    sel: Selection,
    fmt: str,
    may_fail: bool = False,
    check_pixels: bool = True,
    quality: int = 90,
) -> Verdict:
    """Everything the definition says of one video's ``folder`` (OUT/<root>/<video>/) and
    ``record`` (its manifest line).  ``may_fail``: a ``failed`` record with a reason is
    acceptable (a damaged file); an ``ok`` one must still be right."""
    import csv

    v = Verdict(os.path.basename(folder), record.get("status") if record else None)
    if record is None:
        v.add("failed", "no manifest record")
        return v
    if record["status"] != "ok":
        if record["status"] == "failed" and may_fail and record.get("error"):
            return v
        v.add("failed", f"{record['status']}: {record.get('error')}")
        return v
    want = expected(sel, oracle)
    if not os.path.isdir(folder):
        v.add("failed", "status ok but no output folder")
        return v
    names = sorted(n for n in os.listdir(folder) if n.endswith("." + fmt))
    written = {}
    for n in names:
        stem = n[: -len(fmt) - 1]
        if not stem.isdigit():
            v.add("count", f"unexpected file {n}")
            continue
        written[int(stem)] = n
    got = set(written)
    lacking = sorted(want.required - got)
    extra = sorted(got - want.required - want.optional)
    if lacking:
        v.add("count", f"{len(lacking)} missing: {_short(lacking)}")
    if extra:
        v.add("count", f"{len(extra)} extra: {_short(extra)}")
    if record.get("frames") != len(names):
        v.add("record", f"record says {record.get('frames')} frames, {len(names)} images")
    if sel.kind == "frames":
        said = sorted(_first_number(m) for m in record.get("missing") or [])
        if said != sorted(int(m) for m in want.missing):
            v.add("record", f"missing {record.get('missing')}, expected {list(want.missing)}")
    if record.get("duration") == 0 and oracle.times[-1] > 0:
        # Unknown is not zero (a WebM written to a pipe states none): a truncation check
        # against 0 s can never fire.
        v.add("record", f"duration 0 for pictures reaching {float(oracle.times[-1]):.3f} s")
    if sel.kind == "times":
        # A time the record lists as missing must be one with no frame (before the first, or
        # at or past the last one's end): a time in a pause has its frame, however long ago.
        end = oracle.times[-1] + oracle.frame_interval()
        absent = [
            float(t)
            for t in map(parse_time, sel.value.split(","))
            if shown_at(oracle.times, t) is None or t >= end
        ]
        for item in record.get("missing") or []:
            found = re.match(r"time (-?[\d.e+-]+)s", str(item))
            if not found or not any(abs(float(found.group(1)) - t) < 1e-3 for t in absent):
                v.add("record", f"lists {item!r} missing, but that time has its frame")
    sizes, searches = {}, 0
    for k, n in sorted(written.items()):
        if k >= len(oracle):
            continue
        image = read_image(os.path.join(folder, n))
        sizes[k] = (image.shape[1], image.shape[0])
        f = oracle.frames[k]
        first = (oracle.frames[0].width, oracle.frames[0].height)
        if sizes[k] not in ((f.width, f.height), first):
            # Not the picture's size, nor the first picture's (which ffmpeg scales every
            # later picture to): a rotation not applied, or worse.
            v.add("size", f"{n} is {sizes[k][0]}x{sizes[k][1]}, frame {k} is {f.width}x{f.height}")
            continue
        if not check_pixels:
            continue
        m = match(image, oracle, k, fmt, quality)
        floor = FLOOR_RESIZED if m.resized else FLOOR[fmt]
        if f.unstable:
            floor = FLOOR_UNSTABLE
        if m.best_psnr < floor:
            # Like none of the frames near k: which frame of the whole video is it, if any?
            # (searched for the first three such images of a video; the rest are counted)
            j, score = identify(image, oracle, fmt, quality) if searches < 3 else (None, -math.inf)
            searches += 1
            if score >= floor and j != k:
                v.add("frame", f"{n} is frame {j} ({score:.1f} dB; {m.psnr:.1f} dB to {k})")
            elif j == k and _near_planes_jpeg(image, oracle, k, fmt, quality, floor, m.resized):
                pass  # frame k, as its own planes' JPEG is (see jpeg_of_planes)
            elif j == k:
                v.add("pixels", f"{n} {m.psnr:.1f} dB < {floor:.0f}: nearest frame {k}, but not its pixels")
            elif j is not None:
                v.add(
                    "pixels",
                    f"{n} {m.psnr:.1f} dB < {floor:.0f}, like no frame (nearest {j}, {score:.1f} dB)",
                )
            else:
                v.add("pixels", f"{n} {m.psnr:.1f} dB < {floor:.0f}, like no frame near it")
        elif m.best != k and m.best_psnr > m.psnr + MARGIN[fmt]:
            v.add("frame", f"{n} is frame {m.best} ({m.best_psnr:.1f} dB; {m.psnr:.1f} dB to {k})")
        elif m.psnr < floor and not _near_planes_jpeg(image, oracle, k, fmt, quality, floor, m.resized):
            v.add("pixels", f"{n} {m.psnr:.1f} dB < {floor:.0f}" + (" (resized)" if m.resized else ""))
    _judge_csv(v, folder, oracle, written, sizes, csv)
    return v


def _near_planes_jpeg(
    image: np.ndarray, oracle: Oracle, k: int, fmt: str, quality: int, floor: float, resized: bool
) -> bool:
    """Whether a jpg image that is frame k (no neighbour is nearer) but under the floor
    against the RGB-made JPEG reaches it against the JPEG of the decoder's own planes."""
    if fmt != "jpg" or resized:
        return False
    ref = jpeg_of_planes(oracle, k, quality)
    if ref is None or ref.shape != image[:, :, :3].shape:
        return False
    return _psnr_f(_halve(image[:, :, :3]), _halve(ref)) >= floor


def _judge_csv(v: Verdict, folder: str, oracle: Oracle, written: dict, sizes: dict, csv) -> None:
    path = os.path.join(folder, "frames.csv")
    if not os.path.exists(path):
        v.add("csv", "no frames.csv")
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_frame = {}
    for row in rows:
        try:
            by_frame[int(row["frame"])] = row
        except (KeyError, ValueError):
            v.add("csv", f"bad row {row}")
    if set(by_frame) != set(written):
        v.add("csv", f"rows for {_short(sorted(set(by_frame) ^ set(written)))} do not match the images")
    for k, row in sorted(by_frame.items()):
        if k not in written or k >= len(oracle):
            continue
        if row.get("file") != written[k]:
            v.add("csv", f"frame {k}: file {row.get('file')}")
        t = float(row["timestamp"])
        if abs(t - float(oracle.frames[k].time)) > 0.001:
            v.add("csv", f"frame {k}: {t:.6f} s, expected {float(oracle.frames[k].time):.6f}")
        if k in sizes and (int(row["width"]), int(row["height"])) != sizes[k]:
            v.add("csv", f"frame {k}: {row['width']}x{row['height']}, image is {sizes[k][0]}x{sizes[k][1]}")


def _first_number(item) -> int:
    """The frame a ``missing`` entry names: ``131`` or ``"frame 131 (video has 120 frames)"``
    (-1 for an entry naming none)."""
    if isinstance(item, int):
        return item
    found = re.search(r"-?\d+", str(item))
    return int(found.group()) if found else -1


def _short(items: list, limit: int = 8) -> str:
    text = ",".join(map(str, items[:limit]))
    return text + (",..." if len(items) > limit else "")


def same_bytes(a: str, b: str, fmt: str, unstable: Iterable[int] = ()) -> list[str]:
    """Oracle 2: the images of two output folders of one video, name by name: the names
    that differ in bytes or exist in one only.  Frames in ``unstable`` (a damaged picture,
    concealed as the decoder's threads happen to share it) may differ in bytes."""
    skip = {f"{k:06d}.{fmt}" for k in unstable}
    names_a = {n for n in os.listdir(a) if n.endswith("." + fmt)} if os.path.isdir(a) else set()
    names_b = {n for n in os.listdir(b) if n.endswith("." + fmt)} if os.path.isdir(b) else set()
    out = [f"{n} only in the first" for n in sorted(names_a - names_b)]
    out += [f"{n} only in the second" for n in sorted(names_b - names_a)]
    for n in sorted((names_a & names_b) - skip):
        with open(os.path.join(a, n), "rb") as fa, open(os.path.join(b, n), "rb") as fb:
            if fa.read() != fb.read():
                out.append(f"{n} differs")
    return out
