"""Checking a bundle: member safety, size limits, checksums, completeness, the index and the manifests.

    verify_bundle(path) -> BundleCheck      reads the archive, extracts nothing
    check_dir(root, bundle) -> BundleCheck  the same checks on what an unpack actually wrote

Checksums give integrity, not authenticity: sign the tarball (cosign, gpg) if it crosses a trust boundary.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tarfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

from edgelstm.bundle import types as limits
from edgelstm.bundle.types import CHECKSUMS, CHUNK, INDEX, BundleCheck, BundleRefused
from edgelstm.fileio import human_size
from edgelstm.errors import BadInput, opt

_SHA_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
_SHELL_ACTIVE = re.compile(r'[$`"\n\r]')
#: what a damaged archive raises while it is read
READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (tarfile's "could not be opened" lists one line per method)."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
    return lines[0] if lines else type(exc).__name__


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is unsafe to extract, or None. Only regular files and plain directories pass."""
    name = member.name
    shown = repr(name)
    if not name or "\x00" in name:
        return f"member {shown} has an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"member {shown} has an absolute path"
    if "\\" in name:
        return f"member {shown} contains a backslash (a Windows path separator)"
    if ".." in name.split("/"):
        return f"member {shown} has a '..' component (path traversal)"
    if _SHELL_ACTIVE.search(name):
        # edgelstm never bundles such a name (collect.SAFE_NAME); build_engine.sh of an older one echoed names
        # in double quotes, where these run as shell code
        return f"member {shown} has shell syntax in its name ($, `, \" or a line break)"
    if member.issym():
        return f"member {shown} is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"member {shown} is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return f"member {shown} is a device file"
    if member.isfifo():
        return f"member {shown} is a FIFO"
    if not (member.isreg() or member.isdir()):
        return f"member {shown} has an unsupported type {member.type!r}"
    return None


def norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def safety_problems(members: Iterable[tarfile.TarInfo], dest: Path | None = None) -> list[str]:
    """Every unsafe member (see member_problem), duplicates, files shadowing directories, and anything that
    would land outside dest."""
    problems: list[str] = []
    root = os.path.realpath(dest) if dest is not None else "/__bundle_root__"
    files: set[str] = set()
    dirs: set[str] = set()
    for m in members:
        why = member_problem(m)
        if why:
            problems.append(why)
            continue
        name = norm(m.name)
        if not name:
            if m.isreg():
                problems.append(f"member {m.name!r} has no file name")
            continue
        target = os.path.realpath(os.path.join(root, name)) if dest is not None else posixpath.normpath(
            posixpath.join(root, name))
        if not (target + os.sep).startswith(root.rstrip(os.sep) + os.sep):
            problems.append(f"member {m.name!r} would be written outside the target directory")
            continue
        if m.isdir():
            if name in files:
                problems.append(f"member {m.name!r} is both a file and a directory")
            dirs.add(name)
            continue
        if name in files:
            problems.append(f"member {m.name!r} appears twice")
        if name in dirs:
            problems.append(f"member {m.name!r} is both a file and a directory")
        files.add(name)
    parents = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    for clash in sorted(parents & files):
        problems.append(f"member {clash!r} is both a file and a directory")
    return problems


def size_problems(members: Iterable[tarfile.TarInfo], archive_size: int, max_unpacked_size: int | None = None) -> list[str]:
    """A bundle that would unpack to more than the caps, judged on the sizes its members declare (nothing read).

    max_unpacked_size None: MAX_UNPACKED_SIZE, and no more than MAX_RATIO times the archive above RATIO_FLOOR;
    a number replaces both caps (the caller has said how much it accepts)."""
    total = sum(m.size for m in members if m.isreg())
    cap = limits.MAX_UNPACKED_SIZE if max_unpacked_size is None else max_unpacked_size
    raise_it = f"{opt('max_unpacked_size')} raises the limit if you trust it"
    if total > cap:
        return [f"it would unpack to {human_size(total)}, over the limit of {human_size(cap)} ({raise_it})"]
    if (max_unpacked_size is None and total > limits.RATIO_FLOOR
            and total > limits.MAX_RATIO * max(archive_size, 1)):
        return [f"it would unpack to {human_size(total)} from {human_size(archive_size)}, more than "
                f"{limits.MAX_RATIO} times its size: a compression bomb? ({raise_it})"]
    return []


