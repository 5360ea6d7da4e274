"""Drift metrics between a reference and a candidate output, and task metrics against labels. Pure numpy.

Per output (all computed in float64 over every element):

- ``max_abs``   max |c - r|
- ``mean_abs``  mean |c - r|
- ``rmse``      sqrt(mean (c - r)^2)
- ``rel_l2``    ||c - r|| / ||r||  (0 when both are zero; ||r|| is floored at 1e-12 so it stays finite)
- ``cosine``    <r, c> / (||r|| ||c||)  (1 when both are zero, 0 when exactly one is)
- ``per_step_rmse``  for outputs with a time axis: the rmse at each step (over every other axis);
  for outputs without one, a single entry (the output is one step).

Metrics accumulate batch by batch (``DriftAccumulator``), so a data set never has to be held twice.

Task metrics (labels given): regression ``mse``/``mae`` of the candidate and of the reference against
the labels and their deltas (candidate minus reference); classification ``accuracy`` of both, its delta,
and the argmax ``agreement`` between reference and candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DRIFT_METRICS = ("max_abs", "mean_abs", "rmse", "rel_l2", "cosine")
#: Metrics where larger is better (gates default to >=, baselines compare 1 - value).
HIGHER_IS_BETTER = frozenset({"cosine", "accuracy", "reference_accuracy", "agreement"})
#: How a gate's name starts when it compares with a stored report (baseline) or with OLD run on the same data (against).
GATE_PREFIX = {"baseline": "baseline ", "against": "vs OLD "}
REGRESSION_METRICS = ("mse", "mae", "reference_mse", "reference_mae", "mse_delta", "mae_delta")
CLASSIFICATION_METRICS = ("accuracy", "reference_accuracy", "accuracy_delta", "agreement")
TASK_METRICS = REGRESSION_METRICS + CLASSIFICATION_METRICS
NORM_FLOOR = 1e-12


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


@dataclass
class DriftAccumulator:
    """Streaming sums for the drift metrics of one output. ``time_axis`` is the axis of ``seq`` (or None)."""

    time_axis: int | None = None
    count: int = 0
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    ref_sq: float = 0.0
    cand_sq: float = 0.0
    dot: float = 0.0
    max_abs: float = 0.0
    step_sq: np.ndarray | None = None
    step_count: np.ndarray | None = None
    shape_tail: tuple[int, ...] | None = field(default=None, repr=False)

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        r, c = _f64(reference), _f64(candidate)
        if r.shape != c.shape and r.size == c.size and _squeezed(r.shape) == _squeezed(c.shape):
            c = c.reshape(r.shape)  # torch's squeeze() is 0-d at batch 1, the export keeps the axis: same numbers
        if r.shape != c.shape:
            raise ValueError(f"shape mismatch: reference {list(r.shape)} vs candidate {list(c.shape)}")
        d = c - r
        if d.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(d))))
        self.count += d.size
        self.sum_abs += float(np.sum(np.abs(d)))
        self.sum_sq += float(np.sum(d * d))
        self.ref_sq += float(np.sum(r * r))
        self.cand_sq += float(np.sum(c * c))
        self.dot += float(np.sum(r * c))
        if self.time_axis is not None and d.ndim > self.time_axis:
            other = tuple(i for i in range(d.ndim) if i != self.time_axis)
            sq = np.sum(d * d, axis=other)
            cnt = np.full(sq.shape, d.size // max(1, sq.size), dtype=np.int64)
            if self.step_sq is None:
                self.step_sq, self.step_count = sq, cnt
            else:
                n = max(len(self.step_sq), len(sq))  # ragged lengths: pad (each batch has one seq, usually the same)
                self.step_sq = np.pad(self.step_sq, (0, n - len(self.step_sq))) + np.pad(sq, (0, n - len(sq)))
                self.step_count = np.pad(self.step_count, (0, n - len(self.step_count))) + np.pad(cnt, (0, n - len(cnt)))

    def result(self) -> dict[str, Any]:
        n = max(1, self.count)
        rmse = math.sqrt(self.sum_sq / n)
        ref_norm, cand_norm = math.sqrt(self.ref_sq), math.sqrt(self.cand_sq)
        diff_norm = math.sqrt(self.sum_sq)
        rel = 0.0 if diff_norm == 0.0 else diff_norm / max(ref_norm, NORM_FLOOR)
        if ref_norm == 0.0 and cand_norm == 0.0:
            cos = 1.0
        elif ref_norm == 0.0 or cand_norm == 0.0:
            cos = 0.0
        else:
            cos = max(-1.0, min(1.0, self.dot / (ref_norm * cand_norm)))
        if self.step_sq is not None:
            per_step = [float(math.sqrt(s / max(1, k))) for s, k in zip(self.step_sq, self.step_count)]
        else:
            per_step = [rmse]
        return {"max_abs": self.max_abs, "mean_abs": self.sum_abs / n, "rmse": rmse, "rel_l2": rel,
                "cosine": cos, "per_step_rmse": per_step}


def output_metrics(reference: np.ndarray, candidate: np.ndarray, *, time_axis: int | None = None) -> dict[str, Any]:
    """All drift metrics for one output (whole arrays at once)."""
    acc = DriftAccumulator(time_axis)
    acc.update(reference, candidate)
    return acc.result()


def per_step_summary(per_step: list[float]) -> dict[str, Any]:
    """first / last / max step rmse and where the max is (for reports)."""
    if not per_step:
        return {}
    arr = np.asarray(per_step)
    worst = int(np.argmax(arr))
    return {"steps": len(per_step), "first": float(arr[0]), "last": float(arr[-1]), "max": float(arr[worst]),
            "max_step": worst, "growth": float(arr[-1] / arr[0]) if arr[0] > 0 else None}


def worst_of(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst case over several metric dicts (max for errors, min for cosine); per-step lists elementwise max."""
    if not metrics:
        return {}
    out: dict[str, Any] = {}
    for key in metrics[0]:
        vals = [m[key] for m in metrics if key in m]
        if key == "per_step_rmse":
            n = max(len(v) for v in vals)
            out[key] = [max(v[i] for v in vals if i < len(v)) for i in range(n)]
        elif key in HIGHER_IS_BETTER:
            out[key] = min(vals)
        else:
            out[key] = max(vals)
    return out


