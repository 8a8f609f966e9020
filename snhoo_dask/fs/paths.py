"""Path containment, written once: which folder lies inside which."""

from __future__ import annotations

import os


def contains(base: str, path: str) -> bool:
    """Whether ``path`` is ``base`` or lies below it, both absolute and normalised (resolved,
    where links matter).  Compared by whole components: ``/data/videos-frames`` is not inside
    ``/data/videos``."""
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def overlap(a: str, b: str) -> bool:
    """Whether folder ``a`` is ``b``, or lies inside or around it."""
    return contains(a, b) or contains(b, a)
