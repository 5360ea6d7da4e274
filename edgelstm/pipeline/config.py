"""`pipeline.toml`: the declarative description of a run, validated up front with errors naming the key."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from edgelstm.errors import BadInput

PRECISIONS = ("fp16", "int8-dynamic", "int8-static")


@dataclass(frozen=True)
class ModelSection:
    zoo: str | None = None
    source: str | None = None
    factory: str | None = None
    trust_pickle: bool = False
    train_steps: int = 150
    seed: int = 0
    input_size: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportSection:
    seq_len: int = 60
    batch: int = 2
    opset: int = 17
    stateful: bool = True


@dataclass(frozen=True)
class QuantizeSection:
    precisions: tuple[str, ...] = PRECISIONS
    calib_method: str = "minmax"
    exclude: tuple[str, ...] = ()
    target_cpu: str = "auto"          # INT8: the CPU class the files must not saturate on (auto: this machine)
    max_drift: str | None = None      # accuracy fallback budget, e.g. "rel_l2=0.009", measured on [data]


@dataclass(frozen=True)
class DataSection:
    synthetic: int = 256
    seq: int = 60
    seed: int = 1
    validation: str | None = None
    calibration: str | None = None
    window: int | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None


@dataclass(frozen=True)
class ValidateSection:
    gates: tuple[str, ...] = ("rel_l2<=0.01",)
    precision_gates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchSection:
    enabled: bool = True
    batch: tuple[int, ...] = (1,)
    seq: tuple[int, ...] = (60,)
    threads: tuple[int, ...] = (1,)
    iters: int = 50
    warmup: int = 5
    stream: bool = True


@dataclass(frozen=True)
class TargetsSection:
    onnxruntime: bool = True
    tensorrt: bool = False


@dataclass(frozen=True)
class OutputSection:
    dir: str = "edgelstm-out"


@dataclass(frozen=True)
class Pipeline:
    model: ModelSection
    export: ExportSection = ExportSection()
    quantize: QuantizeSection = QuantizeSection()
    data: DataSection = DataSection()
    validate: ValidateSection = ValidateSection()
    bench: BenchSection = BenchSection()
    targets: TargetsSection = TargetsSection()
    output: OutputSection = OutputSection()
    base_dir: Path = Path(".")
    source_text: str = ""

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
            "validate": ValidateSection, "bench": BenchSection, "targets": TargetsSection, "output": OutputSection}


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(where: str, value: Any, default: Any, annotation: str) -> Any:
    def bad(expected: str) -> BadInput:
        return BadInput(f"{where} must be {expected}, got {value!r}")

    if annotation.startswith("Mapping"):
        if not isinstance(value, dict):
            raise bad("a table")
        return value
    if "tuple[int" in annotation:
        vals = value if isinstance(value, list) else [value]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals):
            raise bad("a positive integer or a list of them")
        return tuple(vals)
    if "tuple[str" in annotation:
        vals = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in vals):
            raise bad("a string or a list of strings")
        return tuple(vals)
    if annotation.startswith("bool"):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if annotation.startswith("int"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a non-negative integer")
        return value
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    return value


def parse_pipeline(data: Mapping[str, Any], *, name: str = "pipeline.toml", base_dir: Path = Path("."),
                   source_text: str = "") -> Pipeline:
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise BadInput(f"{name}: unknown section [{unknown[0]}]{_suggest(unknown[0], SECTIONS)}; "
                       f"sections: {', '.join(SECTIONS)}")
    if "model" not in data:
        raise BadInput(f"{name}: missing [model] section (zoo = \"lstm_regressor\" or source = \"model.pt\")")
    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise BadInput(f"{name}: [{section}] must be a table")
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in table.items():
            if key not in known:
                raise BadInput(f"{name}: unknown key [{section}].{key}{_suggest(key, known)}; "
                               f"known: {', '.join(known)}")
            kwargs[key] = _coerce(f"{name}: [{section}].{key}", value, known[key].default, str(known[key].type))
        built[section] = cls(**kwargs)
    p = Pipeline(**built, base_dir=base_dir, source_text=source_text)
    _check_semantics(p, name)
    return p


def _check_semantics(p: Pipeline, name: str) -> None:
    from edgelstm.models import zoo
    from edgelstm.validation.gates import parse_gate

    m = p.model
    if (m.zoo is None) == (m.source is None):
        raise BadInput(f"{name}: [model] needs exactly one of zoo = \"<architecture>\" or source = \"<file>\"")
    if m.zoo is not None:
        zoo.zoo_entry(m.zoo)
    if m.source is not None and not p.resolve(m.source).exists():
        raise BadInput(f"{name}: [model].source {m.source!r} does not exist")
    for prec in p.quantize.precisions:
        if prec not in PRECISIONS:
            raise BadInput(f"{name}: [quantize].precisions has unknown {prec!r}{_suggest(prec, PRECISIONS)}; "
                           f"known: {', '.join(PRECISIONS)}")
    from edgelstm.machine.isa import TargetCpu

    if p.quantize.target_cpu not in {t.value for t in TargetCpu}:
        raise BadInput(f"{name}: [quantize].target_cpu must be one of {', '.join(t.value for t in TargetCpu)}, "
                       f"got {p.quantize.target_cpu!r}")
    if p.quantize.max_drift is not None:
        from converters.quant_fallback import DriftBudget

        try:
            DriftBudget.parse(p.quantize.max_drift)
        except BadInput as exc:
            raise BadInput(f"{name}: [quantize].max_drift: {exc.message.replace('--max-drift: ', '')}") from None
    if p.quantize.calib_method not in ("minmax", "entropy", "percentile"):
        raise BadInput(f"{name}: [quantize].calib_method must be minmax, entropy or percentile")
    for key in ("validation", "calibration"):
        path = getattr(p.data, key)
        if path is not None and not p.resolve(path).exists():
            raise BadInput(f"{name}: [data].{key} file {path!r} does not exist")
    if p.data.synthetic < 1 and p.data.validation is None:
        raise BadInput(f"{name}: [data] needs synthetic > 0 or a validation file")
    for gate in p.validate.gates:
        parse_gate(gate, source=f"{name} [validate].gates")
    for prec, gates in p.validate.precision_gates.items():
        if prec not in ("fp32", "fp32-stateful", *PRECISIONS):
            raise BadInput(f"{name}: [validate.precision_gates] has unknown precision {prec!r}")
        for gate in (gates if isinstance(gates, list) else [gates]):
            parse_gate(str(gate), source=f"{name} [validate.precision_gates].{prec}")
    if p.export.seq_len < 1 or p.data.seq < 1:
        raise BadInput(f"{name}: sequence lengths must be >= 1")


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"pipeline file {path} does not exist")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path.name} is not valid TOML: {exc}") from None
    return parse_pipeline(data, name=path.name, base_dir=path.resolve().parent, source_text=text)
