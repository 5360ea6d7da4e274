"""Files: atomic writes (temp file + rename), hashing, and reading users' text/TOML/JSON files with one-line errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in dest's directory; rename it onto dest only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; artifacts get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text_atomic(dest: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(dest, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        raise BadInput(f"{what} {p} does not exist")
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
