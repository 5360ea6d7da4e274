"""The small things of issue 17: a drift baseline of another pair is refused, a passing bench comparison shows
its ratios, doctor speaks in words."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edgelstm.errors import BadInput


# ------------------------------------------------------------------------------------------------ baseline pair


def _baseline(ref="model.onnx", cand="model.fp16.onnx", ref_kind=("onnxruntime", "fp32"),
              cand_kind=("onnxruntime", "fp16")):
    info = lambda kind: dict(zip(("backend", "precision"), kind)) if kind else None  # noqa: E731
    return {"reference": ref, "candidate": cand, "reference_info": info(ref_kind), "candidate_info": info(cand_kind)}


def _runner(backend="onnxruntime", precision="fp32"):
    return SimpleNamespace(backend=backend, precision=precision)


def test_same_pair_in_another_directory_is_silent():
    from edgelstm.validation.baseline_pair import check_baseline_pair

    assert check_baseline_pair(_baseline(), "/pr/model.onnx", _runner(), "/pr/model.fp16.onnx",
                               _runner(precision="fp16")) is None


@pytest.mark.parametrize("ref,cand", [
    (_runner(), _runner(precision="int8-dynamic")),   # an FP16 baseline gating an INT8 candidate
    (_runner("torch"), _runner(precision="fp16")),    # a baseline against ONNX gating a run against torch
])
def test_another_kind_of_pair_is_refused(ref, cand):
    from edgelstm.validation.baseline_pair import check_baseline_pair

    with pytest.raises(BadInput, match="another pair: the baseline compares model.onnx .* with model.fp16.onnx"):
        check_baseline_pair(_baseline(), "model.onnx", ref, "model.x.onnx", cand)


def test_renamed_files_of_the_same_kinds_warn():
    from edgelstm.validation.baseline_pair import check_baseline_pair

    warning = check_baseline_pair(_baseline(), "model.onnx", _runner(), "model-v2.fp16.onnx", _runner(precision="fp16"))
    assert "model-v2.fp16.onnx" in warning and "model.fp16.onnx" in warning and "compared anyway" in warning
    old_report = _baseline(ref_kind=None, cand_kind=None)  # no kinds recorded: names only
    assert check_baseline_pair(old_report, "a.onnx", _runner(), "b.onnx", _runner()) is not None


def test_validate_refuses_a_baseline_of_another_pair(cli, tmp_path, tiny_lstm):
    base = tmp_path / "base.json"
    code, _, stderr = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.onnx, "--synthetic", "8", "--seq", "6",
                          "--report", base)
    assert code == 0, stderr
    code, _, stderr = cli("validate", "-r", tiny_lstm.onnx, "-c", tiny_lstm.onnx, "--synthetic", "8", "--seq", "6",
                          "--baseline", base, "--report", tmp_path / "r.json")
    assert code == 2 and "--baseline is about another pair" in stderr and "m.pt (torch" in stderr
    assert not (tmp_path / "r.json").exists()
    code, _, stderr = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.onnx, "--synthetic", "8", "--seq", "6",
                          "--baseline", base)
    assert code == 0 and "another pair" not in stderr


# ------------------------------------------------------------------------------------------------ bench ratios


def test_a_passing_bench_comparison_prints_its_ratios(cli, tmp_path, tiny_lstm, monkeypatch):
    try:
        from test_bench_regression import VirtualMachine
    except ImportError:
        from tests.test_bench_regression import VirtualMachine  # type: ignore[no-redef]
    VirtualMachine().install(monkeypatch)  # a fake clock: the verdict does not depend on this machine's load
    d = tiny_lstm.copy_to(tmp_path / "arts")
    common = ["--batch", "1,2", "--seq", "20", "--threads", "1", "--warmup", "5", "--iters", "20"]
    code, _, stderr = cli("bench", d / "m.onnx", *common, "--report", tmp_path / "base.json")
    assert code == 0, stderr
    code, stdout, stderr = cli("bench", d / "m.onnx", *common, "--baseline", tmp_path / "base.json", "--json")
    assert code == 0, stderr
    flat = " ".join(stderr.split())
    ratios = sorted(r["ratio"] for r in json.loads(stdout)["regression"]["rows"])
    assert f"2 row(s) within 1.1x: p50 ratios {ratios[0]:.2f}x-{ratios[-1]:.2f}x (slowest" in flat
    assert "against the baseline" in flat and flat.count(" ok ") >= 2  # every row, with its verdict


def test_ratio_range_wording():
    from edgelstm.cli.bench import _ratio_range

    rows = [{"row": "a", "ratio": 0.97, "confirmed_ratio": None}, {"row": "b", "ratio": 1.3, "confirmed_ratio": 1.04}]
    assert _ratio_range(rows) == ": p50 ratios 0.97x-1.04x (slowest b)"  # a re-measured row counts as re-measured
    assert _ratio_range(rows[:1]) == ": p50 ratio 0.97x"
    assert _ratio_range([]) == ""


# ------------------------------------------------------------------------------------------------ doctor


def test_doctor_facts_in_words():
    from edgelstm.cli.doctor import host_rows, tensorrt_rows, words

    assert words(True) == "yes" and words(None) == "none" and words({}) == "none" and words([]) == "none"
    assert words(["avx2", "avx512_vnni"]) == "avx2, avx512_vnni"
    assert words({"name": "NVIDIA A100", "compute_capability": "8.0"}) == "NVIDIA A100, compute 8.0"
    assert words({"strongly_typed_builds": True, "int8_calibrators": False}) == "strongly typed builds"
    assert host_rows({"machine": "x86_64", "arch": "x86_64", "int8_flags": []}) == [
        ["architecture", "x86_64"], ["INT8 instructions", "none"]]
    rows = dict(tensorrt_rows({"installed": False, "version": None, "capabilities": {}, "gpu": None, "jetson": None,
                               "dla_cores": None, "cuda_buffer_backends": ["torch"], "error": "ImportError: x"}))
    assert rows == {"TensorRT": "not installed", "GPU": "none found", "Jetson": "not a Jetson",
                    "CUDA buffers via": "torch", "why not": "ImportError: x"}


def test_doctor_prints_no_python_values(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, _, stderr = cli("doctor")
    assert code == 0
    for raw in ("True", "False", "None", "{}", "['", "int8_flags", "install_hint"):
        assert raw not in stderr, raw
