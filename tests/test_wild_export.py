"""Users' model forms (tests/wild_models.py): each converts and is checked here independently with onnxruntime
(lengths 1, the example, >= 3x longer; two batches; a tolerance relative to the output's spread), or is refused
with exit 1/2, no file written, and one line naming the real cause."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import wild_models as W
from edgelstm.converters.export.onnx_verify import OutputTolerance, Tolerance, compare
from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.errors import BadInput, ExportMismatch
from edgelstm.options import ExportRoute

ROOT = Path(__file__).resolve().parents[1]


def _model(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**kw).eval()


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _sess(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _assert_close(ref, got, what):
    """Relative to the output: rel L2 <= 1e-4 and max |diff| <= 1e-3 x its spread (+1e-6)."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert got.size == ref.size, f"{what}: shape {got.shape} vs torch {ref.shape}"
    got = got.reshape(ref.shape)
    diff = np.abs(got - ref)
    spread = ref.std() if ref.size > 1 and ref.std() > 0 else np.abs(ref).max()
    assert np.linalg.norm(got - ref) <= 1e-4 * np.linalg.norm(ref) + 1e-6, f"{what}: rel L2"
    assert diff.max() <= 1e-3 * spread + 1e-6, f"{what}: max |diff| {diff.max():.3g} vs spread {spread:.3g}"


def _independent_check(model, path, seq_len, features, *, batches=(1, 3), state=None):
    """onnxruntime vs torch at lengths 1, seq_len, max(3*seq_len+1, 16) and two batches."""
    sess = _sess(path)
    names = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(11)
    for b in batches:
        for t in sorted({1, seq_len, max(3 * seq_len + 1, 16)}):
            x = rng.standard_normal((b, t, features)).astype(np.float32)
            feeds = {"x": x}
            if state:
                feeds.update({n: np.zeros((state[0], b, state[1]), np.float32) for n in names[1:]})
            with torch.no_grad():
                ref = [r.numpy() for r in _flat(model(torch.from_numpy(x)))]
            got = sess.run(None, feeds)
            for k, r in enumerate(ref):
                _assert_close(r, got[k], f"output {k} at batch={b} seq={t}")


def _refused(exc_info, tmp_path):
    msg = str(exc_info.value)
    assert "\n" not in msg and len(msg) < 1200 and "graph(" not in msg and "Torch IR" not in msg
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".onnx", ".json")]
    return msg


# -- verification that a small output cannot fool -------------------------------------------------------------

def test_tolerance_is_relative_to_the_outputs_spread():
    rng = np.random.default_rng(0)
    ref = (0.5 + 3e-5 * rng.standard_normal((4, 1))).astype(np.float32)
    wrong = ref.copy()
    wrong[1:] = 0.5  # the traced-loop failure: the step-dependent part lost, the offset kept
    old_absolute = np.max(np.abs(wrong - ref) / (1e-4 + 1e-3 * np.abs(ref)))
    assert old_absolute < 1  # what used to pass
    assert not compare("c", [ref], [wrong], ["y"], Tolerance()).passed
    assert compare("c", [ref], [ref + np.float32(1e-9)], ["y"], Tolerance()).passed


def test_tolerance_is_data_per_output_and_every_failure_is_collected():
    ref = [np.linspace(-1, 1, 8, dtype=np.float32), np.linspace(0, 2, 8, dtype=np.float32)]
    got = [r + 0.01 for r in ref]
    strict = compare("c", ref, got, ["y0", "y1"], Tolerance())
    assert not strict.passed and "y0" in strict.detail and "y1" in strict.detail
    loose = Tolerance.of(y0=OutputTolerance(spread=0.1, rel_l2=0.1), y1=OutputTolerance(spread=0.1, rel_l2=0.1))
    assert compare("c", ref, got, ["y0", "y1"], loose).passed
    assert Tolerance.of(y0=OutputTolerance(spread=0.1)).to_dict()["y0"]["spread"] == 0.1


# -- a loop around an LSTM, traced at length 1 ---------------------------------------------------------------

def test_traced_loop_at_example_length_1_is_never_a_silent_wrong_file(tmp_path):
    model = _model(W.StepAttentionForecaster)
    out = tmp_path / "f.onnx"
    try:
        r = export_onnx(model, out, ExportOptions(seq_len=1))
    except ExportMismatch as exc:  # a refusal is fine too: nothing written, one line
        _refused(exc, tmp_path)
        return
    rejected = dict(r.attempts)
    assert "unrolled" in rejected["torchscript"]
    assert r.route == ExportRoute.scripted
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["Loop"] >= 1 and ops["LSTM"] == 1
    _independent_check(model, out, 1, 4)


