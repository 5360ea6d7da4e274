"""Drift and task metrics against hand-computed values (pure numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgelstm.validation.metrics import (DriftAccumulator, badness, classification_metrics, infer_task, output_metrics,
                              per_step_summary, regression_metrics, task_metrics, worst_of)

R = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
C = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)  # one element off by 1


def test_drift_metrics_hand_computed():
    m = output_metrics(R, C)
    assert m["max_abs"] == 1.0
    assert m["mean_abs"] == pytest.approx(0.25)
    assert m["rmse"] == pytest.approx(0.5)                       # sqrt(1/4)
    assert m["rel_l2"] == pytest.approx(1 / math.sqrt(30))      # ||d|| = 1, ||r|| = sqrt(1+4+9+16)
    assert m["cosine"] == pytest.approx(34 / (math.sqrt(30) * math.sqrt(39)))
    assert m["per_step_rmse"] == [pytest.approx(0.5)]            # no time axis: one step


def test_identical_outputs_are_perfect():
    m = output_metrics(R, R)
    assert m["max_abs"] == m["mean_abs"] == m["rmse"] == m["rel_l2"] == 0.0
    assert m["cosine"] == pytest.approx(1.0)


def test_negative_and_sign_flip():
    m = output_metrics(np.array([1.0, -1.0]), np.array([-1.0, 1.0]))
    assert m["cosine"] == pytest.approx(-1.0)
    assert m["rel_l2"] == pytest.approx(2.0)          # ||(-2, 2)|| / ||(1, -1)||
    assert m["max_abs"] == 2.0 and m["mean_abs"] == 2.0


@pytest.mark.parametrize("ref, cand, rel, cos", [
    ([0.0, 0.0], [0.0, 0.0], 0.0, 1.0),        # both zero: no drift
    ([1.0, 0.0], [0.0, 0.0], 1.0, 0.0),        # candidate zero
])
def test_zero_guards(ref, cand, rel, cos):
    m = output_metrics(np.array(ref), np.array(cand))
    assert m["rel_l2"] == pytest.approx(rel) and m["cosine"] == cos


def test_zero_reference_nonzero_candidate_is_finite_and_huge():
    m = output_metrics(np.zeros(3), np.array([0.0, 0.0, 1e-3]))
    assert math.isfinite(m["rel_l2"]) and m["rel_l2"] > 1e6
    assert m["cosine"] == 0.0


def test_per_step_rmse_over_time_axis():
    r = np.zeros((2, 3, 2))
    c = np.zeros((2, 3, 2))
    c[:, 1, :] = 1.0           # step 1: every element off by 1
    c[0, 2, 0] = 2.0           # step 2: one of four elements off by 2 -> rmse sqrt(4/4) = 1
    m = output_metrics(r, c, time_axis=1)
    assert m["per_step_rmse"] == [pytest.approx(0.0), pytest.approx(1.0), pytest.approx(1.0)]
    s = per_step_summary(m["per_step_rmse"])
    assert s["steps"] == 3 and s["max_step"] == 1 and s["first"] == 0.0 and s["growth"] is None


def test_accumulator_over_batches_equals_whole():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((10, 5, 3))
    c = r + rng.standard_normal(r.shape) * 0.01
    whole = output_metrics(r, c, time_axis=1)
    acc = DriftAccumulator(time_axis=1)
    for i in range(0, 10, 3):
        acc.update(r[i:i + 3], c[i:i + 3])
    parts = acc.result()
    for k in ("max_abs", "mean_abs", "rmse", "rel_l2", "cosine"):
        assert parts[k] == pytest.approx(whole[k], rel=1e-12)
    np.testing.assert_allclose(parts["per_step_rmse"], whole["per_step_rmse"], rtol=1e-12)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        output_metrics(np.zeros((2, 1)), np.zeros((2, 2)))


def test_regression_task_metrics_hand_computed():
    ref, cand, labels = np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]]), np.array([1.0, 1.0])
    m = regression_metrics(ref, cand, labels)
    assert m["mse"] == pytest.approx(2.0) and m["reference_mse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(1.0) and m["reference_mae"] == pytest.approx(0.5)
    assert m["mse_delta"] == pytest.approx(1.5) and m["mae_delta"] == pytest.approx(0.5)


def test_regression_labels_must_fit():
    with pytest.raises(ValueError, match="labels have shape"):
        regression_metrics(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(3))


def test_classification_task_metrics_hand_computed():
    ref = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])    # argmax 0, 1, 0
    cand = np.array([[0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])   # argmax 1, 1, 0
    labels = np.array([0, 1, 1])
    m = classification_metrics(ref, cand, labels)
    assert m["reference_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["accuracy_delta"] == pytest.approx(-1 / 3)
    assert m["agreement"] == pytest.approx(2 / 3)
    assert classification_metrics(ref, cand, None) == {"agreement": pytest.approx(2 / 3)}


def test_infer_task_and_dispatch():
    assert infer_task(None, ("batch", 2)) is None
    assert infer_task(np.array([0, 1]), ("batch", 2)) == "classification"
    assert infer_task(np.array([0, 1]), ("batch", 1)) == "regression"       # one output: a regressor
    assert infer_task(np.array([0.5, 1.0]), ("batch", 2)) == "regression"
    t = task_metrics(np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]]), np.array([[1.0], [1.0]]))
    assert t["kind"] == "regression" and t["mse"] == pytest.approx(2.0)
    assert task_metrics(np.zeros((2, 1)), np.zeros((2, 1)), None) == {}


def test_worst_of_and_badness():
    a = {"max_abs": 1.0, "cosine": 0.9, "per_step_rmse": [1.0, 0.0]}
    b = {"max_abs": 2.0, "cosine": 0.95, "per_step_rmse": [0.5, 3.0]}
    w = worst_of([a, b])
    assert w == {"max_abs": 2.0, "cosine": 0.9, "per_step_rmse": [1.0, 3.0]}
    assert badness("cosine", 0.99) == pytest.approx(0.01) and badness("rmse", 0.3) == 0.3


def test_a_squeezed_batch_of_one_compares_with_the_kept_axis():
    """torch's squeeze() gives a 0-d output at batch 1 where the export keeps [1]: the same numbers compare."""
    from edgelstm.validation.metrics import DriftAccumulator

    acc = DriftAccumulator()
    acc.update(np.array(0.5), np.array([0.5 + 1e-3]))
    assert acc.count == 1 and acc.max_abs == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="shape mismatch"):
        acc.update(np.zeros((2, 3)), np.zeros((3, 2)))
