"""The failure classes seen on unseen models (issue 20), each on models written in the styles people use
(tests/wild_models_unseen.py): every one converts, and the ONNX file is checked here independently: onnxruntime
against the model called the way its authors call it (not through edgelstm's contract), at lengths 1, 8 and 25 and
batches 1 and 3, relative to each output's scale; state-carrying models also step by step / chunk by chunk."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import wild_models_unseen as U
from onnx_checks import assert_close as _close, session as _sess
from edgelstm.converters.export.torch_to_onnx import export_onnx

ROOT = Path(__file__).resolve().parents[1]
SEQS, BATCHES = (1, 8, 25), (1, 3)


def _export(name, tmp_path, **extra):
    wm = U.UNSEEN_MODELS[name]
    out = tmp_path / f"{name}.onnx"
    result = export_onnx(wm.build(), out, U.unseen_export_options(wm, seq_len=8, **extra))
    return wm.build(), out, result


def _ops(path) -> Counter:
    from edgelstm.artifacts.onnx_graph import walk

    return Counter(n.op_type for _, _, n in walk(onnx.load(str(path)).graph))


def _grid():
    rng = np.random.default_rng(7)
    for b in BATCHES:
        for t in SEQS:
            yield b, t, rng


# ------------------------------------------------------------------ 1. hidden argument, output folding time


def test_folded_output_with_hidden_argument_streams_chunk_by_chunk(tmp_path):
    model, path, r = _export("folded_word_lm", tmp_path)
    assert [t.name for t in r.io.inputs] == ["input", "h0", "c0"]
    sess = _sess(path)
    for b, t, rng in _grid():
        tokens = rng.integers(0, 30, (t, b))
        h = (torch.randn(2, b, 8) * 0.5, torch.randn(2, b, 8) * 0.5)
        with torch.no_grad():
            y, (hn, cn) = model(torch.from_numpy(tokens), h)
        got = sess.run(None, {"input": tokens, "h0": h[0].numpy(), "c0": h[1].numpy()})
        for ref, g, n in zip((y, hn, cn), got, ("y", "hn", "cn")):
            _close(ref, g, f"{n} b={b} t={t}")
    # streamed: both sides chunk by chunk, each carrying its own state; y is [chunk*batch, vocab] per chunk
    tokens = np.random.default_rng(1).integers(0, 30, (17, 2))
    state_t = (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8))
    state_o = [np.zeros((2, 2, 8), np.float32)] * 2
    for start in range(0, 17, 3):
        chunk = tokens[start:start + 3]
        with torch.no_grad():
            y, state_t = model(torch.from_numpy(chunk), state_t)
        y_o, h_o, c_o = sess.run(None, {"input": chunk, "h0": state_o[0], "c0": state_o[1]})
        _close(y, y_o, f"chunk at {start}")
        state_o = [h_o, c_o]


# ------------------------------------------------------------------ 2. state arguments not shaped like the RNN's


def test_one_token_batch_one_encoder_steps_with_its_hidden(tmp_path):
    model, path, r = _export("one_token_encoder", tmp_path)
    assert {t.name: t.shape for t in r.io.inputs} == {"input": (1,), "h0": (1, 1, 8)}
    sess = _sess(path)
    h_t, h_o = model.initHidden(), np.zeros((1, 1, 8), np.float32)
    for token in (3, 7, 0, 19):
        with torch.no_grad():
            y, h_t = model(torch.tensor([token]), h_t)
        y_o, h_o = sess.run(None, {"input": np.array([token]), "h0": h_o})
        _close(y, y_o, f"token {token}")
        _close(h_t, h_o, f"hidden after {token}")


def test_batch_major_state_decoder_takes_state_as_layers_batch_hidden(tmp_path):
    model, path, r = _export("batch_major_state", tmp_path)
    st = json.loads(path.with_suffix(".onnx.json").read_text())["details"]["inputs"]["state_argument"]
    assert st["layout"] == "2d"
    sess = _sess(path)
    for b in BATCHES:
        token = np.arange(b) % 16
        h = torch.randn(b, 8)
        with torch.no_grad():
            y, h_new = model(torch.from_numpy(token), h)
        y_o, h_o = sess.run(None, {"token": token, "h0": h.numpy()[None]})
        _close(y, y_o, f"y b={b}")
        _close(h_new, h_o[0], f"h b={b}")


def test_per_layer_list_of_states(tmp_path):
    model, path, r = _export("per_layer_state", tmp_path)
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t, 3)).astype(np.float32)
        h, c = np.random.default_rng(t).standard_normal((2, 2, b, 6)).astype(np.float32) * 0.5
        with torch.no_grad():
            y, states = model(torch.from_numpy(x), [(torch.from_numpy(h[k:k + 1]), torch.from_numpy(c[k:k + 1]))
                                                      for k in range(2)])
        y_o, h_o, c_o = sess.run(None, {"x": x, "h0": h, "c0": c})
        _close(y, y_o, f"y b={b} t={t}")
        _close(torch.cat([s[0] for s in states]), h_o, "hn")
        _close(torch.cat([s[1] for s in states]), c_o, "cn")


def test_optional_state_is_fixed_to_none_or_an_input_when_asked(tmp_path):
    model, path, r = _export("optional_state_cell", tmp_path)
    assert [t.name for t in r.io.inputs] == ["x"] and r.route.value == "lifted"
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t, 3)).astype(np.float32)
        with torch.no_grad():
            y, (h, c) = model(torch.from_numpy(x))
        for ref, got in zip((y, h, c), sess.run(None, {"x": x})):
            _close(ref, got, f"b={b} t={t}")
    model, path, r = _export("optional_state_cell", tmp_path, state_arg="hx")
    assert [t.name for t in r.io.inputs] == ["x", "h0", "c0"]
    sess = _sess(path)
    x = np.random.default_rng(0).standard_normal((3, 25, 3)).astype(np.float32)
    h0, c0 = (np.random.default_rng(k).standard_normal((1, 3, 7)).astype(np.float32) * 0.5 for k in (1, 2))
    with torch.no_grad():
        y, (h, c) = model(torch.from_numpy(x), (torch.from_numpy(h0[0]), torch.from_numpy(c0[0])))
    y_o, h_o, c_o = sess.run(None, {"x": x, "h0": h0, "c0": c0})
    _close(y, y_o, "y")
    _close(h, h_o[0], "hn")


# ------------------------------------------------------------------ 3. keyword-only and multi-input signatures


def test_keyword_only_lengths(tmp_path):
    model, path, r = _export("keyword_lengths", tmp_path)
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t, 4)).astype(np.float32)
        lengths = np.sort(rng.integers(1, t + 1, b))[::-1].copy()
        lengths[0] = t
        with torch.no_grad():
            ref = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths))
        _close(ref, sess.run(None, {"x": x, "lengths": lengths})[0], f"b={b} t={t}")


def test_two_typed_inputs_and_a_python_loop_take_the_scripted_route(tmp_path):
    model, path, r = _export("context_loop", tmp_path)
    assert r.route.value == "scripted" and _ops(path)["Loop"] >= 1
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t, 3)).astype(np.float32)
        ctx = rng.standard_normal((b, 4)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x), torch.from_numpy(ctx))
        _close(ref, sess.run(None, {"x": x, "context": ctx})[0], f"b={b} t={t}")


# ------------------------------------------------------------------------------------------- 4. cell loops


def test_stacked_lstm_cells_with_future_steps_in_float64_lift_to_native_lstm(tmp_path):
    model, path, r = _export("time_sequence_prediction", tmp_path)
    details = json.loads(path.with_suffix(".onnx.json").read_text())["details"]
    assert r.route.value == "lifted" and details["lifted"]["layers"] == 2
    assert details["cast"]["from"] == "float64" and details["cast"]["passed"]
    ops = _ops(path)
    assert ops["LSTM"] >= 1 and ops["Loop"] == 0
    assert [t.dtype for t in r.io.inputs] == ["float32"]
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t))
        with torch.no_grad():
            ref = model(torch.from_numpy(x))  # float64, as the model computes
        _close(ref, sess.run(None, {"x": x.astype(np.float32)})[0], f"b={b} t={t}")


@pytest.mark.parametrize("name,op", [("gru_cell_seq_first", "GRU"), ("layer_major_forget_bias", "LSTM"),
                                     ("textbook_gru", "GRU")])
def test_cell_loops_lift_to_native_ops(tmp_path, name, op):
    model, path, r = _export(name, tmp_path)
    assert r.route.value == "lifted"
    ops = _ops(path)
    assert ops[op] >= 1 and ops["Loop"] == 0
    seq_first = r.io.inputs[0].shape[0] == "seq"
    features = r.io.inputs[0].shape[-1]
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((t, b, features) if seq_first else (b, t, features)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x))
        _close(ref, sess.run(None, {"x": x})[0], f"b={b} t={t}")
    details = json.loads(path.with_suffix(".onnx.json").read_text())["details"]["lifted"]
    if name == "textbook_gru":
        gru = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU")
        assert {a.name: a.i for a in gru.attribute}["linear_before_reset"] == 0
    if name == "layer_major_forget_bias":
        assert details["layers"] == 2 and all("f+1" in v for v in details["folded_offsets"].values())
    if name == "gru_cell_seq_first":
        assert seq_first


def test_raw_parameter_cell_is_read_seq_first_and_not_sized_by_its_head(tmp_path):
    model, path, r = _export("scratch_lstm", tmp_path)
    assert r.io.inputs[0].shape == ("seq", "batch", 5)  # W_xi [5, 7], not the head W_hq [7, 3]
    sess = _sess(path)
    for b, t, rng in _grid():
        x = rng.standard_normal((t, b, 5)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x))
        _close(ref, sess.run(None, {"x": x})[0], f"b={b} t={t}")


# ------------------------------------------------------------------------ 5. data: relative lengths, float64


@pytest.mark.parametrize("explicit", [True, False])
def test_relative_lengths(tmp_path, explicit):
    wm = U.UNSEEN_MODELS["relative_lengths"]
    options = U.unseen_export_options(wm, seq_len=8) if explicit else U.unseen_export_options(
        U.WildModel("relative_lengths", wm.build), seq_len=8)
    r = export_onnx(wm.build(), tmp_path / "rel.onnx", options)
    assert [t.dtype for t in r.io.inputs] == ["float32", "float32"]
    model, sess = wm.build(), _sess(tmp_path / "rel.onnx")
    for b, t, rng in _grid():
        x = rng.standard_normal((b, t, 4)).astype(np.float32)
        rel = np.maximum(1, rng.integers(1, t + 1, b)).astype(np.float32) / t
        rel[0] = 1.0
        with torch.no_grad():
            ref = model(torch.from_numpy(x), torch.from_numpy(rel))
        _close(ref, sess.run(None, {"x": x, "wav_lens": rel})[0], f"b={b} t={t}")


def test_float64_input_option_is_accepted(cli, tmp_path):
    torch.manual_seed(0)
    torch.save(U.TimeSequencePredictor().double().state_dict(), tmp_path / "w.pt")
    (tmp_path / "defs.py").write_text("import sys\nsys.path.insert(0, %r)\nfrom wild_models_unseen import "
                                      "TimeSequencePredictor\n" % str(ROOT / "tests"))
    (tmp_path / "factory.py").write_text("from defs import TimeSequencePredictor  # a sibling module\n\n\n"
                                         "def build():\n    return TimeSequencePredictor().double()\n")
    code, out, err = cli("convert", tmp_path / "w.pt", "--factory", f"{tmp_path / 'factory.py'}:build",
                         "--input", "x:float64[batch,seq]", "-o", tmp_path / "m.onnx", "--json")
    assert code == 0, err
    assert json.loads(out)["io"]["inputs"][0]["dtype"] == "float32"


# ------------------------------------------------------------------------------------------- 6. factories


def test_factory_file_imports_its_sibling_module(cli, tmp_path):
    pkg = tmp_path / "project"
    pkg.mkdir()
    (pkg / "model_def.py").write_text(textwrap.dedent("""
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
                self.fc = torch.nn.Linear(5, 1)

            def forward(self, x):
                return self.fc(self.lstm(x)[0][:, -1])
        """))
    (pkg / "build.py").write_text("from model_def import Net\n\n\ndef make():\n    return Net()\n")
    code = ("import sys, torch; sys.path.insert(0, %r); from model_def import Net; torch.manual_seed(0); "
            "torch.save(Net().state_dict(), %r)" % (str(pkg), str(tmp_path / "w.pt")))
    subprocess.run([sys.executable, "-c", code], check=True)
    assert str(pkg) not in sys.path
    code, _, err = cli("convert", tmp_path / "w.pt", "--factory", f"{pkg / 'build.py'}:make", "-o", tmp_path / "f.onnx")
    assert code == 0, err
    assert str(pkg) not in sys.path  # put first only while loading
