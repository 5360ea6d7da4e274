"""The pipeline report's figures (PNG bytes; matplotlib with the Agg backend, imported lazily): drift along the
recurrence, p50 latency by artifact at the headline grid point, and one latency-grid panel per artifact timed at
more than one point. Lines that coincide stay visible (distinct markers and dash patterns, hollow markers on top
of filled ones) and every legend sits outside the data."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

#: marker / dash pattern per series, so that series that coincide (fp32 and its streaming export) stay visible
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def drift_plot(drift_by_length: dict[str, dict[str, Any]]) -> bytes:
    """rel_l2 against torch at growing sequence lengths, one line per artifact; legend to the right."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, (name, d) in enumerate(drift_by_length.items()):
        if not d.get("lengths"):
            continue
        vals = [max(v, 1e-12) for v in d["rel_l2"]]
        ax.plot(d["lengths"], vals, marker=MARKERS[i % len(MARKERS)], linestyle=DASHES[i % len(DASHES)],
                markersize=9 - 1.2 * (i % 4), markerfacecolor="none" if i % 2 else None, linewidth=1.6,
                label=name, zorder=3 + i)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("time steps (sequence length)")
    ax.set_ylabel("rel_l2 drift vs torch")
    ax.set_title("Drift along the recurrence")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)
    return _png(fig)


def latency_plot(rows: list[dict[str, Any]], shape: str | None) -> bytes:
    """p50 by artifact at the headline grid point (bars; green: gates pass, red: fail, grey: torch)."""
    plt = _pyplot()
    rows = [r for r in rows if r.get("p50_ms") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.42 * len(rows)))
    names = [r["artifact"] for r in rows]
    vals = [r["p50_ms"] for r in rows]
    colors = ["#888888" if r["gates"] == "reference" else "#2a9d8f" if r["gates"] == "pass" else "#e76f51"
              for r in rows]
    ax.barh(names, vals, color=colors)
    for i, r in enumerate(rows):
        label = f"  {vals[i]:.3g} ms" + (f" · {r['speedup']:.1f}× torch" if r.get("speedup") else "")
        ax.text(vals[i], i, label, va="center", fontsize=8)
    ax.set_xlim(0, max(vals, default=1) * 1.45)
    ax.invert_yaxis()
    ax.set_xlabel("p50 latency (ms)" + (f" at {shape}" if shape else ""))
    ax.set_title("Latency by artifact (green: gates pass, red: fail, grey: torch)")
    return _png(fig)


def grid_plot(bench: dict[str, Any]) -> bytes | None:
    """One panel per artifact timed at more than one grid point: p50 against sequence length, one line per
    batch × threads; None when no artifact has more than one point."""
    series: dict[str, dict[tuple[int, Any], list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in bench.get("results", []):
        if r.get("mode", "window") == "window":
            series[r["artifact"]][(r["batch"], r.get("threads"))].append((r["seq"], r["latency_ms"]["p50"]))
    panels = {a: lines for a, lines in series.items() if sum(len(v) for v in lines.values()) > 1}
    if not panels:
        return None
    plt = _pyplot()
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, (artifact, lines) in zip(axes.flat, panels.items()):
        for i, ((batch, threads), pts) in enumerate(sorted(lines.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))):
            pts.sort()
            label = f"batch {batch} × {'default' if threads is None else threads} thr."
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS[i % len(MARKERS)],
                    linestyle=DASHES[i % len(DASHES)], label=label)
        ax.set_title(artifact, fontsize=9)
        ax.set_xlabel("seq (time steps)", fontsize=8)
        ax.set_ylabel("p50 (ms)", fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    labels: dict[str, Any] = {}
    for ax in list(axes.flat)[:len(panels)]:  # one legend for every panel, below them: never over a line
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    fig.legend(list(labels.values()), list(labels), loc="lower center", ncol=min(4, len(labels)), fontsize=8,
               frameon=False)
    fig.suptitle("Latency over the bench grid (p50)", fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(labels) - 1) // 4), 1, 1))
    return _png(fig)
