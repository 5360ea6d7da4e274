"""Localisation plots as PNG bytes (matplotlib, Agg, imported lazily): the error of every tensor along the graph
(rel_l2 and what each adds, log scale, the entry point marked) and the hidden state's error along time."""

from __future__ import annotations

import io
from typing import Any

from edgelstm.errors import BackendMissing

TINY = 1e-12


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendMissing("localisation plots need matplotlib", hint="pip install matplotlib") from None
    return plt


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]


def plot_graph(result: Any) -> bytes:
    plt = _plt()
    rows = result.analysis.get("rows", [])
    entry = (result.entry or {}).get("tensor")
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(rows) + 3), 4.8))
    xs = list(range(len(rows)))
    nonzero = [v for r in rows for v in (r["rel_l2"], r["added"]) if v > 0]
    low = max(TINY, min(nonzero, default=1e-6) / 30)   # exact tensors sit on the floor of the plot
    ax.plot(xs, [max(r["rel_l2"], low) for r in rows], "o-", color="tab:blue", label="rel_l2 vs reference")
    ax.bar(xs, [r["added"] if r["added"] > low else 0 for r in rows], bottom=low, color="tab:orange", alpha=0.6,
           label="added by this tensor")
    ax.set_ylim(bottom=low)
    for x, r in zip(xs, rows):
        if r["tensor"] == entry:
            ax.axvline(x, color="tab:red", ls="--", lw=1, label="drift enters")
    thr = result.analysis.get("threshold")
    if thr:
        ax.axhline(thr, color="gray", ls=":", lw=1, label=f"threshold {thr:.2g}")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([_short(r["tensor"] if not r["quantized_copy_of"] else r["label"]) for r in rows], rotation=60,
                       ha="right", fontsize=7)
    ax.set_ylabel("rel_l2 (log; exact tensors on the floor)")
    ax.set_title("error along the graph (graph order)", fontsize=10)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig, plt)


def plot_time(result: Any) -> bytes | None:
    rec = result.analysis.get("recurrent", [])
    if not rec:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for r in rec:
        steps = r["per_step_rel_l2"]
        line, = ax.plot(range(len(steps)), [max(s, TINY) for s in steps],
                        label=f"{_short(r['node'], 24)} {_short(r['tensor'], 24)}")
        if r.get("entry_step") is not None:
            ax.axvline(r["entry_step"], color=line.get_color(), ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("time step")
    ax.set_ylabel("rel_l2 of the hidden state (log)")
    ax.set_title("error along time (dashed: the step where it enters)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig, plt)


__all__ = ["plot_graph", "plot_time"]
