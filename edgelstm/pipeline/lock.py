"""One pipeline at a time per output directory: an exclusive ``flock`` on ``<out>/.edgelstm.lock``, whose
content names the holder (pid, host, command, since). A second pipeline on the same directory fails at
once naming the holder, or waits for it (``wait=True``). The lock goes with the process: a crashed run
leaves no stale lock behind (the file may stay; the kernel lock does not)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from edgelstm.errors import BadInput, opt

LOCK_FILE = ".edgelstm.lock"


def prepare_out_dir(out: Path, *, what: str = "output directory") -> Path:
    """Create the output directory; one BadInput line when it is a file, cannot be made, or is read-only."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"{what} {out} is a file, not a directory")
    if os.path.islink(out) and not out.exists():
        raise BadInput(f"{what} {out} is a symbolic link to nothing ({os.readlink(out)}); remove it or pass another")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(f"cannot create {what} {out}: a parent is a file, not a directory") from None
    except OSError as exc:
        raise BadInput(f"cannot create {what} {out}: {exc.strerror or exc}") from None
    if not _writable(out):
        raise BadInput(f"{what} {out} is not writable")
    return out


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _holder_text(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict):
        info = {}
    if not info.get("pid"):
        return "another edgelstm pipeline"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"pid {info['pid']} on {info.get('host', '?')} since {since}: {info.get('command', '?')}"


def _command_line() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return " ".join(["edgelstm" if prog == "__main__.py" else prog, *sys.argv[1:]])


def _open_lock_file(directory: Path) -> tuple[int, tuple[int, int]]:
    """The lock file in ``directory``, opened for writing without following a symbolic link, created when missing
    and never truncated on open: its descriptor and (device, inode). BadInput in one line when the name is a
    symbolic link, not a regular file, or a regular file with other names (a hard link to a file elsewhere)."""
    import stat

    where = directory / LOCK_FILE
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            st = os.lstat(LOCK_FILE, dir_fd=dir_fd)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise BadInput(_not_a_lock(where, "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"))
        try:
            fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | nofollow | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                         0o644, dir_fd=dir_fd)
        except OSError as exc:
            if os.path.islink(where):  # planted between the look and the open
                raise BadInput(_not_a_lock(where, "a symbolic link")) from None
            raise
        st = os.fstat(fd)
        problem = ("not a regular file" if not stat.S_ISREG(st.st_mode)
                   else f"a file with {st.st_nlink} names (a hard link)" if st.st_nlink != 1 else None)
        if problem:
            os.close(fd)
            raise BadInput(_not_a_lock(where, problem))
        return fd, (st.st_dev, st.st_ino)
    finally:
        os.close(dir_fd)


def _not_a_lock(where: Path, what: str) -> str:
    return (f"the lock file {where} is {what}; edgelstm will not write through it (remove it, or use another "
            "output directory)")


def _still_named(directory: Path, ident: tuple[int, int]) -> bool:
    """Whether ``directory``'s lock file is still the file we locked (a failed run may have removed it)."""
    try:
        st = os.lstat(directory / LOCK_FILE)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == ident


class OutputLock:
    """``with OutputLock(out, wait=False): ...`` — the exclusive right to write into ``out``. The lock file is
    never followed through a symbolic link (see ``_open_lock_file``)."""

    def __init__(self, out: Path, *, wait: bool = False, command: str | None = None,
                 on_wait: Callable[[str], None] | None = None, on_error: Callable[[], bool] | None = None):
        self.path = Path(out) / LOCK_FILE
        self.wait = wait
        self.command = command or _command_line()
        self.on_wait = on_wait
        self.on_error = on_error  # called while still held when the block fails; True: remove the lock file
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None

    def __enter__(self) -> "OutputLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        while True:
            fd, ident = self._acquire(fcntl)
            if _still_named(self.path.parent, ident):
                break
            os.close(fd)  # the file was removed while we waited: lock the one that is there now
        self._fd, self._ident = fd, ident
        try:
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "since": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            from edgelstm.signals import hold

            hold("locked")
        except BaseException as exc:  # a signal or a full disk here: as if the block had failed
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _acquire(self, fcntl) -> tuple[int, tuple[int, int]]:
        try:
            fd, ident = _open_lock_file(self.path.parent)
        except OSError as exc:
            raise BadInput(f"cannot lock the output directory {self.path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd)
            if not self.wait:
                os.close(fd)
                raise BadInput(f"the output directory {self.path.parent} is in use by {holder}",
                               hint=f"wait for it to finish, pass {opt('wait')}, or use another output directory"
                               ) from None
            if self.on_wait:
                self.on_wait(f"waiting for {holder}")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            os.close(fd)
            raise BadInput(f"cannot lock the output directory {self.path.parent}: {exc.strerror or exc}") from None
        return fd, ident

    def remove(self) -> None:
        """Remove the lock file while still holding it (a run that made nothing leaves no lock file behind);
        a waiting pipeline notices and locks afresh."""
        if self._fd is not None and self._ident is not None and _still_named(self.path.parent, self._ident):
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __exit__(self, exc_type, *exc) -> None:
        if self._fd is None:
            return
        import fcntl

        if exc_type is not None and self.on_error is not None:
            try:
                if self.on_error():
                    self.remove()
            except Exception:  # noqa: BLE001 - cleanup is best effort; the block's error is what the user sees
                pass
        try:
            os.ftruncate(self._fd, 0)  # no stale holder named after we are gone
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
