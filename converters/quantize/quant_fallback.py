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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

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


@dataclass(frozen=True)
class DriftBudget:
    metric: str
    limit: float

    def __post_init__(self) -> None:
        from edgelstm.validation.gates import check_budget  # the one budget check and metric list

        check_budget(self.metric, self.limit, option="max_drift")

    @classmethod
    def parse(cls, text: str) -> "DriftBudget":
        """``rel_l2=0.01`` (also ``rel_l2<=0.01``, ``rel_l2:0.01``): edgelstm.validation.gates.parse_budget."""
        from edgelstm.validation.gates import parse_budget

        return cls(*parse_budget(text, option="max_drift"))

    def describe(self) -> str:
        return f"{self.metric} <= {self.limit:g}"


@dataclass(frozen=True)
class FallbackOptions:
    rerank_limit: int = 12        # re-measure every candidate each round while at most this many remain
    max_trials: int = 200         # quantize-and-measure budget
    strategy: str = "localize"    # "localize": rank by drift localisation first (fallback_ranking); "leave-one-out"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BadInput(f"fallback strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")


STRATEGIES = ("localize", "leave-one-out")


def drift_of(reference: list[dict[str, np.ndarray]], candidate: list[dict[str, np.ndarray]], metric: str) -> float:
    """The metric over all batches, worst output (all outputs, state outputs included)."""
    from edgelstm.validation.metrics import DriftAccumulator

    accs: dict[str, DriftAccumulator] = {}
    for r, c in zip(reference, candidate):
        for name, ref in r.items():
            accs.setdefault(name, DriftAccumulator()).update(ref, c[name])
    if not accs:
        raise BadInput(f"{opt('data')} produced no batches to measure drift on")
    return max(float(a.result()[metric]) for a in accs.values())


