"""Same-run accuracy comparison: validate NEW and OLD against the same reference on the same data, and gate on
NEW alone (the usual budgets: `--gate`, `--policy`) and on its change against OLD.

    compare_accuracy(reference, new, old, data, options, against=AgainstOptions()) -> AccuracyComparison

A pull request has two versions of a model (main's: OLD, the PR's: NEW). A stored validate report of OLD
would do only if it was made from the same reference, data and settings; measuring OLD in the same run
makes that true by construction. The change gates are the baseline gates (gates.baseline_gates) with OLD's
fresh result as the baseline: for every output and drift metric (and task metric) both have, NEW's
badness may be at most OLD's x max_growth + floor (`--max-growth 1.10 --baseline-floor 1e-6` by default: rel_l2
may not grow by more than 10% and 1e-6; tolerance = max_growth - 1 in the library). Their source is "against"; reports name them "vs OLD ...".

Pure: nothing printed, no exit; NEW's result carries the verdict (`passed`), its report dict an `against`
section (OLD, its drift, every change, OLD's own budget results for information).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from edgelstm.errors import BadInput, opt
from edgelstm.options import check_float
from edgelstm.validation.gates import DEFAULT_BASELINE_FLOOR, DEFAULT_BASELINE_TOLERANCE, GateResult, baseline_gates
from edgelstm.validation.metrics import HIGHER_IS_BETTER
from edgelstm.validation.validate import ValidateOptions, ValidationResult, validate_artifacts

PhaseProgress = Callable[[str, int, int], None]  # (phase "old" | "new", done, total)


@dataclass(frozen=True)
class AgainstOptions:
    """How much worse than OLD NEW may be: badness_new <= badness_old x (1 + tolerance) + floor."""

    tolerance: float = DEFAULT_BASELINE_TOLERANCE
    floor: float = DEFAULT_BASELINE_FLOOR

    def __post_init__(self) -> None:  # on the command line: --max-growth 1.10 (= tolerance 0.10), --baseline-floor
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance >= 0):
            raise BadInput(f"{opt('max_growth')} must be >= 1 (1.10 = drift may grow 10%), got {1 + self.tolerance!r}")
        check_float(self.floor, "baseline_floor")

    @property
    def max_growth(self) -> float:
        return 1.0 + self.tolerance


@dataclass
class AccuracyComparison:
    """NEW's validation (its gates: the budgets, then the change gates against OLD) and OLD's, on the same data."""

    new: ValidationResult
    old: ValidationResult
    options: AgainstOptions
    changes: list[GateResult]

    @property
    def passed(self) -> bool:
        return self.new.passed

    @property
    def failed_changes(self) -> list[GateResult]:
        return [g for g in self.changes if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        """NEW's validate report, with the `against` section."""
        return self.new.to_dict()


def _label(x: Any) -> str:
    from edgelstm.runners.contract import as_runner

    return str(x) if isinstance(x, (str, Path)) else as_runner(x).label


def compare_accuracy(reference: Any, new: Any, old: Any, data: Any, options: ValidateOptions = ValidateOptions(),
                     against: AgainstOptions = AgainstOptions(), *,
                     on_progress: PhaseProgress | None = None) -> AccuracyComparison:
    """Validate OLD, then NEW, against `reference` on `data` (a Dataset or DataRequest, as validate_artifacts
    takes; a DataRequest is resolved the same way twice: the same samples) and add NEW's change gates.

    options.gates are NEW's budgets (OLD's results against them are reported, not enforced); options.baseline,
    when given, applies to NEW only. Raises BadInput when NEW and OLD have no metric in common to compare."""
    def progress(phase: str) -> Callable[[int, int], None] | None:
        return None if on_progress is None else (lambda done, total: on_progress(phase, done, total))

    old_result = validate_artifacts(reference, old, data, replace(options, baseline=None, progress=progress("old")))
    new_result = validate_artifacts(reference, new, data, replace(options, progress=progress("new")))
    changes = [replace(g, source="against", message=g.message.replace("the baseline", "OLD"))
               for g in baseline_gates(old_result.to_dict(), new_result.to_dict(), tolerance=against.tolerance,
                                       floor=against.floor)]
    if not changes:
        raise BadInput(f"NEW ({Path(_label(new)).name}) and OLD ({Path(_label(old)).name}) have no output or task "
                       "metric in common to compare", hint=f"{opt('against')} needs two versions of the same model")
    new_result.gates = [*new_result.gates, *changes]
    new_result.passed = all(g.passed for g in new_result.gates)
    new_result.info["against"] = against_section(old_result, new_result, changes, against)
    return AccuracyComparison(new_result, old_result, against, changes)


