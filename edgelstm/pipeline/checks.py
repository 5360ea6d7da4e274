"""The whole pipeline file checked before any stage runs: every section's values and how they fit together.
Every problem is collected and reported at once, in one line, in the file's words (``[bench].iters``)."""

from __future__ import annotations

import contextlib
import difflib
from typing import Any, Collection, Iterator

from edgelstm.errors import BadInput, EdgeLSTMError
from edgelstm.fileio import path_kind
from edgelstm.pipeline.schema import PRECISIONS, VALIDATED, Pipeline, in_pipeline_words


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """Collects one-line problems; ``raise_any`` raises them as one BadInput naming the file."""

    def __init__(self, name: str):
        self.name = name
        self.items: list[str] = []

    @contextlib.contextmanager
    def check(self, section: str | None = None) -> Iterator[None]:
        try:
            yield
        except EdgeLSTMError as exc:
            self.items.append(str(in_pipeline_words(exc, section)))

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_any(self) -> None:
        if self.items:
            raise BadInput(f"{self.name}: " + "; ".join(self.items))


def check_pipeline(p: Pipeline, problems: Problems, *, skip: Collection[str] = ()) -> None:
    """Add every problem of a parsed pipeline to ``problems`` (nothing is run, nothing is written); sections
    in ``skip`` already have a problem with a value's type."""
    for check, section in ((_model, "model"), (_export, "export"), (_quantize, "quantize"), (_data, "data"),
                           (_validate, "validate"), (_bench, "bench")):
        if section in skip:
            continue
        with problems.check(section):
            check(p, problems)


def _model(p: Pipeline, problems: Problems) -> None:
    from edgelstm.models import zoo

    m = p.model
    if (m.zoo is None) == (m.source is None):
        problems.add("[model] needs exactly one of zoo = \"<architecture>\" or source = \"<file>\"")
    if m.input:
        with problems.check("model"):
            from edgelstm.models.inputs import parse_inputs

            parse_inputs(m.input)
    if m.source is not None:
        src = p.resolve(m.source)
        kind = path_kind(src, what="[model].source")
        if kind == "missing":
            problems.add(f"[model].source {m.source!r} does not exist")
        elif kind == "dir":
            problems.add(f"[model].source {m.source!r} is a directory, not a model file")
        if m.config:
            problems.add("[model].config applies to zoo models; a source model is loaded as it is")
    if m.keras_reference is not None and path_kind(p.resolve(m.keras_reference), what="[model].keras_reference") != "file":
        problems.add(f"[model].keras_reference {m.keras_reference!r} is not a file")
    if m.zoo is None:
        return
    if m.zoo not in zoo.ZOO:
        problems.add(f"[model].zoo: unknown architecture {m.zoo!r}{suggest(m.zoo, zoo.ZOO)}; "
                     f"known: {', '.join(zoo.ZOO)}")
        return
    defaults = zoo.zoo_entry(m.zoo).defaults
    for key, value in m.config.items():
        if key not in defaults:
            problems.add(f"[model].config: unknown key {key!r} for {m.zoo}{suggest(key, defaults)}; "
                         f"known: {', '.join(defaults)}")
        elif isinstance(defaults[key], int) and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.add(f"[model].config.{key} must be a positive integer, got {value!r}")


def _quantize(p: Pipeline, problems: Problems) -> None:
    from edgelstm.machine.isa import TargetCpu
    from edgelstm.options import CalibMethod
    from edgelstm.validation.gates import parse_budget

    q = p.quantize
    for prec in q.precisions:
        if prec not in PRECISIONS:
            problems.add(f"[quantize].precisions has unknown {prec!r}{suggest(prec, PRECISIONS)}; "
                         f"known: {', '.join(PRECISIONS)}")
    targets = [t.value for t in TargetCpu]
    if q.target_cpu not in targets:
        problems.add(f"[quantize].target_cpu must be one of {', '.join(targets)}, got {q.target_cpu!r}")
    methods = [c.value for c in CalibMethod]
    if q.calib_method not in methods:
        problems.add(f"[quantize].calib_method must be one of {', '.join(methods)}, got {q.calib_method!r}")
    if q.max_drift is not None:
        with problems.check("quantize"):
            parse_budget(q.max_drift)


