"""Files: atomic writes (temp file + rename), hashing, and reading users' text/TOML/JSON files with one-line errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


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


#: how much of an output's name its temp files repeat: a legal 255-byte name stays legal with a temp suffix
TEMP_NAME_BYTES = 100


def temp_prefix(name: str) -> str:
    """The prefix of edgelstm's temp files for an output named ``name`` (``.NAME.``, then mkstemp's random
    part and a suffix): a long name is cut to ``TEMP_NAME_BYTES`` bytes plus a digest of the whole name, so that
    the temp name stays within the file system's 255-byte limit and still says which output it belongs to."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= TEMP_NAME_BYTES:
        return f".{name}."
    head = raw[:TEMP_NAME_BYTES - 9].decode("utf-8", "ignore")  # never half a character
    return f".{head}~{hashlib.sha256(raw).hexdigest()[:8]}."


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in dest's directory; rename it onto dest only if the block succeeds. On failure
    nothing is left behind: no temp file, and no parent directory this call created."""
    dest = Path(dest)
    created = make_parents(dest)
    ok = False
    tmp_path: Path | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dest.name), suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; artifacts get the usual permissions
        yield tmp_path
        os.replace(tmp_path, dest)
        ok = True
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()
        if not ok:
            remove_dirs(created)


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


def refuse_overwriting_inputs(outputs: dict[str, str | os.PathLike | None],
                              inputs: "list[str | os.PathLike | None]") -> None:
    """BadInput when an output (keyed by its option: ``report``, ``csv``...) would replace one of the inputs
    or an input's manifest (``<input>.json``), or when two outputs are the same file."""
    from edgelstm.errors import BadInput, opt

    protected: dict[Path, Path] = {}
    for i in inputs:
        if i is None:
            continue
        p = Path(i).resolve()
        protected[p] = Path(i)
        protected[p.with_name(p.name + ".json")] = Path(str(i) + ".json")
    seen: dict[Path, str] = {}
    for key, out in outputs.items():
        if out is None:
            continue
        p = Path(out).resolve()
        if p in protected:
            raise BadInput(f"{opt(key)} {out} would overwrite the input {protected[p]}; pass another path")
        if p in seen:
            raise BadInput(f"{opt(seen[p])} and {opt(key)} name the same file {out}; pass two paths")
        seen[p] = key


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
    problem = link_problem(p)
    if problem is not None:
        raise BadInput(f"{what} {p} {problem}")
    if not p.exists():
        raise BadInput(f"{what} {p} does not exist")
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


def human_size(n: float | None) -> str:
    """1536 -> '1.5 KiB' (None -> '–')."""
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover
