"""The input length threshold: convert records the verified length range, the stated maximum (--max-seq) and
the memory one more step costs; quantized files inherit them; validate, bench and the runners warn on a length
outside the verified range and refuse one above the maximum (exit 2, pointing to --stateful streaming)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgelstm.errors import BadInput


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx

    root = tmp_path_factory.mktemp("lengths")
    torch.manual_seed(0)
    export_onnx(Tagger().eval(), root / "m.onnx", ExportOptions(seq_len=4, max_seq_len=40))
    torch.save(Tagger().eval(), root / "m.pt")
    return root


def test_manifest_records_the_verified_range_the_maximum_and_memory_per_step(converted):
    lengths = json.loads((converted / "m.onnx.json").read_text())["details"]["lengths"]
    assert lengths["verified"] == [1, 16] and lengths["maximum"] == 40
    # y [T, 1, 2] floats alone is 8 bytes a step; the LSTM's [T, 1, 1, 8] output 32 more
    assert lengths["memory_per_step_bytes"] >= 40


def test_quantized_file_inherits_the_lengths(cli, converted):
    code, _, err = cli("quantize", converted / "m.onnx", "--precision", "int8", "-o", converted / "m.int8.onnx")
    assert code == 0, err
    lengths = json.loads((converted / "m.int8.onnx.json").read_text())["details"]["lengths"]
    assert lengths["verified"] == [1, 16] and lengths["from"] == "m.onnx"


def test_runner_refuses_above_the_maximum_and_warns_outside_the_verified_range(converted):
    from edgelstm.runners import open_runner

    runner = open_runner(converted / "m.onnx")
    runner.run({"x": np.zeros((1, 12, 3), np.float32)})
    assert runner.warnings == []
    runner.run({"x": np.zeros((1, 30, 3), np.float32)})
    assert len(runner.warnings) == 1 and "outside the lengths its export was verified at (1..16)" in runner.warnings[0]
    with pytest.raises(BadInput, match="above the maximum 40") as e:
        runner.run({"x": np.zeros((1, 41, 3), np.float32)})
    assert "--stateful" in str(e.value)


def test_validate_warns_then_refuses(cli, converted):
    args = ("validate", "-r", converted / "m.pt", "-c", converted / "m.onnx", "--trust-pickle", "--synthetic", "4")
    code, out, err = cli(*args, "--seq", "30", "--json")
    assert code == 0, err
    assert any("outside the lengths" in w for w in json.loads(out)["warnings"])
    code, _, err = cli(*args, "--seq", "50")
    assert code == 2 and "above the maximum 40" in " ".join(err.split()) and "Traceback" not in err


def test_bench_refuses_before_timing_and_warns(cli, converted):
    code, _, err = cli("bench", converted / "m.onnx", "--seq", "50", "--batch", "1", "--iters", "2", "--warmup", "1")
    assert code == 2 and "above the maximum 40" in " ".join(err.split())
    code, out, err = cli("bench", converted / "m.onnx", "--seq", "30", "--batch", "1", "--iters", "2", "--warmup", "1",
                         "--threads", "1", "--json")
    assert code == 0, err
    assert any("outside the lengths" in w for w in json.loads(out)["warnings"])
