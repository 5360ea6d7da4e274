"""The drift budget of quantization's accuracy fallback (``--max-drift rel_l2=0.01``), and what the fallback measures
with: the budget is also its evaluator. The quantize stage's caller (the CLI, the pipeline) builds one and passes it
in; the converter (``edgelstm.converters.quantize.quant_fallback``) asks it for the drift of a trial's outputs and
for the localisation ranking of its nodes, and never imports validation itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgelstm.errors import BadInput, opt

#: which drift ranks the fallback's candidates: the node's own ("isolated", its inputs taken from the FP32 model)
#: or what it adds along the graph ("added")
RANK_BY = "isolated"


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

    # -- the fallback's evaluator -----------------------------------------------------------------------------
    def drift(self, reference: Sequence[Mapping[str, np.ndarray]],
              candidate: Sequence[Mapping[str, np.ndarray]]) -> float:
        """This budget's metric over all batches, worst output."""
        return drift_of(list(reference), list(candidate), self.metric)

    def rank(self, src: Path, trial: Path, batches: list[Mapping[str, np.ndarray]], level: str,
             candidates: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        """``candidates`` ordered by the drift they add in the all-quantized ``trial`` (drift localisation against
        ``src``), and the ranking rows."""
        return localized_ranking(src, trial, batches, level, candidates)


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


def localized_ranking(src: Path, trial: Path, batches: list[Mapping[str, np.ndarray]], level: str,
                      candidates: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Candidates ordered by the drift they add in the all-quantized ``trial`` model (most first; candidates the
    localisation could not see follow in their own order), and the ranking rows: every intermediate tensor of the
    trial and of the FP32 model read once on the measurement data."""
    import onnx

    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.safe_files import private_tempdir
    from edgelstm.validation.localize_errors import analyse
    from edgelstm.validation.localize_graph import graph_sites, prepared, with_outputs
    from edgelstm.validation.localize_match import decoupled, match_sites
    from edgelstm.validation.localize_run import OnnxTensors, close_all, collect_errors

    ref_model = prepared(load_onnx(src))
    sites = graph_sites(ref_model)
    cand_model = prepared(onnx.load(str(trial)))
    matching = match_sites(sites, ref_model, cand_model)
    with private_tempdir("fallback-localize") as tmp:
        folder = Path(tmp)
        ref = OnnxTensors(with_outputs(ref_model, [s.tensor for s in sites]), folder, "reference.onnx")
        names = [p.candidate for p in matching.pairs]
        cand = OnnxTensors(with_outputs(cand_model, names), folder, "trial.onnx", opt_level=level)
        alone_model, feeds = decoupled(cand_model, matching)
        alone = OnnxTensors(with_outputs(alone_model, names), folder, "isolated.onnx", opt_level=level)
        errors, _, isolated = collect_errors(ref, cand, batches, matching, isolated=alone, exact_feeds=feeds)
        close_all((ref, cand, alone))
    ranking = analyse(matching, errors, isolated=isolated if RANK_BY == "isolated" else None)["ranking"]
    ranked = [r["node"] for r in ranking if r["node"] in candidates]
    return ranked + [c for c in candidates if c not in ranked], ranking


__all__ = ["DriftBudget", "drift_of", "localized_ranking", "RANK_BY"]
