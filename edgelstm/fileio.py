"""Files: atomic writes (temp file + rename, see ``safe_files``), hashing, and reading users' text/TOML/JSON files with one-line errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from edgelstm.safe_files import atomic_path, make_parents, remove_dirs, write_bytes  # noqa: F401 - re-exported


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to dest atomically (``safe_files``: a temp created O_EXCL without following links, renamed
    onto dest; a symlink at dest is replaced, never written through)."""
    return write_bytes(dest, data)


def write_text_atomic(dest: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(dest, text.encode("utf-8"))


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """An .npz whose bytes depend only on the arrays (np.savez stamps the current time into the zip), to be
    written with ``write_bytes_atomic``."""
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue(),
                       compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def toml_module():
    """tomllib (3.11+) or tomli (Python 3.10, Jetson): the one place that knows which."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib


def parse_toml(text: str, *, name: str) -> dict:
    """Parse TOML text; a syntax error is BadInput naming the file, in one line."""
    from edgelstm.errors import BadInput

    tomllib = toml_module()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{name} is not valid TOML: {exc}") from None


def read_text_file(path: str | os.PathLike, *, what: str = "file") -> str:
    """A user's text file as str: missing, a directory, unreadable or not UTF-8 is BadInput in one line."""
    from edgelstm.errors import BadInput

    p = Path(path)
    if not p.exists():
        raise BadInput(not_found(what, p))
    if p.is_dir():
        raise BadInput(f"{what} {p} is a directory, not a file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{what} {p} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def load_json_file(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    """A user's JSON file: BadInput in one line when missing, unreadable or not JSON."""
    import json

    from edgelstm.errors import BadInput

    text = read_text_file(path, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{what} {Path(path).name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def refuse_overwriting_inputs(outputs: dict[str, str | os.PathLike | None],
                              inputs: "list[str | os.PathLike | None]") -> None:
    """BadInput when an output (keyed by its option: ``report``, ``csv``...) is the same file as one of the
    inputs or an input's manifest (``<input>.json``), through links too, or when two outputs are the same file."""
    from edgelstm.same_file import refuse_overwriting_inputs as refuse

    refuse(outputs, inputs)


def path_kind(path: str | os.PathLike, *, what: str = "file") -> str:
    """``"missing"``, ``"dir"`` or ``"file"`` for a path a user named; BadInput in one line for a name no file
    system takes (too long, a NUL byte) or one that cannot be looked at (permissions)."""
    import stat

    from edgelstm.errors import BadInput

    shown = repr(str(path)) if len(str(path)) <= 120 else repr(str(path)[:117] + "...")
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except ValueError:
        raise BadInput(f"{what} {shown} is not a valid file name") from None
    except OSError as exc:
        raise BadInput(f"{what} {shown}: {exc.strerror or exc}") from None
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def require_file(path: str | os.PathLike, *, what: str = "artifact", kind: str = "a model or engine") -> Path:
    """An existing, non-empty regular file, else one-line BadInput (missing, a directory, 0 bytes)."""
    from edgelstm.errors import BadInput

    import stat

    p = Path(path)
    if not p.exists():
        raise BadInput(not_found(what, p))
    if p.is_dir():
        raise BadInput(f"{p} is a directory, not {kind}")
    st = p.stat()
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{p} is not a regular file (a pipe, socket or device), not {kind}")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:  # permissions: say so, not "empty" or "corrupt"
        raise BadInput(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if st.st_size == 0:
        raise BadInput(f"{p.name} is empty (0 bytes), not {kind}")
    return p


def link_problem(path: str | os.PathLike) -> str | None:
    """``"is a symbolic link loop"`` / ``"is a broken symbolic link (to ...)"`` for a link that leads nowhere,
    else None (a good link, or no link at all)."""
    import errno

    try:
        os.stat(path)
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"is a broken symbolic link (to {os.readlink(path)})"
        return None
    except ValueError:  # a NUL byte: reported by whoever opens it
        return None


def not_found(what: str, path: str | os.PathLike) -> str:
    """The one line for a path that leads to no file: ``WHAT PATH does not exist``, or why a link leads nowhere."""
    return f"{what} {path} {link_problem(path) or 'does not exist'}"


def human_size(n: float | None) -> str:
    """1536 -> '1.5 KiB' (None -> '–')."""
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover
