"""The error of every matched tensor, along the graph and along time, and where the drift enters.

Every tensor's error is relative to its own scale (rel_l2 = ||cand - ref|| / ||ref|| over all samples; also max_abs,
cosine and onnxruntime's signal-to-quantization-noise ratio in dB), so a hidden state in [-1, 1] and a logit in the
hundreds compare. A tensor with a time axis also gets its rel_l2 at every step.

Where does the drift come from? A node's output *inherits* the error of its inputs (the largest rel_l2 among them, or of
any one of their time steps, since an output can be made from one step; step by step for tensors with a time axis) and *adds* the rest: ``added = rel_l2 - inherited``. The drift *enters*
at the first tensor, in graph order, that adds at least ``jump`` (default 10%) of the worst model output's rel_l2;
in a recurrent output (an LSTM's Y, the hidden state at every step) it enters at the first step that adds at least
``jump`` of that tensor's largest per-step error. Nodes are ranked by what they add (a Q/DQ or Cast in front of a
node counts for that node): the accuracy fallback keeps them in float in that order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgelstm.validation.localize_match import Matching, Pair

FLOOR = 1e-7          # errors below this are float noise: nothing "enters" there


class TensorError:
    """Running sums for one tensor over the batches (and per step along its time axis)."""

    def __init__(self, time_axis: int | None):
        self.time_axis = time_axis
        self.ss_diff = self.ss_ref = self.ss_cand = self.dot = 0.0
        self.max_abs = 0.0
        self.count = 0
        self.step_diff: np.ndarray | None = None
        self.step_ref: np.ndarray | None = None
        self.shape_note: str | None = None

    def update(self, ref: np.ndarray, cand: np.ndarray) -> None:
        a = np.asarray(ref, dtype=np.float64)
        b = np.asarray(cand, dtype=np.float64)
        if a.shape != b.shape:
            if a.size == b.size:
                b = b.reshape(a.shape)
            else:
                self.shape_note = f"shapes differ: reference {list(a.shape)}, candidate {list(b.shape)}"
                return
        d = b - a
        self.ss_diff += float(np.sum(d * d))
        self.ss_ref += float(np.sum(a * a))
        self.ss_cand += float(np.sum(b * b))
        self.dot += float(np.sum(a * b))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(d))) if d.size else 0.0)
        self.count += int(a.size)
        ax = self.time_axis
        if ax is not None and a.ndim > ax:
            other = tuple(i for i in range(a.ndim) if i != ax)
            sd, sr = np.sum(d * d, axis=other), np.sum(a * a, axis=other)
            if self.step_diff is None or self.step_diff.shape != sd.shape:
                if self.step_diff is not None:   # another length: per-step sums only for one length
                    self.time_axis = None
                    self.step_diff = self.step_ref = None
                    return
                self.step_diff, self.step_ref = sd, sr
            else:
                self.step_diff = self.step_diff + sd
                self.step_ref = self.step_ref + sr

    def result(self) -> dict[str, Any]:
        rel = _rel(self.ss_diff, self.ss_ref)
        cos = self.dot / math.sqrt(self.ss_ref * self.ss_cand) if self.ss_ref > 0 and self.ss_cand > 0 else (
            1.0 if self.ss_diff == 0 else 0.0)
        sqnr = 20 * math.log10(math.sqrt(self.ss_ref) / math.sqrt(self.ss_diff)) if self.ss_diff > 0 and \
            self.ss_ref > 0 else None
        out: dict[str, Any] = {"rel_l2": rel, "max_abs": self.max_abs, "cosine": min(1.0, cos), "sqnr_db": sqnr,
                               "values": self.count}
        if self.step_diff is not None:
            out["per_step_rel_l2"] = [_rel(d, r) for d, r in zip(self.step_diff.tolist(), self.step_ref.tolist())]
        if self.shape_note:
            out["note"] = self.shape_note
        return out


def _rel(ss_diff: float, ss_ref: float) -> float:
    if ss_diff <= 0:
        return 0.0
    return math.sqrt(ss_diff) / max(math.sqrt(ss_ref), 1e-30)


def _inherited(pair: Pair, by_tensor: dict[str, dict[str, Any]]) -> tuple[float, list[float] | None]:
    """The largest error among a site's inputs (overall, and per step where lengths agree)."""
    rels, steps = [0.0], None
    for name in pair.site.inputs:
        r = by_tensor.get(name)
        if r is None:
            continue
        s = r.get("per_step_rel_l2")
        # a tensor made from one step of its input (the last hidden state, a Gather) can carry that step's error
        rels.append(max([r["rel_l2"], *(s or ())]))
        if s is not None:
            steps = list(s) if steps is None or len(steps) != len(s) else [max(x, y) for x, y in zip(steps, s)]
    return max(rels), steps


