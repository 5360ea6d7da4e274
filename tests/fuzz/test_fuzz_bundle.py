"""Bundles: mutated bytes of a real bundle, and hand-made archives (hostile names, links, devices, FIFOs,
directories, sizes that lie, checksum and index files of any content) through verify_bundle and unpack_bundle.
Beyond "only edgelstm's errors": a refused unpack leaves nothing behind, and nothing is ever written outside
the target directory."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import shutil
import tarfile

from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import json_values, mutated, only_ours, scratch

NAMES = ["model.onnx", "model.onnx.json", "CHECKSUMS.sha256", "bundle.json", "build_engine.sh", "README.txt",
         "pipeline.toml", "calib.cache", "sub/model.onnx", "../evil", "/abs/evil", "a/../../evil", "./x", "", ".",
         "..", "a//b", "m$(touch X).onnx", "m`x`.onnx", "m\nx.onnx", "-rf", "é.onnx", "x" * 120, "a/" * 40 + "b",
         "model.onnx/", "dir/", "sub"]
TYPES = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"x"]


@functools.lru_cache(maxsize=None)
def good_bundle() -> bytes:
    import tempfile
    from pathlib import Path

    from edgelstm.bundle import make_bundle

    from .fuzzing import tiny_lstm_onnx

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        src.mkdir()
        (src / "model.onnx").write_bytes(tiny_lstm_onnx())
        make_bundle(src, Path(d) / "b.tar.gz")
        return (Path(d) / "b.tar.gz").read_bytes()


@st.composite
def archives(draw) -> bytes:
    members = []
    contents: dict[str, bytes] = {}
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=20)))
        kind = draw(st.sampled_from(TYPES))
        data = draw(st.binary(max_size=64))
        members.append((name, kind, data, draw(st.sampled_from(["/etc/passwd", "../x", "model.onnx", "", "sub"]))))
        if kind == tarfile.REGTYPE:
            contents[name] = data
    index = draw(st.sampled_from(["none", "right", "random", "json"]))
    if index != "none":
        if index == "right":
            text = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in contents.items())
        elif index == "random":
            text = draw(st.text(max_size=200))
        else:
            text = json.dumps(draw(json_values(10)))
        members.append(("CHECKSUMS.sha256", tarfile.REGTYPE, text.encode("utf-8", "surrogatepass"), ""))
    if draw(st.booleans()):
        members.append(("bundle.json", tarfile.REGTYPE, json.dumps(draw(json_values(10))).encode(), ""))
    buf = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w", format=fmt) as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o000, 0o7777]))
            try:
                if kind in (tarfile.REGTYPE, tarfile.CONTTYPE, b"x"):
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(info)
            except (ValueError, tarfile.TarError):
                pass  # the writer refuses it (too long for the format): nothing to fuzz
    return buf.getvalue()


def _check(tmp_path_factory, data: bytes) -> None:
    from edgelstm.bundle import unpack_bundle, verify_bundle

    root = scratch(tmp_path_factory, "bundle")
    for p in root.iterdir():
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    path = root / "b.tar.gz"
    path.write_bytes(data)
    check = only_ours(verify_bundle, path)
    if check is not None and not isinstance(check, Exception):
        only_ours(check.raise_if_failed)
    area = root / "area"
    area.mkdir()
    result = only_ours(unpack_bundle, path, area / "out")
    left = sorted(p.name for p in area.iterdir())
    if isinstance(result, Exception) or result is None:
        assert left == [], f"a refused unpack left {left}"
    else:
        assert left == ["out"], f"written outside the target: {left}"
    assert sorted(p.name for p in root.iterdir()) == ["area", "b.tar.gz"], "written beside the bundle"


@given(mutated(good_bundle()))
def test_mutated_bundle_bytes(tmp_path_factory, data):
    _check(tmp_path_factory, data)


@given(st.data())
def test_mutated_tar_inside_the_gzip(tmp_path_factory, data):
    raw = gzip.decompress(good_bundle())
    _check(tmp_path_factory, gzip.compress(data.draw(mutated(raw)), mtime=0))


@given(archives())
def test_hand_made_archives(tmp_path_factory, data):
    _check(tmp_path_factory, data)
