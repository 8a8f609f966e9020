"""``OutputFolder``: the one owner of a job's output folder, from the path a user typed to
the end of its run."""

from __future__ import annotations

import os

from ...errors import JobError
from ...fs.bounded import beat
from ...fs.fsafe import UnsafePath, open_dir
from ...model import Video
from .fence import take_over
from .folding import Folding, name_clashes, probe_folding_at
from .lock import OutputBusy, OutputLock
from .names import RUN_MARKERS
from .nesting import apart, problem
from .opened import OutputDir, holds
from .owned import foreign


def _resolved(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


class OutputFolder:
    """A job's output folder, each step done here and once:

    - ``path``: the folder resolved (no link left on it: tasks open it with none followed);
    - ``check_apart(roots)``: not a root, not in or around one, not in or around another
      run's output (``nesting``), before anything is written;
    - ``folding``: how its disk compares names, asked of the disk once; ``clashes(videos)``;
    - ``create()``: made if needed, and which folder it is remembered;
    - ``take(run_id, rels)``: for a run, opened by descriptor (the folder created, not one
      put in its place since), locked, the nesting checked again under the lock (another run
      may have started in or around it meanwhile) and taken over (``fence``), until ``release``.

    The run's tasks publish and check resume through the opened folder (``publish``, ``done``).
    """

    def __init__(self, given: str) -> None:
        # "" is the current folder to every path function: an unset shell variable would
        # scatter a job's folders and manifest wherever the command happened to run.
        if not given.strip():
            raise JobError.naming("{} is empty: name the output folder", "out")
        self.given = given
        beat("the output folder", given)
        self.path = _resolved(given)
        self.opened: OutputDir | None = None
        self.fence = ""
        self._folding: Folding | None = None
        self._made: int | None = None  # the inode of the folder ``create`` made or found
        self._lock: OutputLock | None = None

    def check_apart(self, roots: list[str]) -> None:
        """JobError if the folder is, lies inside, or contains a root (links resolved), or lies
        inside or around another snhoo-dask run's output."""
        apart(self.given, self.path, roots)
        found = problem(self.path)
        if found:
            raise JobError(found)

    def check_new_or_ours(self) -> None:
        """JobError unless the folder is not there yet, is empty, or is a snhoo-dask run's
        output folder.  For the web service, whose users may name any folder under
        --out-base: none of them writes into a folder of someone's own files."""
        beat("the output folder", self.path)
        try:
            fd = open_dir(self.path)
        except FileNotFoundError:
            return  # made empty for this job
        except OSError:
            return  # not a folder, or a link on the way: ``create`` and ``take`` say why
        try:
            if holds(fd, RUN_MARKERS) or not os.listdir(fd):
                return
        except OSError:
            pass
        finally:
            os.close(fd)
        raise JobError(
            f"the output folder {self.given} already holds files and is not the output folder of a "
            "snhoo-dask run; choose a new folder (snhoo-dask writes into no folder of someone's own files)"
        )

    @property
    def folding(self) -> Folding:
        """How the output disk compares names (asked of the folder, or of the nearest parent
        it will be made in if it is not there yet); asked once."""
        if self._folding is None:
            beat("the output folder", self.path)
            self._folding = probe_folding_at(self.path)
        return self._folding

    def clashes(self, videos: list[Video]) -> str | None:
        """Why these videos' outputs cannot share this folder's disk (``folding.name_clashes``)."""
        return name_clashes(videos, self.folding, self.path)

    def create(self) -> None:
        """Make the folder if it is not there; JobError if it cannot be used."""
        out = os.path.abspath(os.path.expanduser(self.given))
        beat("the output folder", out)
        if os.path.islink(out) and not os.path.isdir(out):
            raise JobError(f"the output folder {out} is a broken symbolic link")
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise JobError(f"cannot create the output folder {out}: {e.strerror}") from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise JobError(f"the output folder {out} is not writable (permission denied)")
        self.path = _resolved(out)
        try:
            self._made = os.stat(self.path).st_ino
        except OSError as e:
            raise JobError(f"cannot open the output folder {self.path}: {e.strerror or e}") from None

    @property
    def held(self) -> bool:
        return self.opened is not None

    def take(self, run_id: str, rels: list[str]) -> OutputDir:
        """The folder opened, locked, checked and taken over for the run ``run_id``, whose
        outputs are ``rels`` (relative to it); JobError if it cannot be.  ``release`` ends it."""
        try:
            out = OutputDir(self.path, ino=self._made)
        except UnsafePath as e:
            raise JobError(f"cannot use the output folder: {e}") from None
        except OSError as e:
            raise JobError(f"cannot open the output folder {self.path}: {e.strerror or e}") from None
        lock = OutputLock(out)
        try:
            # Before the lock file is made: a folder no run has used says so by having none.
            refused = foreign(out)
            if refused:
                raise JobError(refused)
            lock.acquire()
            # Under the lock: no other run can start in, around or on OUT in between.
            found = problem(out.path, out.fd, rels)
            if found:
                raise JobError(found)
            # From here on, a task of an earlier run on OUT publishes nothing (``fence``).
            self.fence = take_over(out, run_id)
        except BaseException as e:
            lock.release()
            out.close()
            if isinstance(e, OutputBusy):
                raise JobError(str(e)) from None
            if isinstance(e, TimeoutError):
                raise JobError(f"the output folder {out.path} stayed busy; try again") from None
            if isinstance(e, UnsafePath):
                raise JobError(f"cannot use the output folder: {e}") from None
            if isinstance(e, OSError):
                raise JobError(f"cannot write to the output folder {out.path}: {e.strerror}") from None
            raise
        self.opened, self._lock = out, lock
        return out

    def release(self) -> None:
        """Let go of the lock and the folder a ``take`` holds."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.opened is not None:
            self.opened.close()
            self.opened = None
