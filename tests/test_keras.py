"""Keras models in without TensorFlow: files built here with h5py (tests/keras_files.py), converted through the CLI,
and the ONNX checked against an independent numpy oracle of Keras' equations at lengths far from the example
(1, the example, 3x longer) and two batches. Refusals name the layer and the option and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

import keras_files as K  # noqa: E402
from onnx_checks import assert_close, session as _sess  # noqa: E402

SEQS, BATCHES = (1, 8, 25), (1, 3)


def _check_onnx_against_oracle(onnx_path, layers, features, major, *, tokens=None):
    sess = _sess(onnx_path)
    rng = np.random.default_rng(3)
    for b in BATCHES:
        for t in SEQS:
            x = (rng.integers(0, tokens, (b, t)) if tokens else rng.standard_normal((b, t, features))).astype(
                np.int64 if tokens else np.float32)
            got = sess.run(None, {"x": x})[0]
            assert_close(K.predict(layers, x, major=major), got, f"batch {b} seq {t}", reshape=True)


def _stack(rng):
    layers = [K.lstm("lstm", 6, return_sequences=True), K.Layer("Dropout", "dropout", {"rate": 0.3}),
              K.lstm("lstm_1", 6), K.dense("dense", 2)]
    K.init_weights(layers, 3, rng)
    return layers


def test_keras3_zip_stacked_lstm_converts_verified_and_fused(cli, tmp_path):
    layers = _stack(np.random.default_rng(0))
    src = K.write_keras_zip(tmp_path / "model.keras", layers, [None, None, 3], version="2.15.0")
    code, out, err = cli("convert", src, "-o", tmp_path / "m.onnx", "--seq", "8", "--json")
    assert code == 0, err
    _check_onnx_against_oracle(tmp_path / "m.onnx", layers, 3, major=2)
    details = json.loads((tmp_path / "m.onnx.json").read_text())["details"]
    imp = details["import"]
    assert imp["format"] == "keras" and imp["keras_version"] == "2.15.0"
    assert "num_layers=2" in imp["layers"][0]["torch"]  # lstm + lstm_1 fused into one nn.LSTM (across the dropout)
    assert imp["verification"]["method"] == "structural" and "only structurally" in imp["verification"]["note"]
    assert "only structurally" in err  # said on the console too


def test_legacy_h5_gru_hard_sigmoid_by_keras_version_and_reference_file(cli, tmp_path):
    """The same file computes 0.2x+0.5 when Keras 2 saved it and x/6+0.5 when Keras 3 did; a reference file of
    Keras' predictions verifies the import."""
    rng = np.random.default_rng(1)
    layers = [K.gru("gru", 5, recurrent_activation="hard_sigmoid", reset_after=False, return_sequences=True),
              K.Layer("TimeDistributed", "td", {}, inner=K.dense("dense", 2))]
    K.init_weights(layers, 4, rng)
    x = rng.standard_normal((2, 9, 4)).astype(np.float32)
    for version, major in (("2.4.0", 2), ("3.3.3", 3)):
        src = K.write_legacy_h5(tmp_path / f"k{major}.h5", layers, [None, None, 4], version=version)
        np.savez(tmp_path / f"pred{major}.npz", x=x, y=K.predict(layers, x, major=major).astype(np.float32))
        out = tmp_path / f"k{major}.onnx"
        code, _, err = cli("convert", src, "-o", out, "--seq", "8", "--keras-reference",
                           tmp_path / f"pred{major}.npz")
        assert code == 0, err
        _check_onnx_against_oracle(out, layers, 4, major)
        onnx_text = json.loads(out.with_suffix(".onnx.json").read_text())["details"]["import"]["layers"][0]["onnx"]
        assert "linear_before_reset=0" in onnx_text and "HardSigmoid" in onnx_text
        assert ("0.2" if major == 2 else "0.166667") in onnx_text
    import onnx

    gru = next(n for n in onnx.load(str(tmp_path / "k2.onnx")).graph.node if n.op_type == "GRU")
    assert {a.name: a for a in gru.attribute}["linear_before_reset"].i == 0
    # the Keras 3 predictions do not verify the Keras 2 file: exit 1, nothing written
    code, _, err = cli("convert", tmp_path / "k2.h5", "-o", tmp_path / "wrong.onnx", "--keras-reference",
                       tmp_path / "pred3.npz")
    assert code == 1 and "does not reproduce" in err and not (tmp_path / "wrong.onnx").exists()


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional_merge_modes(cli, tmp_path, merge_mode):
    rng = np.random.default_rng(2)
    layers = [K.bidirectional("bidirectional", K.lstm("lstm", 4, return_sequences=True), merge_mode),
              K.bidirectional("bidirectional_1", K.gru("gru", 3), merge_mode), K.dense("dense", 2)]
    K.init_weights(layers, 3, rng)
    src = K.write_legacy_h5(tmp_path / "bi.h5", layers, [None, None, 3])
    code, _, err = cli("convert", src, "-o", tmp_path / "bi.onnx", "--seq", "8")
    assert code == 0, err
    _check_onnx_against_oracle(tmp_path / "bi.onnx", layers, 3, major=2)