def member_blocks(tar: tarfile.TarFile, m: tarfile.TarInfo, bundle: Path) -> Iterator[bytes]:
    """A regular member's bytes, block by block; a member yielding more (or fewer) bytes than its header
    declares is refused as it streams, before the excess is used."""
    got = 0
    try:
        f = tar.extractfile(m)
        assert f is not None
        while block := f.read(CHUNK):
            got += len(block)
            if got > m.size:
                raise BundleRefused(bundle, [f"member {m.name!r} holds more than the {m.size} bytes its header "
                                             "declares"])
            yield block
    except READ_ERRORS as exc:
        raise BadInput(f"{bundle.name} is truncated or corrupt: {one_line(exc)}") from None
    if got < m.size:
        raise BadInput(f"{bundle.name} is truncated: member {m.name!r} ends after {got} of its {m.size} bytes")


def _parse_checksums(text: str) -> tuple[dict[str, str], list[str]]:
    sums: dict[str, str] = {}
    problems: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _SHA_LINE.match(line)
        if not m:
            problems.append(f"{CHECKSUMS} line {i} is not `<sha256>  <file>`: {line[:60]!r}")
            continue
        name = norm(m.group(2))
        if name in sums:
            problems.append(f"{CHECKSUMS} lists {name!r} twice")
        sums[name] = m.group(1).lower()
    return sums, problems


def _check_index(entries: dict[str, tuple[int, str]], texts: dict[str, bytes], status: dict[str, str],
                 problems: list[str]) -> dict | None:
    if INDEX not in entries:
        problems.append(f"no {INDEX} in the bundle: not an edgelstm bundle")
        return None
    try:
        index = json.loads(texts.get(INDEX, b"").decode("utf-8"))
        if not isinstance(index, dict) or not str(index.get("format", "")).startswith("edgelstm-bundle/"):
            raise ValueError("no edgelstm-bundle format key")
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{INDEX} is not a valid edgelstm bundle index ({exc})")
        return None
    listed = {}
    for m in index.get("members") or []:
        if isinstance(m, dict) and "name" in m:
            listed[norm(str(m["name"]))] = m
    for name, m in sorted(listed.items()):
        if name not in entries:
            problems.append(f"{name}: listed in {INDEX} but missing from the bundle")
        elif m.get("sha256") != entries[name][1] or m.get("size") != entries[name][0]:
            problems.append(f"{name}: does not match its entry in {INDEX} (size/sha256)")
            status[name] = "MISMATCH"
    for name in sorted(set(entries) - set(listed) - {INDEX, CHECKSUMS}):
        if status.get(name) == "ok":
            problems.append(f"{name}: not listed in {INDEX}")
            status[name] = "extra"
    return index


def _check_manifests(entries: dict[str, tuple[int, str]], texts: dict[str, bytes], status: dict[str, str],
                     problems: list[str]) -> None:
    """Sidecar manifests: each artifact's recorded sha256 must be the artifact's actual sha256."""
    for name in sorted(entries):
        sidecar = name + ".json"
        if sidecar not in entries or name.endswith(".json"):
            continue
        raw = texts.get(sidecar)
        try:
            manifest = json.loads(raw.decode("utf-8")) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            manifest = None
        if not isinstance(manifest, dict) or "sha256" not in manifest or "kind" not in manifest:
            if name.endswith(".onnx"):
                problems.append(f"{sidecar}: not a valid edgelstm manifest")
                status[sidecar] = "BAD"
            continue
        if manifest["sha256"] != entries[name][1]:
            problems.append(f"{name}: does not match its manifest {sidecar} (sha256 {entries[name][1][:12]}… != "
                            f"{str(manifest['sha256'])[:12]}…)")
            status[name] = "MISMATCH"


def _check_contents(entries: dict[str, tuple[int, str]], texts: dict[str, bytes]) -> tuple[list[str], dict | None, dict[str, str]]:
    """Checksums, completeness, index and manifest consistency. entries: name -> (size, sha256)."""
    problems: list[str] = []
    status = {name: "ok" for name in entries}
    if CHECKSUMS not in entries:
        return [f"no {CHECKSUMS} in the bundle: its content cannot be verified ({opt('no_verify')} extracts "
                "anyway)"], None, {n: "unverified" for n in entries}
    try:
        sums, parse_problems = _parse_checksums(texts.get(CHECKSUMS, b"").decode("utf-8"))
    except UnicodeDecodeError:
        return [f"{CHECKSUMS} is not UTF-8 text"], None, {n: "unverified" for n in entries}
    problems += parse_problems
    for name, (_size, sha) in sorted(entries.items()):
        if name == CHECKSUMS:
            continue
        if name not in sums:
            problems.append(f"{name}: extra member, not listed in {CHECKSUMS}")
            status[name] = "extra"
        elif sums[name] != sha:
            problems.append(f"{name}: sha256 mismatch (content {sha[:12]}…, {CHECKSUMS} says {sums[name][:12]}…)")
            status[name] = "MISMATCH"
    for name in sorted(set(sums) - set(entries)):
        problems.append(f"{name}: listed in {CHECKSUMS} but missing from the bundle")
        status[name] = "missing"
    index = _check_index(entries, texts, status, problems)
    _check_manifests(entries, texts, status, problems)
    return problems, index, status


