"""The bad-input campaign's shared inputs, built once per session (tiny: one-node ONNX graphs, the tiny
exported LSTM of ``tests/conftest.py``, a few bytes of data), and the one check every case makes.

A case runs the CLI in-process inside its own empty working directory ``w`` that holds an earlier good
artifact (``good.onnx`` + manifest, ``good.json``, ``good.tar.gz`` ...) and asserts:

- the exit code (ARCHITECTURE.md: 0 ok, 1 gate failed, 2 bad usage or input, 3 backend missing, 4 internal);
- stderr holds exactly one ``error:`` line, no traceback and no "internal error";
- ``w`` is exactly as it was: no stray file, no empty parent directory, every earlier file byte-identical;
- the shared inputs in ``ws`` are untouched (checked once at the end of the session).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest

HUGE = 1 << 40  # a feature dimension no machine can allocate (4 TiB per sample in float32)


# ------------------------------------------------------------------------------------------ tiny ONNX graphs


def onnx_graph(path: Path, *, inputs: Sequence[tuple[str, list]] = (("x", ["batch", "seq", 1]),),
               op: str = "Identity", domain: str = "", out_shape: list | None = None, manifest: bool = True) -> Path:
    """A one-node graph (``op`` over every input) with a matching edgelstm manifest unless ``manifest=False``."""
    import onnx
    from onnx import TensorProto, helper

    names = [n for n, _ in inputs]
    node = helper.make_node(op, names, ["y"], domain=domain)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape or inputs[0][1])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    if manifest:
        from edgelstm.artifacts.iospec import IOSpec, TensorSpec
        from edgelstm.artifacts.manifest import write_artifact

        spec = IOSpec(tuple(TensorSpec(n, "float32", tuple(s)) for n, s in inputs),
                      (TensorSpec("y", "float32", tuple(out_shape or inputs[0][1])),))
        with write_artifact(path) as pair:
            pair.tmp.write_bytes(model.SerializeToString())
            pair.write_manifest(kind="onnx", precision="fp32", io=spec)
    else:
        onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------------------------------ the workspace


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _bundle_tar(path: Path, members: dict[str, bytes]) -> Path:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def ws(tiny_lstm, tmp_path_factory) -> Path:
    """Every shared bad (and good) input, read-only by convention: cases write only into their own ``w``."""
    from edgelstm.bundle import make_bundle

    d = tmp_path_factory.mktemp("bad_input_ws")
    for f in tiny_lstm.dir.iterdir():  # m.pt, m.onnx, m.stateful.onnx (+ manifests)
        shutil.copy2(f, d / f.name)
    good_onnx = (d / "m.onnx").read_bytes()

    # models, broken in every way a file can be
    onnx_graph(d / "id.onnx")
    onnx_graph(d / "three.onnx", inputs=[("a", ["batch", "seq", 1]), ("b", ["batch", "seq", 1]),
                                         ("c", ["batch", "seq", 1])], op="Sum")
    onnx_graph(d / "three_nomanifest.onnx", inputs=[("a", ["batch", "seq", 1]), ("b", ["batch", "seq", 1]),
                                                    ("c", ["batch", "seq", 1])], op="Sum", manifest=False)
    onnx_graph(d / "custom.onnx", op="MyOp", domain="com.example")
    onnx_graph(d / "custom_nomanifest.onnx", op="MyOp", domain="com.example", manifest=False)
    onnx_graph(d / "huge.onnx", inputs=[("x", ["batch", "seq", HUGE])], manifest=False)
    onnx_graph(d / "huge_m.onnx", inputs=[("x", ["batch", "seq", HUGE])])
    _write_bytes(d / "zero.onnx", b"")
    _write_bytes(d / "junk.onnx", os.urandom(2048))
    _write_bytes(d / "text.onnx", b"this is not a model\n" * 10)
    _write_bytes(d / "trunc.onnx", good_onnx[: len(good_onnx) // 2])
    _write_bytes(d / "png.onnx", b"\x89PNG\r\n\x1a\n" + bytes(100))
    (d / "dir.onnx").mkdir()
    _write_bytes(d / "nomanifest.onnx", good_onnx)  # a good model without its manifest
    _write_bytes(d / "badman.onnx", good_onnx)
    _write_bytes(d / "badman.onnx.json", b"{not json")
    _write_bytes(d / "wrongman.onnx", good_onnx)
    _write_bytes(d / "wrongman.onnx.json", json.dumps({"kind": "onnx", "sha256": "0" * 64}).encode())
    _write_bytes(d / "listman.onnx", good_onnx)
    _write_bytes(d / "listman.onnx.json", b"[1, 2, 3]")
    _write_bytes(d / "zero.pt", b"")
    _write_bytes(d / "junk.pt", os.urandom(1024))
    _write_bytes(d / "text.pt", b"hello")
    _write_bytes(d / "pickle.pt2", pickle.dumps({"a": 1}, protocol=2))
    _write_bytes(d / "notzip.pt2", b"definitely not a zip archive\n" * 20)
    _write_bytes(d / "zero.pt2", b"")
    _write_bytes(d / "trunc.pt", (d / "m.pt").read_bytes()[:300])
    _write_bytes(d / "list.pt", _torch_save([1, 2, 3]))
    _write_bytes(d / "state_dict.pt", _torch_save({"w": _tensor()}))
    _write_bytes(d / "m.txt", good_onnx)
    (d / "dir.pt").mkdir()
    _write_bytes(d / "engine.plan", os.urandom(512))
    _write_bytes(d / "zero.plan", b"")

    # data
    x = np.random.default_rng(0).standard_normal((8, 6, 1)).astype(np.float32)
    np.savez(d / "good.npz", x=x)
    np.save(d / "good.npy", x)
    np.savez(d / "nan.npz", x=np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x).astype(np.float32))
    np.savez(d / "inf.npz", x=np.full_like(x, np.inf))
    np.save(d / "nan.npy", np.full_like(x, np.nan))
    np.savez(d / "shape.npz", x=np.zeros((8, 6, 3), np.float32))
    np.savez(d / "rank.npz", x=np.zeros((8, 6), np.float32))
    np.save(d / "rank1.npy", np.zeros(8, np.float32))
    np.save(d / "scalar.npy", np.float32(1.0))
    np.savez(d / "strings.npz", x=np.array([["a"] * 6] * 8))
    np.savez(d / "complex.npz", x=np.zeros((8, 6, 1), np.complex64))
    np.savez(d / "bool.npz", x=np.zeros((8, 6, 1), bool))
    np.save(d / "object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(d / "empty.npz", x=np.zeros((0, 6, 1), np.float32))
    np.savez(d / "seq0.npz", x=np.zeros((8, 0, 1), np.float32))
    np.savez(d / "nox.npz")
    np.savez(d / "onlylabels.npz", y=np.zeros(8, np.float32))
    np.savez(d / "twoarrays.npz", p=x, q=x)
    np.savez(d / "labels_mismatch.npz", x=x, y=np.zeros(3, np.float32))
    np.savez(d / "labels_nan.npz", x=x, y=np.full(8, np.nan, np.float32))
    np.savez(d / "labels_str.npz", x=x, y=np.array(["a"] * 8))
    _write_bytes(d / "trunc.npz", (d / "good.npz").read_bytes()[:100])
    _write_bytes(d / "junk.npz", os.urandom(300))
    _write_bytes(d / "junk.npy", os.urandom(300))
    _write_bytes(d / "zero.npz", b"")
    _write_bytes(d / "trunc.npy", (d / "good.npy").read_bytes()[:140])
    (d / "dir.npz").mkdir()
    _write_bytes(d / "data.txt", b"1,2,3\n")
    rows = "\n".join(f"{i * 0.1:.3f},{i % 2}" for i in range(40))
    _write_bytes(d / "good.csv", ("f,label\n" + rows + "\n").encode())
    _write_bytes(d / "nan.csv", ("f,label\n" + rows.replace("0.300", "nan") + "\n").encode())
    _write_bytes(d / "word.csv", ("f,label\n" + rows.replace("0.300", "abc") + "\n").encode())
    _write_bytes(d / "ragged.csv", ("f,label\n" + rows + "\n1,2,3\n").encode())
    _write_bytes(d / "header.csv", b"f,label\n")
    _write_bytes(d / "empty.csv", b"")
    _write_bytes(d / "latin1.csv", "f,é\n".encode("latin-1") + b"1,2\n" * 20)
    _write_bytes(d / "binary.csv", os.urandom(400))
    _write_bytes(d / "short.csv", b"f\n1\n2\n")

    # policy TOML, baseline JSON
    _write_bytes(d / "good_policy.toml", b"[default]\nrel_l2 = 0.5\n")
    _write_bytes(d / "syntax.toml", b"[default\nrel_l2 = \n")
    _write_bytes(d / "unknown_metric.toml", b"[default]\nbogus = 1\n")
    _write_bytes(d / "string_value.toml", b"[default]\nrel_l2 = \"lots\"\n")
    _write_bytes(d / "nan_policy.toml", b"[default]\nrel_l2 = nan\n")
    _write_bytes(d / "latin1.toml", "[default]\n# é\n".encode("latin-1"))
    _write_bytes(d / "empty.json", b"")
    _write_bytes(d / "notjson.json", b"{oops")
    _write_bytes(d / "list.json", b"[1, 2]")
    _write_bytes(d / "nokeys.json", b"{}")
    _write_bytes(d / "badoutputs.json", json.dumps({"outputs": [1, 2], "results": "x"}).encode())
    _write_bytes(d / "badrows.json", json.dumps({"results": [{"artifact": 1}], "device": 5}).encode())
    _write_bytes(d / "binary.json", os.urandom(200))

    # bundles
    src = d / "bundle_src"
    onnx_graph(src / "model.onnx")
    make_bundle(src, d / "good.tar.gz")
    shutil.rmtree(src)
    _write_bytes(d / "junk.tar.gz", os.urandom(3000))
    _write_bytes(d / "zero.tar.gz", b"")
    _write_bytes(d / "trunc.tar.gz", (d / "good.tar.gz").read_bytes()[:200])
    _bundle_tar(d / "nochecksums.tar.gz", {"model.onnx": b"x"})
    _bundle_tar(d / "traversal.tar.gz", {"../evil.txt": b"x", "CHECKSUMS.sha256": b""})
    _bundle_tar(d / "absolute.tar.gz", {"/tmp/evil.txt": b"x"})
    _bundle_tar(d / "badsum.tar.gz", {"model.onnx": b"x",
                                      "CHECKSUMS.sha256": f"{'0' * 64}  model.onnx\n".encode()})
    good_sum = hashlib.sha256(b"x").hexdigest()
    _bundle_tar(d / "unlisted.tar.gz", {"model.onnx": b"x", "extra.sh": b"rm -rf /",
                                        "CHECKSUMS.sha256": f"{good_sum}  model.onnx\n".encode()})
    with tarfile.open(d / "link.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("model.onnx")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    _write_bytes(d / "plain.tar", b"")  # an empty plain tar name
    (d / "bundle_dir.tar.gz").mkdir()

    # pipeline directories and files
    (d / "emptydir").mkdir()
    _write_bytes(d / "afile", b"a plain file")
    WS_SNAPSHOT.update(tree(d))
    return d


#: the shared inputs as built; tests/bad_input/test_zz_shared_inputs.py checks no case changed them
WS_SNAPSHOT: dict[str, str] = {}


def _torch_save(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _tensor():
    import torch

    return torch.zeros(2)


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under root: relative path -> sha256 (``dir`` for directories)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------------------------------ the case and its check


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` with ``{ws}`` (shared inputs) and ``{w}`` (the case's own directory, holding
    ``good.*`` earlier artifacts) filled in; the expected exit code; words the error line must contain."""

    id: str
    args: tuple[str, ...]
    code: int = 2
    needles: tuple[str, ...] = ()
    setup: Callable | None = field(default=None, compare=False)  # setup(w, ws, monkeypatch) before the run
    env: tuple[tuple[str, str], ...] = ()
    usage: bool = False  # refused by the command-line parser itself (click's "Usage: ... Error" box, exit 2)

    def __str__(self) -> str:
        return self.id


