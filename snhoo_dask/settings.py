"""What a job asked for: the settings every video's task receives."""

from __future__ import annotations

from dataclasses import dataclass

from .frames.filters import Dedup, FilterError, Resize, parse_dedup, parse_resize
from .frames.selection import STREAMING_MODES, Selection
from .model import Video, VideoRecord
from .options import DEFAULTS, Options
from .output.folder import OutputDir
from .output.shards import fragment_rel, parse_size
from .video.probe import DEFAULT_MAX_PIXELS


def out_suffix(pack: str) -> str:
    """Appended to a video's output path: ``cam/a.mp4`` (folder) or ``cam/a.mp4.tar``."""
    return ".tar" if pack in ("tar", "shards") else ""


FRAME_IDENTITY = 2


@dataclass(frozen=True)
class DatasetOptions:
    """--max-side/--square, --dedup, --pack and --max-pixels, checked against the selection."""

    resize: Resize | None
    dedup: Dedup | None
    pack: str
    max_pixels: int = DEFAULT_MAX_PIXELS
    shard_size: int = parse_size(DEFAULTS.shard_size)  # --pack shards: bytes


def dataset_options(selection: Selection, options: Options = DEFAULTS) -> DatasetOptions:
    """The dataset options of ``options`` (each already within its bounds: ``options.check``)
    checked against each other and the selection; FilterError says what is wrong in one
    line, and its ``field`` names the job spec field."""
    dedup = options.dedup
    if dedup and selection.mode not in STREAMING_MODES:
        raise FilterError.naming(
            "{} works with all frames, {}, {} or {}, not with {}: those frames are chosen one by one",
            "dedup",
            "every",
            "fps",
            "scenes",
            selection.mode,
        )
    try:
        shard_size = parse_size(options.shard_size)
    except ValueError as e:
        raise FilterError.naming("{} must be {what}", "shard_size", what=str(e)) from None
    return DatasetOptions(
        parse_resize(options.max_side, options.square),
        parse_dedup(dedup, options.dedup_hi, options.dedup_lo, options.dedup_frac),
        options.pack,
        DEFAULT_MAX_PIXELS if options.max_pixels is None else options.max_pixels,
        shard_size,
    )


@dataclass(frozen=True)
class RunFacts:
    """Facts of a started job that its tasks need, set by the job, not by the user."""

    # OUT's inode when the job started: a task refuses an OUT that was replaced since.
    out_ino: int | None = None
    # The token this run wrote into OUT/.snhoo-run when it took OUT (``output.folder.take_over``): a
    # task publishes only while it is still there, never after another run took OUT over.
    fence: str = ""
    # ffmpeg decoder threads; 0 lets ffmpeg choose.  Set to 1 when there are at least as
    # many tasks as worker threads: parallelism then comes from the videos, and frame
    # threads only add overhead (a 2-min 720p decode: 18.1 s vs 19.9 s CPU).
    decoder_threads: int = 0


@dataclass(frozen=True)
class Settings:
    """Everything about a job that every video's task needs."""

    out: str
    selection: Selection
    fmt: str = DEFAULTS.fmt
    quality: int = DEFAULTS.quality
    stage: str = DEFAULTS.stage  # copy to scratch: auto (network filesystems), always or never
    scratch: str | None = None
    timeout: float = DEFAULTS.timeout
    run_id: str = ""
    resize: Resize | None = None  # --max-side / --square
    dedup: Dedup | None = None  # --dedup and its thresholds
    pack: str = DEFAULTS.pack  # "folder": one image file per frame; "tar": one tar per video
    # Decode every frame even where a sparse selection could skip some (thinning.py): the
    # same images, only slower; for comparing, or distrusting, the skip.
    decode_all: bool = DEFAULTS.decode_all
    # Not in the signature: it refuses videos, it never changes the frames of one it takes.
    max_pixels: int = DEFAULT_MAX_PIXELS
    # A long video is cut into pieces of at least this many seconds that different workers
    # extract at once (pieces.py); 0: every video is one task.  Not in the signature: the
    # pieces give the same images as the whole.
    split_seconds: float = DEFAULTS.split_seconds
    # Decode on a worker's GPU: auto, cuda or none (hwaccel.py).  Not in the signature:
    # the GPU decodes the same frames.
    hwaccel: str = DEFAULTS.hwaccel
    # Keep a cut-off video's decoded frames as ``partial`` (never ``ok``).  Not in the
    # signature: it changes no image of a complete video, and a partial one is always redone.
    keep_partial: bool = DEFAULTS.keep_partial
    # --pack shards: bytes a shard reaches before it is closed.  Not in the signature: it
    # decides where samples go, never what they are.
    shard_size: int = parse_size(DEFAULTS.shard_size)
    # What the job learned as it started, not what it was asked (never in the signature).
    run: RunFacts = RunFacts()

    def open_out(self) -> OutputDir:
        """OUT as this job's tasks open it: the very folder the job locked, publishing only
        while the job still holds it (``output.folder.OutputDir``)."""
        return OutputDir(self.out, self.run.out_ino, self.run.fence)

    def output_rel(self, video: Video) -> str:
        """Where a task publishes this video's output, relative to OUT: its own place, or with
        --pack shards a fragment the client copies into the shards (``output.shards``)."""
        return fragment_rel(video) if self.pack == "shards" else video.out_rel

    def describe(self) -> str:
        """The selection and what is done to it, for records and the terminal."""
        parts = [self.selection.describe()]
        if self.dedup is not None:
            parts.append("near-duplicates dropped")
        if self.resize is not None:
            parts.append(self.resize.describe())
        if self.pack != "folder":
            parts.append(f"packed as {self.pack}")
        return ", ".join(parts)

    def signature(self) -> dict:
        """What a finished output must match to be skipped on a rerun."""
        sig = {
            "selection": self.selection.signature(),
            "format": self.fmt,
            "quality": self.quality,
            # Frames are named by the decoder's own count (selection's definition); folders
            # named by the earlier timestamp model may hold wrong frames and are redone.
            "frame_identity": FRAME_IDENTITY,
        }
        # Added only when used, so outputs finished before these options existed still match.
        if self.resize is not None:
            sig["resize"] = self.resize.signature()
        if self.dedup is not None:
            sig["dedup"] = self.dedup.signature()
        if self.pack != "folder":
            sig["pack"] = self.pack
        return sig


def new_record(video: Video, settings: Settings) -> VideoRecord:
    """A video's record before anything is known about it."""
    return VideoRecord(
        run=settings.run_id,
        root=video.root,
        video=video.rel,
        out=video.out_rel,
        size=video.size,
        selection=settings.describe(),
        staged=settings.stage == "always",
    )