def analyse(matching: Matching, errors: dict[str, TensorError], jump: float = 0.1,
            isolated: dict[str, TensorError] | None = None) -> dict[str, Any]:
    """Per-site rows (graph order), the entry point, per-step entry of the recurrent outputs, the node ranking
    (by isolated error when ``isolated`` has it: each node on exact inputs, else by the error it adds)."""
    by_tensor: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for p in matching.pairs:
        err = errors.get(p.candidate)
        if err is None or err.count == 0:
            continue
        r = err.result()
        key = p.site.tensor
        inherited, inherited_steps = _inherited(p, by_tensor)
        r.update({"tensor": key, "label": p.site.label, "node": p.site.node, "op": p.site.op, "role": p.site.role,
                  "candidate_tensor": p.candidate, "match": p.how, "graph_output": p.site.graph_output,
                  "quantized_copy_of": p.site.quantized_copy_of, "inherited": inherited,
                  "added": max(0.0, r["rel_l2"] - inherited)})
        if "per_step_rel_l2" in r:
            r["time"] = _time_entry(r["per_step_rel_l2"], inherited_steps, jump)
        alone = (isolated or {}).get(p.candidate)
        if alone is not None and alone.count:
            iso = alone.result()
            r["isolated"] = iso["rel_l2"]
            if "per_step_rel_l2" in iso:
                r["isolated_per_step_rel_l2"] = iso["per_step_rel_l2"]
        by_tensor[key] = r
        rows.append(r)
    worst = max((r["rel_l2"] for r in rows if r["graph_output"]), default=0.0)
    threshold = max(FLOOR, jump * worst)
    entry = next((r for r in rows if r["added"] >= threshold), None) if worst > FLOOR else None
    return {"rows": rows, "worst_output_rel_l2": worst, "jump": jump, "threshold": threshold,
            "entry": _entry_dict(entry), "ranking": rank_nodes(rows), "recurrent": _recurrent(rows)}


def _time_entry(steps: list[float], inherited: list[float] | None, jump: float) -> dict[str, Any]:
    peak = max(steps) if steps else 0.0
    if peak <= FLOOR:
        return {"entry_step": None, "peak_step": None, "peak": peak, "first": steps[0] if steps else None,
                "last": steps[-1] if steps else None, "growth_last_over_first": None, "added_at_entry": None}
    base = inherited if inherited is not None and len(inherited) == len(steps) else [0.0] * len(steps)
    added = [max(0.0, s - b) for s, b in zip(steps, base)]
    limit = max(FLOOR, jump * peak)
    entry = next((t for t, a in enumerate(added) if a >= limit), None)
    first = next((s for s in steps if s > FLOOR), None)
    return {"entry_step": entry, "peak_step": int(np.argmax(steps)), "peak": peak, "first": steps[0],
            "last": steps[-1], "growth_last_over_first": (steps[-1] / first) if first else None,
            "added_at_entry": added[entry] if entry is not None else None}


def _entry_dict(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = {k: row[k] for k in ("tensor", "label", "node", "op", "role", "rel_l2", "added", "inherited",
                               "quantized_copy_of")}
    t = row.get("time")
    if t:
        out["time_step"] = t.get("entry_step")
    return out


def rank_nodes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reference nodes by the error they add (their outputs', and that of the Cast/Q-DQ copies they read)."""
    score: dict[str, dict[str, Any]] = {}
    for r in rows:
        n = r["node"]
        if not n:
            continue
        s = score.setdefault(n, {"node": n, "op": None, "added": 0.0, "isolated": None, "via": r["label"]})
        if r["added"] > s["added"]:
            s.update(added=r["added"], via=r["label"])
        if r.get("isolated") is not None and r["isolated"] > (s["isolated"] or 0.0):
            s["isolated"] = r["isolated"]
        if not r["quantized_copy_of"]:
            s["op"] = r["op"]
    key = "isolated" if any(s["isolated"] is not None for s in score.values()) else "added"
    ranked = [s for s in score.values() if (s[key] or 0.0) > FLOOR]
    return sorted(ranked, key=lambda s: -(s[key] or 0.0))


def _recurrent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-step view of every tensor with a time axis that belongs to a recurrent op (its hidden state)."""
    return [{"tensor": r["tensor"], "node": r["node"], "op": r["op"], "role": r["role"],
             "per_step_rel_l2": r["per_step_rel_l2"], **r["time"]}
            for r in rows if r.get("role") == "Y" and "per_step_rel_l2" in r]


__all__ = ["TensorError", "analyse", "rank_nodes", "FLOOR"]
