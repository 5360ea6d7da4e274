"""onnxruntime sessions: the one session builder, the crash-safe probe (in a child process), and the one
optimization-level ladder (``all`` -> ``extended`` -> ``basic``) used by quantize, bench and the runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from edgelstm.errors import BackendMissing, BadInput

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover
        raise BackendMissing("onnxruntime is not installed", hint="pip install onnxruntime") from None
    return ort


CPU_PROVIDER = "CPUExecutionProvider"
#: onnxruntime log severity for edgelstm's sessions: 4 (fatal only). Its errors reach the user as exceptions,
#: rendered as edgelstm's one-line errors; its log line would be a second, coloured copy on stderr.
QUIET = 4


def _provider_name(p: Any) -> str:
    """A providers entry is a name or a (name, options) pair."""
    return str(p[0] if isinstance(p, (tuple, list)) else p)


def make_session(path: str | Path | bytes, *, threads: int | None = None, opt_level: str = "all",
                 providers: list[Any] | None = None):
    """An onnxruntime session on `providers` (names or (name, options) pairs; default CPU only). ``path`` may be
    a serialized model (bytes) that was never written, e.g. an export candidate or an augmented calibration graph.

    onnxruntime falls back to the next provider *silently* when the first one cannot start (onnxruntime-gpu
    without the CUDA/cuDNN libraries it was built for, no GPU): a session asked for a GPU provider that
    runs on another is refused (BackendMissing, exit 3) naming the provider asked for and the one active, so
    that no CPU latency is ever reported as a GPU one."""
    ort = _ort()
    ort.set_default_logger_severity(QUIET)
    so = ort.SessionOptions()
    so.log_severity_level = QUIET  # onnxruntime's own (coloured, C++) log lines stay off the user's stderr
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    available = ort.get_available_providers()
    if providers:
        missing = [_provider_name(p) for p in providers if _provider_name(p) not in available]
        if missing:
            raise BackendMissing(f"onnxruntime provider(s) {missing} not available (have {available})",
                                 hint="pip install onnxruntime-gpu for CUDAExecutionProvider")
    name = "the model" if isinstance(path, bytes) else Path(path).name
    try:
        session = ort.InferenceSession(path if isinstance(path, bytes) else str(path), so,
                                       providers=providers or [CPU_PROVIDER])
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"onnxruntime cannot load {name}: {str(exc).splitlines()[0][:300]}") from None
    wanted = _provider_name(providers[0]) if providers else CPU_PROVIDER
    active = list(session.get_providers() or [])
    if wanted != CPU_PROVIDER and (not active or active[0] != wanted):
        raise BackendMissing(f"onnxruntime could not start {wanted} for {name} and fell back to "
                             f"{active[0] if active else 'no provider'} (active: {active})",
                             hint="install the CUDA and cuDNN libraries that this onnxruntime-gpu was built for "
                                  "(see onnxruntime's CUDA requirements) and check that the GPU is visible, "
                                  "or run on the CPU")
    return session


_PROBE = r"""
import json, sys
import numpy as np, onnxruntime as ort
path, level, types = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])  # types: iospec.ORT_TYPES
so = ort.SessionOptions(); so.log_severity_level = 4; so.intra_op_num_threads = 1
so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
feeds = {}
sym = {"batch": 2, "seq": 3}  # the same symbolic dim gets the same size in every input
for i in s.get_inputs():
    shape = [d if isinstance(d, int) and d > 0 else sym.setdefault(d, 2 if n == 0 else 3) if isinstance(d, str)
             else (2 if n == 0 else 3) for n, d in enumerate(i.shape)]
    if i.name in ("h0", "c0") and len(shape) == 3 and not (isinstance(i.shape[1], int) and i.shape[1] > 0):
        shape[1] = 2  # a state fixed at batch 1 (a one-token encoder) keeps it
    feeds[i.name] = np.zeros(shape, np.dtype(types.get(i.type, "float32")))
s.run(None, feeds)
print(json.dumps({"ok": True}))
"""


def probe_session(path: str | Path, *, opt_level: str = "all", timeout: float = 120.0) -> tuple[bool, str]:
    """Create a session and run it once in a child process: a crashing session cannot take us down.
    Returns (ok, reason)."""
    import json

    from edgelstm.artifacts.iospec import ORT_TYPES

    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), OPT_LEVELS[opt_level], json.dumps(ORT_TYPES)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"onnxruntime session probe timed out after {timeout:.0f}s"
    if proc.returncode == 0:
        return True, "ok"
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    if proc.returncode < 0:
        tail = f"crashed with signal {-proc.returncode}"
    return False, tail[:300]


LEVELS = ("all", "extended", "basic")


def first_safe_level(path: str | Path, levels: tuple[str, ...] = LEVELS) -> tuple[str | None, dict[str, str]]:
    """Probe a session at each level in turn until one runs: (the first safe level or None, reason per level)."""
    tried: dict[str, str] = {}
    for level in levels:
        ok, why = probe_session(path, opt_level=level)
        tried[level] = why
        if ok:
            return level, tried
    return None, tried


def recorded_level(manifest: Any) -> str | None:
    """The level an artifact's manifest says it must run at (quantize records the safe level for its target)."""
    level = (manifest.details.get("ort_opt_level") if manifest is not None else None)
    return level if level in OPT_LEVELS else None


def session_outputs(path: str | Path, batches: Iterable[Mapping[str, Any]], *,
                    opt_level: str = "all") -> list[dict[str, Any]]:
    """Run an ONNX file over ``batches`` in one CPU session (at ``opt_level``): each input cast to the type the
    session takes (the one dtype table, ``iospec.ort_numpy_dtype``), every output as float32. The accuracy fallback
    measures its trials with it."""
    import numpy as np

    from edgelstm.artifacts.iospec import ort_numpy_dtype

    sess = make_session(path, opt_level=opt_level)
    in_types = {i.name: i.type for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]
    out = []
    for b in batches:
        feeds = {k: np.ascontiguousarray(v, dtype=ort_numpy_dtype(in_types[k])) for k, v in b.items() if k in in_types}
        out.append({n: np.asarray(o, dtype=np.float32) for n, o in zip(names, sess.run(None, feeds))})
    return out


__all__ = ["OPT_LEVELS", "LEVELS", "make_session", "session_outputs", "probe_session", "first_safe_level", "recorded_level"]
