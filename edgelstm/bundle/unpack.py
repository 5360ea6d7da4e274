"""unpack_bundle / extract_bundle: check a bundle, unpack it beside the target, verify what landed, rename it in.

Before anything is written: the target is checked (not a file, not the current directory or one above it, not
the directory holding the bundle), every member is checked (verify.safety_problems: absolute paths, `..`,
links, devices, duplicates, anything outside the target), and the sizes the members declare are held against
the caps (verify.size_problems) and the free space. Members are then written one by one into a temp directory
beside the target, each refused as soon as it yields more bytes than it declared; with verify, every file on
disk is checked against CHECKSUMS.sha256, bundle.json and its manifest, and only then is the temp directory
renamed into place. A refused or failed unpack leaves nothing behind, not even the parent directories it made.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from edgelstm.bundle.types import BundleCheck, BundleRefused
from edgelstm.fileio import human_size
from edgelstm.bundle.verify import check_dir, member_blocks, norm, open_tar, read_members, safety_problems, size_problems
from edgelstm.errors import BadInput, opt

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def parse_size(text: str, *, key: str = "max_unpacked_size") -> int:
    """'500MiB', '40GiB', '2G', '1.5T' or a number of bytes -> bytes."""
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise BadInput(f"{opt(key)} must look like 500MiB, 40GiB or a number of bytes, got {text!r}")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_target(bundle: Path, dest: Path, force: bool) -> None:
    """Refuse a target unbundle cannot or must not replace, before anything is read or written."""
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"{dest} exists and is not a directory")
    here, target = Path.cwd().resolve(), dest.resolve()
    if target == here or target in here.parents:
        raise BadInput(f"refusing to unpack into {dest}: it is the current directory or one above it, which "
                       "unbundle would replace as a whole; give a new directory, e.g. -o model-bundle")
    if dest.is_dir() and any(dest.iterdir()):
        if not force:
            raise BadInput(f"{dest} exists and is not empty (use {opt('force')} to replace it)")
        if target in bundle.resolve().parents:
            raise BadInput(f"refusing to replace {dest}: it holds the bundle {bundle.name} itself")


def _make_dirs(d: Path) -> list[Path]:
    """mkdir -p d; returns the directories it created, deepest first (for _remove_dirs)."""
    missing = [p for p in (d, *d.parents) if not p.exists()]
    d.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_dirs(created: list[Path]) -> None:
    for p in created:
        try:
            p.rmdir()
        except OSError:
            return


def _scratch_prefix(dest: Path, kind: str = "") -> str:
    """mkdtemp's prefix for a scratch folder beside ``dest``: ``.NAME.`` with NAME cut (in bytes) so that the
    folder's name fits in 255 bytes whatever the length of a legal ``-o`` name."""
    return f".{os.fsdecode(os.fsencode(dest.name)[:200])}.{kind}"


def _free_space(d: Path) -> int:
    """The free space where ``d`` will be made; BadInput first when nothing can be written there at all (a
    read-only file system, no permission): that, not the space, is what the user must fix."""
    while not d.exists() and d != d.parent:
        d = d.parent
    if os.statvfs(d).f_flag & os.ST_RDONLY:
        raise BadInput(f"{d}: the file system is read-only; nothing was written")
    if not os.access(d, os.W_OK | os.X_OK):
        raise BadInput(f"{d}: permission denied; nothing was written")
    return shutil.disk_usage(d).free


def _write_members(tar: tarfile.TarFile, regular: list[tarfile.TarInfo], root: Path, bundle: Path) -> None:
    """Write the (checked, normalised) regular members under root, streaming each with its size enforced."""
    for m in regular:
        target = root / m.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o755 if m.mode & 0o100 else 0o644)
            with os.fdopen(fd, "wb") as out:
                for block in member_blocks(tar, m, bundle):
                    out.write(block)
        except OSError as exc:
            raise BadInput(f"could not unpack {bundle.name}: {m.name}: {exc.strerror or exc}") from None
        with contextlib.suppress(OSError, OverflowError, ValueError):
            os.utime(target, (m.mtime, m.mtime))


def _install(tmp: Path, dest: Path) -> None:
    """Rename tmp to dest; a non-empty dest is moved aside first and put back if the rename fails."""
    if not (dest.exists() and any(dest.iterdir())):
        try:
            os.replace(tmp, dest)   # dest missing or an empty directory
        except OSError as exc:
            raise BadInput(f"could not create {dest}: {exc.strerror or exc}") from None
        return
    old = Path(tempfile.mkdtemp(prefix=_scratch_prefix(dest, "old."), dir=dest.parent))
    try:
        os.replace(dest, old / dest.name)
    except OSError as exc:
        old.rmdir()
        raise BadInput(f"could not move {dest} aside to replace it: {exc.strerror or exc}") from None
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        os.replace(old / dest.name, dest)
        old.rmdir()
        raise BadInput(f"could not replace {dest}: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)


def unpack_bundle(path: str | Path, dest: str | Path, verify: bool = True, *, force: bool = False,
                  max_unpacked_size: int | None = None) -> BundleCheck:
    """extract_bundle, returning the BundleCheck (members and their status) instead of the path."""
    path, given = Path(path), Path(dest)
    dest = Path(os.path.abspath(given))
    _check_target(path, dest, force)
    with open_tar(path) as tar:
        members = read_members(tar, path)
        problems = safety_problems(members, dest) or size_problems(members, path.stat().st_size, max_unpacked_size)
        if problems:  # before anything is written
            raise BundleRefused(path, problems, BundleCheck(path, problems=problems, verified=False))
        regular = []
        for m in members:
            if m.isreg():
                m2 = copy.copy(m)
                m2.name = norm(m.name)
                regular.append(m2)
        need = sum(m.size for m in regular)
        free = _free_space(dest.parent)
        if need > free:
            raise BadInput(f"{path.name} unpacks to {human_size(need)} but only {human_size(free)} are free at "
                           f"{dest.parent}")
        created: list[Path] = []
        tmp: Path | None = None
        try:
            created = _make_dirs(dest.parent)
            tmp = Path(tempfile.mkdtemp(prefix=_scratch_prefix(dest), suffix=".unbundle", dir=dest.parent))
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the unpacked dir gets the usual permissions
            _write_members(tar, regular, tmp, path)
            if verify:
                check = check_dir(tmp, path)
            else:
                check = BundleCheck(path, verified=False,
                                    members=[{"name": m.name, "size": m.size, "sha256": None, "status": "unverified"}
                                             for m in regular])
            check.raise_if_failed()
            _install(tmp, dest)
            check.dest = given
        except BaseException:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            _remove_dirs(created)
            raise
    return check


def extract_bundle(path: str | Path, dest: str | Path, verify: bool = True, *, force: bool = False,
                   max_unpacked_size: int | None = None) -> Path:
    """Unpack a bundle into dest: unsafe members are refused before anything is written; the content goes into
    a temp dir beside dest, is verified on disk (with verify: every checksum, completeness, the index, each
    ONNX's manifest) and is renamed into place only when every check passes. Safety checks always run.

    dest must not exist or be empty, unless force (then it is replaced, never merged)."""
    return unpack_bundle(path, dest, verify, force=force,  # type: ignore[return-value]
                         max_unpacked_size=max_unpacked_size).dest
