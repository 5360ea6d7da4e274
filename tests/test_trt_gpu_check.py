"""scripts/gpu-check.sh's logic, without a GPU: stub `torch`, `tensorrt` and `onnxruntime` modules on PYTHONPATH
stand for the machines it meets (no torch / a CPU torch / torch on a GPU; TensorRT or not; onnxruntime with or
without a working CUDA provider), and a stub pytest (GPU_CHECK_PYTEST) records what the script runs and passes or
fails on request. One line per backend; exit 1 only when a backend that is present fails (issue 21.6)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TORCH = {
    "gpu": """
        __version__ = "2.13.0+cu130"
        class version:
            cuda = "13.0"
        class _Props:
            name, major, minor = "NVIDIA H100", 9, 0
        class cuda:
            is_available = staticmethod(lambda: True)
            get_device_properties = staticmethod(lambda i: _Props())
    """,
    "cpu": """
        __version__ = "2.13.0+cpu"
        class version:
            cuda = None
        class cuda:
            is_available = staticmethod(lambda: False)
    """,
    "absent": 'raise ImportError("No module named \'torch\'")',
}
TENSORRT = {"present": '__version__ = "10.3.0"', "absent": 'raise ImportError("No module named \'tensorrt\'")'}
ORT = {
    "cpu": """
        __version__ = "1.32.0"
        get_available_providers = lambda: ["CPUExecutionProvider"]
    """,
    "cuda": """
        import numpy as np, onnx
        from onnx import numpy_helper
        __version__ = "1.32.0"
        OFF = {off}
        get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
        class InferenceSession:
            def __init__(self, model, providers):
                self.w = numpy_helper.to_array(onnx.load_from_string(model).graph.initializer[0])
            def get_providers(self):
                return ["CUDAExecutionProvider", "CPUExecutionProvider"]
            def run(self, names, feeds):
                return [feeds["x"] @ self.w + OFF]
    """,
}
STUB_PYTEST = """
import os, sys
marker = sys.argv[sys.argv.index("-m") + 1]
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if marker in os.environ.get("STUB_FAIL", "").split(","):
    print("FAILED tests/test_x.py::test_y - AssertionError")
    print("1 failed, 4 passed in 1.00s")
    sys.exit(1)
print("5 passed in 1.00s")
"""


def _write(path: Path, text: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "__init__.py").write_text(textwrap.dedent(text))


def _check(tmp_path, torch="absent", tensorrt="absent", ort="cpu", ort_off=0.0, fail="", args=()):
    stubs = tmp_path / "stubs"
    _write(stubs / "torch", TORCH[torch])
    _write(stubs / "tensorrt", TENSORRT[tensorrt])
    _write(stubs / "onnxruntime", ORT[ort].replace("{off}", f"float('{ort_off}')"))
    (tmp_path / "stub_pytest.py").write_text(STUB_PYTEST)
    log = tmp_path / "pytest.log"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(stubs), "STUB_LOG": str(log), "STUB_FAIL": fail,
           "GPU_CHECK_PYTEST": f"{sys.executable} {tmp_path / 'stub_pytest.py'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=300)
    ran = log.read_text().splitlines() if log.exists() else []
    lines = {ln.split(":")[0]: ln for ln in proc.stdout.splitlines() if ln.split(":")[0] in
             ("torch CUDA", "onnxruntime CUDA", "TensorRT", "gpu-check")}
    return proc, lines, ran


def test_a_machine_without_anything_says_why_per_backend_and_runs_nothing(tmp_path):
    proc, lines, ran = _check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines["torch CUDA"] == "torch CUDA: skipped: no torch (ImportError: No module named 'torch')"
    assert lines["onnxruntime CUDA"].startswith("onnxruntime CUDA: skipped: not installed (onnxruntime 1.32.0 has no "
                                                "CUDAExecutionProvider")
    assert lines["TensorRT"].startswith("TensorRT: skipped: not installed (ImportError")
    assert "nothing to check here" in lines["gpu-check"] and ran == []


def test_a_cpu_torch_is_no_gpu_not_a_failure(tmp_path):
    proc, lines, ran = _check(tmp_path, torch="cpu")
    assert proc.returncode == 0 and ran == []
    assert lines["torch CUDA"] == "torch CUDA: skipped: no GPU: torch 2.13.0+cpu is a CPU build"


def test_the_jetson_image_without_torch_runs_the_tensorrt_tests(tmp_path):
    proc, lines, ran = _check(tmp_path, torch="absent", tensorrt="present")
    assert proc.returncode == 0, proc.stdout
    assert len(ran) == 1 and "-m trt" in ran[0]
    assert lines["TensorRT"] == "TensorRT: PASS: 5 passed in 1.00s on TensorRT 10.3.0"
    assert lines["torch CUDA"].startswith("torch CUDA: skipped: no torch")
    assert lines["gpu-check"].startswith("gpu-check: PASS")


def test_every_present_backend_runs_and_a_failing_one_fails_the_check(tmp_path):
    proc, lines, ran = _check(tmp_path, torch="gpu", tensorrt="present", ort="cuda", fail="trt")
    assert proc.returncode == 1
    assert [r.split(" -m ")[1].split()[0] for r in ran] == ["gpu", "trt"]
    assert lines["torch CUDA"] == ("torch CUDA: PASS: 5 passed in 1.00s on NVIDIA H100 (compute 9.0), torch "
                                   "2.13.0+cu130 (CUDA 13.0)")
    assert lines["onnxruntime CUDA"].startswith("onnxruntime CUDA: PASS: onnxruntime 1.32.0: a MatMul on the CUDA "
                                                "provider matches numpy")
    assert lines["TensorRT"] == "TensorRT: FAIL: 1 failed, 4 passed in 1.00s on TensorRT 10.3.0"
    assert "FAILED tests/test_x.py::test_y" in proc.stdout          # the failing test is shown
    assert lines["gpu-check"].startswith("gpu-check: FAIL")


@pytest.mark.parametrize("off", [0.5, float("nan")])
def test_a_wrong_onnxruntime_cuda_result_fails(tmp_path, off):
    proc, lines, _ = _check(tmp_path, ort="cuda", ort_off=off)
    assert proc.returncode == 1
    assert lines["onnxruntime CUDA"].startswith("onnxruntime CUDA: FAIL: a MatMul on the CUDA provider is off by")


def test_extra_arguments_reach_pytest(tmp_path):
    proc, _, ran = _check(tmp_path, torch="gpu", tensorrt="present", args=("-k", "backend"))
    assert proc.returncode == 0 and len(ran) == 2
    assert all(r.startswith("tests -m ") and r.endswith("-q -rs -p no:cacheprovider -k backend") for r in ran)


def test_a_python_that_cannot_run_is_a_failure_not_a_skip(tmp_path):
    """The probe itself failing (a broken interpreter) fails the check; it is not 'nothing to check'."""
    stub = tmp_path / "python"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and "torch CUDA: FAIL" in proc.stdout and "TensorRT: FAIL" in proc.stdout
