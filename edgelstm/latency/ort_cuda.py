"""onnxruntime's CUDA provider, trtexec-style (trt_options.py): CUDA graphs and the host-to-device / compute /
device-to-host split, through IO binding with every input and output on fixed device buffers (OrtValues).

- CUDA graphs: the provider option ``enable_cuda_graph`` (onnxruntime's CUDA EP docs; the same key as
  onnxruntime.transformers.io_binding_helper.CudaSession.get_cuda_provider_options). onnxruntime captures the
  first run and replays it, so the inputs and outputs must stay at the same device addresses: inputs are OrtValues
  on the GPU refreshed with ``update_inplace``, outputs OrtValues allocated once with
  ``ortvalue_from_shape_and_type`` and bound with ``bind_ortvalue_output``.
- The split: ``update_inplace`` (H2D), ``run_with_iobinding`` + ``synchronize_outputs`` (compute),
  ``copy_outputs_to_cpu`` (D2H), each on the host clock (onnxruntime exposes no CUDA events to Python).

The same code runs on the CPU provider (device "cpu"), which is how it is tested without a GPU.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from edgelstm.latency.adapters import FastPath, cast_ort_feeds, ort_device


def cuda_providers(device_id: int = 0, *, cuda_graph: bool = False) -> list[Any]:
    """The provider list for a session on cuda:``device_id`` (CPU fallback listed, refused later if it is used)."""
    options = {"device_id": str(int(device_id))}
    if cuda_graph:
        options["enable_cuda_graph"] = "1"
    return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]


class FixedBinding:
    """Every input and output of a session bound to an OrtValue that stays at one device address."""

    def __init__(self, session: Any, feeds: Mapping[str, np.ndarray]):
        import onnxruntime as ort

        self.session = session
        self.device, self.device_id = ort_device(session)
        self.host = cast_ort_feeds(session, feeds)
        self.binding = session.io_binding()
        self.inputs = {n: ort.OrtValue.ortvalue_from_numpy(a, self.device, self.device_id) for n, a in self.host.items()}
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for out in session.get_outputs():     # one run to learn the output shapes, then fixed output buffers
            self.binding.bind_output(out.name, self.device, self.device_id)
        session.run_with_iobinding(self.binding)
        shapes = [(o.name, v.shape(), v.numpy().dtype) for o, v in
                  zip(session.get_outputs(), self.binding.get_outputs())]
        self.binding.clear_binding_outputs()
        self.outputs = {n: ort.OrtValue.ortvalue_from_shape_and_type(list(s), dt, self.device, self.device_id)
                        for n, s, dt in shapes}
        for name, value in self.outputs.items():
            self.binding.bind_ortvalue_output(name, value)

    def upload(self) -> None:
        for name, value in self.inputs.items():
            value.update_inplace(self.host[name])

    def compute(self) -> None:
        self.session.run_with_iobinding(self.binding)
        self.binding.synchronize_outputs()

    def download(self) -> list[np.ndarray]:
        return self.binding.copy_outputs_to_cpu()


def graph_path(session: Any, feeds: Mapping[str, np.ndarray]) -> FastPath:
    """The timed call for a session made with ``enable_cuda_graph``: fixed buffers, one run per call."""
    fixed = FixedBinding(session, feeds)
    return FastPath(f"ort-iobinding-{fixed.device}-fixed", fixed.compute)


def split_transfers(session: Any, feeds: Mapping[str, np.ndarray], iters: int, warmup: int = 5) -> dict[str, Any]:
    """H2D / compute / D2H / host latency per iteration (milliseconds on the host clock)."""
    from edgelstm.latency.trt_timing import _stats

    fixed = FixedBinding(session, feeds)
    parts: dict[str, list[float]] = {"h2d": [], "compute": [], "d2h": [], "host_latency": []}
    for i in range(max(0, warmup) + max(1, iters)):
        t0 = time.perf_counter()
        fixed.upload()
        fixed.binding.synchronize_inputs()
        t1 = time.perf_counter()
        fixed.compute()
        t2 = time.perf_counter()
        fixed.download()
        t3 = time.perf_counter()
        if i >= warmup:
            for key, (a, b) in zip(("h2d", "compute", "d2h", "host_latency"), ((t0, t1), (t1, t2), (t2, t3), (t0, t3))):
                parts[key].append((b - a) * 1e3)
    return {key: _stats(v) for key, v in parts.items()} | {"clock": "wall", "device": fixed.device}


__all__ = ["cuda_providers", "FixedBinding", "graph_path", "split_transfers"]
