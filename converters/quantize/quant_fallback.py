"""Accuracy-aware fallback: quantize, measure the drift of the outputs against the FP32 ONNX model on the
user's data, and keep the most sensitive nodes in float until the drift fits a budget
(``--max-drift rel_l2=0.01``), or fail (GateFailed, exit 1) with the best drift reached.

Sensitivity is measured by *leave-one-out*: with every other candidate quantized, keep one node in float
and re-measure. That is the question the greedy step asks ("which node, kept in float next, removes the
most drift?"), and it measures a node's effect with the other quantization errors present, which is how
errors compound through a recurrence (quantizing one node alone underestimates it). The greedy loop
re-measures every remaining candidate after each choice while there are at most ``rerank_limit`` of them
(recurrent models have a handful: the LSTM, a few MatMul/Gemm); beyond that it ranks once and re-measures
only the drift after each step. A configuration must keep at least one node quantized: keeping everything
in float is not an INT8 (or FP16) model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from edgelstm.errors import BadInput, GateFailed, opt
from edgelstm.safe_files import private_tempdir
from edgelstm.options import Precision

from edgelstm.converters.quantize.quant_report import OpRow, QuantResult

FP16_CPU_NOTE = ("onnxruntime on CPU has no FP16 LSTM/GRU kernel: it runs them in FP32 (and drops the cast of their "
                 "input), so FP16 drift measured on CPU is optimistic; validate on the target GPU")
#: nodes not worth keeping in float to save accuracy (no arithmetic, or cannot be kept as a whole)
_NOT_CANDIDATES = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Concat", "Split",
                             "Flatten", "Expand", "Identity", "Constant", "ConstantOfShape", "Shape", "Size", "Cast",
                             "Loop", "If", "Scan", "Tile", "Pad"})


class DriftEvaluator(Protocol):
    """What the fallback measures with, given by the quantize stage's caller (the CLI, the pipeline:
    ``edgelstm.validation.budget.DriftBudget``): the budget, the drift of a trial's outputs against the FP32
    model's, and the localisation ranking of the candidates in the all-quantized model."""

    metric: str
    limit: float

    def describe(self) -> str: ...

    def drift(self, reference: Sequence[Mapping[str, np.ndarray]],
              candidate: Sequence[Mapping[str, np.ndarray]]) -> float: ...

    def rank(self, src: Path, trial: Path, batches: list[Mapping[str, np.ndarray]], level: str,
             candidates: list[str]) -> tuple[list[str], list[dict[str, Any]]]: ...


@dataclass(frozen=True)
class FallbackOptions:
    rerank_limit: int = 12        # re-measure every candidate each round while at most this many remain
    max_trials: int = 200         # quantize-and-measure budget
    strategy: str = "localize"    # "localize": rank by drift localisation first (fallback_ranking); "leave-one-out"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BadInput(f"fallback strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")


STRATEGIES = ("localize", "leave-one-out")


def _measurement_batches(data: Iterable[Mapping[str, np.ndarray]], io) -> list[dict[str, np.ndarray]]:
    from edgelstm.artifacts.iospec import check_feeds

    if data is None:
        raise BadInput(f"{opt('max_drift')} needs data to measure the drift on: pass {opt('data')} DATA")
    batches = [check_feeds(io, b, what=f"{opt('data')} batch {i}") for i, b in enumerate(data)]
    if not batches:
        raise BadInput(f"{opt('data')} is empty; the drift budget needs at least one sample")
    return batches