def open_tar(path: Path) -> tarfile.TarFile:
    """The bundle opened for reading; anything that is not a readable tarball is BadInput in one line."""
    if not path.is_file():
        raise BadInput(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        return tarfile.open(path, "r:*")
    except READ_ERRORS:
        pass  # its message lists every compression it tried, one line each: say what matters instead
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"\x1f\x8b":
        raise BadInput(f"{path.name} is not a bundle: {'an empty file' if not head else 'not a tar.gz archive'}")
    try:
        tarfile.open(path, "r:gz").close()
        why = "unreadable"
    except READ_ERRORS as exc:
        why = one_line(exc)
    raise BadInput(f"{path.name} is not a readable tar.gz bundle: {why}")


def read_members(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    try:
        return tar.getmembers()
    except READ_ERRORS as exc:
        raise BadInput(f"{path.name} is truncated or corrupt: {one_line(exc)}") from None


def _keep_text(name: str, size: int) -> bool:
    return size <= limits.TEXT_LIMIT and (name in (CHECKSUMS, INDEX) or name.endswith(".json"))


def _member_rows(entries: dict[str, tuple[int, str]], status: dict[str, str]) -> list[dict[str, Any]]:
    rows = [{"name": n, "size": s, "sha256": h, "status": status.get(n, "ok")} for n, (s, h) in sorted(entries.items())]
    rows += [{"name": n, "size": None, "sha256": None, "status": st} for n, st in sorted(status.items())
             if n not in entries]
    return rows


def verify_bundle(path: str | Path, *, max_unpacked_size: int | None = None) -> BundleCheck:
    """Check a bundle without extracting it: member safety, size limits, every checksum, completeness, index,
    manifests. Problems are collected in the result (check.ok / check.raise_if_failed()); an unreadable file raises."""
    path = Path(path)
    check = BundleCheck(path)
    with open_tar(path) as tar:
        members = read_members(tar, path)
        check.problems = (safety_problems(members)
                          or size_problems(members, path.stat().st_size, max_unpacked_size))
        if check.problems:
            return check
        entries: dict[str, tuple[int, str]] = {}
        texts: dict[str, bytes] = {}
        for m in members:
            if not m.isreg():
                continue
            name = norm(m.name)
            h = hashlib.sha256()
            keep = _keep_text(name, m.size)
            buf = bytearray()
            for block in member_blocks(tar, m, path):
                h.update(block)
                if keep:
                    buf += block
            entries[name] = (m.size, h.hexdigest())
            if keep:
                texts[name] = bytes(buf)
    check.problems, check.index, status = _check_contents(entries, texts)
    check.members = _member_rows(entries, status)
    return check


def check_dir(root: Path, bundle: Path) -> BundleCheck:
    """Verify extracted content on disk (what actually landed, not what the archive claimed)."""
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.fileio import sha256_file

    check = BundleCheck(bundle)
    entries: dict[str, tuple[int, str]] = {}
    texts: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            check.problems.append(f"{rel}: not a regular file after extraction")
            continue
        if p.is_dir():
            continue
        size = p.stat().st_size
        entries[rel] = (size, sha256_file(p))
        if _keep_text(rel, size):
            texts[rel] = p.read_bytes()
    problems, check.index, status = _check_contents(entries, texts)
    check.problems += problems
    for rel in sorted(entries):
        if rel.endswith(".onnx") and rel + ".json" in entries and status.get(rel) == "ok":
            try:
                read_manifest(root / rel, verify=True)
            except BadInput as exc:
                check.problems.append(f"{rel}: {exc.message}")
                status[rel] = "MISMATCH"
    check.members = _member_rows(entries, status)
    return check
