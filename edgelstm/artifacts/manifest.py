"""Sidecar manifests `<artifact>.json`: what an artifact is, where it came from, what made it."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from edgelstm.errors import BadInput
from edgelstm.options import BuildPrecision
from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.artifacts.iospec import IOSpec
from edgelstm.artifacts.manifest_schema import manifest_problem

MANIFEST_VERSION = 1


def manifest_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def tool_versions() -> dict[str, str | None]:
    """Versions of the libraries that make artifacts, without importing heavy ones needlessly."""
    from importlib import metadata

    out: dict[str, str | None] = {"edgelstm": None, "python": platform.python_version()}
    for dist in ("edgelstm", "torch", "onnx", "onnxruntime", "onnxscript", "tensorrt"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if out["edgelstm"] is None:
        from edgelstm import __version__

        out["edgelstm"] = __version__
    return out


@dataclass
class Manifest:
    kind: str
    file: str
    sha256: str
    precision: BuildPrecision = BuildPrecision.fp32   # typed; written as the same string ("fp32", "bf16", ...)
    parent_sha256: str | None = None
    io: IOSpec | None = None
    versions: dict[str, Any] = field(default_factory=tool_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    details: dict[str, Any] = field(default_factory=dict)  # route, arch/config, quant report, engine facts

    def __post_init__(self) -> None:
        self.precision = BuildPrecision(str(self.precision))

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION, "kind": self.kind, "file": self.file, "sha256": self.sha256,
            "parent_sha256": self.parent_sha256, "precision": self.precision.value,
            "io": self.io.to_dict() if self.io else None, "versions": self.versions, "created": self.created,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        return cls(kind=d["kind"], file=d["file"], sha256=d["sha256"], precision=d.get("precision", "fp32"),
                   parent_sha256=d.get("parent_sha256"), io=IOSpec.from_dict(d["io"]) if d.get("io") else None,
                   versions=d.get("versions", {}), created=d.get("created", ""), details=d.get("details", {}))


def write_manifest(artifact: str | Path, *, kind: str, precision: BuildPrecision | str = BuildPrecision.fp32,
                   parent: str | Path | None = None, parent_sha256: str | None = None, io: IOSpec | None = None,
                   details: dict[str, Any] | None = None) -> Manifest:
    artifact = Path(artifact)
    if parent is not None and parent_sha256 is None and Path(parent).exists():
        parent_sha256 = sha256_file(parent)
    m = Manifest(kind=kind, file=artifact.name, sha256=sha256_file(artifact), precision=precision,
                 parent_sha256=parent_sha256, io=io, details=_with_parent_lengths(details or {}, parent))
    write_text_atomic(manifest_path(artifact), json.dumps(m.to_dict(), indent=2, default=str) + "\n")
    return m


def _with_parent_lengths(details: dict[str, Any], parent: str | Path | None) -> dict[str, Any]:
    """A file made from a converted model keeps the sequence lengths it was verified at (edgelstm.artifacts.lengths)."""
    if "lengths" in details or parent is None or not Path(parent).is_file():
        return details
    from edgelstm.artifacts.lengths import inherited

    try:
        pm = read_manifest(parent, verify=False)
    except Exception:  # noqa: BLE001 - a parent without a readable manifest passes nothing on
        return details
    lengths = inherited(pm.details if pm is not None else None, Path(parent).name)
    return {**details, "lengths": lengths} if lengths else details


def read_manifest(artifact: str | Path, *, verify: bool = True) -> Manifest | None:
    """The artifact's manifest, or None if it has none. Every field is checked against the one schema
    (``manifest_schema``): a manifest edited by hand is BadInput naming the field. With verify, a sha256 mismatch
    is an error."""
    path = manifest_path(artifact)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        problem = manifest_problem(data)
        if problem:
            raise ValueError(problem)
        m = Manifest.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"manifest {path} is not a valid edgelstm manifest: {str(exc).splitlines()[0][:200]}") from None
    except OSError as exc:
        raise BadInput(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    if verify:
        actual = sha256_file(artifact)
        if actual != m.sha256:
            raise BadInput(
                f"{Path(artifact).name} does not match its manifest (sha256 {actual[:12]}… != {m.sha256[:12]}…)",
                hint="the file changed after edgelstm wrote it; re-create it or delete the stale manifest",
            )
    return m


class ArtifactPair:
    """An artifact and its manifest written as one pair (see ``write_artifact``): two new temp files beside
    ``out``; ``tmp`` is the artifact's (for writers that need a path), the manifest is written through the
    descriptor that created its temp."""

    def __init__(self, out: Path, tmp: Path, tmp_manifest: Path, fd: int = -1, fd_manifest: int = -1,
                 companions: dict[Path, tuple[int, Path]] | None = None):
        self.out, self.tmp, self._tmp_manifest = out, tmp, tmp_manifest
        self._fd, self._fd_manifest = fd, fd_manifest
        self.manifest: Manifest | None = None
        #: final path -> (descriptor, temp path) of each more file of the artifact (an OpenVINO IR's .bin)
        self.companions: dict[Path, tuple[int, Path]] = dict(companions or {})

    def file(self) -> Any:
        """A binary file object on the artifact's temp (its own descriptor; closing it keeps the temp open)."""
        if self._fd < 0:
            return open(self.tmp, "wb")
        return os.fdopen(self._fd, "wb", closefd=False)

    def write_bytes(self, data: bytes) -> None:
        """The artifact's bytes, through the temp's own descriptor (no file opened by name)."""
        _rewrite(self._fd, self.tmp, data)

    def write_companion(self, dest: Path, data: bytes) -> None:
        """The bytes of one of the artifact's companion files (``write_artifact(companions=...)``)."""
        fd, tmp = self.companions[Path(dest)]
        _rewrite(fd, tmp, data)

    def write_manifest(self, *, kind: str, precision: BuildPrecision | str = BuildPrecision.fp32,
                       parent: str | Path | None = None, parent_sha256: str | None = None, io: IOSpec | None = None,
                       details: dict[str, Any] | None = None) -> Manifest:
        """The manifest of the artifact written to ``self.tmp`` (it names the final file)."""
        if parent is not None and parent_sha256 is None and Path(parent).exists():
            parent_sha256 = sha256_file(parent)
        details = _with_parent_lengths(details or {}, parent)
        self.manifest = Manifest(kind=kind, file=self.out.name, sha256=sha256_file(self.tmp), precision=precision,
                                 parent_sha256=parent_sha256, io=io, details=details or {})
        text = json.dumps(self.manifest.to_dict(), indent=2, default=str) + "\n"
        _rewrite(self._fd_manifest, self._tmp_manifest, text.encode("utf-8"))
        return self.manifest