class _Fp16Job:
    """The FP16 converter in the fallback's terms: quantize(keep_float) -> (model, rows)."""

    precision = Precision.fp16

    def __init__(self, src: Path, options):
        from edgelstm.artifacts.onnx_graph import load_onnx, name_unnamed_nodes, reject_quantized, resolve_patterns

        self.src, self.options = src, options
        self.parent = load_onnx(src)
        reject_quantized(self.parent, src.name, target="FP16 conversion")
        self.base = type(self.parent)()
        self.base.CopyFrom(self.parent)
        name_unnamed_nodes(self.base)
        self.excluded, self.by_pattern = (resolve_patterns(self.base, options.exclude) if options.exclude
                                          else (set(), {}))
        from edgelstm.converters.quantize.fp16 import layer_kept

        self.kept = {**dict.fromkeys(self.excluded, "excluded by --exclude"), **layer_kept(self.base, options)}
        self.stats: dict[str, Any] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def quantize(self, keep_float: Mapping[str, str] = {}):  # noqa: B006 - read only
        from edgelstm.converters.quantize.fp16 import check_converted, convert_model_to_fp16

        model = type(self.base)()
        model.CopyFrom(self.base)
        model, rows, stats = convert_model_to_fp16(model, keep_io_types=self.options.keep_io_types,
                                                   keep_fp32={**self.kept, **keep_float})
        check_converted(model)
        self.stats = stats.to_dict()
        rows = [OpRow(r.node, r.op, r.precision, keep_float[r.node], r.graph, r.became)
                if r.node in keep_float and r.precision != "n/a" else r for r in rows]
        return model, rows

    def write(self, model, rows, out: Path, extra: Mapping[str, Any] | None = None) -> QuantResult:
        from edgelstm.converters.quantize.quant_report import write_quantized

        details = {"precision": "fp16", "mode": None, "method": None, "keep_io_types": self.options.keep_io_types,
                   "excluded": sorted(self.excluded), "exclude_patterns": dict(self.by_pattern), "fp16": self.stats,
                   "converter": "edgelstm (precision regions)", **(extra or {})}
        return write_quantized(model, self.src, out, precision=Precision.fp16, parent_model=self.parent, rows=rows,
                               details=details, probe=self.options.probe)


def _candidates(rows: list[OpRow], precision: Precision) -> list[str]:
    want = "int8" if precision == Precision.int8 else "fp16"
    out: list[str] = []
    for r in rows:
        if r.precision == want and r.op not in _NOT_CANDIDATES and r.node not in out:
            out.append(r.node)
    return out


@dataclass
class _Trials:
    """Quantize-and-measure, counted: each trial writes the model and runs it over the batches in onnxruntime
    (``edgelstm.artifacts.ort``, at the level found safe) for the evaluator to measure."""

    job: Any
    budget: DriftEvaluator
    batches: list[dict[str, np.ndarray]]
    reference: list[dict[str, np.ndarray]]
    path: Path
    level: str = "all"
    count: int = 0

    def measure(self, keep: Mapping[str, str]) -> tuple[float, Any, list[OpRow]]:
        self.count += 1
        model, rows = self.job.quantize(keep)
        self.path.write_bytes(model.SerializeToString())
        return self.drift(), model, rows

    def drift(self) -> float:
        """The drift of the model at ``path`` (the last one written)."""
        from edgelstm.artifacts.ort import session_outputs

        return self.budget.drift(self.reference, session_outputs(self.path, self.batches, opt_level=self.level))


@dataclass
class _Search:
    """The greedy search's state: nodes kept float (with their reasons), its steps, the leave-one-out sensitivity
    of the first round, and the best configuration measured (drift, model, rows, kept)."""

    drift: float
    kept: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    sensitivity: dict[str, float] = field(default_factory=dict)
    best: tuple[float, Any, list[OpRow], dict[str, str]] | None = None


