"""The pipeline file's schema: one frozen dataclass per ``[section]``, and how library options are named in
the file's words. A library message names an option with ``errors.opt("iters")``; the command line shows
it as ``--iters``, the pipeline as ``[bench].iters`` (``option_name``), and ``reworded`` turns any
EdgeLSTMError a stage raises into the pipeline's words."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from edgelstm.errors import EdgeLSTMError
from edgelstm.options import DEFAULT_CALIB_METHOD

PRECISIONS = ("fp16", "int8-dynamic", "int8-static")
VALIDATED = ("fp32", "fp32-stateful", *PRECISIONS)  # the artifacts [validate.precision_gates] may name


@dataclass(frozen=True)
class ModelSection:
    zoo: str | None = None
    source: str | None = None
    factory: str | None = None
    trust_pickle: bool = False
    train_steps: int = 150
    seed: int = 0
    input_size: int | None = None
    input: tuple[str, ...] = ()       # NAME:DTYPE[DIMS] per forward argument (as `--input`); default: inferred
    state_arg: str | None = None      # the forward argument that takes the recurrent state (as `--state-arg`)
    static: bool = False              # the model takes one shape: [export].batch x [export].seq
    keras_reference: str | None = None  # a Keras source's own predictions (.npz: x, y) to verify its import against
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportSection:
    seq: int = 60                     # the example sequence length (was seq_len: RENAMED_KEYS)
    batch: int = 2
    opset: int = 17
    stateful: bool | None = None      # also export the streaming variant; default: where the model supports it

    @property
    def seq_len(self) -> int:  # the exporter's name for it (ExportOptions.seq_len)
        return self.seq


@dataclass(frozen=True)
class QuantizeSection:
    precisions: tuple[str, ...] = PRECISIONS
    calib_method: str = DEFAULT_CALIB_METHOD.value
    exclude: tuple[str, ...] = ()
    target_cpu: str = "auto"          # INT8: the CPUs the files must be exact on (auto = portable: all of them)
    max_drift: str | None = None      # accuracy fallback budget, e.g. "rel_l2<=0.009", measured on [data]


@dataclass(frozen=True)
class DataSection:
    synthetic: int = 256
    seq: int = 60
    seed: int = 1
    validation: str | None = None
    calibration: str | None = None
    calibration_synthetic: int | None = None  # static INT8 calibrated on N seeded N(0,1) sequences: asked for, never silent
    window: int | None = None
    stride: int = 1                   # .csv: rows between window starts
    horizon: int = 0                  # .csv: the label is [data].target this many rows after a window's last row
    group: str | None = None          # .csv: the sequence id column (no window crosses a change of its value)
    features: tuple[str, ...] | None = None
    target: str | None = None


@dataclass(frozen=True)
class ValidateSection:
    gates: tuple[str, ...] = ("rel_l2<=0.01",)
    precision_gates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    baseline: str | None = None            # an earlier run's validate/ folder (or its output folder): drift must not grow
    max_growth: float = 1.10               # with baseline: each drift metric may grow to this x the baseline's


@dataclass(frozen=True)
class BenchSection:
    enabled: bool = True
    batch: tuple[int, ...] = (1,)
    seq: tuple[int, ...] = (60,)
    threads: tuple[int, ...] = (1,)
    iters: int = 50
    warmup: int = 5
    stream: bool = True
    baseline: str | None = None            # an earlier bench.json from this machine and model
    max_slowdown: float = 1.10             # with baseline: the largest p50 ratio now/baseline
    pick: str | None = None                # "32x256": name the fastest artifact within pick_max_drift there (cpu_engines.py)
    pick_max_drift: str | None = None      # default "rel_l2<=0.01"
    batch_parallel: bool = False           # also time ONNX/OpenVINO batch-parallel at threads >= 2 (pick may choose it)


@dataclass(frozen=True)
class CompareSection:
    """The same-run comparison with another version of the model (main's, in a pull request's CI job)."""
    against: str | None = None             # that run's output folder: OLD artifacts under the same file names
    max_growth: float = 1.10               # NEW's drift / task error may grow to this x OLD's (+ 1e-6)
    latency: bool = True                   # also time NEW and OLD interleaved at every [bench] grid point
    max_slowdown: float = 1.10             # NEW/OLD latency ratio the whole confidence interval must stay under
    on_inconclusive: str = "fail"          # fail | warn | pass: when the interval straddles max_slowdown
    max_time: float = 60.0                 # seconds of measuring per grid point, at most


@dataclass(frozen=True)
class TargetsSection:
    onnxruntime: bool = True
    tensorrt: bool = False
    openvino: tuple[str, ...] = ()    # OpenVINO IRs to build: "fp32", "bf16", "int8" (cpu_engines.py)


@dataclass(frozen=True)
class OutputSection:
    dir: str = "edgelstm-out"


@dataclass(frozen=True)
class DevicesSection:
    """The fleet check that ends a run (edgelstm.pipeline.devices_step): the artifacts checked on these devices."""

    hosts: tuple[str, ...] = ()       # [user@]host[:port] or ssh Host aliases
    inventory: str | None = None      # a fleet inventory (TOML), relative to the pipeline file
    labels: tuple[str, ...] = ()      # with inventory: the devices carrying any of these labels
    names: tuple[str, ...] = ()       # with inventory: these devices
    ssh_config: str | None = None     # ssh -F FILE (default: ~/.ssh/config)
    python: str | None = None         # the devices' Python (default: python3, or the inventory's)
    workdir: str | None = None        # where runs live on the devices
    timeout: int = 1800               # seconds per device
    retries: int = 1
    concurrency: int = 4
    samples: int = 256                # validation samples carried to the devices
    energy: bool = True               # energy per inference on Jetsons
    dir: str = "devices"              # under [output].dir: the bundle, each device's results, fleet.md/html/json

    @property
    def enabled(self) -> bool:
        return bool(self.hosts or self.inventory)


@dataclass(frozen=True)
class Pipeline:
    model: ModelSection
    export: ExportSection = ExportSection()
    quantize: QuantizeSection = QuantizeSection()
    data: DataSection = DataSection()
    validate: ValidateSection = ValidateSection()
    bench: BenchSection = BenchSection()
    compare: CompareSection = CompareSection()
    targets: TargetsSection = TargetsSection()
    output: OutputSection = OutputSection()
    devices: DevicesSection = DevicesSection()
    base_dir: Path = Path(".")
    source_text: str = ""
    name: str = "pipeline.toml"

    @property
    def out_dir(self) -> Path:
        p = Path(self.output.dir)
        return p if p.is_absolute() else self.base_dir / p

    def resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


SECTIONS = {"model": ModelSection, "export": ExportSection, "quantize": QuantizeSection, "data": DataSection,
            "validate": ValidateSection, "bench": BenchSection, "compare": CompareSection, "targets": TargetsSection,
            "output": OutputSection, "devices": DevicesSection}

#: the smallest value of an integer key (others: >= 0)
MINIMUMS = {("model", "train_steps"): 1, ("model", "input_size"): 1, ("export", "seq"): 1,
            ("export", "batch"): 1, ("export", "opset"): 7, ("data", "seq"): 1, ("data", "window"): 1,
            ("data", "stride"): 1, ("data", "calibration_synthetic"): 1, ("devices", "timeout"): 1,
            ("devices", "concurrency"): 1, ("devices", "samples"): 1}
#: the smallest value of a float key (a ratio against a baseline or OLD: 1.10 = up to 10% worse, as everywhere)
FLOAT_MINIMUMS = {("bench", "max_slowdown"): 1.0, ("validate", "max_growth"): 1.0, ("compare", "max_growth"): 1.0,
                  ("compare", "max_slowdown"): 1.0, ("compare", "max_time"): 1.0}

#: keys renamed for the one vocabulary (README.md): (section, old key) -> new key. The old key still works until
#: console.OLD_SPELLINGS_UNTIL, with a note (``renamed_keys``).
RENAMED_KEYS = {("export", "seq_len"): "seq"}


def renamed_keys(data: Mapping[str, Any], note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``data`` (parsed TOML) with each old key under its new name and ``note`` told once per old key; an old key
    given beside its new one stays (the check names it as unknown, with the suggestion)."""
    out = dict(data)
    for (section, old), new in RENAMED_KEYS.items():
        table = out.get(section)
        if isinstance(table, Mapping) and old in table and new not in table:
            out[section] = {(new if k == old else k): v for k, v in table.items()}
            if note is not None:
                note(f"[{section}].{old} is now [{section}].{new}")
    return out



