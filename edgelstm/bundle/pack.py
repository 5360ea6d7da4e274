"""make_bundle: write a deployment bundle (.tar.gz) atomically, with its index, checksums, recipe and README.

The tarball is written to a temp file beside the target and renamed into place only when complete; a failure
at any point (a source that changes while it is read, a full disk, Ctrl-C) leaves no partial file behind.
Given the same files and a fixed `created` (or SOURCE_DATE_EPOCH), the bundle is byte for byte the same.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from edgelstm.bundle.collect import collect_sources
from edgelstm.bundle.plan import plan_builds
from edgelstm.bundle.readme import render_readme
from edgelstm.bundle.recipe import render_recipe
from edgelstm.bundle.types import (BOOTSTRAP, BUNDLE_FORMAT, CHECKSUMS, INDEX, README, RECIPE, BundleMember,
                                   BundleOptions, BundleResult)
from edgelstm.errors import BadInput, opt
from edgelstm.fileio import sha256_file
from edgelstm.options import Precision


class _HashingReader:
    """File wrapper that hashes and counts what tarfile copies out of it."""

    def __init__(self, f):
        self._f = f
        self.h = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        b = self._f.read(size)
        self.h.update(b)
        self.n += len(b)
        return b


def _created(options: BundleOptions) -> tuple[str, int]:
    if options.created:
        ts = _dt.datetime.fromisoformat(options.created)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=_dt.timezone.utc)
    elif os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        ts = _dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.timezone.utc)
    else:
        ts = _dt.datetime.now(_dt.timezone.utc)
    return ts.isoformat(timespec="seconds"), int(ts.timestamp())


def _tarinfo(name: str, size: int, mtime: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _check_members(src: Path, sources, steps, options: BundleOptions,
                   warnings: list[str]) -> tuple[list[tuple[str, bytes, str]], dict | None]:
    """The device check's members (data, reference outputs, plan, wheels, starter script) and its index entry."""
    if options.check is None:
        return [], None
    from edgelstm.bundle.check_inputs import prepare_check
    from edgelstm.bundle.wheels import bundle_wheels

    payload = prepare_check(src, sources, steps, options.check)
    warnings += payload.warnings
    check = {**payload.summary, "command": f"python3 {BOOTSTRAP} [BUNDLE] -o results.json",
             "wheels": [], "device_requires": []}
    extra = list(payload.members)
    if options.check.wheels:
        wheels, requires, notes = bundle_wheels()
        extra += [(name, data, "wheel") for name, data in wheels]
        check.update(wheels=[name for name, _ in wheels], device_requires=requires, wheel_notes=notes)
    extra.append((BOOTSTRAP, (Path(__file__).parent / "device_bootstrap.py").read_bytes(), "bootstrap"))
    from edgelstm.bundle.collect import check_member_name

    for name, _, _ in extra:  # wheel names come from installed versions: held to the same rule as every member
        check_member_name(name)
    return extra, check


def make_bundle(src_dir: str | Path, out: str | Path, options: BundleOptions = BundleOptions()) -> BundleResult:
    """Write a deployment bundle of the artifacts in src_dir to out (.tar.gz), atomically, plus its manifest."""
    from edgelstm import __version__
    from edgelstm.artifacts.manifest import read_manifest, tool_versions, write_artifact

    src, out = Path(src_dir), Path(out)
    if not src.is_dir():
        raise BadInput(f"{src} is not a directory (give the pipeline's output dir)")
    if not (out.name.endswith(".tar.gz") or out.name.endswith(".tgz")):
        raise BadInput(f"{opt('out')} must end in .tar.gz or .tgz, got {out.name}")
    try:
        precision = Precision(str(options.precision))
    except ValueError:
        raise BadInput(f"{opt('precision')} must be one of {', '.join(p.value for p in Precision)}, "
                       f"got {options.precision!r}") from None
    options = BundleOptions(**{**options.__dict__, "precision": precision})
    sources, skipped, warnings = collect_sources(src, out, options)
    steps, plan_warnings = plan_builds(sources, options)
    warnings += plan_warnings
    extra, check = _check_members(src, sources, steps, options, warnings)
    created, mtime = _created(options)
    versions = tool_versions()
    versions["edgelstm"] = versions.get("edgelstm") or __version__

    readme = render_readme(sources, steps, src_name=src.resolve().name, created=created, versions=versions,
                           bundle_name=out.name, check=check).encode("utf-8")
    recipe = render_recipe(steps, created=created, version=str(versions["edgelstm"]),
                           validate=options.validate_on_device).encode("utf-8")
    members: list[BundleMember] = []
    with write_artifact(out) as pair:  # the bundle and its manifest commit together
        with pair.file() as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=options.compresslevel) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:

            def add_bytes(name: str, data: bytes, role: str | None, mode: int = 0o644) -> None:
                tar.addfile(_tarinfo(name, len(data), mtime, mode), io.BytesIO(data))
                if role is not None:
                    members.append(BundleMember(name, role, len(data), hashlib.sha256(data).hexdigest()))

            add_bytes(README, readme, "readme")
            add_bytes(RECIPE, recipe, "recipe", 0o755)
            for s in sources:
                try:
                    size = s.path.stat().st_size
                    with open(s.path, "rb") as f:
                        reader = _HashingReader(f)
                        tar.addfile(_tarinfo(s.name, size, mtime), reader)
                except OSError as exc:
                    raise BadInput(f"could not read {s.name}: {exc.strerror or exc}") from None
                if reader.n != size:
                    raise BadInput(f"{s.name} changed while it was being bundled; try again")
                digest = reader.h.hexdigest()
                if s.role in ("onnx", "engine", "calib-cache", "extra", "openvino"):
                    m = read_manifest(s.path, verify=False)
                    if m is not None and m.sha256 != digest:
                        raise BadInput(f"{s.name} does not match its manifest (sha256 {digest[:12]}… != "
                                       f"{m.sha256[:12]}…): the file changed after edgelstm wrote it; re-create it")
                members.append(BundleMember(s.name, s.role, size, digest, s.precision, s.tied_to, s.note))
            for name, data, role in extra:
                add_bytes(name, data, role, 0o755 if name == BOOTSTRAP else 0o644)
            index = {
                "format": BUNDLE_FORMAT, "edgelstm_version": versions["edgelstm"], "created": created,
                "source": src.resolve().name, "versions": versions,
                "build": {"recipe": RECIPE, "precision": precision.value, "steps": [st.to_dict() for st in steps]},
                "members": [m.to_dict() for m in members], "skipped": skipped,
            }
            if check is not None:
                index["check"] = check
            add_bytes(INDEX, (json.dumps(index, indent=2, default=str) + "\n").encode("utf-8"), "index")
            sums = "".join(f"{m.sha256}  {m.name}\n" for m in sorted(members, key=lambda m: m.name))
            add_bytes(CHECKSUMS, sums.encode("utf-8"), None)
        digest = sha256_file(pair.tmp)
        size = pair.tmp.stat().st_size
        pair.write_manifest(kind="bundle", precision=precision.value,
                            details={"format": BUNDLE_FORMAT, "members": len(members) + 1,
                                     "onnx": [m.name for m in members if m.role == "onnx"],
                                     "builds": [st.to_dict() for st in steps],
                                     "engines_included": options.include_engines})
    return BundleResult(out, digest, size, members, steps, skipped, warnings, created)
