"""Keras rows of the model-coverage benchmark (benchmarks/model_coverage.py).

Two kinds of rows:
- files built with h5py alone (tests/keras_files.py: the ``.keras`` and legacy ``.h5`` layouts Keras writes), checked
  independently against a numpy oracle of Keras' equations (not edgelstm's mapping); their import is verified
  only structurally (they claim Keras 2, which Keras 3 computes differently), which the row says;
- files saved by Keras 3 itself (KERAS_BACKEND=torch, where keras is installed), checked against ``model.predict``,
  timed against Keras calling the model (what a Keras user would run)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

REL_TOL = 1e-4


def _h5py_models() -> dict[str, tuple[str, Callable[[], tuple[list, list, str, str]]]]:
    """name -> (description, builder() -> (layers, batch shape, file suffix, keras version))."""
    import keras_files as K

    def stacked():
        return ([K.lstm("lstm", 16, return_sequences=True), K.Layer("Dropout", "dropout", {"rate": 0.2}),
                 K.lstm("lstm_1", 16), K.dense("dense", 1)], [None, None, 4], ".keras", "2.15.0")

    def bigru():
        gru = K.gru("gru", 8, recurrent_activation="hard_sigmoid", reset_after=False, return_sequences=True)
        return ([K.bidirectional("bidirectional", gru), K.Layer("TimeDistributed", "td", {},
                                                                inner=K.dense("dense", 3))], [None, None, 4], ".h5", "2.4.0")

    def token():
        return ([K.Layer("Embedding", "embedding", {"input_dim": 50, "output_dim": 8}), K.gru("gru", 16),
                 K.dense("dense", 4, activation="softmax")], [None, None], ".keras", "2.13.1")

    return {"keras_stacked_lstm": ("Keras 2 .keras (h5py-built): LSTM x2 (fused) + Dense", stacked),
            "keras_bigru_hard_sigmoid_h5": ("Keras 2 legacy .h5 (h5py-built): BiGRU reset_after=False, hard_sigmoid",
                                            bigru),
            "keras_token_gru": ("Keras 2 .keras (h5py-built): Embedding + GRU + softmax", token)}


def _keras3_models() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    return {
        "keras3_conv_lstm": ("Keras 3 .keras: Conv1D(causal) + BatchNorm + LSTM + Dense",
                             lambda k: k.Sequential([k.Input((None, 4)), k.layers.Conv1D(8, 3, padding="causal",
                                                     activation="relu"), k.layers.BatchNormalization(),
                                                     k.layers.LSTM(16), k.layers.Dense(2)])),
        "keras3_bilstm_sum": ("Keras 3 .keras: Bidirectional(LSTM, merge_mode=sum) x2 + TimeDistributed(Dense)",
                              lambda k: k.Sequential([k.Input((None, 4)), k.layers.Bidirectional(
                                  k.layers.LSTM(12, return_sequences=True), merge_mode="sum"), k.layers.Bidirectional(
                                  k.layers.LSTM(12, return_sequences=True), merge_mode="sum"),
                                  k.layers.TimeDistributed(k.layers.Dense(3))])),
    }


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    return keras if int(keras.__version__.split(".")[0]) >= 3 else None


def catalogue() -> dict[str, dict[str, Any]]:
    """Entries for model_coverage.catalogue(): build() -> LoadedModel, check(onnx, io, seq) -> dict, baseline."""
    out: dict[str, dict[str, Any]] = {}
    folder = Path(tempfile.mkdtemp(prefix="edgelstm-keras-cov-"))
    for name, (what, spec) in _h5py_models().items():
        out[name] = _h5py_entry(name, what, spec, folder)
    keras = _keras()
    for name, (what, make) in _keras3_models().items():
        out[name] = _keras3_entry(name, what, make, folder, keras)
    return out


def _h5py_entry(name, what, spec, folder: Path) -> dict[str, Any]:
    import keras_files as K

    state: dict[str, Any] = {}

    def build():
        from edgelstm.models.loading import load_model

        if "path" not in state:
            layers, shape, suffix, version = spec()
            tokens = layers[0].cls == "Embedding"
            K.init_weights(layers, 0 if tokens else shape[-1], np.random.default_rng(0))
            writer = K.write_keras_zip if suffix == ".keras" else K.write_legacy_h5
            state.update(path=writer(folder / f"{name}{suffix}", layers, shape, version=version), layers=layers,
                         major=int(version[0]), tokens=tokens, features=shape[-1])
        return load_model(state["path"])

    def predict(x):
        return K.predict(state["layers"], x, major=state["major"])

    def check(onnx_path, io, seq):
        return _check(onnx_path, predict, seq, state["features"], 50 if state["tokens"] else None, "numpy oracle")

    return {"build": build, "check": check, "what": what, "source": "benchmarks/coverage_keras.py (h5py-built)",
            "options": lambda **kw: _options(**kw)}


def _keras3_entry(name, what, make, folder: Path, keras) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if keras is None:
        return {"skip": "keras>=3 is not installed", "what": what, "source": "benchmarks/coverage_keras.py"}

    def build():
        from edgelstm.models.loading import load_model

        if "path" not in state:
            keras.utils.set_random_seed(0)
            model = make(keras)
            rng = np.random.default_rng(0)
            for w in model.weights:
                w.assign(w.numpy() + rng.normal(0, 0.2, w.shape).astype("float32"))
            state.update(path=folder / f"{name}.keras", model=model, features=int(model.inputs[0].shape[-1]))
            model.save(state["path"])
        return load_model(state["path"])

    def predict(x):
        return np.asarray(state["model"].predict(x, verbose=0))

    def check(onnx_path, io, seq):
        return _check(onnx_path, predict, seq, state["features"], None, f"Keras {keras.__version__} predict")

    def baseline(x):
        return state["model"](x, training=False)

    return {"build": build, "check": check, "baseline": baseline, "baseline_name": f"Keras {keras.__version__} "
            f"({keras.backend.backend()} backend)", "what": what, "source": "benchmarks/coverage_keras.py (Keras 3)",
            "options": lambda **kw: _options(**kw)}


def _options(**kw):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions

    return ExportOptions(**kw)


def _check(onnx_path, predict, example_seq: int, features, tokens, against: str) -> dict[str, Any]:
    """onnxruntime against Keras' computation at 3 lengths x 2 batches."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(11)
    checks, worst = [], 0.0
    for b in (1, 3):
        for t in sorted({1, example_seq, max(3 * example_seq + 1, 16)}):
            x = (rng.integers(0, tokens, (b, t)) if tokens else rng.standard_normal((b, t, features))).astype(
                np.int64 if tokens else np.float32)
            want = np.asarray(predict(x), np.float64)
            got = np.asarray(sess.run(None, {"x": x})[0], np.float64).reshape(want.shape)
            rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12))
            worst = max(worst, rel)
            checks.append({"batch": b, "seq": t, "rel_l2": rel})
    return {"passed": all(c["rel_l2"] <= REL_TOL for c in checks), "worst_rel_l2": worst, "checks": checks,
            "note": f"against {against}"}


__all__ = ["catalogue"]