def test_token_model_quantizes_and_streams(cli, tmp_path):
    """Embedding -> GRU -> Dense over token ids: the ONNX quantizes to INT8 and streams (--stateful)."""
    rng = np.random.default_rng(4)
    layers = [K.Layer("Embedding", "embedding", {"input_dim": 20, "output_dim": 5}), K.gru("gru", 6,
              return_sequences=True), K.dense("dense", 3, activation="softmax")]
    K.init_weights(layers, 0, rng)
    src = K.write_keras_zip(tmp_path / "tok.keras", layers, [None, None], version="2.13.1")
    code, _, err = cli("convert", src, "-o", tmp_path / "tok.onnx", "--seq", "8")
    assert code == 0, err
    _check_onnx_against_oracle(tmp_path / "tok.onnx", layers, None, 2, tokens=20)
    code, _, err = cli("quantize", tmp_path / "tok.onnx", "--precision", "int8", "-o", tmp_path / "tok.int8.onnx")
    assert code == 0, err
    code, _, err = cli("convert", src, "-o", tmp_path / "tok.st.onnx", "--stateful", "--seq", "8")
    assert code == 0, err
    io = json.loads((tmp_path / "tok.st.onnx.json").read_text())["io"]
    assert [t["name"] for t in io["inputs"]] == ["x", "h0"]


def _refusal_cases():
    """(name, layers, extra config edit, the words the refusal must contain)."""
    def seq(*layers):
        return list(layers)

    return {
        "return_state": (seq(K.lstm("enc", 4, return_state=True), K.dense("dense", 1)), "'enc' (LSTM): return_state"),
        "stateful": (seq(K.lstm("lstm", 4, stateful=True), K.dense("d", 1)), "'lstm' (LSTM): stateful=True"),
        "time_major": (seq(K.lstm("lstm", 4, time_major=True)), "time_major=True"),
        "masking": (seq(K.Layer("Masking", "mask", {"mask_value": 0.0}), K.lstm("lstm", 4)), "'mask' (Masking)"),
        "mask_zero": (seq(K.Layer("Embedding", "emb", {"input_dim": 9, "output_dim": 3, "mask_zero": True}),
                          K.lstm("lstm", 4)), "'emb' (Embedding): mask_zero=True"),
        "merge_none": (seq(K.bidirectional("bi", K.lstm("lstm", 4), None)), "'bi' (Bidirectional): merge_mode=None"),
        "swish_cell": (seq(K.lstm("lstm", 4, activation="swish")), "activation='swish'"),
        "custom_activation": (seq(K.lstm("lstm", 4, activation={"module": "my_pkg", "class_name": "function",
                                                                 "config": "crelu", "registered_name": "crelu"})),
                              "custom activation"),
        "custom_cell": (seq(K.Layer("RNN", "rnn", {"cell": {"class_name": "MinimalCell", "config": {}}})),
                        "'rnn' (RNN)"),
        "conv2d": (seq(K.Layer("Conv2D", "conv", {"filters": 2})), "'conv' (Conv2D)"),
        "mixed_precision": (seq(K.lstm("lstm", 4, dtype={"module": "keras", "class_name": "DTypePolicy",
                                                          "config": {"name": "mixed_float16"}})), "mixed_float16"),
    }


@pytest.mark.parametrize("case", sorted(_refusal_cases()))
def test_refusals_name_the_layer_and_option(cli, tmp_path, case):
    layers, words = _refusal_cases()[case]
    for layer in layers:
        if layer.cls in ("LSTM", "GRU", "Bidirectional", "Dense", "Embedding"):
            K.init_weights([layer], 3, np.random.default_rng(0))
    src = K.write_keras_zip(tmp_path / "r.keras", layers, [None, None, 3], version="2.15.0")
    code, _, err = cli("convert", src, "-o", tmp_path / "r.onnx")
    assert code == 2, err
    line = " ".join(err.split())
    assert words in line, line
    assert "Traceback" not in err and not (tmp_path / "r.onnx").exists()


def _functional(layers: list[dict], inputs, outputs) -> dict:
    return {"class_name": "Functional", "config": {"name": "model", "layers": layers, "input_layers": inputs,
                                                   "output_layers": outputs}}


