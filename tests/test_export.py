"""Verified export of every zoo model, stateful streaming, and the routes' failure modes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.errors import BadInput, ExportMismatch
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import ExportRoute

ZOO_NAMES = ["lstm_regressor", "stacked_lstm", "bilstm_attention", "gru", "hand_lstm"]


def _ops(path):
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def _ort(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_exports_with_dynamic_axes_and_verifies(tmp_path, tiny_model, name):
    import torch

    model = tiny_model(name)
    out = tmp_path / f"{name}.onnx"
    result = export_onnx(model, out, ExportOptions(seq_len=8))
    assert out.exists() and result.verification.passed
    seqs = {int(c.name.split("seq=")[1]) for c in result.verification.checks}
    batches = {int(c.name.split("batch=")[1].split()[0]) for c in result.verification.checks}
    assert len(seqs) >= 3 and 1 in seqs and max(seqs) > 8 and len(batches) >= 2
    x_spec = result.io.inputs[0]
    assert x_spec.shape[:2] == ("batch", "seq")
    # independent check at a length the verifier did not use
    sess = _ort(out)
    x = np.random.default_rng(5).standard_normal((4, 37, x_spec.shape[2])).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref, atol=1e-5, rtol=1e-4)
    manifest = read_manifest(out)
    assert manifest.kind == "onnx" and manifest.details["route"] == result.route.value
    assert manifest.versions["onnxruntime"]


def test_nn_lstm_and_gru_use_the_torchscript_route(tmp_path, tiny_model):
    for name, op in (("stacked_lstm", "LSTM"), ("gru", "GRU")):
        r = export_onnx(tiny_model(name), tmp_path / f"{name}.onnx")
        assert r.route == ExportRoute.torchscript
        assert _ops(r.path)[op] == 2  # two layers
        assert "ConstantOfShape" not in _ops(r.path)  # zero initial states dropped (ONNX default), re-verified
    gru = onnx.load(str(tmp_path / "gru.onnx"))
    attrs = [a for n in gru.graph.node if n.op_type == "GRU" for a in n.attribute if a.name == "linear_before_reset"]
    assert attrs and all(a.i == 1 for a in attrs)


def test_hand_written_cell_is_lifted_to_native_lstm(tmp_path, tiny_model):
    r = export_onnx(tiny_model("hand_lstm"), tmp_path / "hand.onnx")
    assert r.route == ExportRoute.lifted
    assert r.lifted["gate_order"] == "fiog" and r.lifted["concat"] == "xh"
    ops = _ops(r.path)
    assert ops["LSTM"] == 1 and "Loop" not in ops


def test_tracing_a_python_loop_is_caught_and_nothing_written(tmp_path, tiny_model):
    out = tmp_path / "traced.onnx"
    with pytest.raises(ExportMismatch) as exc:
        export_onnx(tiny_model("hand_lstm"), out, ExportOptions(route=ExportRoute.torchscript, seq_len=8))
    assert "torchscript" in str(exc.value) and "unrolled" in str(exc.value)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,states", [("lstm_regressor", 2), ("stacked_lstm", 2), ("gru", 1), ("hand_lstm", 2)])
def test_stateful_export_streams_like_the_full_sequence(tmp_path, tiny_model, name, states):
    import torch

    model = tiny_model(name)
    r = export_onnx(model, tmp_path / "s.onnx", ExportOptions(stateful=True, seq_len=6))
    names = [t.name for t in r.io.inputs]
    assert names == ["x", "h0", "c0"][: 1 + states]
    assert any(c.name.startswith("stream chunk=1") and c.passed for c in r.verification.checks)
    # independent streaming: one step at a time through onnxruntime == full torch sequence
    sess = _ort(r.path)
    x = np.random.default_rng(3).standard_normal((2, 25, r.io.inputs[0].shape[2])).astype(np.float32)
    layers = r.io.inputs[1].shape[0]
    hidden = r.io.inputs[1].shape[2]
    state = {n: np.zeros((layers, 2, hidden), np.float32) for n in names[1:]}
    for t in range(x.shape[1]):
        outs = sess.run(None, {"x": x[:, t:t + 1], **state})
        state = dict(zip(names[1:], outs[1:]))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(outs[0], ref, atol=1e-5, rtol=1e-4)


def test_stateful_refuses_bidirectional(tmp_path, tiny_model):
    with pytest.raises(BadInput, match="bidirectional"):
        export_onnx(tiny_model("bilstm_attention"), tmp_path / "b.onnx", ExportOptions(stateful=True))


def test_static_export_fixes_shapes(tmp_path, tiny_model):
    r = export_onnx(tiny_model("lstm_regressor"), tmp_path / "st.onnx", ExportOptions(static=True, seq_len=5, batch=3))
    assert r.io.inputs[0].shape == (3, 5, 1)


def test_input_size_that_does_not_fit_is_bad_input(tmp_path, tiny_model):
    with pytest.raises(BadInput, match="does not fit"):
        export_onnx(tiny_model("lstm_regressor"), tmp_path / "x.onnx", ExportOptions(input_size=3))
    assert not (tmp_path / "x.onnx").exists()


def test_model_without_inferable_input_is_bad_input(tmp_path):
    import torch

    class Plain(torch.nn.Module):  # no layer says what the input is (a Linear first would: [batch, seq, in])
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w

    with pytest.raises(BadInput, match="cannot infer the model's input.*--input"):
        export_onnx(Plain().eval(), tmp_path / "p.onnx")


def test_fixed_shape_exported_program_is_explained_then_exports_static(tmp_path, tiny_model):
    import torch

    from edgelstm.models.loading import load_model

    m = tiny_model("lstm_regressor")
    torch.export.save(torch.export.export(m, (torch.randn(2, 5, 1),)), str(tmp_path / "m.pt2"))
    loaded = load_model(tmp_path / "m.pt2")
    with pytest.raises(BadInput, match="--static --batch 2 --seq 5"):
        export_onnx(loaded, tmp_path / "m.onnx")
    r = export_onnx(loaded, tmp_path / "m.onnx", ExportOptions(static=True, batch=2, seq_len=5))
    assert r.route == ExportRoute.dynamo and r.io.inputs[0].shape == (2, 5, 1)


def test_verification_reaches_far_from_an_example_length_of_1(tmp_path, tiny_model):
    r = export_onnx(tiny_model("lstm_regressor"), tmp_path / "m.onnx", ExportOptions(seq_len=1))
    seqs = {int(c.name.split("seq=")[1]) for c in r.verification.checks}
    assert len(seqs) >= 3 and 1 in seqs and max(seqs) >= 16
    checks = read_manifest(r.path).details["verification"]
    assert checks["tolerance"]["default"]["spread"] > 0 and all("rel_l2" in c for c in checks["checks"])


def test_native_lstm_graph_does_not_grow_with_the_example_length(tmp_path, tiny_model):
    r = export_onnx(tiny_model("stacked_lstm"), tmp_path / "m.onnx", ExportOptions(seq_len=1))
    assert r.route == ExportRoute.torchscript and not r.attempts
