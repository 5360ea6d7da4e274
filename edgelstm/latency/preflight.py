"""Checks bench makes before the first measurement, and what it learns about a target on the way.

Every problem that can be found before timing raises here, so that a wrong command fails in seconds and
not after minutes of timing: an unknown backend (exit 2) or one that is not installed (exit 3, naming what
to install), a bad device, a batch/seq outside a fixed-shape artifact or an engine's optimization profile,
an FP16 model that onnxruntime cannot run at any optimisation level. `ResolvedTarget` is a target after
these checks: its backend, device, precision, I/O spec, identity (sha256, parent) and size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from edgelstm.errors import BackendMissing, BadInput, opt
from edgelstm.latency.schema import BenchTarget
from edgelstm.options import Backend
from edgelstm.runners.contract import RunnerPrecision

BACKEND_INSTALL = {
    "torch": ("torch", "pip install torch==2.13.0 (CPU wheel), or a CUDA build of torch on a GPU machine"),
    "onnxruntime": ("onnxruntime", "pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA provider)"),
    "openvino": ("openvino", "pip install 'edgelstm[openvino]' (or: pip install openvino)"),
    "tensorrt": ("tensorrt", "TensorRT's Python bindings: the edgelstm TensorRT docker image, `pip install tensorrt` "
                             "from NVIDIA's package index on x86, or the system python3-libnvinfer on Jetson "
                             "(venv with --system-site-packages)"),
}


@dataclass
class ResolvedTarget:
    target: BenchTarget
    name: str
    backend: str
    device: str
    precision: RunnerPrecision       # the runner's (edgelstm.runners.contract), or the target's override
    io: Any
    path: Path | None
    sha256: str | None
    parent_sha256: str | None
    size: int | None
    details: dict[str, Any]
    runners: dict[Any, Any] = field(default_factory=dict)
    load_mb: dict[Any, float] = field(default_factory=dict)
    stream: bool = False


# ------------------------------------------------------------------------------------ backend, device


def check_backend(backend: str | None) -> str | None:
    """Validate a backend name (exit 2 when unknown) and that it is installed (exit 3 naming what to install)."""
    if backend is None:
        return None
    known = [b.value for b in Backend]
    if backend not in known:
        raise BadInput(f"unknown backend {backend!r}; known backends: {', '.join(known)}")
    module, install = BACKEND_INSTALL[backend]
    if not _importable(module):
        raise BackendMissing(f"the {backend} backend is not installed", hint=f"install it with: {install}")
    return backend


def _importable(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a module already imported counts)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_device(device: str) -> str:
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInput(f"{opt('device')} must be cpu or cuda[:N], got {device!r}")
    return device


# ------------------------------------------------------------------------------------ identity, size


def module_sha256(module: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def module_size(module: Any) -> int:
    return int(sum(t.numel() * t.element_size() for t in module.state_dict().values()))


def file_size(path: Path) -> int:
    """Bytes of a model file and its external data file (ONNX) or weights (OpenVINO IR .bin), when it has one."""
    size = path.stat().st_size
    extras = [path.with_name(path.name + ".data"), path.with_suffix(".data")]
    if path.suffix.lower() == ".xml":
        extras.append(path.with_suffix(".bin"))
    for extra in extras:
        if extra.exists() and extra != path:
            size += extra.stat().st_size
    return size


# -------------------------------------------------------------------------------------------- shapes


def data_input(io: Any) -> Any:
    specs = io.data_inputs
    if not specs:
        raise BadInput("the artifact has no data input")
    return specs[0]


def shape_limits(io: Any, runner: Any = None) -> dict[str, tuple[int, int, str]]:
    """The batch and seq values an artifact accepts: {"batch": (lo, hi, why), "seq": (...)}; absent = any.

    Fixed dims of the data input (static ONNX: axis 0 batch, axis 1 seq) and, for engines, the optimization
    profile the runner exposes as `shape_ranges` (or `profiles`) = {input: (min_shape, opt_shape, max_shape)}."""
    x = data_input(io)
    limits: dict[str, tuple[int, int, str]] = {}
    if len(x.shape) >= 2:
        for axis, label in ((0, "batch"), (1, "seq")):
            d = x.shape[axis]
            if isinstance(d, int) and d > 0:
                limits[label] = (d, d, "a fixed shape (static export)")
    ranges = None
    if runner is not None:  # `shape_ranges` (the runner contract) or the TensorRT runner's `profiles`
        from edgelstm.runners.contract import as_runner

        runner = as_runner(runner)
        ranges = runner.shape_ranges or runner.profiles
    if callable(ranges):
        ranges = ranges()
    if isinstance(ranges, Mapping) and x.name in ranges:
        lo_shape, _opt, hi_shape = ranges[x.name]
        for axis, label in ((0, "batch"), (1, "seq")):
            if axis < len(lo_shape):
                lo, hi = int(lo_shape[axis]), int(hi_shape[axis])
                if label in limits:
                    lo, hi = max(lo, limits[label][0]), min(hi, limits[label][1])
                limits[label] = (lo, hi, "the engine's optimization profile")
    return limits


def check_grid(name: str, io: Any, grid_batches: Iterable[int], grid_seqs: Iterable[int], runner: Any = None) -> None:
    limits = shape_limits(io, runner)
    problems = []
    for label, values in (("batch", list(grid_batches)), ("seq", list(grid_seqs))):
        if label not in limits:
            continue
        lo, hi, why = limits[label]
        bad = [v for v in values if not lo <= v <= hi]
        if bad:
            allowed = str(lo) if lo == hi else f"{lo}..{hi}"
            problems.append(f"{label} {bad} is outside {allowed} ({why})")
    if problems:  # `--static` is convert's option, not bench's: named as a command, not with opt()
        raise BadInput(f"{name}: " + "; ".join(problems),
                       hint="pick values inside the range, or export again without `edgelstm convert --static` / "
                            "build a wider profile")


def check_lengths(name: str, details: Any, grid_seqs: Iterable[int]) -> list[str]:
    """Before any timing: a grid length above the maximum the artifact's export states is refused (BadInput), one
    outside its verified range is a warning (edgelstm.artifacts.lengths)."""
    from edgelstm.artifacts.lengths import limits_from

    limits = limits_from(details)
    if limits is None:
        return []
    return [w for w in (limits.check(int(s), name) for s in grid_seqs) if w]


# ------------------------------------------------------------------------------ onnxruntime, INT8 ISA


def safe_ort_level(res: ResolvedTarget) -> str:
    """The onnxruntime optimisation level to time at: the level the quantizer proved in its manifest; for an
    FP16 model without one, the highest level that survives a crash-safe probe in a child process (an FP16
    BiLSTM has crashed onnxruntime at ORT_ENABLE_ALL); otherwise "all"."""
    level = res.details.get("ort_opt_level")
    if level:
        return str(level)
    if res.path is None:
        return "all"
    try:
        import onnx

        model = onnx.load(str(res.path), load_external_data=False)
        has_fp16 = any(i.data_type == 10 for i in model.graph.initializer)
    except Exception:  # noqa: BLE001 - the runner reports a broken file properly
        return "all"
    if not has_fp16:
        return "all"
    from edgelstm.artifacts.ort import first_safe_level

    level, tried = first_safe_level(res.path)
    if level is None:
        raise BadInput(f"{res.name} does not run in onnxruntime at any optimisation level "
                       f"({'; '.join(f'{k}: {v}' for k, v in tried.items())})")
    return level


def isa_warnings(resolved: Sequence[ResolvedTarget], device: Mapping[str, Any]) -> list[str]:
    """One warning per INT8 artifact timed on another CPU class than the one it was quantized for, or at an
    onnxruntime level its file does not allow."""
    from edgelstm.machine.isa import mismatch_warning

    here = str((device.get("cpu") or {}).get("isa") or "")
    out = []
    for res in resolved:
        w = mismatch_warning(res.name, res.details.get("target_isa"), here, what="benchmarked",
                             measured="the latency (and drift) measured here are") if here else None
        if w:
            out.append(w)
        for runner in res.runners.values():  # a level the file does not allow (edgelstm.artifacts.int8_metadata)
            out.extend(w for w in runner.warnings if w not in out)
    return out
