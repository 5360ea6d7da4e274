"""trtexec-style bench options for GPU backends (TensorRT engines, onnxruntime's CUDA provider), after NVIDIA's
trtexec (samples/common/sampleOptions.cpp, sampleInference.cpp in NVIDIA/TensorRT):

| option | trtexec | what it does here |
|---|---|---|
| ``--cuda-graph`` | ``--useCudaGraph`` | TensorRT: capture the enqueue once per shape and replay it; onnxruntime CUDA: the provider's ``enable_cuda_graph`` with inputs/outputs bound to fixed device buffers |
| ``--shapes x:1x60x1,h0:1x1x64`` | ``--shapes`` | the shape of every named input (the others from --batch/--seq); a row's batch and seq come from the data input's shape |
| ``--split-transfers`` | ``--noDataTransfers`` / the H2D, GPU compute, D2H lines of its report | host-to-device, compute and device-to-host timed apart (CUDA events around each for TensorRT; onnxruntime: IO binding, host clock) and the host latency of all three |
| ``--spin-wait`` | spin wait (its default; ``--noSpinWait``) | wait for the GPU by polling the event (cudaEventQuery) instead of blocking in cudaEventSynchronize |
| ``--streams N`` | ``--infStreams`` | N execution contexts, each on its own stream and buffers, enqueued together: throughput |
| ``--profile-layers`` | ``--dumpProfile --separateProfileRun`` | per-layer times from TensorRT's IProfiler in a separate run (``enqueue_emits_profile = False`` and ``report_to_profiler()`` after each enqueue, as trtexec) |
| ``--min-time S`` | ``--duration`` | time each row for at least S seconds (an existing option) |

`DeviceOptions` carries them into the bencher; `check_device_options` refuses (exit 2) what a backend cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from edgelstm.errors import BadInput, opt

GPU_BACKENDS = ("tensorrt", "onnxruntime", "torch")


@dataclass(frozen=True)
class DeviceOptions:
    cuda_graph: bool = False
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    split_transfers: bool = False
    spin_wait: bool = False
    streams: int = 1
    profile_layers: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.streams, bool) or not isinstance(self.streams, int) or self.streams < 1:
            raise BadInput(f"{opt('streams')} must be an integer >= 1, got {self.streams!r}")

    @property
    def any(self) -> bool:
        return self != DeviceOptions()

    def to_dict(self) -> dict[str, Any]:
        return {"cuda_graph": self.cuda_graph, "shapes": {k: list(v) for k, v in self.shapes.items()},
                "split_transfers": self.split_transfers, "spin_wait": self.spin_wait, "streams": self.streams,
                "profile_layers": self.profile_layers}


def parse_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """``x:1x60x1,h0:1x1x64`` (trtexec's spelling; ``*`` also separates dims) -> {name: dims}."""
    out: dict[str, tuple[int, ...]] = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, sep, dims = part.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.replace("*", "x").split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 1 for d in shape):
            raise BadInput(f"{opt('shapes')} takes NAME:DIMS pairs such as x:1x60x1,h0:1x1x64 (positive sizes), "
                           f"got {part!r}")
        if name in out:
            raise BadInput(f"{opt('shapes')} names {name!r} twice")
        out[name] = shape
    return out


def check_device_options(options: DeviceOptions, backend: str, device: str, input_names: list[str]) -> None:
    """BadInput (one line) for an option this backend/device cannot honour, or a shape for an unknown input."""
    unknown = sorted(set(options.shapes) - set(input_names))
    if unknown:
        raise BadInput(f"{opt('shapes')} names {', '.join(repr(u) for u in unknown)}, which the artifact does not take "
                       f"(inputs: {', '.join(input_names)})")
    gpu = backend == "tensorrt" or device.startswith("cuda")
    wants = {"cuda_graph": options.cuda_graph, "split_transfers": options.split_transfers,
             "spin_wait": options.spin_wait, "streams": options.streams > 1, "profile_layers": options.profile_layers}
    asked = [k for k, v in wants.items() if v]
    if asked and not gpu:
        raise BadInput(f"{', '.join(opt(k) for k in asked)} time a GPU: use a TensorRT engine or {opt('device')} cuda")
    only_trt = [k for k in ("streams", "profile_layers", "spin_wait") if wants[k] and backend != "tensorrt"]
    if only_trt:
        raise BadInput(f"{', '.join(opt(k) for k in only_trt)} apply to TensorRT engines (execution contexts, "
                       f"IProfiler, CUDA events); {backend} on {device} has none of these")
    if options.cuda_graph and options.profile_layers:
        raise BadInput(f"{opt('profile_layers')} runs without CUDA graphs (a profiled enqueue is not captured); time "
                       f"with {opt('cuda_graph')} and profile in another run")


def feed_shape(options: DeviceOptions, name: str, rank: int) -> tuple[int, ...] | None:
    """The --shapes shape of an input (rank-checked), or None when it is not given."""
    shape = options.shapes.get(name)
    if shape is not None and len(shape) != rank:
        raise BadInput(f"{opt('shapes')} gives {name!r} {len(shape)} dims ({'x'.join(map(str, shape))}); it has {rank}")
    return shape


__all__ = ["DeviceOptions", "parse_shapes", "check_device_options", "feed_shape"]