def test_the_tracing_route_is_rejected_structurally(tmp_path):
    model = _model(W.StepAttentionForecaster)
    with pytest.raises(ExportMismatch) as exc:
        export_onnx(model, tmp_path / "f.onnx", ExportOptions(seq_len=1, route=ExportRoute.torchscript))
    msg = _refused(exc, tmp_path)
    assert "loops over time steps in Python" in msg and "nodes at length 1" in msg


# -- layers before the RNN -----------------------------------------------------------------------------------

@pytest.mark.parametrize("input_size", [None, 5])
def test_norm_and_linear_front_end_converts(tmp_path, input_size):
    from edgelstm.models.loading import infer_input_size

    model = _model(W.NormLinearFrontEnd)
    assert infer_input_size(model) == 5
    r = export_onnx(model, tmp_path / "m.onnx", ExportOptions(input_size=input_size, seq_len=6))
    assert r.io.inputs[0].shape[-1] == 5
    _independent_check(model, r.path, 6, 5)


def test_conv_front_end_converts(tmp_path):
    from edgelstm.models.loading import infer_input_size

    model = _model(W.ConvFrontEnd)
    assert infer_input_size(model) == 3
    r = export_onnx(model, tmp_path / "m.onnx", ExportOptions(seq_len=5))
    _independent_check(model, r.path, 5, 3)


def test_input_size_inference_looks_at_the_first_layer_that_consumes_the_input():
    from edgelstm.models.loading import infer_input_size, input_layers

    assert infer_input_size(_model(W.TokenTagger)) is None  # token ids: no feature size
    assert input_layers(_model(W.StackedCellModel))[0] == ("cells.0", "cell", 3)

    class HeadFirst(torch.nn.Module):  # the head is registered before the LSTM it follows
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8, 2)
            self.lstm = torch.nn.LSTM(4, 8, batch_first=True)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    assert infer_input_size(HeadFirst().eval()) == 4


# -- proj_size ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first,bidirectional,layers", [(True, False, 2), (False, True, 2), (True, True, 1)])
def test_proj_size_decomposition_is_the_same_arithmetic(batch_first, bidirectional, layers):
    from edgelstm.converters.export.proj_lstm import decompose_projections

    torch.manual_seed(3)
    lstm = torch.nn.LSTM(3, 8, num_layers=layers, proj_size=4, batch_first=batch_first,
                         bidirectional=bidirectional).eval()
    new, info = decompose_projections(lstm)
    assert info[0]["proj_size"] == 4
    x = torch.randn(2, 7, 3) if batch_first else torch.randn(7, 2, 3)
    h0 = torch.randn(layers * (1 + bidirectional), 2, 4)
    c0 = torch.randn(layers * (1 + bidirectional), 2, 8)
    with torch.no_grad():
        for a, b in zip(_flat(lstm(x, (h0, c0))), _flat(new(x, (h0, c0)))):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_proj_size_lstm_converts_through_a_verified_loop(tmp_path):
    model = _model(W.ProjectedLSTM)
    r = export_onnx(model, tmp_path / "p.onnx", ExportOptions(seq_len=5))
    assert r.route == ExportRoute.scripted
    assert read_manifest(r.path).details["decomposed"][0]["module"] == "lstm"
    assert Counter(n.op_type for n in onnx.load(str(r.path)).graph.node)["Loop"] == 2  # one per layer
    _independent_check(model, r.path, 5, 3)


def test_proj_size_lstm_streams_with_state_io(tmp_path):
    model = _model(W.ProjectedLSTM)
    r = export_onnx(model, tmp_path / "p.onnx", ExportOptions(seq_len=4, stateful=True))
    assert [t.shape for t in r.io.inputs[1:]] == [(2, "batch", 4), (2, "batch", 8)]  # h: proj_size, c: hidden
    sess = _sess(r.path)
    x = np.random.default_rng(4).standard_normal((2, 9, 3)).astype(np.float32)
    state = {"h0": np.zeros((2, 2, 4), np.float32), "c0": np.zeros((2, 2, 8), np.float32)}
    steps = []
    for t in range(x.shape[1]):
        y, hn, cn = sess.run(None, {"x": x[:, t:t + 1], **state})
        state = {"h0": hn, "c0": cn}
        steps.append(y)
    with torch.no_grad():
        _assert_close(model(torch.from_numpy(x)).numpy(), np.concatenate(steps, 1), "step by step")


