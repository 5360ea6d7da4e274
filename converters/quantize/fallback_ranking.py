"""The accuracy fallback's ranked search: instead of re-quantizing once per candidate to learn which node to keep
in float (leave-one-out), the evaluator the stage's caller gives (edgelstm.validation.budget.DriftBudget.rank: drift
localisation, every intermediate tensor of the all-quantized and the FP32 model read once) ranks the candidates by
the drift each adds (a node's outputs', and that of the Q/DQ or Cast copies it reads). The greedy step then keeps the next node in
that order in float and measures the model outputs once: one trial per step instead of one per remaining
candidate. A step whose node closes too little of the gap to the budget is undone (the localisation was wrong about
it, or it would use up a candidate for nothing); when the ranking is used up without meeting the budget the
leave-one-out search starts over (quant_fallback), so the result is never worse than leave-one-out's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


#: a node is kept float only if that closes at least this fraction of the gap between the drift and the budget
#: (a node that helps a little uses up a candidate the budget may need: the greedy would end in a dead end)
MIN_GAIN = 0.1


@dataclass
class RankedSearch:
    """What the ranked greedy pass did: nodes kept float (with reasons), the steps, the drift reached."""

    kept: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    drift: float = float("inf")
    best: Any = None                     # (drift, model, rows, kept) of the best configuration measured


def ranked_greedy(order: list[str], measure: Callable[[Mapping[str, str]], tuple[float, Any, list]], start: float,
                  limit: float, *, metric: str, max_trials: int, trials: Callable[[], int],
                  say: Callable[[str], None]) -> RankedSearch:
    """Keep nodes float in ``order``, one measurement per step, until the drift is within ``limit``; a node that
    closes less than MIN_GAIN of the gap to the budget is put back and tried again after the next node is kept (a
    node can matter only once another is float). At least one candidate stays quantized."""
    search = RankedSearch(drift=start)
    pending = list(order)
    while pending:
        accepted = False
        for node in list(pending):
            if len(order) - len(search.kept) <= 1 or trials() >= max_trials or search.drift <= limit:
                return search
            d, model, rows = measure({**search.kept, node: "kept float by the accuracy fallback"})
            if d > search.drift - MIN_GAIN * (search.drift - limit):
                if node not in search.skipped:
                    search.skipped.append(node)
                say(f"keeping {node} in float helps too little ({metric} {search.drift:.4g} -> {d:.4g}); next")
                continue
            search.kept[node] = (f"kept float by the accuracy fallback (step {len(search.steps) + 1}, ranked by "
                                 f"localisation: {metric} {search.drift:.3g} -> {d:.3g})")
            search.steps.append({"kept": node, "drift": d, "gain": search.drift - d})
            say(f"keep {node} in float (ranked by localisation): {metric} {search.drift:.4g} -> {d:.4g}")
            search.drift = d
            pending.remove(node)
            accepted = True
            if search.best is None or d < search.best[0]:
                search.best = (d, model, rows, dict(search.kept))
            break   # the rest (and the nodes put back) are tried again with this one float
        if not accepted:
            break
    return search


def prune(search: RankedSearch, measure: Callable[[Mapping[str, str]], tuple[float, Any, list]], limit: float, *,
          metric: str, max_trials: int, trials: Callable[[], int], say: Callable[[str], None]) -> RankedSearch:
    """After the budget is met: quantize again each node kept float (in the order they were kept) whose return still
    meets the budget. The ranking can keep a node float whose gain a later one made unnecessary; one trial each."""
    for node in list(search.kept)[:-1]:
        if trials() >= max_trials:
            break
        trial = {k: v for k, v in search.kept.items() if k != node}
        d, model, rows = measure(trial)
        if d <= limit:
            say(f"quantize {node} again: {metric} {search.drift:.4g} -> {d:.4g}, still within {limit:g}")
            search.kept = trial
            search.steps.append({"quantized_again": node, "drift": d})
            search.drift = d
            search.best = (d, model, rows, dict(trial))
    return search


__all__ = ["localized_ranking", "ranked_greedy", "prune", "RankedSearch"]
