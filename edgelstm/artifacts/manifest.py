"""Sidecar manifests `<artifact>.json`: what an artifact is, where it came from, what made it."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from edgelstm.errors import BadInput
from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.artifacts.iospec import IOSpec

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
    precision: str = "fp32"
    parent_sha256: str | None = None
    io: IOSpec | None = None
    versions: dict[str, Any] = field(default_factory=tool_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    details: dict[str, Any] = field(default_factory=dict)  # route, arch/config, quant report, engine facts

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION, "kind": self.kind, "file": self.file, "sha256": self.sha256,
            "parent_sha256": self.parent_sha256, "precision": self.precision,
            "io": self.io.to_dict() if self.io else None, "versions": self.versions, "created": self.created,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        return cls(kind=d["kind"], file=d["file"], sha256=d["sha256"], precision=d.get("precision", "fp32"),
                   parent_sha256=d.get("parent_sha256"), io=IOSpec.from_dict(d["io"]) if d.get("io") else None,
                   versions=d.get("versions", {}), created=d.get("created", ""), details=d.get("details", {}))


def write_manifest(artifact: str | Path, *, kind: str, precision: str = "fp32", parent: str | Path | None = None,
                   parent_sha256: str | None = None, io: IOSpec | None = None,
                   details: dict[str, Any] | None = None) -> Manifest:
    artifact = Path(artifact)
    if parent is not None and parent_sha256 is None and Path(parent).exists():
        parent_sha256 = sha256_file(parent)
    m = Manifest(kind=kind, file=artifact.name, sha256=sha256_file(artifact), precision=precision,
                 parent_sha256=parent_sha256, io=io, details=details or {})
    write_text_atomic(manifest_path(artifact), json.dumps(m.to_dict(), indent=2, default=str) + "\n")
    return m


def manifest_problem(d: Any) -> str | None:
    """What makes parsed JSON not a manifest (every field's type, the I/O spec's tensors), or None."""
    if not isinstance(d, dict):
        return f"a JSON {type(d).__name__}, not an object"
    for key in ("kind", "file", "sha256"):
        if not isinstance(d.get(key), str):
            return f"{key!r} must be a string"
    for key in ("precision", "created"):
        if key in d and not isinstance(d[key], str):
            return f"{key!r} must be a string"
    if d.get("parent_sha256") is not None and not isinstance(d["parent_sha256"], str):
        return "'parent_sha256' must be a string or null"
    for key in ("versions", "details"):
        if key in d and not isinstance(d[key], dict):
            return f"{key!r} must be an object"
    io = d.get("io")
    if io is None:
        return None
    if not isinstance(io, dict):
        return "'io' must be an object"
    for role in ("inputs", "outputs"):
        tensors = io.get(role, [])
        if not isinstance(tensors, list):
            return f"io.{role} must be a list"
        for i, t in enumerate(tensors):
            where = f"io.{role}[{i}]"
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
                return f"{where} must be an object with a non-empty 'name'"
            if not isinstance(t.get("dtype", "float32"), str) or not isinstance(t.get("state", False), bool):
                return f"{where}: 'dtype' must be a string and 'state' true or false"
            shape = t.get("shape", [])
            if not isinstance(shape, list) or not all(
                    (isinstance(x, int) and not isinstance(x, bool) and x >= 0) or (isinstance(x, str) and x)
                    for x in shape):
                return f"{where}.shape must be a list of sizes >= 0 and axis names"
    return None


def read_manifest(artifact: str | Path, *, verify: bool = True) -> Manifest | None:
    """The artifact's manifest, or None if it has none. With verify, a sha256 mismatch is an error."""
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
    """An artifact and its manifest written as one pair (see ``write_artifact``)."""

    def __init__(self, out: Path, tmp: Path, tmp_manifest: Path, companions: dict[Path, Path] | None = None):
        self.out, self.tmp, self._tmp_manifest = out, tmp, tmp_manifest
        self.manifest: Manifest | None = None
        #: final path -> temp path of each file that belongs to the artifact (an OpenVINO IR's .bin)
        self.companions: dict[Path, Path] = dict(companions or {})

    def write_manifest(self, *, kind: str, precision: str = "fp32", parent: str | Path | None = None,
                       parent_sha256: str | None = None, io: IOSpec | None = None,
                       details: dict[str, Any] | None = None) -> Manifest:
        """The manifest of the artifact written to ``self.tmp`` (it names the final file)."""
        if parent is not None and parent_sha256 is None and Path(parent).exists():
            parent_sha256 = sha256_file(parent)
        self.manifest = Manifest(kind=kind, file=self.out.name, sha256=sha256_file(self.tmp), precision=precision,
                                 parent_sha256=parent_sha256, io=io, details=details or {})
        self._tmp_manifest.write_text(json.dumps(self.manifest.to_dict(), indent=2, default=str) + "\n")
        return self.manifest


@contextlib.contextmanager
def write_artifact(out: str | Path, companions: tuple[str | Path, ...] = ()) -> Iterator[ArtifactPair]:
    """Write an artifact and its manifest so that they replace an earlier pair together or not at all.

    The block writes the file to ``pair.tmp`` and calls ``pair.write_manifest(...)``; both are temp files in the
    destination directory (a full disk fails here, before anything is replaced). On success the earlier pair is
    moved aside, the new pair renamed into place (renames need no space) and the old pair deleted; if a rename
    fails, the earlier pair is put back. On any failure nothing of the new pair is left behind. ``companions``:
    more files of the same artifact (same directory), written to ``pair.companions[path]`` and committed with it."""
    from edgelstm.fileio import make_parents, remove_dirs

    out = Path(out)
    created = make_parents(out)  # BadInput when out is a directory or a parent is a file
    man = manifest_path(out)
    if man.is_dir():
        remove_dirs(created)
        raise BadInput(f"the manifest path {man} is a directory; move it away or pass another output")
    tmps: list[Path] = []
    ok = False
    try:
        extra = [Path(c) for c in companions]
        for prefix, suffix in [(out.name, ".tmp"), (out.name, ".json.tmp")] + [(c.name, ".tmp") for c in extra]:
            fd, name = tempfile.mkstemp(prefix=f".{prefix}.", suffix=suffix, dir=out.parent)
            os.close(fd)
            tmps.append(Path(name))
        umask = os.umask(0)
        os.umask(umask)
        for t in tmps:
            os.chmod(t, 0o666 & ~umask)
        pair = ArtifactPair(out, tmps[0], tmps[1], dict(zip(extra, tmps[2:])))
        yield pair
        if pair.manifest is None:
            raise RuntimeError("write_artifact: the block wrote no manifest")
        _commit([*zip(tmps[2:], extra), (tmps[0], out), (tmps[1], man)])
        ok = True
    finally:
        for t in tmps:
            if t.exists():
                t.unlink()
        if not ok:
            remove_dirs(created)


def _commit(moves: list[tuple[Path, Path]]) -> None:
    """Rename each temp onto its destination; the earlier files are restored if any rename fails."""
    backups: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for _, dest in moves:
            if dest.exists():
                bak = dest.with_name(f".{dest.name}.{os.getpid()}.bak")
                os.replace(dest, bak)
                backups.append((bak, dest))
        for tmp, dest in moves:
            os.replace(tmp, dest)
            done.append(dest)
    except BaseException:
        for dest in done:
            dest.unlink(missing_ok=True)
        for bak, dest in backups:
            os.replace(bak, dest)
        raise
    for bak, _ in backups:
        bak.unlink(missing_ok=True)
