"""The one place that makes scikit-video 1.1.11 work on current NumPy.

scikit-video 1.1.11 (its last release) still calls ``np.float``, ``np.int`` and
``np.bool``, which NumPy removed in 1.24.  Importing scikit-video through this
module restores exactly those aliases (as the builtins they always were) before
scikit-video is imported, instead of pinning an old NumPy for the whole stack.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import numpy as np

_REMOVED_ALIASES = {"float": float, "int": int, "bool": bool}

for _name, _builtin in _REMOVED_ALIASES.items():
    if _name not in np.__dict__:
        setattr(np, _name, _builtin)

# ``import skvideo`` also imports its image-quality helpers (skvideo.utils.edge, stpyr,
# mscn, stats), which pull in scipy.signal/ndimage/stats: about 1.4 s of CPU in every
# process that reads video, for code the FFmpeg reader never calls.  Those four modules
# are replaced by stand-ins whose functions load the real module on first call.
_DEFERRED = ("edge", "stpyr", "mscn", "stats")


class _Deferred(types.ModuleType):
    """One of scikit-video's scipy-heavy helper modules, loaded when first used."""

    def _real(self) -> types.ModuleType:
        real = self.__dict__.get("_loaded")
        if real is None:
            utils_dir = os.path.dirname(sys.modules["skvideo.utils"].__file__ or "")
            path = os.path.join(utils_dir, self.__name__.rsplit(".", 1)[1] + ".py")
            spec = importlib.util.spec_from_file_location(self.__name__, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"scikit-video's {self.__name__} is not at {path}")
            real = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(real)
            self.__dict__["_loaded"] = real
        return real

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def deferred(*args, **kwargs):
            return getattr(self._real(), name)(*args, **kwargs)

        deferred.__name__ = deferred.__qualname__ = name
        return deferred


if "skvideo" not in sys.modules:
    for _mod in _DEFERRED:
        sys.modules.setdefault(f"skvideo.utils.{_mod}", _Deferred(f"skvideo.utils.{_mod}"))

import skvideo  # noqa: E402  (must follow the aliases above)
import skvideo.io  # noqa: E402
from skvideo.io.ffmpeg import FFmpegReader  # noqa: E402

__all__ = ["skvideo", "FFmpegReader"]
