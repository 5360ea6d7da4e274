"""Gates: drift budgets as data. `--gate METRIC[:OUTPUT]<=VALUE` (repeatable), a policy TOML with a default and
per-output budgets, and a baseline report whose drift must not grow beyond a ratio (``--max-growth``).

Gate syntax: ``rel_l2<=0.01`` (every compared output), ``max_abs:y<=0.05`` (one output), ``cosine>=0.999``,
``accuracy>=0.9`` (task metrics need labels), ``streaming.max_abs<=1e-4`` (stateful candidates fed in chunks),
``METRIC=VALUE`` (the metric's natural direction: >= for cosine, accuracy and agreement, <= for everything else).

Policy file (TOML)::

    [default]            # every compared output
    rel_l2 = 0.01
    cosine = 0.999       # a bare number takes the natural direction (>= here)
    [outputs.y]          # per-output budgets override the default for that output
    max_abs = 0.05
    [task]               # needs labels (y in the .npz, or --target for a .csv)
    accuracy = ">= 0.95"
    [streaming]          # stateful candidates only: the sequence fed in chunks, state carried
    max_abs = 1e-4
    [baseline]           # used with --baseline OLD.json: drift may grow to 1.10x the baseline's,
    max_growth = 1.10    # plus `floor` absolute, so zero-drift baselines don't false-alarm (floor = 1e-6)

Unknown metrics, outputs or keys are BadInput naming them. Evaluation collects every failing gate. A drift budget
(``METRIC<=VALUE``, the quantize fallback's ``--max-drift``) is parsed here too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from edgelstm.console import fmt_value  # messages: 3 significant digits
from edgelstm.errors import BadInput, opt
from edgelstm.validation.metrics import (CLASSIFICATION_METRICS, DRIFT_METRICS, HIGHER_IS_BETTER, REGRESSION_METRICS,
                                         TASK_METRICS, GATE_PREFIX, badness)

OUTPUT_METRICS = DRIFT_METRICS + ("max_step_rmse",)
STREAMING_METRICS = tuple(f"streaming.{m}" for m in OUTPUT_METRICS)
ALL_METRICS = OUTPUT_METRICS + TASK_METRICS + STREAMING_METRICS
OPS = ("<=", ">=")
DEFAULT_BASELINE_TOLERANCE = 0.10
DEFAULT_BASELINE_FLOOR = 1e-6
BASELINE_METRICS = DRIFT_METRICS + ("mse", "mae", "accuracy", "agreement")
#: drift metrics a single upper budget holds (smaller is better): what ``--max-drift`` accepts
BUDGET_METRICS = tuple(m for m in DRIFT_METRICS if m not in HIGHER_IS_BETTER)

_GATE_RE = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)(?::(?P<output>[^<>=\s]+))?\s*"
                      r"(?P<op><=|>=|=)\s*(?P<value>\S+)\s*$")


def scope_of(metric: str) -> str:
    if metric.startswith("streaming."):
        return "streaming"
    return "task" if metric in TASK_METRICS else "outputs"


def natural_op(metric: str) -> str:
    return ">=" if metric.split(".")[-1] in HIGHER_IS_BETTER else "<="


@dataclass(frozen=True)
class Gate:
    """One budget: ``metric`` of ``output`` (None: every compared output, or the task output) ``op`` ``limit``."""

    metric: str
    limit: float
    op: str = "<="
    output: str | None = None
    source: str = "cli"  # cli | policy | baseline | against

    @property
    def scope(self) -> str:
        return scope_of(self.metric)

    def describe(self) -> str:
        return f"{self.metric}{':' + self.output if self.output else ''}{self.op}{self.limit:g}"


@dataclass
class GateResult:
    metric: str
    output: str | None
    limit: float
    value: float | None
    passed: bool
    op: str = "<="
    source: str = "cli"
    message: str = ""
    baseline: float | None = None

    @property
    def name(self) -> str:
        prefix = GATE_PREFIX.get(self.source, "")
        return f"{prefix}{self.metric}{':' + self.output if self.output else ''} {self.op} {self.limit:.6g}"

    def to_dict(self) -> dict[str, Any]:
        d = {"metric": self.metric, "output": self.output, "limit": self.limit, "value": self.value,
             "passed": self.passed, "op": self.op, "source": self.source}
        if self.message:
            d["message"] = self.message
        if self.baseline is not None:
            d["baseline"] = self.baseline
        return d


@dataclass(frozen=True)
class Policy:
    gates: tuple[Gate, ...] = ()
    baseline_tolerance: float | None = None
    baseline_floor: float | None = None
    path: str | None = None
    deprecated: tuple[str, ...] = ()  # old spellings in the file, for the caller's deprecation notes


# ------------------------------------------------------------------------------------------ parsing


def _check_metric(metric: str, where: str) -> None:
    if metric not in ALL_METRICS:
        raise BadInput(f"{where}: unknown metric {metric!r}; known: {', '.join(ALL_METRICS)}")


def _number(text: Any, where: str) -> float:
    if isinstance(text, bool):
        raise BadInput(f"{where}: expected a number, got {text!r}")
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise BadInput(f"{where}: expected a number, got {text!r}") from None
    if math.isnan(v):
        raise BadInput(f"{where}: the limit is NaN")
    return v


def parse_gate(text: str, *, source: str = "cli") -> Gate:
    """Parse ``METRIC[:OUTPUT]<=VALUE`` / ``>=`` / ``=`` (natural direction)."""
    m = _GATE_RE.match(text or "")
    if not m:
        raise BadInput(f"{opt('gate')} {text!r} is not METRIC[:OUTPUT]<=VALUE (e.g. rel_l2:y<=0.01, cosine>=0.999)")
    metric = m["metric"]
    _check_metric(metric, f"{opt('gate')} {text!r}")
    op = m["op"] if m["op"] != "=" else natural_op(metric)
    limit = _number(m["value"], f"{opt('gate')} {text!r}")  # an OUTPUT on a task metric names the task output
    return Gate(metric, limit, op, m["output"], source)


def parse_gates(texts: Iterable[str] | None) -> list[Gate]:
    return [parse_gate(t) for t in (texts or [])]


def _budget(metric: str, value: Any, where: str, output: str | None) -> Gate:
    _check_metric(metric, where)
    op = natural_op(metric)
    if isinstance(value, str):
        s = value.strip()
        for candidate in OPS:
            if s.startswith(candidate):
                op, s = candidate, s[len(candidate):]
                break
        limit = _number(s.strip(), f"{where}.{metric}")
    elif isinstance(value, Mapping):
        unknown = set(value) - {"max", "min"}
        if unknown or len(value) != 1:
            raise BadInput(f"{where}.{metric}: use a number, \"<= x\", \">= x\", {{max = x}} or {{min = x}}; "
                           f"got keys {sorted(value)}")
        (k, v), = value.items()
        op = "<=" if k == "max" else ">="
        limit = _number(v, f"{where}.{metric}.{k}")
    else:
        limit = _number(value, f"{where}.{metric}")
    return Gate(metric, limit, op, output, "policy")


POLICY_KEYS = ("default", "outputs", "task", "streaming", "baseline")


def parse_policy(data: Mapping[str, Any], *, name: str = "policy") -> Policy:
    """A policy from a parsed TOML mapping (see the module docstring for the layout)."""
    unknown = [k for k in data if k not in POLICY_KEYS]
    if unknown:
        raise BadInput(f"{name}: unknown key {unknown[0]!r}; known sections: {', '.join(POLICY_KEYS)}")
    gates: list[Gate] = []

    def table(key: str) -> Mapping[str, Any]:
        v = data.get(key, {})
        if not isinstance(v, Mapping):
            raise BadInput(f"{name}: [{key}] must be a table")
        return v

    for metric, value in table("default").items():
        if scope_of(metric) != "outputs" and metric in ALL_METRICS:
            raise BadInput(f"{name}: [default].{metric} is not a per-output metric; put it under "
                           f"[{scope_of(metric)}]")
        gates.append(_budget(metric, value, f"{name}: [default]", None))
    for output, budgets in table("outputs").items():
        if not isinstance(budgets, Mapping):
            raise BadInput(f"{name}: [outputs.{output}] must be a table of metric = limit")
        for metric, value in budgets.items():
            if scope_of(metric) != "outputs" and metric in ALL_METRICS:
                raise BadInput(f"{name}: [outputs.{output}].{metric} is not a per-output metric")
            gates.append(_budget(metric, value, f"{name}: [outputs.{output}]", output))
    for metric, value in table("task").items():
        if metric not in TASK_METRICS:
            raise BadInput(f"{name}: [task]: unknown metric {metric!r}; known: {', '.join(TASK_METRICS)}")
        gates.append(_budget(metric, value, f"{name}: [task]", None))
    for metric, value in table("streaming").items():
        if isinstance(value, Mapping) and metric not in OUTPUT_METRICS:  # [streaming.y] per-output
            for m2, v2 in value.items():
                if m2 not in OUTPUT_METRICS:
                    raise BadInput(f"{name}: [streaming.{metric}]: unknown metric {m2!r}; known: {', '.join(OUTPUT_METRICS)}")
                gates.append(_budget(f"streaming.{m2}", v2, f"{name}: [streaming.{metric}]", metric))
            continue
        if metric not in OUTPUT_METRICS:
            raise BadInput(f"{name}: [streaming]: unknown metric {metric!r}; known: {', '.join(OUTPUT_METRICS)}")
        gates.append(_budget(f"streaming.{metric}", value, f"{name}: [streaming]", None))
    base = table("baseline")
    bad = [k for k in base if k not in ("max_growth", "tolerance", "floor")]
    if bad or ("max_growth" in base and "tolerance" in base):
        raise BadInput(f"{name}: [baseline]: " + (f"unknown key {bad[0]!r}; known: max_growth, floor" if bad else
                                                  "give max_growth only (tolerance is its old spelling)"))
    tol = _number(base["tolerance"], f"{name}: [baseline].tolerance") if "tolerance" in base else None
    if "max_growth" in base:  # bench's ratio convention (--max-slowdown): 1.10 = drift may grow 10 %
        tol = _number(base["max_growth"], f"{name}: [baseline].max_growth") - 1.0
    floor = _number(base["floor"], f"{name}: [baseline].floor") if "floor" in base else None
    if (tol is not None and tol < 0) or (floor is not None and floor < 0):
        raise BadInput(f"{name}: [baseline] max_growth must be >= 1 and floor >= 0")
    old = [f"{name}: [baseline] tolerance = {base['tolerance']} is now max_growth = {1 + tol:g}"] if "tolerance" in base else []
    return Policy(tuple(gates), tol, floor, name, tuple(old))


def load_policy(path: str | Path) -> Policy:
    from edgelstm.fileio import parse_toml, read_text_file

    p = Path(path)
    return parse_policy(parse_toml(read_text_file(p, what="policy file"), name=f"policy file {p.name}"), name=p.name)


def check_budget(metric: str, limit: float, *, option: str = "max_drift") -> None:
    """A drift budget holds a known smaller-is-better metric and a finite limit >= 0."""
    if metric not in BUDGET_METRICS:
        raise BadInput(f"{opt(option)}: unknown metric {metric!r}; use one of {', '.join(BUDGET_METRICS)}")
    if not math.isfinite(limit) or limit < 0:
        raise BadInput(f"{opt(option)}: the limit must be a finite number >= 0, got {limit}")


def parse_budget(text: str, *, option: str = "max_drift") -> tuple[str, float]:
    """``rel_l2<=0.01`` (the --gate syntax; also ``rel_l2=0.01``, the natural direction) -> (metric, limit), checked."""
    t = str(text).replace("<=", "=").replace(":", "=").replace(" ", "")
    if t.count("=") != 1:
        raise BadInput(f"{opt(option)} must look like METRIC<=VALUE (e.g. rel_l2<=0.01), got {text!r}")
    metric, value = t.split("=")
    try:
        limit = float(value)
    except ValueError:
        raise BadInput(f"{opt(option)}: {value!r} is not a number (in {text!r})") from None
    check_budget(metric.lower(), limit, option=option)
    return metric.lower(), limit


# ------------------------------------------------------------------------------------------ resolving


def resolve_gates(gates: Iterable[Gate], outputs: list[str], *, task_kind: str | None = None,
                  task_output: str | None = None, streaming_outputs: list[str] | None = None) -> list[Gate]:
    """Expand gates to one per (metric, output); later gates override earlier ones for the same key.

    CLI gates with an unknown output, or needing labels/streaming that this run does not have, are
    BadInput; policy gates that do not apply (no labels, stateless candidate) are dropped silently."""
    resolved: dict[tuple[str, str | None, str], Gate] = {}
    # policy first (defaults, then per output), then CLI (defaults, then per output): most specific wins
    order = sorted(gates, key=lambda g: (g.source != "policy", g.output is not None))
    for g in order:
        strict = g.source != "policy"
        where = f"{opt('gate')} {g.describe()}" if strict else f"policy gate {g.describe()}"
        if g.scope == "task":
            if task_kind is None:
                if strict:
                    raise BadInput(f"{where}: task metrics need labels (y in the .npz, or {opt('target')} for a .csv)")
                continue
            allowed = REGRESSION_METRICS if task_kind == "regression" else CLASSIFICATION_METRICS
            if g.metric not in allowed:
                if strict:
                    raise BadInput(f"{where}: {g.metric!r} is not a {task_kind} metric; use one of {', '.join(allowed)}")
                continue
            if g.output is not None and g.output != task_output:
                raise BadInput(f"{where}: task metrics are computed on output {task_output!r}, not {g.output!r}")
            targets = [task_output]
        elif g.scope == "streaming":
            if not streaming_outputs:
                if strict:
                    raise BadInput(f"{where}: streaming metrics need a stateful candidate (inputs h0/c0)")
                continue
            if g.output is not None and g.output not in streaming_outputs:
                raise BadInput(f"{where}: unknown output {g.output!r}; streamed outputs are {streaming_outputs}")
            targets = [g.output] if g.output else list(streaming_outputs)
        else:
            if g.output is not None and g.output not in outputs:
                raise BadInput(f"{where}: unknown output {g.output!r}; the compared outputs are {outputs}")
            targets = [g.output] if g.output else list(outputs)
        for out in targets:
            resolved[(g.metric, out, g.op)] = replace(g, output=out)
    return list(resolved.values())


def _lookup(result: Mapping[str, Any], metric: str, output: str | None) -> float | None:
    scope = scope_of(metric)
    if scope == "task":
        v = (result.get("task") or {}).get(metric)
        return None if v is None else float(v)
    base = result.get("outputs", {}) if scope == "outputs" else (result.get("streaming") or {}).get("outputs", {})
    m = base.get(output or "", {})
    name = metric.split(".", 1)[1] if scope == "streaming" else metric
    if name == "max_step_rmse":
        steps = m.get("per_step_rmse")
        return float(max(steps)) if steps else None
    v = m.get(name)
    return None if v is None else float(v)


def _passes(value: float, op: str, limit: float) -> bool:
    if math.isnan(value):
        return False
    return value <= limit if op == "<=" else value >= limit


def evaluate_gates(gates: Iterable[Gate], result: Mapping[str, Any]) -> list[GateResult]:
    """Evaluate every gate against a result dict ({"outputs", "task", "streaming"}); never stops early."""
    out: list[GateResult] = []
    for g in gates:
        value = _lookup(result, g.metric, g.output)
        if value is None:
            out.append(GateResult(g.metric, g.output, g.limit, None, False, g.op, g.source,
                                  f"{g.metric} was not computed for {g.output!r}"))
            continue
        ok = _passes(value, g.op, g.limit)
        msg = "" if ok else (f"{g.metric}{':' + g.output if g.output else ''} = {fmt_value(value, g.limit)}, "
                             f"budget {g.op} {g.limit:g}")
        out.append(GateResult(g.metric, g.output, g.limit, value, ok, g.op, g.source, msg))
    return out


# ------------------------------------------------------------------------------------------ baseline


def load_baseline(path: str | Path) -> dict[str, Any]:
    from edgelstm.fileio import load_json_file
    from edgelstm.validation.reports.validate_json import report_problem

    data = load_json_file(p := Path(path), what="baseline report")
    if (problem := report_problem(data)) is not None:
        raise BadInput(f"baseline {p.name} is not an `edgelstm validate --report` file ({problem})")
    return data


def baseline_gates(baseline: Mapping[str, Any], result: Mapping[str, Any], *,
                   tolerance: float = DEFAULT_BASELINE_TOLERANCE,
                   floor: float = DEFAULT_BASELINE_FLOOR) -> list[GateResult]:
    """Fail where drift grew: new badness <= old badness * (1 + tolerance) + floor, for every output and
    metric present in both reports (errors directly; cosine/accuracy/agreement as 1 - value)."""
    if tolerance < 0 or floor < 0:
        raise BadInput(f"{opt('max_growth')} must be >= 1 and {opt('baseline_floor')} >= 0")
    results: list[GateResult] = []

    def compare(metric: str, output: str | None, old: Any, new: Any, gate_metric: str) -> None:
        if not isinstance(old, (int, float)) or not isinstance(new, (int, float)) or isinstance(old, bool):
            return
        bad_limit = max(0.0, badness(metric, float(old))) * (1.0 + tolerance) + floor
        higher = metric in HIGHER_IS_BETTER
        limit = 1.0 - bad_limit if higher else bad_limit
        op = ">=" if higher else "<="
        ok = _passes(float(new), op, limit)
        msg = "" if ok else (f"{gate_metric}{':' + output if output else ''} = {fmt_value(float(new), limit)} drifted "
                             f"beyond the baseline {fmt_value(float(old))} (+{tolerance:.0%} + {floor:g}: {op} "
                             f"{fmt_value(limit, float(new))})")
        results.append(GateResult(gate_metric, output, limit, float(new), ok, op, "baseline", msg, float(old)))

    for output, old_m in (baseline.get("outputs") or {}).items():
        new_m = (result.get("outputs") or {}).get(output)
        if not isinstance(new_m, Mapping) or not isinstance(old_m, Mapping):
            continue
        for metric in DRIFT_METRICS:
            compare(metric, output, old_m.get(metric), new_m.get(metric), metric)
    old_task, new_task = baseline.get("task") or {}, result.get("task") or {}
    task_out = new_task.get("output")
    for metric in BASELINE_METRICS[len(DRIFT_METRICS):]:
        compare(metric, task_out, old_task.get(metric), new_task.get(metric), metric)
    old_s = (baseline.get("streaming") or {}).get("outputs") or {}
    new_s = (result.get("streaming") or {}).get("outputs") or {}
    for output, old_m in old_s.items():
        if output in new_s:
            for metric in DRIFT_METRICS:
                compare(metric, output, old_m.get(metric), new_s[output].get(metric), f"streaming.{metric}")
    return results


__all__ = ["ALL_METRICS", "BUDGET_METRICS", "Gate", "GateResult", "Policy", "parse_gate", "parse_gates", "parse_policy",
           "load_policy", "parse_budget", "check_budget", "resolve_gates", "evaluate_gates", "load_baseline",
           "baseline_gates", "natural_op", "DEFAULT_BASELINE_TOLERANCE", "DEFAULT_BASELINE_FLOOR"]
