#!/usr/bin/env python3
"""One backend's state on this machine, as one line for scripts/gpu-check.sh: `STATE detail`.

    python scripts/gpu_probe.py torch        # ok | no-torch | no-gpu | broken
    python scripts/gpu_probe.py onnxruntime  # pass | fail | absent   (runs a small model on the CUDA provider)
    python scripts/gpu_probe.py tensorrt     # ok | absent

Never raises: what went wrong is the detail. Needs nothing beyond what it probes (numpy, onnx for the
onnxruntime check).
"""
from __future__ import annotations

import shutil
import subprocess
import sys


def _gpu_visible() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def torch_state() -> str:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install
        return f"no-torch ({_first_line(exc)})"
    built = getattr(getattr(torch, "version", None), "cuda", None)
    try:
        if not torch.cuda.is_available():
            visible = _gpu_visible()
            why = (f"torch {torch.__version__} is a CPU build" if not built else
                   f"torch {torch.__version__} (CUDA {built}) sees no GPU")
            return f"no-gpu {why}{f'; nvidia-smi sees {visible}' if visible else ''}"
        p = torch.cuda.get_device_properties(0)
        return f"ok {p.name} (compute {p.major}.{p.minor}), torch {torch.__version__} (CUDA {built})"
    except Exception as exc:  # noqa: BLE001
        return f"broken {_first_line(exc)}"


def onnxruntime_state() -> str:
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except Exception as exc:  # noqa: BLE001
        return f"absent ({_first_line(exc)})"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"absent (onnxruntime {ort.__version__} has no CUDAExecutionProvider: onnxruntime-gpu is not installed)"
    try:
        rng = np.random.default_rng(0)
        w = rng.normal(size=(16, 8)).astype(np.float32)
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
                                  initializer=[numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
        if sess.get_providers()[0] != "CUDAExecutionProvider":
            return f"fail the CUDA provider did not start (session runs on {sess.get_providers()})"
        x = rng.normal(size=(4, 16)).astype(np.float32)
        got, want = sess.run(None, {"x": x})[0], x @ w
        err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))
        if not err < 1e-3:
            return f"fail a MatMul on the CUDA provider is off by {err:.2e} (relative)"
        return f"pass onnxruntime {ort.__version__}: a MatMul on the CUDA provider matches numpy ({err:.1e})"
    except Exception as exc:  # noqa: BLE001
        return f"fail {_first_line(exc)}"


def tensorrt_state() -> str:
    try:
        import tensorrt as trt
    except Exception as exc:  # noqa: BLE001
        return f"absent ({_first_line(exc)})"
    return f"ok TensorRT {getattr(trt, '__version__', '?')}"


if __name__ == "__main__":
    probes = {"torch": torch_state, "onnxruntime": onnxruntime_state, "tensorrt": tensorrt_state}
    if len(sys.argv) != 2 or sys.argv[1] not in probes:
        print(f"usage: gpu_probe.py {'|'.join(probes)}", file=sys.stderr)
        sys.exit(2)
    print(probes[sys.argv[1]]())