def _key_sections() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            out[f.name] = out.get(f.name, ()) + (section,)
    return out


#: key -> the sections that have it (batch, seq and seed are in two)
KEY_SECTIONS = _key_sections()

#: library options whose pipeline key has another name
OPTION_KEYS = {"precision": ("quantize", "precisions"), "mode": ("quantize", "precisions"),
               "calib": ("data", "calibration"), "calib_synthetic": ("data", "calibration_synthetic"),
               "data": ("data", "validation"), "gate": ("validate", "gates"),
               "steps": ("model", "train_steps"), "out": ("output", "dir"), "seq_len": ("export", "seq")}


def option_name(key: str, section: str | None = None) -> str:
    """How the pipeline file names a library option: ``[section].key``. ``section`` (the stage's own) decides
    for keys that are in two sections; a key the file does not have stays as it is."""
    if section is not None and section in KEY_SECTIONS.get(key, ()):
        return f"[{section}].{key}"
    if key in OPTION_KEYS:
        s, k = OPTION_KEYS[key]
        return f"[{s}].{k}"
    owners = KEY_SECTIONS.get(key)
    if owners:
        return " or ".join(f"[{s}].{key}" for s in owners)
    return key


def in_pipeline_words(exc: EdgeLSTMError, section: str | None = None, prefix: str = "") -> EdgeLSTMError:
    """The same error (class, exit code), its message naming options as the pipeline file does."""
    if getattr(exc, "pipeline_words", False):
        return exc

    def name(key: str) -> str:
        return option_name(key, section)

    out = copy.copy(exc)
    out.raw_message = prefix + EdgeLSTMError(exc.raw_message).render(name)
    out.raw_hint = EdgeLSTMError(exc.raw_hint).render(name) if exc.raw_hint else None
    out.args = (out.raw_message,)
    out.pipeline_words = True  # type: ignore[attr-defined]
    return out


@contextlib.contextmanager
def reworded(section: str | None, prefix: str = "") -> Iterator[None]:
    """Re-raise an EdgeLSTMError from the block in the pipeline's words (``[section].key``)."""
    try:
        yield
    except EdgeLSTMError as exc:
        raise in_pipeline_words(exc, section, prefix) from exc
