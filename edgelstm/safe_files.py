"""The one way edgelstm creates or replaces a file (SECURITY.md: no symbolic link is followed when a file is
created or truncated, and an output is never one of the command's inputs).

- A new file starts as a temp file in the destination's folder, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
  (never an existing path opened for writing by name), and is renamed onto the destination: ``rename`` replaces
  a symbolic link planted at the destination instead of writing through it.
- Files that belong together commit together: an artifact and its manifest (``write_artifact``), and every
  file written inside ``all_or_nothing()`` (validate's and bench's reports). All temps are written first, then
  renamed into place; if a rename fails (or a signal arrives), the earlier files are put back.
- A temp's name says whose it is, ``.NAME.edgelstm-PID-HOST-RANDOM.tmp`` (``.bak`` for an earlier file kept
  during a commit), and fits in 255 bytes whatever NAME's length. One left behind by a killed process is swept
  on the next write to the same path (its process is gone; this host made it).
- The other half of the rule, an output that is the same file as an input, is ``edgelstm.same_file``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

TAG = "edgelstm"
NAME_MAX = 255  # bytes in one file name on Linux/macOS file systems
_TAG_ROOM = len(f"..{TAG}-{'9' * 10}-abcdef-01234567.tmp")  # the most a temp's name adds to NAME
_TEMP_NAME = re.compile(r"^\.(?P<base>.*)\." + TAG + r"-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]{8}\."
                        r"(?P<kind>tmp|bak)$", re.DOTALL)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _host_id() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


_HOST = _host_id()


def _base(name: str) -> str:
    """``name`` cut (in bytes) so that a temp named after it stays within NAME_MAX."""
    raw = os.fsencode(name)
    return name if len(raw) <= NAME_MAX - _TAG_ROOM else os.fsdecode(raw[:NAME_MAX - _TAG_ROOM])


def temp_name(dest_name: str, kind: str = "tmp") -> str:
    return f".{_base(dest_name)}.{TAG}-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}.{kind}"


def create_temp(dest: Path, kind: str = "tmp") -> tuple[int, Path]:
    """A new, empty temp file beside ``dest`` (mode 0666 less the umask): its fd and its path."""
    for _ in range(100):
        path = dest.parent / temp_name(dest.name, kind)
        try:
            return os.open(path, _CREATE, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name beside {dest}")  # pragma: no cover - 100 random collisions


# ------------------------------------------------------------------------------------------ stale temps


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def sweep_stale(dest: Path) -> list[str]:
    """Remove the temps of ``dest`` that a killed edgelstm process left (its pid is gone on this host). An
    earlier file kept aside (``.bak``) goes back to ``dest`` when ``dest`` is missing. Best effort: returns
    the names removed or restored."""
    base = _base(dest.name)
    swept: list[str] = []
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return swept
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if not m or m["base"] != base or m["host"] != _HOST or _alive(int(m["pid"])):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                continue
            if m["kind"] == "bak" and not os.path.lexists(dest):
                os.replace(entry.path, dest)
            else:
                os.unlink(entry.path)
            swept.append(entry.name)
        except OSError:
            continue
    return swept


_TEMP_DIR = re.compile(r"^\.?" + TAG + r"-[a-z0-9]+-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-")


def private_tempdir(kind: str, *, folder: str | os.PathLike | None = None) -> Any:
    """A private scratch folder (a ``tempfile.TemporaryDirectory``) for third-party tools' files, in $TMPDIR or
    ``folder`` (then hidden), named ``edgelstm-KIND-PID-HOST-…``. Folders of that naming that a killed edgelstm
    left (pid gone on this host, owned by this user) are removed first."""
    import tempfile

    where = os.fspath(folder) if folder is not None else tempfile.gettempdir()
    dot = "." if folder is not None else ""
    _sweep_stale_dirs(where)
    return tempfile.TemporaryDirectory(prefix=f"{dot}{TAG}-{kind}-{os.getpid()}-{_HOST}-", dir=where)


def _sweep_stale_dirs(where: str) -> None:
    import shutil
    import stat

    try:
        entries = [e for e in os.scandir(where) if _TEMP_DIR.match(e.name)]
    except OSError:
        return
    for entry in entries:
        m = _TEMP_DIR.match(entry.name)
        try:
            st = entry.stat(follow_symlinks=False)
            if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or m["host"] != _HOST
                    or _alive(int(m["pid"]))):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


# ------------------------------------------------------------------------------------------ committing


def make_parents(dest: str | os.PathLike) -> list[Path]:
    """Create the missing parent directories of an output file; returns those created (outermost first), for
    ``remove_dirs`` when the write fails. BadInput in one line when the output is a directory or a parent is a
    file; other OSErrors (permissions, a read-only disk) propagate with nothing created."""
    from edgelstm.errors import BadInput

    dest = Path(dest)
    if dest.is_dir():
        raise BadInput(f"the output {dest} is a directory; pass a file path")
    missing: list[Path] = []
    d = dest.parent
    while not os.path.lexists(d) and d != d.parent:
        missing.append(d)
        d = d.parent
    if not d.is_dir():
        raise BadInput(f"cannot write {dest}: {d} is a file, not a directory")
    created: list[Path] = []
    try:
        for m in reversed(missing):
            try:
                m.mkdir()
            except FileExistsError:
                if not m.is_dir():
                    raise BadInput(f"cannot write {dest}: {m} is a file, not a directory") from None
                continue  # made by someone else meanwhile: not ours to remove
            created.append(m)
    except BaseException:
        remove_dirs(created)
        raise
    return created


def remove_dirs(created: list[Path]) -> None:
    """Remove directories ``make_parents`` created, innermost first, as far as they are empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break