def against_section(old: ValidationResult, new: ValidationResult, changes: list[GateResult],
                    against: AgainstOptions) -> dict[str, Any]:
    """The report's `against` section: OLD, its drift and own budget results, and every change NEW made."""
    warnings = []
    if old.samples != new.samples:
        warnings.append(f"OLD was validated on {old.samples} samples and NEW on {new.samples} (a fixed batch drops "
                        "the rest): the change compares slightly different sets")
    return {
        "old": old.candidate, "reference": old.reference, "samples": old.samples,
        "max_growth": against.max_growth, "tolerance": against.tolerance, "floor": against.floor,
        "passed": all(g.passed for g in changes), "compared": len(changes),
        "changes": [change_row(g) for g in changes],
        "old_outputs": old.outputs, "old_task": old.task,
        "old_streaming": None if old.streaming is None else old.streaming.get("outputs"),
        "old_gates": [g.to_dict() for g in old.gates], "old_passed": old.passed,
        "old_info": {k: old.info.get(k) for k in ("candidate_info", "warnings", "notes") if old.info.get(k)},
        "warnings": warnings,
    }


def change_row(g: GateResult) -> dict[str, Any]:
    """One metric: OLD's value, NEW's, the change (absolute and relative) and the limit NEW had to meet."""
    old, new = g.baseline, g.value
    delta = None if old is None or new is None else new - old
    rel = None if delta is None or not old else delta / abs(old)
    return {"metric": g.metric, "output": g.output, "old": old, "new": new, "delta": delta, "relative": rel,
            "op": g.op, "limit": g.limit, "passed": g.passed}


def change_text(c: Mapping[str, Any]) -> str:
    """A change in words: "+0.0021 (+12.0%)", "+0.0021 (x7.1e+04)" from near zero, "-8.5e-06" for cosine/accuracy."""
    delta, rel = c.get("delta"), c.get("relative")
    if delta is None:
        return "n/a"
    text = f"{delta:+.3g}"
    if rel is None or str(c.get("metric")).split(".")[-1] in HIGHER_IS_BETTER:
        return text
    return text + (f" ({rel:+.1%})" if abs(rel) < 10 else f" (×{c['new'] / c['old']:.3g})")


def against_markdown(rep: Mapping[str, Any], fmt: Callable[[Any, str], str]) -> list[str]:
    """Markdown lines for the report's `against` section (empty without one): a table of every change."""
    section = rep.get("against")
    if not section:
        return []
    verdict = "✅ no metric grew beyond" if section.get("passed") else "❌ drift grew beyond"
    lines = [f"#### NEW vs OLD (`{Path(str(section.get('old'))).name}`, same reference and data)", "",
             f"{verdict} {section.get('max_growth', 1 + section.get('tolerance', 0)):g} × OLD + "
             f"{section.get('floor'):g}.", "",
             "| metric | OLD | NEW | change | limit | result |", "|---|---|---|---|---|---|"]
    for c in section.get("changes", []):
        metric = str(c["metric"]).split(".")[-1]
        name = c["metric"] + (f":{c['output']}" if c.get("output") else "")
        lines.append(f"| {name} | {fmt(c.get('old'), metric)} | {fmt(c.get('new'), metric)} | {change_text(c)} | "
                     f"{c.get('op')} {fmt(c.get('limit'), metric)} | {'✅ pass' if c.get('passed') else '❌ **fail**'} |")
    old_failed = [g for g in section.get("old_gates", []) if not g.get("passed")]
    if old_failed:
        lines += ["", f"OLD itself misses {len(old_failed)} budget(s): "
                  + "; ".join(g.get("message") or g["metric"] for g in old_failed[:3])]
    for w in section.get("warnings") or []:
        lines += ["", f"> ⚠️ {w}"]
    return lines + [""]


__all__ = ["AccuracyComparison", "AgainstOptions", "against_markdown", "change_text", "compare_accuracy"]
