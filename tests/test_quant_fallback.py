"""Accuracy-aware fallback: keep the most drift-sensitive nodes in float until --max-drift holds, or fail
with exit 1 saying the best drift reached and the budget."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import quant_models as qm
from edgelstm.data import dataset_from_arrays
from edgelstm.converters.quantize.fp16 import Fp16Options
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.converters.quantize.quant_fallback import FallbackOptions, quantize_with_budget
from edgelstm.validation.budget import DriftBudget, drift_of
from edgelstm.errors import BadInput, GateFailed
from edgelstm.artifacts.iospec import iospec_from_onnx
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import Precision


def _data(src, n=24, seq=8, seed=5):
    io = iospec_from_onnx(onnx.load(str(src)))
    f = io.inputs[0].shape[-1]
    x = np.random.default_rng(seed).standard_normal((n, seq, f)).astype(np.float32)
    return dataset_from_arrays({"x": x}, io).batches(8)


def _measure(src, candidate, data) -> float:
    ref = [dict(zip(["y"], qm.run(src, b))) for b in data]
    got = [dict(zip(["y"], qm.run(candidate, b))) for b in data]
    return drift_of(ref, got, "rel_l2")


@pytest.mark.parametrize("text,metric,limit", [("rel_l2=0.01", "rel_l2", 0.01), ("max_abs<=0.5", "max_abs", 0.5),
                                               ("RMSE:1e-3", "rmse", 1e-3), ("mean_abs=0", "mean_abs", 0.0)])
def test_budget_parse(text, metric, limit):
    b = DriftBudget.parse(text)
    assert (b.metric, b.limit) == (metric, limit)


@pytest.mark.parametrize("text", ["cosine=0.9", "rel_l2", "rel_l2=abc", "rel_l2=-1", "rel_l2=nan", "a=1=2"])
def test_budget_parse_rejects(text):
    with pytest.raises(BadInput):
        DriftBudget.parse(text)


def test_loose_budget_keeps_everything_quantized(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "loose.onnx"
    res = quantize_with_budget(src, out, Precision.int8, Int8Options(), DriftBudget("rel_l2", 0.5), _data(src))
    fb = res.details["fallback"]
    assert fb["kept_float"] == [] and fb["drift"] == fb["drift_all_quantized"] <= 0.5
    assert set(fb["candidates"]) == {"/rnn/LSTM", "/head/Gemm"}
    assert res.counts()["int8"] == 2
    assert read_manifest(out).details["quantization"]["fallback"]["budget"] == 0.5


def test_tight_budget_keeps_the_most_sensitive_node_float(tmp_path):
    """bilstm_attention has 4 int8 candidates; a budget between 'all int8' and 'best with one kept float'
    makes the fallback keep nodes in float, re-measure, and stop as soon as the budget holds."""
    src = qm.exported("bilstm_attention", tmp_path)
    data = _data(src)
    full = tmp_path / "full.onnx"
    quantize_int8(src, full)
    drift_all = _measure(src, full, data)
    singles = {}
    for node in ("/rnn/LSTM", "/attn_proj/MatMul", "/attn_score/MatMul", "/head/Gemm"):
        p = tmp_path / f"ex{len(singles)}.onnx"
        quantize_int8(src, p, Int8Options(exclude=(node,)))
        singles[node] = _measure(src, p, data)
    best_node = min(singles, key=singles.get)
    assert singles[best_node] < drift_all
    budget = (singles[best_node] + drift_all) / 2 if singles[best_node] < drift_all * 0.98 else singles[best_node] * 1.001
    out = tmp_path / "fb.onnx"
    res = quantize_with_budget(src, out, Precision.int8, Int8Options(), DriftBudget("rel_l2", budget), data,
                               fallback=FallbackOptions(strategy="leave-one-out"))
    fb = res.details["fallback"]
    assert fb["kept_float"] == [best_node]
    assert fb["drift"] == pytest.approx(singles[best_node], rel=1e-4) and fb["drift"] <= budget
    assert fb["drift_all_quantized"] == pytest.approx(drift_all, rel=1e-4)
    assert set(fb["sensitivity"]) == set(singles)
    row = next(r for r in res.report if r.node == best_node)
    assert row.precision == "fp32" and "accuracy fallback" in row.reason
    assert _measure(src, out, data) == pytest.approx(fb["drift"], rel=1e-4)  # the written model is the measured one


def test_impossible_budget_is_a_gate_failure_and_writes_nothing(tmp_path):
    src = qm.exported("bilstm_attention", tmp_path)
    out = tmp_path / "never.onnx"
    with pytest.raises(GateFailed) as exc:
        quantize_with_budget(src, out, Precision.int8, Int8Options(), DriftBudget("rel_l2", 0.0), _data(src))
    msg = str(exc.value)
    assert exc.value.exit_code == 1
    assert "best drift reached" in msg and "rel_l2 <= 0" in msg
    assert not out.exists() and not (tmp_path / "never.onnx.json").exists()


def test_fp16_budget(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "h.onnx"
    res = quantize_with_budget(src, out, Precision.fp16, Fp16Options(), DriftBudget("max_abs", 0.1), _data(src))
    assert res.precision == Precision.fp16 and res.details["fallback"]["kept_float"] == []
    assert res.details["fallback"]["drift"] < 0.1


def test_budget_needs_data(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    with pytest.raises(BadInput, match="--data"):
        quantize_with_budget(src, tmp_path / "o.onnx", Precision.int8, Int8Options(), DriftBudget("rel_l2", 1), None)
    with pytest.raises(BadInput, match="empty"):
        quantize_with_budget(src, tmp_path / "o.onnx", Precision.int8, Int8Options(), DriftBudget("rel_l2", 1), [])


def test_cli_max_drift(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    np.savez(tmp_path / "val.npz", x=np.random.default_rng(1).standard_normal((16, 8, 1)).astype(np.float32))
    out = tmp_path / "c.onnx"
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "-o", out, "--data", tmp_path / "val.npz",
                               "--max-drift", "rel_l2=0.5", "--json")
    assert code == 0, stderr
    fb = json.loads(stdout)["quantization"]["fallback"]
    assert fb["metric"] == "rel_l2" and fb["samples"] == 16 and fb["kept_float"] == []
    assert "accuracy fallback" in stderr
    code, _, stderr = cli("quantize", src, "-p", "int8", "-o", tmp_path / "d.onnx", "--data", tmp_path / "val.npz",
                          "--max-drift", "rel_l2=0")
    assert code == 1 and "best drift reached" in stderr
    assert not (tmp_path / "d.onnx").exists()


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_localisation_ranks_the_nodes_within_the_search_bound(tmp_path, mode):
    """The default strategy ranks the candidates by one localisation run of the all-quantized model and keeps them
    float in that order (one trial per step, then each kept node is tried quantized again): it meets the same
    budget as leave-one-out, keeps no more nodes float, and its trials stay within the search's bound. Whether it
    needs fewer trials than leave-one-out depends on the ranking: on this model with the portable 7-bit weights it ranks /attn_proj first and takes one
    trial more (9 vs 8); with full 8-bit weights it takes 8 vs 8. The saving over many models and budgets is
    measured in benchmarks/results/fallback_trials.md, not claimed per model here."""
    src = qm.exported("bilstm_attention", tmp_path)
    data = _data(src)
    options = Int8Options(mode=mode, min_calib_samples=8)
    calib = data if mode == "static" else None
    full = tmp_path / "full.onnx"
    quantize_int8(src, full, options, calib=calib)
    budget = DriftBudget("rel_l2", _measure(src, full, data) / 2)
    runs = {}
    for strategy in ("leave-one-out", "localize"):
        res = quantize_with_budget(src, tmp_path / f"{strategy}.onnx", Precision.int8, options, budget, data, calib,
                                   fallback=FallbackOptions(strategy=strategy))
        runs[strategy] = res.details["fallback"]
        assert runs[strategy]["drift"] <= budget.limit
        assert _measure(src, tmp_path / f"{strategy}.onnx", data) == pytest.approx(runs[strategy]["drift"], rel=1e-4)
    loc, loo = runs["localize"], runs["leave-one-out"]
    n, k = len(loc["candidates"]), sum("kept" in step for step in loc["steps"])
    # the search's own bound: the all-quantized run, at most one trial per pending node per step kept (and one
    # last pass), one re-try per kept node after the budget is met
    assert loc["trials"] <= 1 + sum(n - j for j in range(k + 1)) + max(k - 1, 0)
    assert not loc["localization"].get("fell_back")
    assert len(loc["kept_float"]) <= len(loo["kept_float"])
    assert set(loc["localization"]["order"]) == set(loc["candidates"])
    assert loc["localization"]["ranking"][0]["isolated"] > 0 and "localisation-ranked" in loc["strategy"]
    with pytest.raises(BadInput, match="strategy"):
        FallbackOptions(strategy="random")