def _keep_aside(dest: Path) -> Path:
    """A second name for the earlier ``dest`` (a hard link, so ``dest`` never goes missing; where the file
    system has no hard links, ``dest`` is renamed aside)."""
    bak = dest.parent / temp_name(dest.name, "bak")
    try:
        os.link(dest, bak, follow_symlinks=False)
    except (OSError, NotImplementedError):
        os.replace(dest, bak)
    return bak


def commit(moves: list[tuple[Path, Path]]) -> None:
    """Rename each temp onto its destination, all or none: if any rename fails, the earlier files come back."""
    from edgelstm.signals import hold

    kept: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for _, dest in moves:
            if os.path.lexists(dest):
                kept.append((_keep_aside(dest), dest))
        hold("commit")
        for tmp, dest in moves:
            os.replace(tmp, dest)
            done.append(dest)
    except BaseException:
        earlier = {dest for _, dest in kept}
        for dest in done:
            if dest not in earlier:
                _unlink(dest)
        for bak, dest in kept:
            _put_back(bak, dest)
        raise
    for bak, _ in kept:
        _unlink(bak)


def _put_back(bak: Path, dest: Path) -> None:
    try:
        same = os.path.samestat(os.lstat(bak), os.lstat(dest))
    except OSError:
        same = False
    if same:  # dest was never replaced (rename of two names of one file would do nothing)
        _unlink(bak)
    else:
        os.replace(bak, dest)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass
class _Group:
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)


_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("edgelstm_write_group", default=None)


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Every file written inside the block (``atomic_path``, ``write_artifact``, the report writers) is
    renamed into place at its end, together; if the block or any rename fails, none is (earlier files stay)."""
    if _GROUP.get() is not None:  # nested: the outer block commits
        yield
        return
    group = _Group()
    token = _GROUP.set(group)
    ok = False
    try:
        yield
        _GROUP.reset(token)
        token = None
        commit(group.moves)
        ok = True
    finally:
        if token is not None:
            _GROUP.reset(token)
        for tmp, _ in group.moves:
            _unlink(tmp)
        if not ok:
            remove_dirs(group.created)


@contextlib.contextmanager
def new_files(dests: list[Path]) -> Iterator[list[tuple[int, Path]]]:
    """Temps for ``dests`` (one each: fd, path), committed together when the block succeeds: now, or at the
    end of the enclosing ``all_or_nothing()``. On failure nothing new is left (no temp, no folder made)."""
    created: list[Path] = []
    temps: list[tuple[int, Path]] = []
    handed = False
    try:
        for d in dests:
            created += make_parents(d)
        for d in dests:
            sweep_stale(d)
            temps.append(create_temp(d))
        yield temps
        _close_all(temps)
        moves = [(t, d) for (_, t), d in zip(temps, dests)]
        group = _GROUP.get()
        if group is None:
            commit(moves)
        else:
            group.moves += moves
            group.created += created
        handed = True
    finally:
        _close_all(temps)
        if not handed:
            for _, t in temps:
                _unlink(t)
            remove_dirs(created)


def _close_all(temps: list[tuple[int, Path]]) -> None:
    for i, (fd, path) in enumerate(temps):
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
            temps[i] = (-1, path)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``dest`` for a writer that needs a file name (onnx, matplotlib, TensorRT); renamed
    onto ``dest`` only if the block succeeds."""
    with new_files([Path(dest)]) as temps:
        fd, tmp = temps[0]
        os.close(fd)
        temps[0] = (-1, tmp)
        yield tmp


@contextlib.contextmanager
def atomic_file(dest: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file object on a new temp beside ``dest`` (written through the descriptor that created it)."""
    with new_files([Path(dest)]) as temps:
        fd, _ = temps[0]
        temps[0] = (-1, temps[0][1])
        with os.fdopen(fd, "wb") as f:
            yield f


def write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(dest) as f:
        f.write(data)
    return Path(dest)
