"""Keras 3 files made by Keras itself (KERAS_BACKEND=torch, no TensorFlow), where keras>=3 is installed: each
converts, its import is verified against Keras' own predictions, and the ONNX file is checked independently against
``model.predict`` at lengths far from the example. The converted file quantizes, streams, validates against the
.keras file itself and runs in a pipeline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - tf-keras 2 installed instead
    pytest.skip("needs keras>=3", allow_module_level=True)

SEQS, BATCHES = (1, 8, 25), (1, 3)


def _models():
    L = keras.layers
    return {
        "stacked_lstm.keras": lambda: keras.Sequential([keras.Input((None, 3)), L.LSTM(8, return_sequences=True),
                                                        L.Dropout(0.2), L.LSTM(8), L.Dense(2)]),
        "bigru_tagger.h5": lambda: keras.Sequential([keras.Input((None, 4)), L.Bidirectional(
            L.GRU(5, return_sequences=True)), L.TimeDistributed(L.Dense(3, activation="softmax"))]),
        "gru_hard_sigmoid.keras": lambda: keras.Sequential([keras.Input((None, 3)), L.GRU(
            6, reset_after=False, recurrent_activation="hard_sigmoid", go_backwards=True), L.Dense(1)]),
        "conv_lstm.keras": lambda: keras.Sequential([keras.Input((None, 4)), L.Conv1D(6, 3, padding="causal",
                                                     activation="relu"), L.LSTM(7), L.Dense(2)]),
    }


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    out = {}
    for name, build in _models().items():
        model = build()
        for w in model.weights:  # away from Keras' initialisation (biases start at zero)
            w.assign(w.numpy() + rng.normal(0, 0.2, w.shape).astype("float32"))
        x = rng.standard_normal((32, 10, int(model.inputs[0].shape[-1]))).astype("float32")
        pred = np.asarray(model.predict(x, verbose=0))
        y = pred + rng.normal(0, 0.1, pred.shape)
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y.astype("float32"), epochs=2, batch_size=16, verbose=0)  # trained in the test
        model.save(root / name)
        out[name] = (root / name, model)
    return out


def _check_against_keras(onnx_path: Path, model, features: int) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(9)
    worst = 0.0
    for b in BATCHES:
        for t in SEQS:
            x = rng.standard_normal((b, t, features)).astype(np.float32)
            want = np.asarray(model.predict(x, verbose=0), np.float64)
            got = sess.run(None, {"x": x})[0].astype(np.float64)
            rel = np.linalg.norm(got - want) / np.linalg.norm(want)
            assert rel <= 1e-4, f"batch {b} seq {t}: rel L2 {rel:.3g}"
            worst = max(worst, rel)
    return worst


@pytest.mark.parametrize("name", sorted(_models()))
def test_keras3_file_converts_and_matches_keras(cli, tmp_path, keras_files, name):
    src, model = keras_files[name]
    out = tmp_path / "m.onnx"
    code, _, err = cli("convert", src, "-o", out, "--seq", "8")
    assert code == 0, err
    verification = json.loads(out.with_suffix(".onnx.json").read_text())["details"]["import"]["verification"]
    assert verification["method"] == "keras" and verification["passed"] and "matches Keras" in err
    _check_against_keras(out, model, int(model.inputs[0].shape[-1]))


def test_keras3_model_quantizes_streams_and_validates(cli, tmp_path, keras_files):
    src, model = keras_files["stacked_lstm.keras"]
    code, _, err = cli("convert", src, "-o", tmp_path / "m.onnx", "--seq", "8")
    assert code == 0, err
    code, _, err = cli("quantize", tmp_path / "m.onnx", "--precision", "int8", "-o", tmp_path / "m.int8.onnx")
    assert code == 0, err
    code, out, err = cli("validate", "-r", src, "-c", tmp_path / "m.int8.onnx", "--synthetic", "16", "--seq", "12",
                         "--gate", "rel_l2<=0.2", "--json")
    assert code == 0, err
    assert json.loads(out)["passed"]
    code, _, err = cli("convert", src, "-o", tmp_path / "m.st.onnx", "--stateful", "--seq", "8")
    assert code == 0, err  # the two LSTM layers were fused: one nn.LSTM, state [2, batch, 8]
    io = json.loads((tmp_path / "m.st.onnx.json").read_text())["io"]
    assert {t["name"]: t["shape"] for t in io["inputs"]}["h0"] == [2, "batch", 8]


@pytest.mark.slow
def test_pipeline_takes_a_keras_source(cli, tmp_path, keras_files):
    src, _ = keras_files["stacked_lstm.keras"]
    (tmp_path / "p.toml").write_text(f"""
[model]
source = "{src}"
[export]
seq = 10
stateful = true
[quantize]
precisions = ["int8-dynamic"]
[data]
synthetic = 16
seq = 10
[validate]
gates = ["rel_l2<=0.2"]
[bench]
seq = [10]
iters = 2
warmup = 1
[output]
dir = "out"
""")
    code, out, err = cli("run", tmp_path / "p.toml", "--json")
    assert code == 0, err
    assert (tmp_path / "out" / "model.onnx").exists() and (tmp_path / "out" / "model.stateful.onnx").exists()
