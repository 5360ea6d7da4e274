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


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another edgelstm pipeline"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"pid {info['pid']} on {info.get('host', '?')} since {since}: {info.get('command', '?')}"


def _command_line() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return " ".join(["edgelstm" if prog == "__main__.py" else prog, *sys.argv[1:]])


class OutputLock:
    """``with OutputLock(out, wait=False): ...`` — the exclusive right to write into ``out``."""

    def __init__(self, out: Path, *, wait: bool = False, command: str | None = None,
                 on_wait: Callable[[str], None] | None = None):
        self.path = Path(out) / LOCK_FILE
        self.wait = wait
        self.command = command or _command_line()
        self.on_wait = on_wait
        self._fd: int | None = None

    def __enter__(self) -> "OutputLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BadInput(f"cannot lock the output directory {self.path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(self.path)
            if not self.wait:
                os.close(fd)
                raise BadInput(f"the output directory {self.path.parent} is in use by {holder}",
                               hint=f"wait for it to finish, pass {opt('wait')}, or use another output directory"
                               ) from None
            if self.on_wait:
                self.on_wait(f"waiting for {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            raise BadInput(f"cannot lock the output directory {self.path.parent}: {exc.strerror or exc}") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            os.ftruncate(self._fd, 0)  # no stale holder named after we are gone
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