def case(id: str, *args: str, code: int = 2, needles: Sequence[str] | str = (), setup: Callable | None = None,
         env: dict | None = None, usage: bool = False) -> Case:
    if isinstance(needles, str):
        needles = (needles,)
    return Case(id, tuple(args), code, tuple(needles), setup, tuple((env or {}).items()), usage)


def ids(cases: Sequence[Case]) -> list[str]:
    seen = [c.id for c in cases]
    assert len(seen) == len(set(seen)), f"duplicate case ids: {sorted({i for i in seen if seen.count(i) > 1})}"
    return seen


@pytest.fixture
def w(tmp_path, ws, monkeypatch) -> Path:
    """The case's own working directory (also its cwd): earlier good artifacts that a failure must not touch."""
    d = tmp_path / "w"
    d.mkdir()
    for name in ("m.onnx", "m.onnx.json"):
        shutil.copy2(ws / name, d / name.replace("m.", "good.", 1))
    shutil.copy2(ws / "good.tar.gz", d / "good.tar.gz")
    shutil.copy2(ws / "good.tar.gz.json", d / "good.tar.gz.json")
    _write_bytes(d / "good.json", b'{"earlier": "report"}\n')
    _write_bytes(d / "good.csv", b"earlier,csv\n")
    _write_bytes(d / "good.xml", b"<earlier/>\n")
    _write_bytes(d / "good.md", b"# earlier\n")
    _write_bytes(d / "good.png", b"\x89PNG earlier")
    _write_bytes(d / "good.plan", b"earlier engine")
    (d / "gooddir").mkdir()
    _write_bytes(d / "gooddir" / "keep.txt", b"mine")
    monkeypatch.chdir(d)
    monkeypatch.setenv("COLUMNS", "200")
    return d


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def run_case(c: Case, cli, w: Path, ws: Path, monkeypatch) -> str:
    """Run one case and make every assertion; returns the error line."""
    for k, v in c.env:
        monkeypatch.setenv(k, v)
    if c.setup is not None:
        c.setup(w, ws, monkeypatch)
    before = tree(w)
    args = [a.format(w=w, ws=ws, huge=HUGE) for a in c.args]
    code, stdout, stderr = cli(*args)
    after = tree(w)
    where = f"{c.id}: edgelstm {' '.join(args)}\n--- stderr:\n{stderr}"
    assert code == c.code, f"exit {code}, expected {c.code}; {where}"
    assert "Traceback" not in stderr and "Traceback" not in stdout and 'File "' not in stderr, where
    assert "internal error" not in stderr, where
    errors = error_lines(stderr)
    line = ""
    if c.usage:
        assert "Usage:" in stderr and "Error" in stderr and not errors, where
        line = stderr
    elif c.code != 0:
        assert len(errors) == 1, f"{len(errors)} error lines; {where}"
        line = errors[0]
        for needle in c.needles:
            assert needle.lower() in line.lower(), f"{needle!r} not in the error line; {where}"
    new = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not new, f"stray files/dirs left: {new}; {where}"
    assert not gone and not changed, f"earlier files removed {gone} or changed {changed}; {where}"
    return line