def _node(*sources):
    return [[[s, 0, t, {}] for s, t in sources]]


@pytest.mark.parametrize("case,words", [
    ("branch", "feeds 2 layers"), ("shared", "called 2 times (a shared layer)"),
    ("two_inputs", "2 input(s)"), ("state_output", "return_state=True?")])
def test_functional_graphs_that_are_not_chains_are_refused(cli, tmp_path, case, words):
    inp = {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, None, 3], "name": "in"},
           "inbound_nodes": []}
    l1 = K.lstm("a", 4, return_sequences=True)
    l2 = K.lstm("b", 4)
    d = K.dense("d", 1)
    K.init_weights([l1, l2], 3, np.random.default_rng(0))
    K.init_weights([d], 4, np.random.default_rng(0))

    def entry(layer, nodes):
        return {**layer.entry(), "name": layer.name, "inbound_nodes": nodes}

    outputs = [["d", 0, 0]]
    inputs = [["in", 0, 0]]
    if case == "branch":
        layers = [inp, entry(l1, _node(("in", 0))), entry(l2, _node(("a", 0))), entry(d, _node(("a", 0)))]
    elif case == "shared":
        layers = [inp, entry(l1, _node(("in", 0)) + _node(("in", 0))), entry(l2, _node(("a", 0))),
                  entry(d, _node(("b", 0)))]
    elif case == "two_inputs":
        layers = [inp, entry(l1, _node(("in", 0))), entry(l2, _node(("a", 0))), entry(d, _node(("b", 0)))]
        inputs = [["in", 0, 0], ["in2", 0, 0]]
    else:
        layers = [inp, entry(l1, _node(("in", 0))), entry(l2, _node(("a", 0))), entry(d, _node(("b", 1)))]
    src = K.write_legacy_h5(tmp_path / "f.h5", [l1, l2, d], None, config=_functional(layers, inputs, outputs))
    code, _, err = cli("convert", src, "-o", tmp_path / "f.onnx")
    assert code == 2, err
    assert words in " ".join(err.split()) and not (tmp_path / "f.onnx").exists()


def test_functional_chain_converts(cli, tmp_path):
    inp = {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, None, 3], "name": "in"},
           "inbound_nodes": []}
    layers = [K.lstm("a", 4, return_sequences=True), K.gru("b", 5), K.dense("d", 2, activation="tanh")]
    K.init_weights(layers, 3, np.random.default_rng(6))
    entries = [inp] + [{**layer.entry(), "name": layer.name, "inbound_nodes": _node((src, 0))}
                       for layer, src in zip(layers, ["in", "a", "b"])]
    config = _functional(entries, [["in", 0, 0]], [["d", 0, 0]])
    src = K.write_legacy_h5(tmp_path / "f.h5", layers, None, config=config)
    code, _, err = cli("convert", src, "-o", tmp_path / "f.onnx", "--seq", "8")
    assert code == 0, err
    _check_onnx_against_oracle(tmp_path / "f.onnx", layers, 3, major=2)


def test_inspect_shows_keras_layers_and_their_onnx_form(cli, tmp_path):
    layers = _stack(np.random.default_rng(0))
    src = K.write_keras_zip(tmp_path / "model.keras", layers, [None, None, 3], version="2.15.0")
    code, out, err = cli("inspect", src, "--json")
    assert code == 0, err
    info = json.loads(out)
    rows = info["keras"]["layers"]
    assert rows[0]["keras"].startswith("lstm: LSTM(6)") and "lstm_1" in rows[0]["keras"]
    assert rows[1]["onnx"] == "identity at inference" and rows[2]["torch"] == "nn.Linear(6, 2)"
    assert info["io"]["inputs"][0]["shape"] == ["batch", "seq", 3]


def test_bad_keras_files_are_one_line_refusals(cli, tmp_path):
    import h5py

    (tmp_path / "notes.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    for name, words in (("notes.keras", "not"), ("w.h5", "without a Keras model config")):
        code, _, err = cli("convert", tmp_path / name, "-o", tmp_path / "o.onnx")
        assert code == 2 and words in err and "Traceback" not in err, err
    layers = _stack(np.random.default_rng(0))
    layers[0].weights["kernel"] = layers[0].weights["kernel"][:, :5]  # a kernel that does not fit the config
    src = K.write_keras_zip(tmp_path / "bad.keras", layers, [None, None, 3], version="2.15.0")
    code, _, err = cli("convert", src, "-o", tmp_path / "o.onnx")
    assert code == 2 and "'lstm' (LSTM): kernel has shape [3, 5]" in " ".join(err.split()), err
