"""Fast timing paths for the edgelstm runners, so that benchmarks time the model and not numpy
conversions: pre-made (device) tensors for torch, IO binding for onnxruntime. A runner that implements
`bind(feeds)` (see harness.py) is used as is; any other runner falls back to `run(feeds)`.

Torch on CUDA: CUDA-event timing, optional FP16 autocast and CUDA graphs (the graph is captured once on
static input buffers and replayed). That code path needs a GPU and is not exercised on CPU-only machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.errors import BackendMissing, BadInput, opt
from edgelstm.options import Backend
from edgelstm.runners.batch_parallel import BatchParallelRunner
from edgelstm.runners.contract import as_runner
from edgelstm.runners.onnxruntime_runner import ort_feed_dtype  # noqa: F401 - one mapping for every path


@dataclass
class FastPath:
    name: str                                   # which path: "bind", "ort-iobinding", "torch-eager", "run", ...
    call: Callable[[], Any]                     # one inference, inputs already staged
    sync: Callable[[], Any] | None = None       # called after each timed call (device synchronisation)
    timed_run: Callable[[Any, int], list[float]] | None = None  # device-side timing (ms per iteration)
    timer: str = "wall"
    copies_included: bool = False               # the call moves inputs/outputs (runner.run: numpy in and out)


def fast_path(runner: Any, feeds: Mapping[str, np.ndarray], *, amp: bool = False,
              cuda_graph: bool = False) -> FastPath:
    """The fastest way to call a runner (edgelstm.runners.base): its own binding, the onnxruntime session with
    IO binding, the torch module on staged tensors, else ``run``; a batch-parallel runner: each worker's fastest
    path on its shard, the shards at once."""
    runner = as_runner(runner)
    if isinstance(runner, BatchParallelRunner):
        paths = [fast_path(w, shard) for w, shard in zip(runner.workers, runner.split(feeds))]
        calls = [p.call for p in paths]
        return FastPath(f"batch-parallel:{paths[0].name}", lambda: runner.run_each(calls),
                        copies_included=any(p.copies_included for p in paths))
    if callable(runner.bind):
        sync = runner.sync
        return FastPath("bind", runner.bind(feeds), sync if callable(sync) else None,
                        copies_included=bool(runner.copies_included))
    if runner.backend == Backend.onnxruntime and runner.session is not None:
        return ort_path(runner.session, feeds)
    if runner.backend == Backend.torch and runner.module is not None:
        return torch_path(runner.module, feeds, device=str(runner.device), amp=amp,
                          cuda_graph=cuda_graph, names=runner.input_order)
    if amp or cuda_graph:
        raise BadInput("autocast / CUDA graphs apply to the torch backend on CUDA only")
    return FastPath("run", lambda: runner.run(feeds), copies_included=True)


# ----------------------------------------------------------------------------------------- onnxruntime




def cast_ort_feeds(session, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {i.name: np.ascontiguousarray(feeds[i.name], dtype=ort_feed_dtype(i.type))
            for i in session.get_inputs() if i.name in feeds}


def ort_device(session) -> tuple[str, int]:
    providers = session.get_providers()
    if providers and providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        return "cuda", 0
    return "cpu", 0


def ort_path(session, feeds: Mapping[str, np.ndarray]) -> FastPath:
    """IO binding: inputs staged once (on the GPU for the CUDA provider), outputs bound by name."""
    import onnxruntime as ort

    cast = cast_ort_feeds(session, feeds)
    device, device_id = ort_device(session)
    binding = session.io_binding()
    keep: list[Any] = []
    for name, arr in cast.items():
        if device == "cpu":
            binding.bind_cpu_input(name, arr)
            keep.append(arr)
        else:
            value = ort.OrtValue.ortvalue_from_numpy(arr, device, device_id)
            binding.bind_ortvalue_input(name, value)
            keep.append(value)
    for out in session.get_outputs():
        binding.bind_output(out.name, device, device_id)

    def call(_binding=binding, _keep=keep):
        session.run_with_iobinding(_binding)

    return FastPath("ort-iobinding" + ("-cuda" if device != "cpu" else ""), call)


# ----------------------------------------------------------------------------------------------- torch


def _torch():
    from edgelstm.errors import require_torch

    return require_torch()


def torch_path(module: Any, feeds: Mapping[str, np.ndarray], *, device: str = "cpu", amp: bool = False,
               cuda_graph: bool = False, names: list[str] | None = None) -> FastPath:
    torch = _torch()
    on_cuda = device.startswith("cuda")
    if (amp or cuda_graph) and not on_cuda:
        raise BadInput(f"autocast FP16 and CUDA graphs need {opt('device')} cuda")
    if on_cuda and not torch.cuda.is_available():
        raise BackendMissing("torch CUDA was asked for but no CUDA device is available",
                             hint="install a CUDA build of torch on a GPU machine")
    def tensor(n: str):  # floats as float32; token ids and lengths keep their integer type (lengths on the CPU)
        a = np.asarray(feeds[n])
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32 if a.dtype.kind == "f" else a.dtype))
        return t if n == "lengths" else t.to(device)

    inputs = [tensor(n) for n in (names or _torch_input_names(feeds))]
    if on_cuda:
        for m in module.modules():
            if isinstance(m, torch.nn.RNNBase):
                m.flatten_parameters()

    def eager():
        with torch.inference_mode():
            if amp:
                with torch.autocast("cuda", dtype=torch.float16):
                    return module(*inputs)
            return module(*inputs)

    if not on_cuda:
        return FastPath("torch-eager", eager)
    call = eager
    name = "torch-cuda" + ("-amp" if amp else "")
    if cuda_graph:
        call = _capture_cuda_graph(module, inputs, amp)
        name += "-graph"
    return FastPath(name, call, sync=torch.cuda.synchronize, timed_run=_cuda_event_timer(call), timer="cuda-event")


def _torch_input_names(feeds: Mapping[str, np.ndarray]) -> list[str]:
    order = ["x", "h0", "c0"]
    return [n for n in order if n in feeds] + [n for n in feeds if n not in order]


def _capture_cuda_graph(module: Any, inputs: list[Any], amp: bool) -> Callable[[], Any]:
    """Capture one forward pass on static input buffers; replaying it re-runs the model on whatever the
    buffers hold. Raises BadInput with the reason when the model cannot be captured."""
    torch = _torch()

    def forward():
        with torch.no_grad():
            if amp:
                with torch.autocast("cuda", dtype=torch.float16, cache_enabled=False):
                    return module(*inputs)
            return module(*inputs)

    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up on a side stream: cuDNN picks its algorithms, workspaces get cached
                forward()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = forward()
        torch.cuda.synchronize()
    except Exception as exc:  # noqa: BLE001 - capture failures are reported, not fatal
        raise BadInput(f"CUDA graph capture failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None

    def replay(_graph=graph, _out=static_out):
        _graph.replay()
        return _out

    return replay


def _cuda_event_timer(call: Callable[[], Any]) -> Callable[[Any, int], list[float]]:
    torch = _torch()

    def timed_run(_feeds: Any, iters: int) -> list[float]:
        out = []
        for _ in range(int(iters)):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            out.append(float(start.elapsed_time(end)))
        return out

    return timed_run
