"""Proving the torch form of a Keras model computes what Keras computes, before it is exported:

1. against Keras itself when ``keras>=3`` is installed (any backend; ``KERAS_BACKEND=torch`` needs no TensorFlow)
   and the file was saved by Keras 3 (Keras 3 computes some Keras 2 layers differently, e.g. ``hard_sigmoid``):
   Keras loads the file and predicts on seeded inputs at lengths 1, 7 and 23 (the saved length, for a fixed-length
   model) and batches 1 and 3;
2. else against predictions the user saved with Keras (``--keras-reference pred.npz``:
   ``np.savez("pred.npz", x=x, y=model.predict(x))``);
3. else the import is checked only structurally (layer options, weight shapes), and the report says so.

A mismatch refuses the import (exit 1): nothing is exported from a torch model that is not the Keras model."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgelstm.artifacts.iospec import TensorSpec, numpy_dtype
from edgelstm.errors import BadInput, ExportMismatch, require_torch

REL_L2 = 1e-4          # ||torch - keras|| <= REL_L2 * ||keras|| (+ ATOL * sqrt(n))
SPREAD = 1e-3          # max |torch - keras| <= SPREAD * std(keras) + ATOL
ATOL = 1e-6
LENGTHS = (1, 7, 23)
BATCHES = (1, 3)


def compare(ref: np.ndarray, got: np.ndarray) -> tuple[bool, float, float]:
    """(passed, rel_l2, max_abs) of ``got`` against ``ref``, relative to the reference's scale."""
    r, g = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if r.shape != g.shape:
        if r.size != g.size:
            return False, float("inf"), float("inf")
        g = g.reshape(r.shape)
    diff = g - r
    norm = float(np.linalg.norm(r))
    rel = float(np.linalg.norm(diff)) / norm if norm > 0 else float(np.linalg.norm(diff))
    max_abs = float(np.abs(diff).max()) if diff.size else 0.0
    spread = float(r.std()) if r.size > 1 and r.std() > 0 else float(np.abs(r).max(initial=0.0))
    ok = (float(np.linalg.norm(diff)) <= REL_L2 * norm + ATOL * np.sqrt(max(r.size, 1))
          and max_abs <= SPREAD * spread + ATOL)
    return ok, rel, max_abs


def _inputs(spec: TensorSpec, batch: int, seq: int, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(batch if d == "batch" else seq if d == "seq" else int(d) for d in spec.shape)
    if spec.value_range:
        return rng.integers(*spec.value_range, size=shape).astype(numpy_dtype(spec.dtype))
    return rng.standard_normal(shape).astype(np.float32)


def _torch_outputs(module, x: np.ndarray) -> np.ndarray:
    torch = require_torch()
    with torch.no_grad():
        return module(torch.from_numpy(x)).float().numpy()


def keras_unavailable(major: int | None) -> str | None:
    """Why Keras itself cannot check this file here (None: it can)."""
    if importlib.util.find_spec("keras") is None:
        return "keras is not installed"
    if major is not None and major < 3:
        return f"the file was saved by Keras {major}, whose layers Keras 3 computes differently (hard_sigmoid)"
    return None


def _load_keras(path: Path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras  # noqa: PLC0415 - optional, heavy

    if int(str(keras.__version__).split(".")[0]) < 3:
        raise ImportError(f"keras {keras.__version__} is older than 3")
    return keras, keras.saving.load_model(str(path), compile=False)


def _report(method: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    worst = max((p["rel_l2"] for p in points), default=0.0)
    return {"method": method, "points": points, "worst_rel_l2": worst,
            "passed": all(p["passed"] for p in points), **extra}


def _refuse(report: dict[str, Any], against: str) -> ExportMismatch:
    bad = [p for p in report["points"] if not p["passed"]]
    p = bad[0]
    return ExportMismatch(f"the torch form of the Keras model does not reproduce {against} (rel L2 {p['rel_l2']:.2g} "
                          f"at batch {p['batch']}, seq {p['seq']}); nothing was exported",
                          failures=[f"batch {q['batch']} seq {q['seq']}: rel L2 {q['rel_l2']:.3g}" for q in bad],
                          hint="report the model (its config.json) to edgelstm's maintainers")


def against_keras(path: Path, module, spec: TensorSpec) -> dict[str, Any]:
    keras, model = _load_keras(path)
    rng = np.random.default_rng(5)
    lengths = LENGTHS if "seq" in spec.shape else (spec.shape[1] if len(spec.shape) > 2 else 1,)
    points = []
    for b in BATCHES:
        for t in lengths:
            x = _inputs(spec, b, int(t), rng)
            want = np.asarray(model.predict(x, verbose=0))
            ok, rel, max_abs = compare(want, _torch_outputs(module, x))
            points.append({"batch": b, "seq": int(t), "rel_l2": rel, "max_abs": max_abs, "passed": ok})
    return _report("keras", points, keras=str(keras.__version__), backend=keras.backend.backend())


def against_file(reference: Path, module, spec: TensorSpec) -> dict[str, Any]:
    try:
        data = np.load(reference, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise BadInput(f"Keras reference {reference.name} is not a readable .npz ({type(exc).__name__})") from None
    with data:
        names = list(data.files)
        if "y" not in names or len(names) != 2:
            raise BadInput(f"Keras reference {reference.name} holds {names}; it needs exactly an input array (x) and "
                           "Keras' predictions (y)", hint="np.savez('pred.npz', x=x, y=model.predict(x))")
        x, want = data[[n for n in names if n != "y"][0]], data["y"]
    if x.ndim != len(spec.shape):
        raise BadInput(f"Keras reference {reference.name}: its input has shape {list(x.shape)}, the model takes "
                       f"{spec.describe()}")
    x = x.astype(numpy_dtype(spec.dtype))
    try:
        got = _torch_outputs(module, x)
    except Exception as exc:  # noqa: BLE001 - the saved input does not fit the model
        raise BadInput(f"Keras reference {reference.name}: the model does not run on its input {list(x.shape)} "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    ok, rel, max_abs = compare(want, got)
    point = {"batch": int(x.shape[0]), "seq": int(x.shape[1]) if x.ndim > 1 else 1, "rel_l2": rel,
             "max_abs": max_abs, "passed": ok}
    return _report("reference-file", [point], file=str(reference))


def verify_import(path: Path, module, spec: TensorSpec, major: int | None, reference: Path | None) -> dict[str, Any]:
    """The import's verification report; raises ExportMismatch when the torch form disagrees."""
    if reference is not None:
        report = against_file(Path(reference), module, spec)
        if not report["passed"]:
            raise _refuse(report, f"the predictions in {Path(reference).name}")
        return report
    why_not = keras_unavailable(major)
    if why_not is None:
        try:
            report = against_keras(path, module, spec)
        except Exception as exc:  # noqa: BLE001 - Keras could not load or run it: say so, do not guess
            why_not = f"Keras could not run it ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        else:
            if not report["passed"]:
                raise _refuse(report, f"Keras {report['keras']}'s predictions")
            return report
    return {"method": "structural", "passed": None,
            "note": f"checked only structurally (layer options, weight shapes): {why_not}; give a Keras reference "
                    "file (--keras-reference pred.npz, pipelines [model].keras_reference; made with np.savez("
                    "'pred.npz', x=x, y=model.predict(x))) to verify against Keras' own predictions"}


__all__ = ["against_file", "against_keras", "compare", "keras_unavailable", "verify_import"]