class _OrtEvaluator:
    """Runs models over the measurement batches in onnxruntime (at the opt level the probe found safe)."""

    def __init__(self, batches: list[dict[str, np.ndarray]], opt_level: str = "all"):
        self.batches = batches
        self.opt_level = opt_level

    def outputs(self, path: Path) -> list[dict[str, np.ndarray]]:
        from edgelstm.artifacts.ort import make_session

        sess = make_session(path, opt_level=self.opt_level)
        in_types = {i.name: i.type for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        out = []
        for b in self.batches:
            feeds = {k: np.ascontiguousarray(v, dtype=np.float16 if "float16" in in_types[k] else
                                             (np.float32 if np.asarray(v).dtype.kind == "f" else np.asarray(v).dtype))
                     for k, v in b.items() if k in in_types}
            out.append({n: np.asarray(o, dtype=np.float32) for n, o in zip(names, sess.run(None, feeds))})
        return out


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


def quantize_with_budget(src: str | Path, out: str | Path, precision: Precision | str, options: Any,
                         budget: DriftBudget, data: Iterable[Mapping[str, np.ndarray]],
                         calib: Iterable[Mapping[str, np.ndarray]] | None = None,
                         fallback: FallbackOptions = FallbackOptions(),
                         on_step: Callable[[str], None] | None = None) -> QuantResult:
    """Quantize ``src`` (FP16 with Fp16Options or INT8 with Int8Options) keeping the most drift-sensitive
    nodes in float until ``budget`` holds on ``data`` (outputs vs the FP32 ONNX model). Raises GateFailed
    (exit 1) when no configuration with at least one quantized node meets the budget; nothing is written."""
    from edgelstm.artifacts.artifact import io_spec_of

    from edgelstm.converters.quantize.int8 import Int8Quantizer, check_output_path
    from edgelstm.artifacts.ort import first_safe_level

    say = on_step or (lambda _m: None)
    src, out, precision = Path(src), Path(out), Precision(precision)
    check_output_path(src, out)
    if precision == Precision.int8:
        job: Any = Int8Quantizer(src, options, calib)
    elif precision == Precision.fp16:
        job = _Fp16Job(src, options)
    else:
        raise BadInput(f"{opt('max_drift')} applies to fp16 or int8, not {precision.value}")
    with job, private_tempdir("fallback") as tmp:
        io = io_spec_of(src, job.parent)
        batches = _measurement_batches(data, io)
        reference = _OrtEvaluator(batches).outputs(src)
        trial_path = Path(tmp) / "trial.onnx"
        trials = 0

        def measure(keep: Mapping[str, str]) -> tuple[float, Any, list[OpRow]]:
            nonlocal trials
            trials += 1
            model, rows = job.quantize(keep)
            trial_path.write_bytes(model.SerializeToString())
            return drift_of(reference, evaluator.outputs(trial_path), budget.metric), model, rows

        # the first trial is probed in a child process: a crashing session must not take us down
        model, rows = job.quantize({})
        trial_path.write_bytes(model.SerializeToString())
        recipe = getattr(job, "recipe", None)
        level, tried = first_safe_level(trial_path, *(() if recipe is None else (recipe.ort_levels,)))
        if level is None:
            from edgelstm.errors import InternalError

            raise InternalError(f"the {precision.value} model does not run in onnxruntime "
                                f"({'; '.join(f'{k}: {v}' for k, v in tried.items())})")
        evaluator = _OrtEvaluator(batches, level)
        drift_all = drift_of(reference, evaluator.outputs(trial_path), budget.metric)
        trials += 1
        candidates = _candidates(rows, precision)
        say(f"all {len(candidates)} candidate node(s) quantized: {budget.metric} = {drift_all:.4g} "
            f"(budget {budget.limit:g})")
        info: dict[str, Any] = {"metric": budget.metric, "budget": budget.limit, "drift_all_quantized": drift_all,
                                "candidates": candidates, "samples": int(sum(_n(b, io) for b in batches)),
                                "strategy": "greedy, leave-one-out sensitivity, re-measured each round",
                                "measured_with": f"onnxruntime CPU (opt level {level})"}
        if fallback.strategy == "localize" and drift_all > budget.limit:
            from edgelstm.converters.quantize.fallback_ranking import localized_ranking

            order, ranked = localized_ranking(src, trial_path, batches, level, candidates)
            info.update(strategy=("localisation-ranked greedy: one instrumented run of the all-quantized model ranks "
                                  "the nodes by the drift they add, then one trial per node kept float; "
                                  "leave-one-out for what remains"),
                        localization={"order": order, "ranking": ranked[:20]})
        if precision == Precision.fp16:
            info["note"] = FP16_CPU_NOTE
        if drift_all <= budget.limit:
            info.update({"kept_float": [], "drift": drift_all, "trials": trials, "steps": []})
            return job.write(model, rows, out, {"fallback": info})

        kept: dict[str, str] = {}
        steps: list[dict[str, Any]] = []
        sensitivity: dict[str, float] = {}
        ranking: list[str] | None = None
        best: tuple[float, Any, list[OpRow], dict[str, str]] | None = None
        current = drift_all
        if "localization" in info:
            from edgelstm.converters.quantize.fallback_ranking import ranked_greedy

            search = ranked_greedy(info["localization"]["order"], measure, drift_all, budget.limit, metric=budget.metric,
                                   max_trials=fallback.max_trials, trials=lambda: trials, say=say)
            kept, steps, current, best = search.kept, search.steps, search.drift, search.best
            info["localization"]["skipped"] = search.skipped
            if current <= budget.limit:
                from edgelstm.converters.quantize.fallback_ranking import prune

                search = prune(search, measure, budget.limit, metric=budget.metric, max_trials=fallback.max_trials,
                               trials=lambda: trials, say=say)
                kept, steps, current = search.kept, search.steps, search.drift
                model, rows = job.quantize(kept)
                info.update({"kept_float": list(kept), "drift": current, "trials": trials, "steps": steps})
                return job.write(model, rows, out, {"fallback": info})
            # the ranking led to a dead end: search again from scratch, leave-one-out (never worse than before)
            say("the localisation ranking did not reach the budget; trying every node, leave-one-out")
            info["localization"].update(fell_back=True, ranked_steps=steps)
            kept, steps, current = {}, [], drift_all
        while True:
            remaining = [c for c in candidates if c not in kept]
            if len(remaining) <= 1 or trials >= fallback.max_trials:
                break
            if ranking is None or len(remaining) <= fallback.rerank_limit:
                scored = []
                for c in remaining:
                    if trials >= fallback.max_trials:
                        break
                    d, m, r = measure({**kept, c: "kept float by the accuracy fallback"})
                    scored.append((d, c, m, r))
                    if not steps:
                        sensitivity[c] = current - d
                if not scored:
                    break
                scored.sort(key=lambda t: t[0])
                if ranking is None:
                    ranking = [c for _, c, _, _ in scored]
                d, choice, m, r = scored[0]
            else:
                choice = next(c for c in ranking if c in remaining)
                d, m, r = measure({**kept, choice: "kept float by the accuracy fallback"})
            gain = current - d
            kept[choice] = (f"kept float by the accuracy fallback (step {len(steps) + 1}: "
                            f"{budget.metric} {current:.3g} -> {d:.3g})")
            steps.append({"kept": choice, "drift": d, "gain": gain})
            say(f"keep {choice} in float: {budget.metric} {current:.4g} -> {d:.4g}")
            current = d
            if best is None or d < best[0]:
                best = (d, m, r, dict(kept))
            if d <= budget.limit:
                model, rows = job.quantize(kept)  # rows carry the final reasons
                info.update({"kept_float": list(kept), "drift": d, "trials": trials, "steps": steps,
                             "sensitivity": sensitivity})
                return job.write(model, rows, out, {"fallback": info})
        best_d = min([drift_all] + [s["drift"] for s in steps])
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
