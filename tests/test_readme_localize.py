"""The README's commands for drift localisation, layer precisions and the trtexec-style bench options run as
written (on a tiny model named as the README names it; TensorRT through the stand-in, tests/fakes)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

import quant_models as qm

try:
    from fakes.fixtures import trt  # noqa: F401 - pytest fixture
except ImportError:  # tests/ is a package in some layouts
    from tests.fakes.fixtures import trt  # type: ignore[no-redef] # noqa: F401

README = Path(__file__).resolve().parents[1] / "README.md"
FLAGS = ("--localize", "--layer-precisions", "--split-transfers", "--profile-layers", "--cuda-graph")


def readme_commands() -> list[list[str]]:
    """Every `edgelstm ...` line of the README's bash blocks that uses one of FLAGS (comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    out = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["edgelstm"] and any(w in FLAGS or w.startswith(FLAGS) for w in words):
                out.append(words[1:])
    return out


def test_the_readme_shows_the_commands():
    cmds = readme_commands()
    assert {c[0] for c in cmds} == {"validate", "quantize", "build", "bench"}
    assert len(cmds) >= 5


def test_every_readme_command_runs(tmp_path, monkeypatch, trt, cli):
    trt(engine_math="onnxruntime")
    src = qm.exported("lstm_regressor", tmp_path)
    for suffix in ("", ".json"):
        shutil.copyfile(str(src) + suffix, str(tmp_path / "model.onnx") + suffix)
    code, _, stderr = cli("quantize", tmp_path / "model.onnx", "-p", "int8", "-o", tmp_path / "model.int8.onnx")
    assert code == 0, stderr
    x = np.random.default_rng(0).standard_normal((16, 12, 1)).astype(np.float32)
    np.savez(tmp_path / "val.npz", x=x)
    monkeypatch.chdir(tmp_path)
    for args in readme_commands():
        code, _, stderr = cli(*args)
        assert code == 0, f"edgelstm {' '.join(args)}: {stderr[-600:]}"
    assert (tmp_path / "where" / "localize.html").is_file()
    assert (tmp_path / "model.int8-dense.onnx").is_file() and (tmp_path / "model.fp16.plan").is_file()
