"""A run directory's integrity: one writer at a time, atomic file writes.

:class:`RunLock` takes an exclusive OS lock (``fcntl.flock``) on
``<output_dir>/run.lock``. The kernel releases it when the process exits,
however it exits (``kill -9`` included), so a dead run never leaves a stale
lock behind: the file stays, but only a live lock on it counts. A second
writer started on a locked directory fails at once with :class:`RunLocked`
(naming the directory and the holder's process id) before it changes
anything. Readers (``decompvae evaluate``) take no lock.

:func:`write_text_atomic` writes a file through a temporary sibling and
``os.replace``, so a reader (or a resumed run) sees the old or the new
content, never a torn one. Failed writes (disk full, permissions) surface as
:class:`OutputWriteError`, whose message names the path and what to do.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path

__all__ = ["LOCK_NAME", "OutputWriteError", "RunLock", "RunLocked", "write_text_atomic"]

#: The lock file inside a run directory.
LOCK_NAME = "run.lock"

_UMASK = os.umask(0o022)  # read once at import (umask can only be read by setting it)
os.umask(_UMASK)


class RunLocked(RuntimeError):
    """Another live process holds the run directory's write lock."""


class OutputWriteError(RuntimeError):
    """A run's output (checkpoint, log, table) could not be written; the run stopped."""


def write_error(path: str | os.PathLike, err: OSError, what: str = "write") -> OutputWriteError:
    """An :class:`OutputWriteError` for a failed write of ``path``, saying what to do."""
    return OutputWriteError(
        f"could not {what} {path}: {err.strerror or err} (errno {err.errno}); "
        "free disk space or fix the permissions, then rerun the same command: it resumes from the last checkpoint"
    )


class RunLock:
    """An exclusive, process-lifetime write lock on a run directory.

    Use as a context manager, or :meth:`acquire` / :meth:`release`. Creates
    the directory if needed.

    Args:
      directory: the run's ``output_dir``.

    Raises:
      RunLocked: (from :meth:`acquire`) another process holds the lock.
      OutputWriteError: the directory or lock file cannot be created.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).absolute()
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's pid stays readable
        except OSError as err:
            raise write_error(self.path, err, "create the lock file") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").split()
            os.close(fd)
            who = "another process"
            if holder:
                who = f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "")
            raise RunLocked(
                f"{self.directory} is in use by {who}: only one decompvae run may write to a directory; "
                "wait for it to finish or stop it, or choose another output_dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError as err:
            os.close(fd)
            raise write_error(self.path, err) from err
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path``'s content with ``text`` atomically (temporary file, fsync, ``os.replace``).

    Raises:
      OutputWriteError: the write failed (disk full, permissions); ``path`` is unchanged.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the outputs from other users
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_error(path, err) from err