# -- hand-written cells ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("features,hidden,layers", [(3, 6, 2), (6, 6, 1), (4, 5, 3)])
def test_split_linear_cells_in_a_module_list_lift_to_native_lstm(tmp_path, features, hidden, layers):
    model = _model(W.StackedCellModel, n_features=features, hidden=hidden, layers=layers)
    r = export_onnx(model, tmp_path / "c.onnx", ExportOptions(seq_len=4))
    assert r.route == ExportRoute.lifted
    assert r.lifted["linears"] == "split" and r.lifted["layers"] == layers and r.lifted["gate_order"] == "ifgo"
    ops = Counter(n.op_type for n in onnx.load(str(r.path)).graph.node)
    assert ops["LSTM"] == layers and "Loop" not in ops
    _independent_check(model, r.path, 4, features)


def test_a_cell_that_is_not_an_lstm_and_does_not_script_is_refused_quickly(tmp_path):
    model = _model(W.LayerNormCellModel)
    with pytest.raises(ExportMismatch) as exc:
        export_onnx(model, tmp_path / "c.onnx", ExportOptions(seq_len=4))
    assert exc.value.exit_code == 1
    msg = _refused(exc, tmp_path)
    assert "loops over time steps in Python" in msg and "torch.jit.script cannot compile it" in msg
    assert "dynamo: not tried" in msg  # the slow exporter is not run on a loop it would unroll too


def test_route_time_budget_stops_trying_routes(tmp_path):
    with pytest.raises(ExportMismatch) as exc:
        export_onnx(_model(W.LayerNormCellModel), tmp_path / "c.onnx", ExportOptions(seq_len=4, route_budget_s=0))
    assert "not tried: 0 s spent" in str(exc.value)


# -- state on the module, randomness ----------------------------------------------------------------------------

def test_state_kept_on_the_module_exports_as_state_io_and_is_left_as_found(tmp_path):
    model = _model(W.HeldStateLSTM)
    with torch.inference_mode():  # a caller left an inference-mode state on the module before
        model(torch.randn(2, 3, 3))
    left = model.hidden
    steps = []
    r = export_onnx(model, tmp_path / "h.onnx", ExportOptions(seq_len=4), on_step=steps.append)
    assert model.hidden[0].shape == left[0].shape and not model.hidden[0].is_inference()
    assert torch.equal(model.hidden[0], left[0])
    assert [t.name for t in r.io.inputs] == ["x", "h0", "c0"]
    assert read_manifest(r.path).details["held_state"]["attributes"] == ["hidden"]
    assert any("keeps the state of lstm on the module" in s for s in steps)
    # independent: torch called chunk after chunk carries its own state; onnxruntime carries hn/cn
    model.hidden = None
    sess = _sess(r.path)
    x = np.random.default_rng(2).standard_normal((3, 12, 3)).astype(np.float32)
    state = {"h0": np.zeros((1, 3, 8), np.float32), "c0": np.zeros((1, 3, 8), np.float32)}
    for chunk in (x[:, :1], x[:, 1:5], x[:, 5:]):
        with torch.no_grad():
            ref = model(torch.from_numpy(chunk)).numpy()
        y, hn, cn = sess.run(None, {"x": chunk, **state})
        state = {"h0": hn, "c0": cn}
        _assert_close(ref, y, "streamed chunk")


def test_state_that_is_not_a_recurrent_layers_is_refused(tmp_path):
    model = _model(W.RunningMeanModel)
    before = model.running.clone()
    with pytest.raises(BadInput) as exc:
        export_onnx(model, tmp_path / "r.onnx")
    assert exc.value.exit_code == 2
    msg = _refused(exc, tmp_path)
    assert "keeps state on the module" in msg and "running" in msg
    assert torch.equal(model.running, before)


def test_random_initial_state_is_named_and_replaced_only_when_asked(tmp_path):
    model = _model(W.RandomInitLSTM)
    with pytest.raises(BadInput) as exc:
        export_onnx(model, tmp_path / "r.onnx")
    msg = _refused(exc, tmp_path)
    assert "changes between two runs on the same input (random initial state?)" in msg and "--stateful" in msg
    steps = []
    r = export_onnx(model, tmp_path / "r.onnx", ExportOptions(stateful=True, seq_len=4), on_step=steps.append)
    assert read_manifest(r.path).details["initial_state"] == "replaced by h0/c0 inputs (the model draws a random one)"
    assert any("random initial state" in s for s in steps)


def test_randomness_beyond_the_initial_state_is_refused_even_when_stateful(tmp_path):
    with pytest.raises(BadInput, match="changes between two runs") as exc:
        export_onnx(_model(W.NoisyOutputLSTM), tmp_path / "n.onnx", ExportOptions(stateful=True))
    _refused(exc, tmp_path)


