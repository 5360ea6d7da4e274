"""The runner contract shared by validate, bench and convert's verification.

``Runner`` is what every caller may rely on; ``RunnerBase`` is the class every edgelstm runner derives from: the
optional capabilities (a self-timed loop, zero-copy binding, an onnxruntime session, a torch module, a TensorRT
engine) are declared here with their "absent" value, so callers read them as attributes instead of probing.
An object from elsewhere (a test's stand-in, a user's own runner) enters through ``as_runner``, the one place
that looks at what it has. Runners open their file through ``edgelstm.artifacts.artifact.Artifact.open``;
``edgelstm.runners.base.open_runner`` picks the runner for a path."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput
from edgelstm.options import Backend, BuildPrecision, Precision

#: a runner's precision: a Precision (an OpenVINO IR may be bf16); an engine without a manifest whose precision
#: cannot be told says "unknown", as its reports always have
RunnerPrecision = Precision | BuildPrecision | str


def typed_precision(value: Any, default: RunnerPrecision = Precision.fp32) -> RunnerPrecision:
    """``value`` as a Precision (serialized as the same string), else as the build precision or string it is."""
    if value is None or value == "":
        return default
    for enum in (Precision, BuildPrecision):
        try:
            return enum(value)
        except ValueError:
            pass
    return str(value)


@runtime_checkable
class Runner(Protocol):
    """Runs one artifact. `run` takes float32 numpy feeds named like `io.inputs`, returns outputs by name."""

    io: IOSpec
    backend: str
    precision: RunnerPrecision
    label: str

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class RunnerBase(abc.ABC):
    """What every runner has (``io``, ``backend``, ``precision``, ``label``, ``run``, ``close``) and the optional
    capabilities, each with its absent value."""

    io: IOSpec
    backend: str = ""
    precision: RunnerPrecision = Precision.fp32
    label: str = "model"
    path: Path | None = None
    manifest: Any = None                    # edgelstm.artifacts.manifest.Manifest of the file, when it has one
    device: str = "cpu"
    # timing: a runner that times itself (TensorRT: CUDA events) says with what clock and whether copies count
    timed_run: Callable[..., list[float]] | None = None
    timer: str | None = None
    clock: str | None = None
    copies_included: bool = False
    # zero-copy: inputs staged once, each call one inference (OpenVINO); sync waits for queued work
    bind: Callable[[Mapping[str, np.ndarray]], Callable[[], Any]] | None = None
    sync: Callable[[], Any] | None = None
    # the backend's own handle, for the fastest timing path
    session: Any = None                     # onnxruntime.InferenceSession
    module: Any = None                      # torch module, called positionally with `input_order`
    input_order: list[str] | None = None
    engine: Any = None                      # TensorRT ICudaEngine
    use_graph: bool = False                 # TensorRT: CUDA graph replay, and why a capture failed
    graph_error: str | None = None
    memory_stats: Callable[[], dict[str, Any]] | None = None
    shape_ranges: Any = None                # TensorRT optimization profiles
    profiles: Any = None

    @property
    def timed_with(self) -> str:
        """The timer ``timed_run`` measures with: the runner's own, else CUDA events for TensorRT."""
        return str(self.timer or ("cuda-event" if self.backend == Backend.tensorrt else "runner"))

    @property
    def warnings(self) -> list[str]:
        """What this run computes differently from what edgelstm verified (lengths, levels)."""
        return []

    @property
    def manifest_details(self) -> Mapping[str, Any]:
        """The manifest's details ({} without a manifest)."""
        return (self.manifest.details if self.manifest is not None else None) or {}

    @property
    def target_isa(self) -> str | None:
        """The CPU class an INT8 artifact was quantized for (its manifest), or None."""
        return self.manifest_details.get("target_isa")

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for one batch of named inputs (every runner implements it)."""

    def close(self) -> None:
        pass


#: the optional capabilities and their absent values (what as_runner reads from a foreign object)
_OPTIONAL = {name: RunnerBase.__dict__[name] for name in (
    "backend", "precision", "path", "manifest", "device", "timed_run", "timer", "clock", "copies_included",
    "bind", "sync", "session", "module", "input_order", "engine", "use_graph", "graph_error", "memory_stats",
    "shape_ranges", "profiles")} | {"precision": None}  # a foreign runner that does not say it: unknown


class _Adapted(RunnerBase):
    """A runner from elsewhere seen through the contract: what it lacks reads as absent; what it has is read live."""

    def __init__(self, inner: Any):
        object.__setattr__(self, "inner", inner)

    @property
    def io(self) -> IOSpec:  # type: ignore[override]
        return self.inner.io

    @property
    def label(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "label", None) or type(self.inner).__name__

    @property
    def warnings(self) -> list[str]:
        return list(getattr(self.inner, "warnings", None) or ())

    @property
    def manifest_details(self) -> Mapping[str, Any]:
        manifest = self.manifest
        return (getattr(manifest, "details", None) if manifest is not None else None) or {}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.run(feeds)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:  # anything beyond the contract (step, reset_state, ...)
        return getattr(self.inner, name)


for _name, _absent in _OPTIONAL.items():
    setattr(_Adapted, _name, property(lambda self, n=_name, d=_absent: getattr(self.inner, n, d)))


def as_runner(obj: Any) -> RunnerBase:
    """``obj`` under the runner contract: an edgelstm runner as it is, any other object adapted (what it lacks reads
    as absent; a missing ``run`` or ``io`` fails where it is used)."""
    if isinstance(obj, RunnerBase):
        return obj
    if isinstance(obj, (str, Path)):
        raise BadInput(f"not a runner: {obj} is a path; open it with open_runner")
    return _Adapted(obj)


def is_runner(obj: Any) -> bool:
    """Whether ``obj`` is an open runner (rather than a path or a model to open)."""
    return not isinstance(obj, (str, Path)) and hasattr(obj, "run") and hasattr(obj, "io")


__all__ = ["Runner", "RunnerBase", "RunnerPrecision", "as_runner", "is_runner", "typed_precision"]