def _rewrite(fd: int, path: Path, data: bytes) -> None:
    if fd < 0:  # a pair made by hand (tests): its temp by name
        path.write_bytes(data)
        return
    with os.fdopen(fd, "wb", closefd=False) as f:
        f.seek(0)
        f.truncate()
        f.write(data)


@contextlib.contextmanager
def write_artifact(out: str | Path, companions: tuple[str | Path, ...] = ()) -> Iterator[ArtifactPair]:
    """Write an artifact and its manifest so that they replace an earlier pair together or not at all.

    The block writes the file to ``pair.tmp`` (or ``pair.write_bytes``) and calls ``pair.write_manifest(...)``;
    both are temp files in the destination directory (a full disk fails here, before anything is replaced). On
    success both are renamed into place (``safe_files.commit``: the earlier pair is kept aside and put back if a
    rename fails); inside ``safe_files.all_or_nothing()`` that happens at the end of the enclosing block. On any
    failure nothing of the new pair is left behind. ``companions``: more files of the same artifact (same
    directory), written to ``pair.companions[path]`` and committed with the pair."""
    from edgelstm.safe_files import new_files

    out = Path(out)
    man = manifest_path(out)
    if man.is_dir():
        raise BadInput(f"the manifest path {man} is a directory; move it away or pass another output")
    extra = [Path(c) for c in companions]
    with new_files([*extra, out, man]) as temps:  # committed in this order: the .bin before the .xml names it
        (fd, tmp), (fd_manifest, tmp_manifest) = temps[len(extra):]
        pair = ArtifactPair(out, tmp, tmp_manifest, fd, fd_manifest, dict(zip(extra, temps)))
        yield pair
        if pair.manifest is None:
            raise RuntimeError("write_artifact: the block wrote no manifest")
