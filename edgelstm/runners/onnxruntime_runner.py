"""onnxruntime runner (CPU; CUDA provider when installed), and a crash-safe session probe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from edgelstm.errors import BackendMissing, BadInput
from edgelstm.artifacts.iospec import iospec_from_onnx

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover
        raise BackendMissing("onnxruntime is not installed", hint="pip install onnxruntime") from None
    return ort


def make_session(path: str | Path, *, threads: int | None = None, opt_level: str = "all",
                 providers: list[str] | None = None):
    ort = _ort()
    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    available = ort.get_available_providers()
    if providers:
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendMissing(f"onnxruntime provider(s) {missing} not available (have {available})",
                                 hint="pip install onnxruntime-gpu for CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"onnxruntime cannot load {Path(path).name}: {str(exc).splitlines()[0][:300]}") from None


_PROBE = r"""
import json, sys
import numpy as np, onnxruntime as ort
path, level = sys.argv[1], sys.argv[2]
so = ort.SessionOptions(); so.log_severity_level = 3; so.intra_op_num_threads = 1
so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
feeds = {}
sym = {"batch": 2, "seq": 3}  # the same symbolic dim gets the same size in every input
for i in s.get_inputs():
    shape = [d if isinstance(d, int) and d > 0 else sym.setdefault(d, 2 if n == 0 else 3) if isinstance(d, str)
             else (2 if n == 0 else 3) for n, d in enumerate(i.shape)]
    if i.name in ("h0", "c0") and len(shape) == 3:
        shape[1] = 2
    dt = {"tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
          "tensor(bool)": np.bool_, "tensor(double)": np.float64}.get(i.type, np.float32)
    feeds[i.name] = np.zeros(shape, dt)
s.run(None, feeds)
print(json.dumps({"ok": True}))
"""


def probe_session(path: str | Path, *, opt_level: str = "all", timeout: float = 120.0) -> tuple[bool, str]:
    """Create a session and run it once in a child process: a crashing session cannot take us down.
    Returns (ok, reason)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), OPT_LEVELS[opt_level]],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"onnxruntime session probe timed out after {timeout:.0f}s"
    if proc.returncode == 0:
        return True, "ok"
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    if proc.returncode < 0:
        tail = f"crashed with signal {-proc.returncode}"
    return False, tail[:300]


class OrtRunner:
    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None, opt_level: str | None = None,
                 providers: list[str] | None = None):
        import onnx

        from edgelstm.artifacts.manifest import read_manifest

        self.path = Path(path)
        try:
            model = onnx.load(str(self.path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"{self.path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
        self.manifest = read_manifest(self.path)
        self.io = self.manifest.io if self.manifest and self.manifest.io else iospec_from_onnx(model)
        self.precision = self.manifest.precision if self.manifest else _guess_precision(model)
        if opt_level is None:  # `edgelstm quantize` records the level its crash-safe probe found safe
            opt_level = (self.manifest.details.get("ort_opt_level") if self.manifest else None) or "all"
            if opt_level not in OPT_LEVELS:
                opt_level = "all"
        self.opt_level = opt_level
        self.session = make_session(self.path, threads=threads, opt_level=opt_level, providers=providers)
        self._in_types = {i.name: i.type for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.label = self.path.name

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cast = {}
        for name, arr in feeds.items():
            t = self._in_types.get(name, "tensor(float)")
            cast[name] = np.ascontiguousarray(arr, dtype=np.float16 if "float16" in t else np.float32)
        try:
            outs = self.session.run(None, cast)
        except Exception as exc:  # noqa: BLE001
            shapes = {k: list(v.shape) for k, v in cast.items()}
            raise BadInput(f"onnxruntime failed on {self.path.name} with inputs {shapes}: "
                           f"{str(exc).splitlines()[0][:300]}") from None
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs)}

    def close(self) -> None:
        self.session = None


def _guess_precision(model) -> str:
    types = {i.data_type for i in model.graph.initializer}
    ops = {n.op_type for n in model.graph.node}
    if ops & {"DynamicQuantizeLSTM", "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul"}:
        return "int8"
    if 10 in types and 1 not in types:
        return "fp16"
    return "fp32"
