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
                           (_validate, "validate"), (_bench, "bench"), (_compare, "compare")):
        if section in skip:
            continue
        with problems.check(section):
            check(p, problems)


def _model(p: Pipeline, problems: Problems) -> None:
    from edgelstm.models import zoo

    m = p.model
    if (m.zoo is None) == (m.source is None):
        problems.add("[model] needs exactly one of zoo = \"<architecture>\" or source = \"<file>\"")
    _model_options(p, problems)
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
    csv = []
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
        if full.suffix.lower() == ".csv":
            csv.append(key)
    _data_size(p, problems)
    if d.synthetic < 1 and d.validation is None:
        problems.add("[data] needs synthetic > 0 or a validation file")
    for key in ("window", "features", "group"):
        if getattr(d, key) is not None and not csv:
            problems.add(f"[data].{key} applies to a .csv validation or calibration file")
    if csv and d.window is None and not p.model.static:
        problems.add(f"[data].{' and '.join(csv)}: a .csv file needs [data].window = T (rows per sequence)")
    if d.target is not None and "validation" not in csv:
        problems.add("[data].target names the label column of a .csv validation file")
    if d.horizon and d.target is None:
        problems.add("[data].horizon shifts the label: it needs [data].target")
    _calibration(p, problems)


def _calibration(p: Pipeline, problems: Problems) -> None:
    """Static INT8 is calibrated on real data: a calibration file, the zoo model's own task, or, only when
    asked for, [data].calibration_synthetic seeded N(0,1) sequences (never silently)."""
    d = p.data
    static = "int8-static" in p.quantize.precisions
    if d.calibration_synthetic is not None:
        if d.calibration is not None:
            problems.add("[data] has both calibration and calibration_synthetic; keep one")
        if not static:
            problems.add("[data].calibration_synthetic applies to int8-static in [quantize].precisions")
    elif static and d.calibration is None and p.model.zoo is None:
        problems.add("[quantize].precisions has int8-static but [data] names no calibration file: set "
                     "[data].calibration = \"calib.npz\" (sequences like the real inputs), calibrate on noise "
                     "knowingly with [data].calibration_synthetic = 128 (the report then says so), or drop "
                     "int8-static from [quantize].precisions")


def _validate(p: Pipeline, problems: Problems) -> None:
    from edgelstm.validation.gates import parse_gate

    for gate in p.validate.gates:
        with problems.check("validate"):
            parse_gate(gate, source="pipeline")
    if p.validate.baseline is not None:
        kind = path_kind(p.resolve(p.validate.baseline), what="[validate].baseline")
        if kind != "dir":
            problems.add(f"[validate].baseline {p.validate.baseline!r} must be an earlier run's output folder (or "
                         f"its validate/ folder); {'it does not exist' if kind == 'missing' else 'it is a file'}")
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


def _model_options(p: Pipeline, problems: Problems) -> None:
    """The options that say how the model is called and loaded, as the commands check them."""
    m = p.model
    with problems.check("model"):
        from edgelstm.pipeline.steps import input_options

        input_options(p)  # --input / --state-arg / --static, parsed as the CLI parses them
    if m.zoo is not None:
        for key in ("factory", "input", "state_arg"):
            value = getattr(m, key)
            if value:
                shown = list(value) if isinstance(value, tuple) else value
                problems.add(f"[model].{key} = {shown!r} applies to a source model; a zoo model is built by edgelstm "
                             "and called as it defines")
    if m.factory is None:
        return
    module, sep, func = m.factory.rpartition(":")
    if not sep or not module or not func:
        problems.add(f"[model].factory must look like \"pkg.module:function\" or \"path/to/file.py:function\", "
                     f"got {m.factory!r}")
    elif module.endswith(".py"):
        path = p.resolve(module)
        if path_kind(path, what="[model].factory") != "file":
            problems.add(f"[model].factory file {module!r} does not exist (relative to the pipeline file: {path})")


def _export(p: Pipeline, problems: Problems) -> None:
    from edgelstm.stages import ExportOptions

    e = p.export
    with problems.check("export"):  # the exporter's own limits (opset, seq_len above its maximum), in the file's words
        ExportOptions(input_size=p.model.input_size, seq_len=e.seq_len, batch=e.batch, opset=e.opset,
                      stateful=bool(e.stateful) and not p.model.static)
    if e.stateful and p.model.static:
        problems.add("[export].stateful = true and [model].static = true do not combine: a streaming model takes "
                     "one step at a time, a static one a single shape")


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
    if b.baseline is not None:
        kind = path_kind(p.resolve(b.baseline), what="[bench].baseline")
        if not b.enabled:
            problems.add("[bench].baseline needs [bench].enabled = true")
        if kind != "file" or not b.baseline.lower().endswith(".json"):
            problems.add(f"[bench].baseline {b.baseline!r} must be an earlier bench.json "
                         f"({'it does not exist' if kind == 'missing' else 'not a ' + kind})")
    from edgelstm.pipeline.cpu_engines import check_cpu_engines

    check_cpu_engines(p, problems)


def _compare(p: Pipeline, problems: Problems) -> None:
    from edgelstm.options import OnInconclusive

    c = p.compare
    choices = [o.value for o in OnInconclusive]
    if c.on_inconclusive not in choices:
        problems.add(f"[compare].on_inconclusive must be one of {', '.join(choices)}, got {c.on_inconclusive!r}")
    if c.against is not None and path_kind(p.resolve(c.against), what="[compare].against") != "dir":
        problems.add(f"[compare].against {c.against!r} must be the output folder of the run to compare with "
                     "(its artifacts are matched by file name)")
