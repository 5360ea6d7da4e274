"""edgelstm and its pure-Python dependencies as wheels, built from what is installed here, so that the device
needs no package index (`pip install edgelstm` fails wherever edgelstm is not published).

A wheel of edgelstm is written from the imported packages themselves (edgelstm, edgelstm.converters,
edgelstm.calibration: the code that made the bundle; the last two live at the top of a checkout, under edgelstm/ in
the wheel). A pure-Python dependency is repacked from its installed files (its RECORD). Compiled
dependencies (numpy, onnx, onnxruntime) cannot travel: they are listed as what the device must provide, and the
starter script (device_check.py) checks them before it runs anything. Zip entries carry a fixed date, so the
same installed versions give the same bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata as md
import io
import re
import zipfile
from pathlib import Path
from typing import Any

from edgelstm.bundle.types import MAX_WHEELS_SIZE, WHEELS_DIR
from edgelstm.errors import BadInput
from edgelstm.fileio import human_size

SELF = "edgelstm"
SELF_PACKAGES = ("edgelstm", "edgelstm.converters", "edgelstm.calibration")
_DATE = (1980, 1, 1, 0, 0, 0)
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;\s*(.*))?$")
_SKIP_META = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "direct_url", "RECORD.jws", "RECORD.p7s"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_stem(name: str) -> str:
    """The name as wheel file names spell it (PEP 427 / 503: lower case, runs of -_. as one _)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def requirements(dist: md.Distribution) -> list[dict[str, str]]:
    """A distribution's runtime requirements: name, version spec, marker (extras left out)."""
    out = []
    for line in dist.requires or []:
        m = _REQ.match(line)
        if not m or "extra" in (m.group(3) or ""):
            continue
        out.append({"name": m.group(1), "spec": m.group(2).strip("() ") or "", "marker": (m.group(3) or "").strip()})
    return out


def is_pure(dist: md.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel:
        return False
    return not any(str(f).endswith((".so", ".pyd", ".dylib")) for f in dist.files or [])


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _zip(files: dict[str, bytes], dist_info: str) -> bytes:
    record = [_record_line(n, files[n]) for n in sorted(files)] + [f"{dist_info}/RECORD,,"]
    files = {**files, f"{dist_info}/RECORD": ("\n".join(record) + "\n").encode()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _self_wheel() -> tuple[str, bytes]:
    """edgelstm's wheel from its imported packages (an editable install has no wheel of its own)."""
    import importlib

    dist = md.distribution(SELF)
    version = dist.version
    files: dict[str, bytes] = {}
    for pkg in SELF_PACKAGES:
        root = Path(importlib.import_module(pkg).__file__).parent  # type: ignore[arg-type]
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
                files[f"{pkg.replace('.', '/')}/{p.relative_to(root).as_posix()}"] = p.read_bytes()
    info = f"{_wheel_stem(SELF)}-{version}.dist-info"
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or f"Metadata-Version: 2.1\nName: {SELF}\n"
                                 f"Version: {version}\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: edgelstm-bundle\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    entry = dist.read_text("entry_points.txt")
    if entry:
        files[f"{info}/entry_points.txt"] = entry.encode()
    files[f"{info}/top_level.txt"] = f"{SELF}\n".encode()
    return f"{_wheel_stem(SELF)}-{version}-py3-none-any.whl", _zip(files, info)


def _repacked(dist: md.Distribution) -> tuple[str, bytes]:
    """A pure-Python distribution's wheel from its installed files (scripts and caches left out)."""
    name, version = dist.metadata["Name"], dist.version
    files: dict[str, bytes] = {}
    info = None
    for f in dist.files or []:
        rel = str(f)
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith((".pyc", ".pyo")):
            continue
        top = rel.split("/", 1)[0]
        if top.endswith(".dist-info"):
            info = top
            if rel.rsplit("/", 1)[-1] in _SKIP_META:
                continue
        path = Path(str(dist.locate_file(f)))
        if path.is_file():
            files[rel] = path.read_bytes()
    info = info or f"{_wheel_stem(name)}-{version}.dist-info"
    return f"{_wheel_stem(name)}-{version}-py3-none-any.whl", _zip(files, info)


def _module_of(dist: md.Distribution) -> str:
    top = (dist.read_text("top_level.txt") or "").split()
    return top[0] if top else _wheel_stem(dist.metadata["Name"]).lower()


@functools.lru_cache(maxsize=4)
def _build(versions_key: tuple[str, ...]) -> tuple[tuple[tuple[str, bytes], ...], tuple[dict[str, Any], ...],
                                                    tuple[str, ...]]:
    del versions_key  # the cache key: the installed versions
    wheels: list[tuple[str, bytes]] = [_self_wheel()]
    requires: list[dict[str, Any]] = []
    notes: list[str] = []
    seen = {canonical(SELF)}
    queue = [(SELF, r) for r in requirements(md.distribution(SELF))]
    while queue:
        parent, req = queue.pop(0)
        key = canonical(req["name"])
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req["name"])
        except md.PackageNotFoundError:
            if parent == SELF:
                requires.append({**req, "module": _wheel_stem(req["name"]).lower(), "installed_here": None})
                notes.append(f"{req['name']} is not installed here, so it cannot travel: the device must have it"
                             + (f" where {req['marker']}" if req["marker"] else ""))
            continue
        if is_pure(dist):
            binary = [r["name"] for r in requirements(dist) if _binary(r["name"])]
            if binary and parent != SELF and not any(canonical(b) in _self_binaries() for b in binary):
                notes.append(f"left out {dist.metadata['Name']} (needed by {parent}): it needs the compiled "
                             f"{', '.join(binary)}; edgelstm does not use it")
                continue
            wheels.append(_repacked(dist))
            queue.extend((dist.metadata["Name"], r) for r in requirements(dist))
        elif parent == SELF:
            requires.append({**req, "module": _module_of(dist), "installed_here": dist.version})
    return tuple(wheels), tuple(requires), tuple(notes)


def _binary(name: str) -> bool:
    try:
        return not is_pure(md.distribution(name))
    except md.PackageNotFoundError:
        return False


@functools.lru_cache(maxsize=1)
def _self_binaries() -> frozenset[str]:
    return frozenset(canonical(r["name"]) for r in requirements(md.distribution(SELF)) if _binary(r["name"]))


def bundle_wheels() -> tuple[list[tuple[str, bytes]], list[dict[str, Any]], list[str]]:
    """(member name, wheel bytes) for edgelstm and its pure-Python dependencies; what the device must provide
    (compiled requirements: name, spec, marker, import name); notes on what could not travel."""
    try:
        md.distribution(SELF)
    except md.PackageNotFoundError:
        raise BadInput("edgelstm is not installed as a distribution here (pip install -e .): its wheel cannot be "
                       "built; pass --no-wheels and install edgelstm on the device yourself") from None
    key = tuple(sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions() if d.metadata["Name"]))
    wheels, requires, notes = _build(key)
    total = sum(len(b) for _, b in wheels)
    if total > MAX_WHEELS_SIZE:
        raise BadInput(f"edgelstm and its pure-Python dependencies take {human_size(total)} as wheels, over the "
                       f"limit of {human_size(MAX_WHEELS_SIZE)}; pass --no-wheels and install them on the device")
    return [(f"{WHEELS_DIR}/{n}", b) for n, b in wheels], list(requires), list(notes)