def _data(p: Pipeline, problems: Problems) -> None:
    from edgelstm.data import DATA_SUFFIXES

    d = p.data
    csv = False
    for key in ("validation", "calibration"):
        path = getattr(d, key)
        if path is None:
            continue
        full = p.resolve(path)
        kind = path_kind(full, what=f"[data].{key}")
        if kind == "missing":
            problems.add(f"[data].{key} file {path!r} does not exist")
        elif kind == "dir":
            problems.add(f"[data].{key} {path!r} is a directory, not a data file")
        elif full.suffix.lower() not in DATA_SUFFIXES:
            problems.add(f"[data].{key} {path!r}: unknown data format; use {', '.join(DATA_SUFFIXES)}")
        csv = csv or full.suffix.lower() == ".csv"
    _data_size(p, problems)
    if d.synthetic < 1 and d.validation is None:
        problems.add("[data] needs synthetic > 0 or a validation file")
    for key in ("window", "features", "group"):
        if getattr(d, key) is not None and not csv:
            problems.add(f"[data].{key} applies to a .csv validation or calibration file")
    if d.target is not None and not str(d.validation or "").lower().endswith(".csv"):
        problems.add("[data].target names the label column of a .csv validation file")
    if d.horizon and d.target is None:
        problems.add("[data].horizon shifts the label: it needs [data].target")


def _validate(p: Pipeline, problems: Problems) -> None:
    from edgelstm.validation.gates import parse_gate

    for gate in p.validate.gates:
        with problems.check("validate"):
            parse_gate(gate, source="pipeline")
    for prec, gates in p.validate.precision_gates.items():
        if prec not in VALIDATED:
            problems.add(f"[validate.precision_gates] has unknown precision {prec!r}{suggest(prec, VALIDATED)}; "
                         f"known: {', '.join(VALIDATED)}")
        listed: Any = gates if isinstance(gates, (list, tuple)) else [gates]
        for gate in listed:
            if not isinstance(gate, str):
                problems.add(f"[validate.precision_gates].{prec} must be a list of gate strings, got {gate!r}")
                continue
            with problems.check("validate"):
                parse_gate(gate, source="pipeline")


def _export(p: Pipeline, problems: Problems) -> None:
    from edgelstm.stages import ExportOptions

    e = p.export
    with problems.check("export"):  # the exporter's own limits (opset, seq_len above its maximum), in the file's words
        ExportOptions(input_size=p.model.input_size, seq_len=e.seq_len, batch=e.batch, opset=e.opset,
                      stateful=e.stateful)


def _data_size(p: Pipeline, problems: Problems) -> None:
    """Synthetic samples that could never fit in memory are refused before training starts."""
    from edgelstm.models import zoo
    from edgelstm.options import check_alloc

    d = p.data
    features = p.model.input_size or p.model.config.get("input_size") or (
        zoo.zoo_entry(p.model.zoo).input_size if p.model.zoo in zoo.ZOO else 1)
    if d.synthetic > 0 and isinstance(features, int) and features > 0:
        with problems.check("data"):
            check_alloc([d.synthetic, d.seq, features], 8, what=f"[data] synthetic = {d.synthetic} samples of "
                        f"seq = {d.seq}", hint="use fewer samples or a shorter [data].seq")


def _bench(p: Pipeline, problems: Problems) -> None:
    from edgelstm.latency.harness import TimingPolicy

    b = p.bench
    with problems.check("bench"):
        TimingPolicy(warmup=b.warmup, iters=b.iters)  # the library's own limits, in the file's words
    from edgelstm.pipeline.cpu_engines import check_cpu_engines

    check_cpu_engines(p, problems)
