"""scikit-video's FFmpeg reader, fed by our in-process probe and made to report errors.

We subclass rather than call ``skvideo.io.vreader`` directly for four reasons:
the probe we already made is reused (scikit-video would run ffprobe again, and a
full ``-count_frames`` decode for containers without a frame count); ffmpeg's
error log is kept so a failure has a reason; a stalled ffmpeg can be killed; and
for JPEG output ffmpeg hands over the decoder's own YUV 4:2:0 planes instead of
RGB (``planes=True``): no colour conversion in ffmpeg and half the bytes per frame.
Frames are still streamed one at a time by scikit-video's own ``nextFrame``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]  # optional module: every use checks for None

import numpy as np

from ..output.writers import YuvFrame
from .ffmpeg import FFMPEG, PIPE_INPUT_OPTIONS, SAFE_INPUT_OPTIONS, ffmpeg_reason, input_url
from .malloc import child_env
from .probe import VideoInfo
from .skvideo_compat import FFmpegReader

PIPE_BYTES = 1 << 20
_TOO_BIG = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count (\d+)")


def _widen_pipe(stream) -> None:
    """Let ffmpeg write 1 MiB ahead instead of the default 64 KiB (Linux only).

    A 720p RGB frame is 2.6 MiB: with the default pipe ffmpeg and Python take turns
    about 40 times per frame; a wider pipe cuts those context switches.
    """
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl else None
    if setpipe is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), setpipe, PIPE_BYTES)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for this user: keep the default


# Video range (Y 16-235, UV 16-240) to the full range a JPEG holds, as ffmpeg's own
# YUV->RGB conversion expands it: luma round((y-16)*255/219), chroma scaled by 255/224
# around 128.  Done by ffmpeg's ``eq`` filter, which builds 256-entry tables.  ``lutyuv``
# gives the same luma but fills 65,536-entry tables per plane at start: 25-40 ms of CPU
# per ffmpeg, more than a one-second clip's decoding (measured here).  ``eq`` uses its
# table only when gamma is not 1; gamma_weight=0 then takes the gamma out of the result
# (otherwise eq takes a fixed-point path whose brightness steps are 1 %).  The table
# entry is floor(256 * (c * (i/255 - 0.5) + 0.5 + b)), so:
_LUMA_CONTRAST = 255 * 255 / (219 * 256)
_LUMA_BRIGHTNESS = _LUMA_CONTRAST / 2 - 0.5 + (0.5 - 16 * 255 / 219) / 256
_CHROMA_SCALE = 255 * 255 / (224 * 256)  # no offset for chroma: 1 level off for about 6 % of values
TO_FULL_RANGE = (
    f"eq=contrast={_LUMA_CONTRAST:.9f}:brightness={_LUMA_BRIGHTNESS:.9f}:saturation={_CHROMA_SCALE:.9f}"
    ":gamma=1.0001:gamma_r=1.0001:gamma_b=1.0001:gamma_weight=0"
)


def _with_filter(options: dict[str, str], chain: str) -> dict[str, str]:
    """``options`` with ``chain`` applied last to the output video (-vf or -filter_complex)."""
    options = dict(options)
    if "-filter_complex" in options:
        label = options.get("-map", "[v]")
        options["-filter_complex"] += f";{label}{chain}[out]"
        options["-map"] = "[out]"
    elif "-vf" in options:
        options["-vf"] += "," + chain
    else:
        options["-vf"] = chain
    return options


def can_hand_planes(info: VideoInfo, size: tuple[int, int] | None = None) -> bool:
    """Whether ffmpeg can hand this video's frames over as 8-bit 4:2:0 planes without converting.

    Only for the BT.601 matrix (or none given, which ffmpeg treats as BT.601): a JPEG
    is BT.601 YCbCr, so planes of another matrix (BT.709 HD cameras) would shift the
    colours; those, 10-bit and 4:2:2/4:4:4 videos keep the RGB path.  So do odd picture
    sizes (``size``: the written one, default the video's): the half-size chroma of an odd
    edge cost up to 2.5 dB against the RGB path (65x49 test video).
    """
    width, height = size or (info.width, info.height)
    return (
        info.pix_fmt in ("yuv420p", "yuvj420p")
        and info.color_matrix in ("", "bt470bg", "smpte170m")
        and width % 2 == 0
        and height % 2 == 0
    )


class FrameReader(FFmpegReader):
    """Yields the frames of one ffmpeg pass; ``finish()`` says whether ffmpeg succeeded.

    Frames are RGB arrays, or ``YuvFrame``s when ``planes`` is true (see ``can_hand_planes``).
    ``inputs`` opens the file once per dict of input options (one seek each); the output
    options then carry the ``-filter_complex`` that joins them.
    """

    _proc: subprocess.Popen[bytes] | None  # ffmpeg, from the start of the pass until finish()

    def __init__(
        self,
        path: str,
        info: VideoInfo,
        input_options: dict[str, str],
        output_options: dict[str, str],
        stall_timeout: float = 120.0,
        planes: bool = False,
        inputs: list[dict[str, str]] | None = None,
        pass_fds: tuple[int, ...] = (),
        feed: Callable[[BinaryIO], None] | None = None,
    ) -> None:
        self._info = info
        self._pass_fds = pass_fds  # the video's descriptor when ``path`` is /proc/self/fd/N
        self._feed = feed  # writes what ffmpeg decodes into its stdin (a thinned pass)
        self._feeder: threading.Thread | None = None
        self.feed_error: BaseException | None = None
        self._planes = planes
        self._expand = planes and not info.full_range
        self._inputs = inputs
        self._log = tempfile.TemporaryFile()
        self.stalled = False
        self.log = ""  # ffmpeg's error lines, condensed; filled by finish()
        self.refused: str | None = None  # a picture the decoder refused as too big (finish())
        self._buffer: np.ndarray | None = None
        self._stall_timeout = stall_timeout
        self._last_progress = time.monotonic()
        self._done = threading.Event()
        super().__init__(path, inputdict=dict(input_options), outputdict=dict(output_options))
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    # -- scikit-video hooks -------------------------------------------------
    def _probe(self) -> dict:
        info = self._info
        rate = info.frame_rate
        # No "@nb_frames": the reader then streams until ffmpeg ends (see _probCountFrames),
        # which is right for filtered output whose length the container cannot know.
        return {
            "video": {
                "@width": str(info.width),
                "@height": str(info.height),
                "@pix_fmt": "yuv420p",
                "@duration": str(info.duration or 0.0),
                "@r_frame_rate": f"{rate.numerator}/{rate.denominator}",
            }
        }

    def _probCountFrames(self) -> int:
        return 0  # 0 means "read until end of stream" to scikit-video

    def _getSupportedDecoders(self):
        return NotImplemented  # discovery already chose the files by extension

    def _createProcess(self, inputdict: dict, outputdict: dict, verbosity: int) -> None:
        outputdict.setdefault("-vcodec", "rawvideo")
        # The stream the probe chose, by its index: ffmpeg's own choice is made again from
        # what its demuxer guesses, and a fed NUT stream holds that one stream only.
        outputdict.setdefault("-map", "0:0" if self._feed is not None else f"0:{self._info.stream}")
        if self._planes:
            # scikit-video cannot size yuv420p frames; it keeps believing rgb24, we read the planes.
            # The decoder's own format, so ffmpeg converts nothing (yuvj420p is full range already).
            own = "yuvj420p" if self._info.pix_fmt == "yuvj420p" else "yuv420p"
            outputdict = {**outputdict, "-pix_fmt": own}
            if self._expand:
                outputdict = _with_filter(outputdict, TO_FULL_RANGE)
        if self._feed is not None:
            opened = self._dict2Args(inputdict) + PIPE_INPUT_OPTIONS + ["-i", "pipe:0"]
        else:
            url = input_url(self._filename)
            opened = []
            for extra in self._inputs or [{}]:
                opened += self._dict2Args({**inputdict, **extra}) + SAFE_INPUT_OPTIONS + ["-i", url]
        cmd = (
            [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]
            + opened
            + self._dict2Args(outputdict)
            + ["-"]
        )
        self._cmd = cmd
        # A session of its own: Ctrl-C at the user's terminal must stop the job in order
        # (the client cancels it), not kill ffmpeg and fail the video it was decoding.
        self._proc = proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if self._feed is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
            pass_fds=self._pass_fds,
            env=child_env(),
        )
        _widen_pipe(proc.stdout)
        if self._feed is not None:
            self._feeder = threading.Thread(target=self._feed_ffmpeg, daemon=True)
            self._feeder.start()

    def _feed_ffmpeg(self) -> None:
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is None or self._feed is None:
            return  # no fed pass (stdin is /dev/null)
        try:
            self._feed(stdin)  # type: ignore[arg-type]  # Popen's IO[bytes] is a binary file
        except (BrokenPipeError, ValueError, OSError):
            pass  # ffmpeg stopped reading: it was stopped on purpose, or its own error says why
        except BaseException as e:  # noqa: BLE001 - kept for finish(): a task must fail with a reason
            self.feed_error = e
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _readFrame(self):
        if not self._planes:
            return super()._readFrame()
        w, h = self.outputwidth, self.outputheight
        cw, ch = (w + 1) // 2, (h + 1) // 2
        data = self._read_frame_data(w * h + 2 * cw * ch)
        if len(data) == 0:
            return data
        y = data[: w * h].reshape(h, w)
        u = data[w * h : w * h + cw * ch].reshape(ch, cw)
        v = data[w * h + cw * ch :].reshape(ch, cw)
        return YuvFrame(y, u, v)

    def _read_frame_data(self, size: int | None = None) -> np.ndarray:
        # One buffer for the whole pass, filled in place: a fresh 2.6 MiB array per 720p
        # frame costs an mmap, page faults and munmap each time in Dask workers (they set
        # MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold).  Safe because each
        # frame is written out before the next one is read.
        if size is None:
            size = self.outputdepth * self.outputwidth * self.outputheight * self.dtype.itemsize
        if self._buffer is None or self._buffer.size != size:
            self._buffer = np.empty(size, dtype=np.uint8)
        view = memoryview(self._buffer.data)
        stdout = self._proc.stdout if self._proc is not None else None
        if stdout is None:
            return np.array([])  # finished: nothing more to read
        got = 0
        while got < size:
            n = stdout.readinto(view[got:])  # type: ignore[attr-defined]  # a BufferedReader: Popen's bufsize=-1
            if not n:
                return np.array([])
            got += n
        return self._buffer if self._planes else self._buffer.view(self.dtype)

    # -- ours -----------------------------------------------------------------
    def frames(self) -> Iterator[np.ndarray | YuvFrame]:
        for frame in self.nextFrame():
            self._last_progress = time.monotonic()
            yield frame

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            if time.monotonic() - self._last_progress > self._stall_timeout:
                self.stalled = True
                proc = self._proc
                if proc is not None and proc.poll() is None:
                    proc.kill()
                return

    def finish(self, complete: bool) -> str | None:
        """Stop ffmpeg; return None if it ended well, else the reason.

        ``complete`` is False when we stopped reading early on purpose, in which case
        ffmpeg being told to stop is not a failure.
        """
        self._done.set()
        proc = self._proc
        reason = None
        if proc is not None:
            if complete:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            if self._feeder is not None:
                self._feeder.join(timeout=30)  # ffmpeg is gone: its writes fail at once
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace")
            self.log = ffmpeg_reason(text, self._filename)
            too_big = _TOO_BIG.search(text)
            if too_big:
                w, h, cap = (int(g) for g in too_big.groups())
                # The decoder's own --max-pixels (-max_pixels): a picture-size change mid-stream.
                self.refused = f"a picture in the stream is {w}x{h}, above --max-pixels {cap}"
            if self.stalled:
                reason = f"timed out: ffmpeg produced no frame for {self._stall_timeout:g} s"
            elif complete and proc.returncode != 0:
                reason = f"ffmpeg failed while decoding: {self.log or f'exit status {proc.returncode}'}"
            elif complete and self.feed_error is not None:
                reason = f"could not read the video's packets: {self.feed_error}"
            elif self._feeder is not None and self._feeder.is_alive():
                reason = "the thread writing the video's packets to ffmpeg did not stop"
        self._proc = None
        self._log.close()
        return reason
