"""The one place that makes scikit-video 1.1.11 work on current NumPy.

scikit-video 1.1.11 (its last release) still calls ``np.float``, ``np.int`` and
``np.bool``, which NumPy removed in 1.24.  Importing scikit-video through this
module restores exactly those aliases (as the builtins they always were) before
scikit-video is imported, instead of pinning an old NumPy for the whole stack.
"""

from __future__ import annotations

import numpy as np

_REMOVED_ALIASES = {"float": float, "int": int, "bool": bool}

for _name, _builtin in _REMOVED_ALIASES.items():
    if _name not in np.__dict__:
        setattr(np, _name, _builtin)

import skvideo  # noqa: E402  (must follow the aliases above)
import skvideo.io  # noqa: E402
from skvideo.io.ffmpeg import FFmpegReader  # noqa: E402

__all__ = ["skvideo", "FFmpegReader"]
