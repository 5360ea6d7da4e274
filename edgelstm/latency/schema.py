"""The bench report's data: what to time (BenchGrid, BenchOptions, BenchTarget), what a measurement is
(BenchRow, BenchReport; the JSON schema `edgelstm-bench/1`), and what makes two rows comparable (row_key,
describe_key; the regression gate uses them too). No timing and no checks on artifacts here.

Every row says how it was timed (the schema grows additively):

- ``clock``: ``"wall"`` (the host's perf_counter around each call) or ``"cuda-events"`` (device-side CUDA
  events around each enqueue); a runner timing itself with another clock reports its own name.
- ``copies_included``: whether the timed region moves inputs to / outputs from the place the model runs
  (``runner.run``: numpy in, numpy out, host<->device copies on a GPU) — ``false`` when inputs are staged once
  and outputs stay bound (onnxruntime IO binding, pre-made torch tensors, TensorRT enqueue timed by events).
- ``provider``: the onnxruntime execution provider that really ran the session (None for other backends).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from edgelstm.errors import BadInput, opt
from edgelstm.latency.harness import TimingPolicy

if TYPE_CHECKING:
    from edgelstm.runners.contract import RunnerPrecision

SCHEMA = "edgelstm-bench/1"
MODES = ("window", "step")
CLOCKS = ("wall", "cuda-events")


@dataclass(frozen=True)
class BenchGrid:
    """Batch sizes x sequence lengths x thread counts (None: the backend's default)."""

    batches: tuple[int, ...] = (1, 8)
    seqs: tuple[int, ...] = (60, 256)
    threads: tuple[int | None, ...] = (None,)

    def __post_init__(self) -> None:
        for what, values in ((opt("batch"), self.batches), (opt("seq"), self.seqs)):
            if not values or any(int(v) < 1 for v in values):
                raise BadInput(f"{what} must list positive integers, got {list(values)}")
        if not self.threads or any(t is not None and int(t) < 1 for t in self.threads):
            raise BadInput(f"{opt('threads')} must list positive integers, got {list(self.threads)}")

    def points(self) -> list[tuple[int, int, int | None]]:
        return [(b, s, t) for t in self.threads for b in self.batches for s in self.seqs]


@dataclass(frozen=True)
class BenchOptions:
    backend: str | None = None        # torch | onnxruntime | tensorrt; None: the artifact's default
    device: str = "cpu"               # cpu | cuda
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    stream: bool = False              # also time one step of a stateful artifact with its state carried
    input_size: int | None = None     # for torch models whose input size cannot be inferred
    torch_options: Mapping[str, Any] = field(default_factory=dict)  # torch models: factory, trust_pickle, inputs
    opt_level: str | None = None      # onnxruntime graph optimisation level; None: the manifest's proven level
                                      # (quantized models), else "all" (FP16 without one: crash-safe probe)
    measure_memory: bool = True
    seed: int = 0
    retry_noisy: int = 0              # re-measure a disturbed row up to this many times, keep the lowest p50
    amx: str = "allow"                # allow | auto | block: may onnxruntime run INT8 on AMX (latency/amx_guard.py);
                                      # auto/block install a process-wide filter: the CLI's default is auto
    device_options: Any = None        # trt_options.DeviceOptions: --cuda-graph, --shapes, --split-transfers, ...
    batch_parallel: bool = False      # also time onnxruntime/OpenVINO CPU targets batch-parallel (variant rows)

    def __post_init__(self) -> None:
        if self.retry_noisy < 0:
            raise BadInput(f"{opt('retry_noisy')} must be >= 0, got {self.retry_noisy}")
        from edgelstm.options import AmxPolicy

        if self.amx not in [p.value for p in AmxPolicy]:
            raise BadInput(f"{opt('amx')} must be one of {', '.join(p.value for p in AmxPolicy)}, got {self.amx!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "stream": self.stream, "opt_level": self.opt_level,
                "retry_noisy": self.retry_noisy, "amx": self.amx, "batch_parallel": self.batch_parallel,
                **self.policy.to_dict(),
                **({"device_options": self.device_options.to_dict()} if self.device_options is not None else {})}


@dataclass(frozen=True)
class BenchTarget:
    """One thing to time: a path (torch file, ONNX, engine) or an in-memory model, with how to run it."""

    artifact: Any
    name: str | None = None                   # the row's artifact name (default: file name / model name)
    backend: str | None = None                # overrides BenchOptions.backend
    device: str | None = None                 # overrides BenchOptions.device
    precision: str | None = None              # overrides what the runner reports
    variant: str = ""                         # torch on CUDA: "amp", "cuda-graph", "amp+cuda-graph"; CPU: "batch-parallel"
    runner_options: Mapping[str, Any] = field(default_factory=dict)  # open_runner extras (opt_level, providers)
    extras: Mapping[str, Any] = field(default_factory=dict)          # copied into each row (e.g. drift)
    stream: bool | None = None                # time streaming steps for this target (None: BenchOptions.stream)


@dataclass
class BenchRow:
    """One timed row of `bench` (``to_json``: the report's `results` entry)."""

    artifact: str
    backend: str
    precision: RunnerPrecision                 # a Precision (bf16 for an OpenVINO IR), serialized as its string
    batch: int
    seq: int
    threads: int | None
    iters: int
    latency_ms: dict[str, float]
    throughput_seq_per_s: float
    throughput_steps_per_s: float
    device: str = "cpu"
    variant: str = ""
    mode: str = "window"              # window: the whole sequence; step: one step with the state carried
    warmup: int = 0
    timer: str = "wall"
    path: str | None = None
    timing_path: str | None = None    # which fast path was timed (ort-iobinding, torch-eager, ...)
    sha256: str | None = None
    parent_sha256: str | None = None
    model_size_bytes: int | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    probe_ms: float | None = None     # harness.speed_probe() around this row: the machine's speed at the time
    extras: dict[str, Any] = field(default_factory=dict)
    clock: str = "wall"               # wall | cuda-events (see the module docstring)
    copies_included: bool = False     # the timed region includes moving inputs/outputs (H2D/D2H, numpy)
    provider: str | None = None       # onnxruntime: the execution provider that really ran

    @property
    def p50(self) -> float:
        return self.latency_ms["p50"]

    def key(self) -> tuple:
        return row_key(self.to_dict())

    def to_json(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact, "backend": self.backend, "precision": self.precision, "batch": self.batch,
            "seq": self.seq, "threads": self.threads, "iters": self.iters,
            "latency_ms": {k: round(v, 6) for k, v in self.latency_ms.items()},
            "throughput_seq_per_s": round(self.throughput_seq_per_s, 3),
            "throughput_steps_per_s": round(self.throughput_steps_per_s, 3),
            "device": self.device, "variant": self.variant, "mode": self.mode, "warmup": self.warmup,
            "timer": self.timer, "clock": self.clock, "copies_included": self.copies_included,
            "provider": self.provider, "timing_path": self.timing_path, "path": self.path, "sha256": self.sha256,
            "parent_sha256": self.parent_sha256, "model_size_bytes": self.model_size_bytes, "memory": self.memory,
            "probe_ms": None if self.probe_ms is None else round(self.probe_ms, 6),
            **({"extras": self.extras} if self.extras else {}),
        }


def clock_label(row: Mapping[str, Any]) -> str:
    """How a row was timed, for tables: "wall", "wall+copies", "cuda-events", ... ("?" for old reports)."""
    clock = row.get("clock")
    if clock is None:
        return "?"
    return str(clock) + ("+copies" if row.get("copies_included") else "")


ROW_KEY_FIELDS = ("artifact", "backend", "device", "precision", "variant", "mode", "batch", "seq", "threads")


def row_key(row: Mapping[str, Any]) -> tuple:
    """What makes two rows comparable: artifact name, backend, device, precision, variant, mode, shape, threads."""
    defaults = {"device": "cpu", "variant": "", "mode": "window", "threads": None}
    return tuple(row.get(k, defaults.get(k)) for k in ROW_KEY_FIELDS)


def describe_key(key: Sequence[Any]) -> str:
    d = dict(zip(ROW_KEY_FIELDS, key))
    parts = [f"{d['artifact']} [{d['backend']}/{d['precision']}"
             + (f"/{d['variant']}" if d["variant"] else "") + (f" on {d['device']}" if d["device"] != "cpu" else "")
             + "]", f"batch {d['batch']}", f"seq {d['seq']}" if d["mode"] == "window" else "one step",
             f"threads {d['threads'] if d['threads'] is not None else 'default'}"]
    return " ".join(parts[:1]) + " " + ", ".join(parts[1:])


@dataclass
class BenchReport:
    device: dict[str, Any]
    results: list[BenchRow] = field(default_factory=list)
    stream: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    regression: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": SCHEMA, "created": self.created, "device": self.device, "options": self.options,
               "results": [r.to_dict() for r in self.results], "stream": self.stream, "skipped": self.skipped}
        if self.regression is not None:
            out["regression"] = self.regression
        out.update(self.extras)
        return out

    def find(self, **match: Any) -> list[BenchRow]:
        return [r for r in self.results if all(getattr(r, k) == v for k, v in match.items())]


def work_list(grid: BenchGrid, stream: bool, variant: str = "") -> list[tuple[int, int, int | None, str]]:
    """The (batch, seq, threads, mode) rows one target is timed at, in order: every grid point in window mode,
    then, when streaming, one step per thread count and batch. The batch-parallel variant is timed in window mode
    where it has two workers or more (threads >= 2, or the usable cores when threads are not given)."""
    work = [(b, s, t, "window") for b, s, t in grid.points()]
    if "batch-parallel" in variant:
        from edgelstm.runners.batch_parallel import usable_cores

        return [w for w in work if (w[2] or usable_cores()) >= 2]
    if stream:
        work += [(b, 1, t, "step") for t in grid.threads for b in grid.batches]
    return work


def planned_rows(n_targets: int, grid: BenchGrid, stream: bool, *, parallel: int = 0) -> int:
    """How many rows bench_artifacts will time (for a progress bar); ``parallel``: targets also timed
    batch-parallel."""
    return n_targets * len(work_list(grid, stream)) + parallel * len(work_list(grid, False, "batch-parallel"))


def rows_of(report: BenchReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The result rows of a report object or dict, as dicts."""
    return [r.to_dict() for r in report.results] if isinstance(report, BenchReport) else list(report["results"])
