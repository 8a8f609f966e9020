"""GPU decoding (NVIDIA NVDEC through ffmpeg's ``-hwaccel cuda``), where a worker has one.

``--hwaccel auto`` (the default) decodes on the GPU only on a worker that has an NVIDIA
device and an ffmpeg built with CUDA; ``cuda`` tries it everywhere; ``none`` never.  Each
worker decides for itself: a cluster may mix machines with and without GPUs.  The frames
come back to system memory before any filter, so the plan, the filters and the images are
the CPU path's (H.264 and HEVC decoding is bit-exact by the standards).

A video whose GPU decode fails (no device after all, a codec or size the GPU does not
take, the driver) is decoded again on the CPU, and its record says why (``decoder``).
"""

from __future__ import annotations

import functools
import os
import subprocess

from .ffmpeg import FFMPEG

HWACCELS = ("auto", "cuda", "none")
CPU = "cpu"
# What the NVIDIA driver creates once loaded: without it CUDA cannot start.
_NVIDIA_DEVICES = ("/dev/nvidiactl", "/proc/driver/nvidia/version")


@functools.cache
def _ffmpeg_has_cuda() -> bool:
    try:
        out = subprocess.run(
            [FFMPEG, "-hide_banner", "-hwaccels"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "cuda" in out.split()


def gpu_present() -> bool:
    """Whether this machine has a loaded NVIDIA driver and an ffmpeg that can use it."""
    return any(os.path.exists(p) for p in _NVIDIA_DEVICES) and _ffmpeg_has_cuda()


def decoder_for(setting: str) -> str:
    """What this worker decodes on for ``--hwaccel setting``: ``"cuda"`` or ``"cpu"``."""
    if setting == "cuda" or (setting == "auto" and gpu_present()):
        return "cuda"
    return CPU


def input_options(decoder: str) -> dict[str, str]:
    """ffmpeg's input options for decoding on ``decoder``."""
    return {"-hwaccel": "cuda"} if decoder == "cuda" else {}


def fell_back(reason: str) -> str:
    """The record's ``decoder`` for a video the GPU failed and the CPU then decoded."""
    return f"{CPU} (cuda failed: {reason})"
