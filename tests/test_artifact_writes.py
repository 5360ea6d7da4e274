"""An artifact and its manifest commit together; a full disk or a failed rename leaves the earlier pair intact;
third-party scratch files stay out of the user's directory; export options that cannot be honoured are
refused before anything runs."""

from __future__ import annotations

import errno
import json
import os

import pytest

import quant_models as qm
from edgelstm.artifacts import manifest as manifest_mod
from edgelstm.artifacts.manifest import read_manifest, write_artifact
from edgelstm.errors import BadInput


def _pair(tmp_path, content: bytes):
    out = tmp_path / "a.bin"
    with write_artifact(out) as pair:
        pair.tmp.write_bytes(content)
        pair.write_manifest(kind="onnx", details={"n": len(content)})
    return out


def _leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))


def test_pair_replaces_the_earlier_pair_and_leaves_no_temp(tmp_path):
    out = _pair(tmp_path, b"one")
    _pair(tmp_path, b"second")
    assert out.read_bytes() == b"second" and read_manifest(out).details == {"n": 6}
    assert _leftovers(tmp_path) == []


def test_full_disk_while_writing_the_manifest_keeps_the_earlier_pair(tmp_path, monkeypatch):
    out = _pair(tmp_path, b"good")

    def full(self, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(self._tmp_manifest))

    monkeypatch.setattr(manifest_mod.ArtifactPair, "write_manifest", full)
    with pytest.raises(OSError):
        _pair(tmp_path, b"new")
    assert out.read_bytes() == b"good" and read_manifest(out).details == {"n": 4}  # still a matching pair
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_puts_the_earlier_pair_back(tmp_path, monkeypatch):
    out = _pair(tmp_path, b"good")
    real = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if str(dst).endswith("a.bin.json") and not str(src).endswith(".bak"):  # the new manifest's rename
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(manifest_mod.os, "replace", flaky)
    with pytest.raises(OSError):
        _pair(tmp_path, b"new")
    monkeypatch.setattr(manifest_mod.os, "replace", real)
    assert out.read_bytes() == b"good" and read_manifest(out).details == {"n": 4}
    assert _leftovers(tmp_path) == []


def test_a_block_without_manifest_writes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with write_artifact(tmp_path / "m.onnx") as pair:
            pair.tmp.write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []


def test_output_that_is_a_directory_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="is a directory"):
        with write_artifact(tmp_path):
            pass


def test_cli_quantize_on_a_full_disk_exits_2_and_keeps_the_earlier_artifact(tmp_path, cli, monkeypatch):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "q.onnx"
    code, _, stderr = cli("quantize", src, "-p", "int8", "-o", out)
    assert code == 0, stderr
    before = (out.read_bytes(), (tmp_path / "q.onnx.json").read_text())

    def full(self, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.out))

    monkeypatch.setattr(manifest_mod.ArtifactPair, "write_manifest", full)
    code, _, stderr = cli("quantize", src, "-p", "int8", "--target-cpu", "x86-avx2", "-o", out)
    assert code == 2 and "no space left" in stderr and "Traceback" not in stderr
    assert (out.read_bytes(), (tmp_path / "q.onnx.json").read_text()) == before
    assert read_manifest(out) is not None  # still verifies
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".q.onnx")] == []


def test_quantizer_scratch_files_stay_out_of_the_working_directory(tmp_path, monkeypatch):
    from edgelstm.converters.quantize.int8 import quantize_int8

    src = qm.exported("lstm_regressor", tmp_path)
    cwd = tmp_path / "work"
    cwd.mkdir()
    mine = cwd / "sym_shape_infer_temp.onnx"
    mine.write_bytes(b"the user's own file")
    monkeypatch.chdir(cwd)
    quantize_int8(src, tmp_path / "q.onnx")
    assert mine.read_bytes() == b"the user's own file" and sorted(p.name for p in cwd.iterdir()) == [mine.name]


@pytest.mark.parametrize("args,needle", [
    (["--opset", "5"], "opset"),
    (["--opset", "99"], "opset"),
    (["--static", "--stateful"], "do not combine"),
    (["--input-size", "0"], "input-size"),
    (["--seq-len", "100000"], "maximum sequence length"),
])
def test_convert_refuses_options_it_cannot_honour(tmp_path, cli, tiny_model, args, needle):
    from edgelstm.models import zoo

    ckpt = tmp_path / "m.pt"
    zoo.save_checkpoint(tiny_model("lstm_regressor"), ckpt)
    out = tmp_path / "m.onnx"
    code, _, stderr = cli("convert", ckpt, "-o", out, *args)
    assert code == 2, stderr
    assert needle in stderr and "Traceback" not in stderr
    assert not out.exists() and not (tmp_path / "m.onnx.json").exists()


def test_convert_records_the_opset_in_the_file(tmp_path, cli, tiny_model):
    from edgelstm.models import zoo

    ckpt = tmp_path / "m.pt"
    zoo.save_checkpoint(tiny_model("lstm_regressor"), ckpt)
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli("convert", ckpt, "-o", out, "--opset", "15", "--json")
    assert code == 0, stderr
    import onnx

    written = {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""]
    assert written == 15 and read_manifest(out).details["opset"] == 15
    assert json.loads(stdout)["path"] == str(out)