def quantize_with_budget(src: str | Path, out: str | Path, precision: Precision | str, options: Any,
                         budget: DriftEvaluator, data: Iterable[Mapping[str, np.ndarray]],
                         calib: Iterable[Mapping[str, np.ndarray]] | None = None,
                         fallback: FallbackOptions = FallbackOptions(),
                         on_step: Callable[[str], None] | None = None) -> QuantResult:
    """Quantize ``src`` (FP16 with Fp16Options or INT8 with Int8Options) keeping the most drift-sensitive
    nodes in float until ``budget`` (the evaluator the stage's caller built, edgelstm.validation.budget.DriftBudget)
    holds on ``data`` (outputs vs the FP32 ONNX model). Raises GateFailed (exit 1) when no configuration with at
    least one quantized node meets the budget; nothing is written."""
    from edgelstm.artifacts.artifact import io_spec_of
    from edgelstm.artifacts.ort import session_outputs

    say = on_step or (lambda _m: None)
    src, out, precision = Path(src), Path(out), Precision(precision)
    job = _open_job(src, out, precision, options, calib)
    with job, private_tempdir("fallback") as tmp:
        io = io_spec_of(src, job.parent)
        batches = _measurement_batches(data, io)
        trials = _Trials(job, budget, batches, session_outputs(src, batches), Path(tmp) / "trial.onnx")
        model, rows = _first_trial(trials, precision)
        drift_all = trials.drift()
        trials.count += 1
        candidates = _candidates(rows, precision)
        say(f"all {len(candidates)} candidate node(s) quantized: {budget.metric} = {drift_all:.4g} "
            f"(budget {budget.limit:g})")
        info: dict[str, Any] = {"metric": budget.metric, "budget": budget.limit, "drift_all_quantized": drift_all,
                                "candidates": candidates, "samples": int(sum(_n(b, io) for b in batches)),
                                "strategy": "greedy, leave-one-out sensitivity, re-measured each round",
                                "measured_with": f"onnxruntime CPU (opt level {trials.level})"}
        if fallback.strategy == "localize" and drift_all > budget.limit:
            order, ranked = budget.rank(src, trials.path, batches, trials.level, candidates)
            info.update(strategy=("localisation-ranked greedy: one instrumented run of the all-quantized model ranks "
                                  "the nodes by the drift they add, then one trial per node kept float; "
                                  "leave-one-out for what remains"),
                        localization={"order": order, "ranking": ranked[:20]})
        if precision == Precision.fp16:
            info["note"] = FP16_CPU_NOTE
        if drift_all <= budget.limit:
            info.update({"kept_float": [], "drift": drift_all, "trials": trials.count, "steps": []})
            return job.write(model, rows, out, {"fallback": info})
        search = _Search(drift_all)
        if "localization" in info and _ranked_search(trials, search, info, fallback, say):
            return _keep_and_write(trials, search, out, info)
        if _leave_one_out(trials, search, candidates, fallback, say):
            return _keep_and_write(trials, search, out, info, sensitivity=True)
        _give_up(search, drift_all, candidates, precision, budget)


def _open_job(src: Path, out: Path, precision: Precision, options: Any, calib: Any) -> Any:
    """The converter in the fallback's terms: ``quantize(keep_float) -> (model, rows)``, ``write(...)``."""
    from edgelstm.converters.quantize.int8 import Int8Quantizer, check_output_path

    check_output_path(src, out)
    if precision == Precision.int8:
        return Int8Quantizer(src, options, calib)
    if precision == Precision.fp16:
        return _Fp16Job(src, options)
    raise BadInput(f"{opt('max_drift')} applies to fp16 or int8, not {precision.value}")


def _first_trial(trials: _Trials, precision: Precision) -> tuple[Any, list[OpRow]]:
    """Everything quantized; the first session is probed in a child process (a crashing session must not take us
    down), at the levels the recipe allows: the level every trial then runs at."""
    from edgelstm.artifacts.ort import first_safe_level

    model, rows = trials.job.quantize({})
    trials.path.write_bytes(model.SerializeToString())
    recipe = getattr(trials.job, "recipe", None)  # the INT8 quantizer's (its safe levels); FP16 has none
    level, tried = first_safe_level(trials.path, *(() if recipe is None else (recipe.ort_levels,)))
    if level is None:
        from edgelstm.errors import InternalError

        raise InternalError(f"the {precision.value} model does not run in onnxruntime "
                            f"({'; '.join(f'{k}: {v}' for k, v in tried.items())})")
    trials.level = level
    return model, rows


def _ranked_search(trials: _Trials, search: _Search, info: dict[str, Any], fallback: FallbackOptions,
                   say: Callable[[str], None]) -> bool:
    """The localisation-ranked greedy pass (then pruned); True when it met the budget. Otherwise the search
    starts over from everything quantized (the best configuration measured is kept)."""
    from edgelstm.converters.quantize.fallback_ranking import prune, ranked_greedy

    budget, start = trials.budget, search.drift
    ranked = ranked_greedy(info["localization"]["order"], trials.measure, start, budget.limit, metric=budget.metric,
                           max_trials=fallback.max_trials, trials=lambda: trials.count, say=say)
    search.kept, search.steps, search.drift, search.best = ranked.kept, ranked.steps, ranked.drift, ranked.best
    info["localization"]["skipped"] = ranked.skipped
    if search.drift <= budget.limit:
        ranked = prune(ranked, trials.measure, budget.limit, metric=budget.metric, max_trials=fallback.max_trials,
                       trials=lambda: trials.count, say=say)
        search.kept, search.steps, search.drift = ranked.kept, ranked.steps, ranked.drift
        return True
    # the ranking led to a dead end: search again from scratch, leave-one-out (never worse than before)
    say("the localisation ranking did not reach the budget; trying every node, leave-one-out")
    info["localization"].update(fell_back=True, ranked_steps=search.steps)
    search.kept, search.steps, search.drift = {}, [], start
    return False