# -- refusals name the cause ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_unsupported_op_is_named_in_one_line(tmp_path):
    with pytest.raises(ExportMismatch) as exc:
        export_onnx(_model(W.UnsupportedOpLSTM), tmp_path / "u.onnx")
    msg = _refused(exc, tmp_path)
    assert msg.startswith("the model uses aten::erfinv")


def test_run_failures_are_explained():
    from edgelstm.models.probing import explain_run_error

    tagger = _model(W.TokenTagger)
    try:
        tagger(torch.zeros(2, 3, 6))
    except RuntimeError as exc:
        msg, hint = explain_run_error(exc, tagger, (torch.zeros(2, 3, 6),))
    assert "integer token ids" in msg and hint == "pass {opt:input} tokens:int64[batch,seq]"
    masked = _model(W.MaskedLSTM)
    try:
        masked(torch.zeros(2, 3, 3))
    except TypeError as exc:
        msg, hint = explain_run_error(exc, masked, (torch.zeros(2, 3, 3),))
    assert "argument mask is missing" in msg and "{opt:input}" in hint


def test_token_ids_fed_as_floats_name_the_integer_input(tmp_path):
    with pytest.raises(BadInput) as exc:
        export_onnx(_model(W.TokenTagger), tmp_path / "t.onnx", ExportOptions(input_size=6))
    msg = _refused(exc, tmp_path)
    assert "integer token ids" in msg and "--input tokens:int64[batch,seq]" in msg


def test_missing_forward_argument_is_refused_naming_it(tmp_path):
    with pytest.raises(BadInput) as exc:
        export_onnx(_model(W.MaskedLSTM), tmp_path / "m.onnx")
    assert "mask" in _refused(exc, tmp_path)


# -- the graph's interface ---------------------------------------------------------------------------------------

def test_squeezed_output_keeps_its_batch_axis(tmp_path, capfd):
    import onnxruntime as ort

    model = _model(W.SqueezedHead)
    r = export_onnx(model, tmp_path / "s.onnx", ExportOptions(seq_len=4))
    assert r.io.outputs[0].shape == ("batch",)
    assert "y" in read_manifest(r.path).details["kept_axes"]
    so = ort.SessionOptions()
    so.log_severity_level = 1  # warnings on: a declared [batch] that comes out 0-d warns here
    sess = ort.InferenceSession(str(r.path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 5, 3)).astype(np.float32)
    y = sess.run(None, {"x": x})[0]
    assert y.shape == (1,)
    with torch.no_grad():
        np.testing.assert_allclose(y.reshape(()), model(torch.from_numpy(x)).numpy(), atol=1e-6)
    assert "Expected shape" not in capfd.readouterr().err
    _independent_check(model, r.path, 4, 3)


def test_constant_output_dims_are_integers(tmp_path):
    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 8, batch_first=True)
            self.fc = torch.nn.Linear(8, 6)

        def forward(self, x):
            y = self.fc(self.lstm(x)[0]).reshape(-1, 6)
            return y.reshape(x.shape[0], -1, 2)

    model = _model(Flat)
    r = export_onnx(model, tmp_path / "f.onnx", ExportOptions(seq_len=4))
    dims = onnx.load(str(r.path)).graph.output[0].type.tensor_type.shape.dim
    assert dims[2].dim_value == 2 and not any("Reshape" in d.dim_param for d in dims)
    assert r.io.outputs[0].shape[0] == "batch" and r.io.outputs[0].shape[2] == 2
    _independent_check(model, r.path, 4, 3)


@pytest.mark.slow
def test_convert_cli_writes_one_line_and_no_exporter_noise(tmp_path):
    (tmp_path / "user_models.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        import torch
        import wild_models as W
        def bad():
            torch.manual_seed(0)
            return W.UnsupportedOpLSTM()
    """))
    torch.save(_model(W.UnsupportedOpLSTM).state_dict(), tmp_path / "w.pt")
    proc = subprocess.run([sys.executable, "-m", "edgelstm", "convert", str(tmp_path / "w.pt"), "-o",
                           str(tmp_path / "m.onnx"), "--factory", f"{tmp_path / 'user_models.py'}:bad"],
                          capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ,
                                                                          "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    for noise in ("[E:onnxruntime", "torchvision", "Torch IR graph", "Traceback", "Warning"):
        assert noise not in err and noise not in proc.stdout
    assert "aten::erfinv" in err and not (tmp_path / "m.onnx").exists()
