"""Is a drift baseline (``validate --baseline OLD.json``) about the pair this run compares?

A baseline gates "drift did not grow", which means something only for the same reference/candidate pair. One
made from another kind of pair (an FP16 candidate's baseline gating an INT8 candidate, a torch reference's
gating an ONNX reference) is refused: with a looser pair a regression passes without a word, with a tighter
one a good model fails. Paths are compared by file name (the PR's model.int8.onnx in another directory is the
same file); a pair whose kinds match but whose names differ (a renamed or versioned file) is compared, with a
warning naming both pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from edgelstm.errors import BadInput, opt
from edgelstm.runners.contract import as_runner

_KIND = ("backend", "precision")


def _describe(name: str, kind: Mapping[str, Any]) -> str:
    known = " ".join(str(kind[k]) for k in _KIND if kind.get(k))
    return f"{name} ({known})" if known else name


def check_baseline_pair(baseline: Mapping[str, Any], reference: str, ref_runner: Any, candidate: str,
                        cand_runner: Any) -> str | None:
    """BadInput when the baseline's reference or candidate was another kind of artifact (backend, precision;
    reports that do not record them are judged by name only); a warning when only the file names differ;
    None when the pair is the same."""
    then, now, kinds_differ = [], [], False
    for role, label, runner in (("reference", reference, ref_runner), ("candidate", candidate, cand_runner)):
        old_info = baseline.get(f"{role}_info")
        old_kind = old_info if isinstance(old_info, Mapping) else {}
        described = as_runner(runner)
        new_kind = {"backend": described.backend or None, "precision": described.precision or None}
        kinds_differ |= any(old_kind.get(k) and new_kind[k] and str(old_kind[k]) != str(new_kind[k]) for k in _KIND)
        then.append(_describe(Path(str(baseline.get(role) or "?")).name, old_kind))
        now.append(_describe(Path(str(label)).name, new_kind))
    pairs = f"the baseline compares {then[0]} with {then[1]}, this run {now[0]} with {now[1]}"
    if kinds_differ:
        raise BadInput(f"{opt('baseline')} is about another pair: {pairs}",
                       hint="a drift baseline only gates the pair it measured; make one from this pair with "
                            "`edgelstm validate -r REF -c CAND ... --report OLD.json`")
    if [Path(str(baseline.get(r) or "")).name for r in ("reference", "candidate")] != \
            [Path(str(x)).name for x in (reference, candidate)]:
        return f"{pairs} (same kinds, other file names): compared anyway"
    return None