# --------------------------------------------------------------------------------------- task metrics


def infer_task(labels: np.ndarray | None, output_shape: tuple | list | None = None) -> str | None:
    """``classification`` for integer labels with one entry per sample and an output of >= 2 logits,
    ``regression`` for other labels, None without labels."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    last = output_shape[-1] if output_shape else None
    if labels.dtype.kind in "iub" and (labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)) \
            and isinstance(last, int) and last >= 2:
        return "classification"
    return "regression"


def _as_targets(labels: np.ndarray, out: np.ndarray) -> np.ndarray:
    lab = _f64(labels)
    if lab.shape == out.shape:
        return lab
    if lab.size == out.size:
        return lab.reshape(out.shape)
    raise ValueError(f"labels have shape {list(lab.shape)}, the output has {list(out.shape)}: "
                     "they must hold the same number of values per sample")


def regression_metrics(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    r, c = _f64(reference), _f64(candidate)
    t = _as_targets(labels, r)
    mse_c, mse_r = float(np.mean((c - t) ** 2)), float(np.mean((r - t) ** 2))
    mae_c, mae_r = float(np.mean(np.abs(c - t))), float(np.mean(np.abs(r - t)))
    return {"mse": mse_c, "mae": mae_c, "reference_mse": mse_r, "reference_mae": mae_r,
            "mse_delta": mse_c - mse_r, "mae_delta": mae_c - mae_r}


def classification_metrics(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Accuracy of both (with labels), its delta, and argmax agreement (always)."""
    r, c = np.asarray(reference), np.asarray(candidate)
    pr, pc = np.argmax(r, axis=-1), np.argmax(c, axis=-1)
    out: dict[str, float] = {"agreement": float(np.mean(pr == pc)) if pr.size else 1.0}
    if labels is not None:
        lab = np.asarray(labels).reshape(pr.shape)
        acc_c, acc_r = float(np.mean(pc == lab)), float(np.mean(pr == lab))
        out = {"accuracy": acc_c, "reference_accuracy": acc_r, "accuracy_delta": acc_c - acc_r, **out}
    return out


def task_metrics(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None, *,
                 task: str | None = None) -> dict[str, Any]:
    """Task metrics for the task output; ``task`` None -> inferred from the labels and the output's shape."""
    kind = task or infer_task(labels, np.shape(reference))
    if kind == "classification":
        return {"kind": kind, **classification_metrics(reference, candidate, labels)}
    if kind == "regression":
        if labels is None:
            return {}
        return {"kind": kind, **regression_metrics(reference, candidate, labels)}
    return {}


def badness(metric: str, value: float) -> float:
    """A lower-is-better view of any metric (1 - value for cosine/accuracy/agreement)."""
    return 1.0 - value if metric in HIGHER_IS_BETTER else value
