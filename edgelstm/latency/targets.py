"""Resolving a bench target before any timing (where the file is, which backend runs it, which variants it may
take) and the facts a row records about the runner that timed it (CUDA graph replayed, onnxruntime provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.artifacts.artifact import artifact_kind
from edgelstm.errors import BadInput
from edgelstm.latency.preflight import check_backend
from edgelstm.options import Backend
from edgelstm.runners.base import default_backend
from edgelstm.runners.contract import RunnerBase


VARIANTS = {"torch": {"amp", "cuda-graph"}, "onnxruntime": {"cuda-graph", "batch-parallel"},
            "tensorrt": {"cuda-graph"}, "openvino": {"batch-parallel"}}
#: the variants that run on CPUs (the others need CUDA)
CPU_VARIANTS = {"batch-parallel"}


def check_variant(variant: str, backend: str | None, device: str) -> None:
    """A CUDA variant needs CUDA and a backend that has it: torch (autocast, CUDA graphs), TensorRT and onnxruntime
    (CUDA graphs); batch-parallel runs onnxruntime and OpenVINO on the CPU."""
    parts = set(filter(None, variant.split("+")))
    unknown = parts - {"amp", "cuda-graph", "batch-parallel"}
    if unknown:
        raise BadInput(f"unknown variant(s) {sorted(unknown)}; known: amp, cuda-graph, batch-parallel")
    if parts & CPU_VARIANTS and (device != "cpu" or not parts & CPU_VARIANTS <= VARIANTS.get(str(backend), set())):
        raise BadInput(f"variant 'batch-parallel' runs onnxruntime and OpenVINO artifacts on the CPU, not {backend} "
                       f"on {device}")
    cuda = parts - CPU_VARIANTS
    if cuda and (not device.startswith("cuda") or not cuda <= VARIANTS.get(str(backend), set())):
        raise BadInput(f"variant {variant!r} needs CUDA and a backend that has it: torch on CUDA (amp, cuda-graph), "
                       f"onnxruntime on CUDA or tensorrt (cuda-graph), not {backend} on {device}")


def graph_facts(runner: RunnerBase, asked: bool) -> dict[str, Any]:
    """Whether a TensorRT row asked for CUDA graphs really replayed one (a failed capture falls back to plain
    enqueues and says why): a row must not claim a graph it did not time."""
    if not asked or runner.backend != Backend.tensorrt:
        return {}
    return {"cuda_graph_used": bool(runner.use_graph),
            **({"cuda_graph_error": runner.graph_error} if runner.graph_error else {})}


def active_provider(runner: RunnerBase) -> str | None:
    """The onnxruntime execution provider that really runs a runner's session (None for other runners)."""
    if runner.backend != Backend.onnxruntime or runner.session is None:
        return None
    try:
        providers = runner.session.get_providers()
    except Exception:  # noqa: BLE001 - a side fact; never fail a row over it
        return None
    return str(providers[0]) if providers else None


def artifact_path(artifact: Any) -> Path | None:
    """The file a target names (None for a model in memory); a missing file or a directory is BadInput."""
    if not isinstance(artifact, (str, Path)):
        return None
    path = Path(artifact)
    if not path.exists():
        from edgelstm.fileio import not_found

        raise BadInput(not_found("artifact", path))
    if path.is_dir():
        raise BadInput(f"{path} is a directory, not an artifact")
    return path


def target_backend(asked: str | None, path: Path | None) -> str:
    """The backend that runs a target: the one asked for, else the file kind's own; a model in memory runs on
    torch. Checked (known, installed)."""
    backend = check_backend(asked)
    if path is not None:
        return backend or str(check_backend(default_backend(artifact_kind(path)).value))
    backend = backend or Backend.torch.value
    if backend != Backend.torch:
        raise BadInput(f"an in-memory model runs on the torch backend, not {backend}")
    check_backend(Backend.torch.value)
    return backend