def _leave_one_out(trials: _Trials, search: _Search, candidates: list[str], fallback: FallbackOptions,
                   say: Callable[[str], None]) -> bool:
    """Greedy: keep in float the node whose keeping removes the most drift, re-measuring every remaining
    candidate each round while at most ``rerank_limit`` remain (else in the first round's order); True when the
    budget is met."""
    budget, ranking = trials.budget, None
    while True:
        remaining = [c for c in candidates if c not in search.kept]
        if len(remaining) <= 1 or trials.count >= fallback.max_trials:
            return False
        if ranking is None or len(remaining) <= fallback.rerank_limit:
            scored = _score(trials, search, remaining, fallback)
            if not scored:
                return False
            if ranking is None:
                ranking = [c for _, c, _, _ in scored]
            d, choice, m, r = scored[0]
        else:
            choice = next(c for c in ranking if c in remaining)
            d, m, r = trials.measure({**search.kept, choice: "kept float by the accuracy fallback"})
        search.kept[choice] = (f"kept float by the accuracy fallback (step {len(search.steps) + 1}: "
                               f"{budget.metric} {search.drift:.3g} -> {d:.3g})")
        search.steps.append({"kept": choice, "drift": d, "gain": search.drift - d})
        say(f"keep {choice} in float: {budget.metric} {search.drift:.4g} -> {d:.4g}")
        search.drift = d
        if search.best is None or d < search.best[0]:
            search.best = (d, m, r, dict(search.kept))
        if d <= budget.limit:
            return True


def _score(trials: _Trials, search: _Search, remaining: list[str],
           fallback: FallbackOptions) -> list[tuple[float, str, Any, list[OpRow]]]:
    """Each remaining candidate kept float in turn (leave-one-out), best first; the first round records each
    node's sensitivity."""
    scored = []
    for c in remaining:
        if trials.count >= fallback.max_trials:
            break
        d, m, r = trials.measure({**search.kept, c: "kept float by the accuracy fallback"})
        scored.append((d, c, m, r))
        if not search.steps:
            search.sensitivity[c] = search.drift - d
    scored.sort(key=lambda t: t[0])
    return scored


def _keep_and_write(trials: _Trials, search: _Search, out: Path, info: dict[str, Any], *,
                    sensitivity: bool = False) -> QuantResult:
    model, rows = trials.job.quantize(search.kept)  # rows carry the final reasons
    info.update({"kept_float": list(search.kept), "drift": search.drift, "trials": trials.count,
                 "steps": search.steps, **({"sensitivity": search.sensitivity} if sensitivity else {})})
    return trials.job.write(model, rows, out, {"fallback": info})


def _give_up(search: _Search, drift_all: float, candidates: list[str], precision: Precision,
             budget: DriftEvaluator) -> None:
    best_d = min([drift_all] + [s["drift"] for s in search.steps])
    best = search.best
    best_kept = list(best[3]) if best is not None and best[0] <= drift_all else []
    raise GateFailed(
        f"no {precision.value} model meets {budget.describe()} on the data: the best drift reached was "
        f"{best_d:.4g} (all quantized: {drift_all:.4g}; keeping {len(best_kept)} of {len(candidates)} "
        f"candidate node(s) in float{': ' + ', '.join(best_kept[:4]) if best_kept else ''}); nothing was written",
        hint=f"raise the budget, try {opt('precision')} fp16, or {opt('mode')} dynamic / another {opt('calib_method')}")


def _n(batch: Mapping[str, np.ndarray], io) -> int:
    for t in io.data_inputs:
        if t.name in batch:
            return int(np.shape(batch[t.name])[0])
    return 0
