"""OUT/.snhoo-tmp: the folders a video's frames are written in before their publish, and
their sweep after a run that left some behind."""

from __future__ import annotations

import os
import uuid

from ...errors import SnhooError
from ...fs.fsafe import disk_errors, is_dir_at, remove_tree, walk
from .names import TMP_DIR
from .opened import OutputDir, safe_dirs
from .owned import made_in_tmp


class TmpSwept(SnhooError, OSError):
    """A task's temporary folder was swept away under it: the task stops writing."""


class TmpDir:
    """A fresh folder in OUT/.snhoo-tmp (on the output filesystem, so the publish rename is
    atomic): ``fd`` is the folder, ``base`` its parent, both open until ``remove``."""

    def __init__(self, out: OutputDir) -> None:
        with disk_errors(out.path):
            self.base = safe_dirs(out, [TMP_DIR])
        self.name = uuid.uuid4().hex
        self.path = os.path.join(out.path, TMP_DIR, self.name)  # for messages only
        self.out_path = out.path
        try:
            with disk_errors(out.path):
                os.mkdir(self.name, 0o755, dir_fd=self.base)
                self.fd = walk(self.base, [self.name])
                self.ino = os.fstat(self.fd).st_ino
        except BaseException:
            os.close(self.base)
            raise

    def check(self) -> None:
        """Before each file written here: the folder must still be this one under its name.
        A sweep (``sweep_tmp``: a later run on OUT) renames it away, and a task writing by
        descriptor would otherwise go on filling the swept folder after that run ended."""
        try:
            here = os.stat(self.name, dir_fd=self.base, follow_symlinks=False).st_ino
        except FileNotFoundError:
            here = None
        if here != self.ino:
            raise TmpSwept(f"{self.path} was swept by a later run on {self.out_path}; this task stops")

    def remove(self) -> None:
        """Delete the folder and what is left in it (after a publish: nothing), close both."""
        remove_tree(self.base, self.name)
        os.close(self.fd)
        os.close(self.base)

    def keep(self) -> None:
        """Close both, leaving the folder for another task to take over (a piece's images,
        which the video's join moves out); a sweep removes it if none does."""
        os.close(self.fd)
        os.close(self.base)


def sweep_tmp(out: OutputDir) -> int:
    """Remove folders left by interrupted runs or killed workers; return how many.  Only
    entries named as snhoo-dask names them go (``owned.made_in_tmp``): a user's file put in
    .snhoo-tmp stays, and so does the folder then."""
    if not is_dir_at(out.fd, TMP_DIR):
        return 0  # absent, or a link/file a user put there: never list or delete through it
    try:
        base = walk(out.fd, [TMP_DIR])
    except OSError:
        return 0
    try:
        names = [name for name in os.listdir(base) if made_in_tmp(name)]
        for name in names:
            # Rename first: a task of an interrupted run may still be writing into its folder.
            # After the (atomic) rename its next write (TmpDir.check) or its publish fails,
            # instead of racing the removal; what it wrote in between goes with the next sweep.
            trash = "swept-" + uuid.uuid4().hex
            try:
                os.rename(name, trash, src_dir_fd=base, dst_dir_fd=base)
            except OSError:
                trash = name
            remove_tree(base, trash)
    except OSError:
        return 0
    finally:
        os.close(base)
    try:
        os.rmdir(TMP_DIR, dir_fd=out.fd)
    except OSError:
        pass
    return len(names)
