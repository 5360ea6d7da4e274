"""Baseline JSON files: a validate --report baseline through load_baseline and baseline_gates, a bench
--report baseline through load_baseline, precheck_baseline and compare_reports; arbitrary JSON, real reports
with parts replaced, and mutated bytes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import json_values, mutated, only_ours, replaced_subtrees, scratch

VALIDATE_REPORT = {
    "schema": "edgelstm.validate/1", "reference": "m.onnx", "candidate": "m.int8.onnx", "samples": 8, "passed": True,
    "outputs": {"y": {"max_abs": 0.01, "mean_abs": 0.001, "rmse": 0.002, "rel_l2": 0.003, "cosine": 0.9999,
                      "per_step_rmse": [0.001, 0.002]}},
    "task": {"kind": "regression", "output": "y", "mse": 0.1, "mse_delta": 0.001, "accuracy": 0.9, "agreement": 1.0},
    "streaming": {"outputs": {"y": {"max_abs": 1e-6, "rel_l2": 1e-6}}},
    "gates": [{"metric": "rel_l2", "output": "y", "limit": 0.01, "value": 0.003, "passed": True}],
}

DEVICE = {"cpu": {"model": "Test CPU", "isa": "x86-avx2", "logical_cores": 2}, "gpu": None, "jetson": None,
          "machine": "x86_64"}
ROW = {"artifact": "m.onnx", "sha256": "a" * 64, "parent_sha256": None, "backend": "onnxruntime", "precision": "fp32",
       "mode": "window", "batch": 1, "seq": 4, "threads": None, "iters": 2, "clock": "wall",
       "latency_ms": {"p50": 1.0, "p90": 1.1, "p99": 1.2, "mean": 1.0, "min": 0.9}, "throughput_seq_per_s": 1000.0}
BENCH_REPORT = {"schema": "edgelstm.bench/1", "device": DEVICE, "results": [ROW]}


def _validate_baseline(tmp_path_factory, text: bytes) -> None:
    from edgelstm.validation.gates import baseline_gates, load_baseline

    path = scratch(tmp_path_factory, "baseline") / "old.json"
    path.write_bytes(text)
    base = only_ours(load_baseline, path)
    if isinstance(base, dict):
        only_ours(baseline_gates, base, VALIDATE_REPORT)


def _bench_baseline(tmp_path_factory, text: bytes) -> None:
    from edgelstm.latency.regression import compare_reports, load_baseline, precheck_baseline

    path = scratch(tmp_path_factory, "baseline") / "bench.json"
    path.write_bytes(text)
    base = only_ours(load_baseline, path)
    if isinstance(base, dict):
        only_ours(precheck_baseline, base, DEVICE, [{"artifact": "m.onnx", "sha256": "a" * 64, "parent_sha256": None}])
        only_ours(compare_reports, BENCH_REPORT, base, remeasure=lambda row: dict(ROW["latency_ms"]), pause_s=0)


@given(json_values())
def test_arbitrary_json(tmp_path_factory, value):
    text = json.dumps(value).encode()
    _validate_baseline(tmp_path_factory, text)
    _bench_baseline(tmp_path_factory, text)


@given(st.data())
def test_validate_report_with_replaced_parts(tmp_path_factory, data):
    _validate_baseline(tmp_path_factory, json.dumps(data.draw(replaced_subtrees(VALIDATE_REPORT))).encode())


@given(st.data())
def test_bench_report_with_replaced_parts(tmp_path_factory, data):
    _bench_baseline(tmp_path_factory, json.dumps(data.draw(replaced_subtrees(BENCH_REPORT))).encode())


@given(mutated(json.dumps(VALIDATE_REPORT).encode()), mutated(json.dumps(BENCH_REPORT).encode()))
def test_mutated_bytes(tmp_path_factory, validate_text, bench_text):
    _validate_baseline(tmp_path_factory, validate_text)
    _bench_baseline(tmp_path_factory, bench_text)
