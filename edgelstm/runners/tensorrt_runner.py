"""TensorRT runner: runs a serialized engine (.plan/.engine) through the named-tensor API only
(`set_input_shape`, `set_tensor_address`, `execute_async_v3`; never bindings or execute_v2), asynchronously
on one CUDA stream, with device buffers from pycuda, cuda-python or torch (runners.cuda_buffers).

Loading refuses, with one line that says what to do, an engine whose manifest names another TensorRT
version or GPU compute capability (unless it was built version-/hardware-compatible), and an engine file
that is truncated, corrupt or from another TensorRT version. Those are BadInput (exit 2), not
BackendMissing: TensorRT itself is installed and works; it is the engine file that does not fit this
machine, and the fix is to rebuild it from the shipped ONNX with `edgelstm build`, not to install anything.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_PAIRS, IOSpec
from edgelstm.errors import BadInput, InternalError, opt
from edgelstm.runners.contract import RunnerBase, typed_precision


def _cc_tuple(cc: Any) -> tuple[int, int] | None:
    try:
        major, minor = str(cc).split(".")[:2]
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return None


def check_engine_compat(name: str, details: Mapping[str, Any], trt_version: str, gpu: Mapping[str, Any] | None) -> None:
    """Refuse (BadInput, one line) an engine built for another TensorRT version or GPU architecture. A
    version-compatible engine loads on later runtimes of its major, and a 10.x one on 11.x too."""
    from edgelstm.artifacts.trt import parse_version, runs_version_compatible

    built = str((details.get("tensorrt") or {}).get("version") or "")
    built_gpu = details.get("gpu") or {}
    rebuild = details.get("rebuild") or f"edgelstm build MODEL.onnx -o {name}"
    problems = []
    if built:
        if details.get("version_compatible"):
            if not runs_version_compatible(built, trt_version):
                bv = parse_version(built)
                problems.append(f"TensorRT {built} (version-compatible: needs {bv[0]}.x >= {built}"
                                f"{', or 11.x' if bv[0] == 10 else ''}), this machine has {trt_version}")
        elif parse_version(built) != parse_version(trt_version):
            problems.append(f"TensorRT {built}, this machine has {trt_version}")
    here_cc, built_cc = _cc_tuple((gpu or {}).get("compute_capability")), _cc_tuple(built_gpu.get("compute_capability"))
    level = str(details.get("hardware_compatibility") or "none").lower()
    if here_cc and built_cc:
        here_name = (gpu or {}).get("name", "this GPU")
        if level == "ampere_plus":
            if here_cc < (8, 0):
                problems.append(f"an Ampere-or-newer GPU (hardware-compatible), this GPU {here_name} is compute "
                                f"{here_cc[0]}.{here_cc[1]}")
        elif here_cc != built_cc:
            problems.append(f"a GPU of compute capability {built_cc[0]}.{built_cc[1]} ({built_gpu.get('name', '?')}), "
                            f"this GPU {here_name} is {here_cc[0]}.{here_cc[1]}")
    if problems:
        raise BadInput(f"{name} was built for " + " and for ".join(problems)
                       + f"; engines are tied to both: rebuild it here from the shipped ONNX: {rebuild}")


class TensorRTRunner(RunnerBase):
    """Runner interface: .io, .backend, .precision, .label, .run(feeds) -> outputs, .close().

    Extras for bench: `timed_run(feeds, iters, warmup)` (CUDA-event milliseconds per enqueue),
    `time_once()`, optional CUDA-graph replay (`cuda_graph=True`), and `step(feeds)` for stateful engines
    (carries hn/cn into h0/c0 between calls; `reset_state()` starts over).

    `device` ("cuda", "cuda:N"): the GPU it runs on. The engine is deserialized, its context created and every
    enqueue made with that device current, and every buffer, stream and event lives there."""

    backend = "tensorrt"

    def __init__(self, path: str | Path, *, cuda_backend: Any = None, cuda_graph: bool = False,
                 check_compat: bool = True, device: str | int | None = "cuda", **_ignored: Any):
        from edgelstm.artifacts.artifact import Artifact
        from edgelstm.artifacts.trt import FLOAT_DTYPES, engine_iospec, host_dtype, make_logger
        from edgelstm.machine.tensorrt import gpu_info, import_tensorrt
        from edgelstm.runners import cuda_buffers
        from edgelstm.runners.cuda_buffers import CudaBackend, device_index, get_backend

        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"engine {self.path} does not exist")
        data = self.path.read_bytes()
        if len(data) < 64:
            raise BadInput(f"{self.path.name} is truncated or empty ({len(data)} bytes), not a TensorRT engine; "
                           "rebuild it with `edgelstm build`")
        trt = import_tensorrt("running a TensorRT engine")
        self.trt = trt
        self.manifest = Artifact.open(self.path).manifest  # a sha256 mismatch (truncated/changed file) is BadInput here
        details = self.manifest.details if self.manifest else {}
        self.tensorrt_version = str(trt.__version__)
        index = device_index("cuda" if device in (None, "cpu") else device)  # TensorRT runs on a GPU only
        self.cuda = cuda_backend if isinstance(cuda_backend, CudaBackend) or (
            cuda_backend is not None and not isinstance(cuda_backend, str)) else get_backend(cuda_backend, index)
        if getattr(self.cuda, "device_index", index) != index:
            raise BadInput(f"the CUDA buffer backend given works on cuda:{self.cuda.device_index}, not cuda:{index}")
        self.device = f"cuda:{index}"
        try:
            self.gpu = self.cuda.device_info()
        except Exception:  # noqa: BLE001
            self.gpu = gpu_info(cuda_buffers)
        if check_compat and details:
            check_engine_compat(self.path.name, details, self.tensorrt_version, self.gpu)

        self._logger = make_logger(trt)
        with self._on_device():
            self._load(trt, data, details)
        self.io: IOSpec = engine_iospec(self.engine, trt, self.manifest.io if self.manifest else None)
        # host dtype of every I/O tensor (bfloat16/fp8 through ml_dtypes; a type numpy cannot hold is refused here)
        self._dtypes = {t.name: host_dtype(t.dtype, t.name) for t in (*self.io.inputs, *self.io.outputs)}
        self._float_outputs = {t.name for t in self.io.outputs if t.dtype in FLOAT_DTYPES}  # returned as float32
        self.precision = typed_precision(self.manifest.precision if self.manifest else _guess_precision(self.io))
        self.label = self.path.name
        self.details = details
        from edgelstm.artifacts.lengths import LengthGuard

        self.length_guard = LengthGuard(details, self.label)  # the ONNX's verified lengths, inherited by the engine
        self.stream = self.cuda.stream()
        self.profiles = {t.name: tuple(tuple(int(v) for v in dims) for dims in
                                       self.engine.get_tensor_profile_shape(t.name, 0)) for t in self.io.inputs}
        self._buffers: dict[str, Any] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._outputs: dict[str, np.ndarray] = {}
        self._state: dict[str, np.ndarray] = {}
        self.use_graph = bool(cuda_graph) and bool(getattr(self.cuda, "supports_graphs", False))
        self.graph_error: str | None = None
        self._graph = None
        self._graph_key: Any = None
        self._events = None
        self.enqueues = 0

    def _on_device(self):
        """The runner's device is current inside the block (TensorRT works on the current device)."""
        activate = getattr(self.cuda, "activate", None)
        return activate() if callable(activate) else nullcontext()

    def _load(self, trt, data: bytes, details: Mapping[str, Any]) -> None:
        """Deserialize the engine and create its execution context (on the runner's device)."""
        from edgelstm.artifacts.trt import first_error

        runtime = trt.Runtime(self._logger)
        if details.get("version_compatible"):
            runtime.engine_host_code_allowed = True  # a version-compatible plan carries its lean runtime
        if (details.get("dla") or {}).get("core") is not None:
            runtime.DLA_core = int(details["dla"]["core"])
        try:
            engine = runtime.deserialize_cuda_engine(data)
        except Exception as exc:  # noqa: BLE001 - some versions raise instead of returning None
            engine = None
            self._logger.messages.append(("ERROR", str(exc)))
        if engine is None:
            errs = [e for e in self._logger.errors() if e.strip()]
            why = errs[-1].strip().splitlines()[0][:300] if errs else "no reason given"
            raise BadInput(f"{self.path.name} is not an engine TensorRT {self.tensorrt_version} can load "
                           f"(truncated, corrupt, or built by another TensorRT version or for another GPU): {why}",
                           hint="rebuild it from the ONNX with `edgelstm build`")
        self._runtime, self.engine = runtime, engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise InternalError(f"TensorRT could not create an execution context for {self.path.name} on "
                                f"{self.device}: " + first_error(self._logger, "out of GPU memory?"))

    # ------------------------------------------------------------------------------- feeds
    def _zero_state(self, name: str, batch: int) -> np.ndarray:
        t = self.io.input(name)
        dims = [batch if (not isinstance(d, int) or d < 0) else d for d in t.shape]
        return np.zeros(dims, dtype=self._dtypes[name])

    def _prepare(self, feeds: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        names = self.io.input_names
        extra = [n for n in feeds if n not in names]
        if extra:
            raise BadInput(f"unknown input(s) {extra}; {self.label} takes {names}")
        data_in = [t for t in self.io.inputs if not t.state and t.name not in STATE_INPUTS]
        batch = int(np.shape(feeds[data_in[0].name])[0]) if data_in and data_in[0].name in feeds else 1
        out = {}
        for t in self.io.inputs:
            if t.name in feeds:
                a = np.asarray(feeds[t.name])
            elif (t.state or t.name in STATE_INPUTS) and state and t.name in state:
                a = state[t.name]
            elif t.state or t.name in STATE_INPUTS:
                a = self._zero_state(t.name, batch)
            else:
                raise BadInput(f"missing input {t.name!r}; {self.label} takes {names}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise BadInput(f"{t.name!r} contains {int((~np.isfinite(a)).sum())} NaN/inf value(s)")
            out[t.name] = np.ascontiguousarray(a, dtype=self._dtypes[t.name])
        return out

    def _set_shapes(self, feeds: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
        changed = False
        for name, a in feeds.items():
            lo, _opt, hi = self.profiles[name]
            shape = tuple(int(d) for d in a.shape)
            if len(shape) != len(lo):
                raise BadInput(f"{name!r} has shape {list(shape)} (rank {len(shape)}), the engine needs rank {len(lo)} "
                               f"(profile min {list(lo)}, max {list(hi)})")
            if any(s < a_ or s > b_ for s, a_, b_ in zip(shape, lo, hi)):
                rebuild = self.details.get("rebuild") or "edgelstm build MODEL.onnx -o ENGINE.plan --batch ... --seq ..."
                raise BadInput(f"{name!r} shape {list(shape)} is outside the engine's optimization profile "
                               f"(min {list(lo)}, max {list(hi)}); rebuild with a wider {opt('batch')}/{opt('seq')}: "
                               f"{rebuild}")
            if self._shapes.get(name) != shape:
                if not self.context.set_input_shape(name, shape):
                    raise BadInput(f"TensorRT rejected shape {list(shape)} for {name!r}: "
                                   + (self._logger.errors()[-1][:300] if self._logger.errors() else "no reason given"))
                self._shapes[name] = shape
                changed = True
        if changed or not self._outputs:
            self._outputs = {}
            for t in self.io.outputs:
                shape = tuple(int(d) for d in self.context.get_tensor_shape(t.name))
                if any(d < 0 for d in shape):
                    raise BadInput(f"output {t.name!r} has a data-dependent shape {list(shape)}, which this runner "
                                   "does not support")
                self._outputs[t.name] = np.empty(shape, dtype=self._dtypes[t.name])
            self._drop_graph()  # shapes changed: a captured graph is stale
        return self._shapes

    def _bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Grow device buffers if needed, point every I/O tensor at its buffer, upload the inputs."""
        for name, host in (*feeds.items(), *self._outputs.items()):
            buf = self._buffers.get(name)
            if buf is None or buf.nbytes < host.nbytes:
                if buf is not None:
                    self.cuda.free(buf)
                buf = self._buffers[name] = self.cuda.malloc(max(host.nbytes, 1))
                self._drop_graph()
            if not self.context.set_tensor_address(name, int(buf.ptr)):
                raise InternalError(f"TensorRT refused the device address for {name!r}")
        for name, host in feeds.items():
            self.cuda.htod(self._buffers[name], host, self.stream)

    def _enqueue(self) -> None:
        if self.use_graph:
            key = tuple(sorted(self._shapes.items()))
            if self._graph is None or self._graph_key != key:
                self._drop_graph()
                try:
                    self._execute()  # TensorRT needs one plain enqueue after a shape change before capture
                    self.cuda.synchronize(self.stream)
                    self.cuda.begin_capture(self.stream)
                    try:
                        self._execute()
                    finally:
                        self._graph = self.cuda.end_capture(self.stream)
                    self._graph_key = key
                except Exception as exc:  # noqa: BLE001 - fall back to plain enqueues
                    self.graph_error = f"{type(exc).__name__}: {exc}"[:200]
                    self.use_graph = False
                    self._drop_graph()
                    return
            self.cuda.launch(self._graph, self.stream)
            self.enqueues += 1
            return
        self._execute()

    def _execute(self) -> None:
        with self._on_device():
            ok = self.context.execute_async_v3(self.stream)
        if not ok:
            errs = self._logger.errors()
            raise InternalError(f"TensorRT failed to run {self.label}: " + (errs[-1][:300] if errs else "no reason given"))
        self.enqueues += 1

    def _fetch(self) -> dict[str, np.ndarray]:
        for name, host in self._outputs.items():
            self.cuda.dtoh(host, self._buffers[name], self.stream)
        self.cuda.synchronize(self.stream)
        return {name: host.astype(np.float32) if name in self._float_outputs else host.copy()
                for name, host in self._outputs.items()}

    def _drop_graph(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            try:
                self.cuda.destroy_graph(graph)
            except Exception:  # noqa: BLE001 - best effort: the context is going away anyway
                pass

    # ------------------------------------------------------------------------------ public
    @property
    def warnings(self) -> list[str]:
        return self.length_guard.warnings

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; state inputs that `feeds` lacks start as zeros."""
        self.length_guard.check(self.io, feeds)
        prepared = self._prepare(feeds)
        self._set_shapes(prepared)
        self._bind(prepared)
        self._enqueue()
        return self._fetch()

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Streaming: like run, but h0/c0 come from the previous call's hn/cn unless given."""
        out = self.run(self._prepare(feeds, self._state))
        self._state = {i: out[o] for i, o in STATE_PAIRS.items() if o in out and i in self.io.input_names}
        return out

    def reset_state(self) -> None:
        self._state = {}

    @property
    def stateful(self) -> bool:
        return self.io.stateful or any(n in STATE_INPUTS for n in self.io.input_names)

    def timed_run(self, feeds: Mapping[str, np.ndarray] | None = None, iters: int = 100, warmup: int = 10) -> list[float]:
        """Milliseconds per enqueue, measured with CUDA events on the runner's stream (inputs uploaded once,
        outputs not copied back inside the timed region). `feeds=None` reuses the last run's inputs."""
        if feeds is not None:
            prepared = self._prepare(feeds)
            self._set_shapes(prepared)
            self._bind(prepared)
        elif not self._shapes:
            raise BadInput("timed_run needs feeds the first time (nothing has run yet)")
        for _ in range(max(0, int(warmup))):
            self._enqueue()
        if self._events is None:
            self._events = (self.cuda.event(), self.cuda.event())
        start, end = self._events
        times = []
        for _ in range(max(1, int(iters))):
            self.cuda.record(start, self.stream)
            self._enqueue()
            self.cuda.record(end, self.stream)
            times.append(self.cuda.elapsed_ms(start, end))
        self.cuda.synchronize(self.stream)
        return times

    def time_once(self, feeds: Mapping[str, np.ndarray] | None = None) -> float:
        """One CUDA-event-timed enqueue in milliseconds (after a run or with feeds)."""
        return self.timed_run(feeds, iters=1, warmup=0)[0]

    def close(self) -> None:
        """Free the device buffers and destroy the CUDA graph, events and stream (safe to call twice)."""
        cuda = getattr(self, "cuda", None)
        if cuda is None:
            return
        if getattr(self, "_graph", None) is not None:
            self._drop_graph()
        releases = [(cuda.free, buf) for buf in getattr(self, "_buffers", {}).values()]
        releases += [(cuda.destroy_event, ev) for ev in (getattr(self, "_events", None) or ())]
        if getattr(self, "stream", None) is not None:
            releases.append((cuda.destroy_stream, self.stream))
        for release, handle in releases:
            try:
                release(handle)
            except Exception:  # noqa: BLE001
                pass
        self._buffers, self._events, self.stream = {}, None, None
        self.context = None
        self.engine = None

    def __enter__(self) -> "TensorRTRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _guess_precision(io: IOSpec) -> str:
    return "fp16" if any(t.dtype == "float16" for t in io.inputs) else "unknown"
