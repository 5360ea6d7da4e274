"""A PNG of a bench report (matplotlib, Agg backend, imported lazily): p50 latency by artifact (backend /
precision) for each batch x seq x threads point, and p50 latency against sequence length."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from edgelstm.errors import BackendMissing, opt
from edgelstm.safe_files import atomic_file
from edgelstm.latency.report import as_dict


def _series_name(r: dict[str, Any]) -> str:
    name = f"{r['artifact']} · {r['backend']}/{r['precision']}"
    if r.get("variant"):
        name += f"/{r['variant']}"
    if r.get("device", "cpu") != "cpu":
        name += f" ({r['device']})"
    return name


def plot_report(report: Any, out: str | Path, *, title: str | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendMissing(f"{opt('plot')} needs matplotlib", hint="pip install matplotlib (or edgelstm[plot])") from None
    data = as_dict(report)
    rows = [r for r in data["results"] if r.get("mode", "window") == "window"]
    steps = [r for r in data["results"] if r.get("mode") == "step"]
    series = sorted({_series_name(r) for r in rows} | {_series_name(r) for r in steps})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(series)}
    points = sorted({(r["batch"], r["seq"], r.get("threads") or 0) for r in rows})

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(10, 2 + 1.2 * len(points) + 5), 5.5))
    width = 0.8 / max(1, len(series))
    by = {(_series_name(r), r["batch"], r["seq"], r.get("threads") or 0): r["latency_ms"]["p50"] for r in rows}
    for i, s in enumerate(series):
        xs, ys = [], []
        for j, p in enumerate(points):
            if (s, *p) in by:
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(by[(s, *p)])
        if xs:
            ax1.bar(xs, ys, width=width, color=colors[s], label=s)
    ax1.set_xticks(range(len(points)))
    ax1.set_xticklabels([f"b{b} s{q}\n{'t' + str(t) if t else 'default'}" for b, q, t in points], fontsize=8)
    ax1.set_yscale("log")
    ax1.set_ylabel("p50 latency (ms, log)")
    ax1.set_title("latency by backend / precision")
    ax1.grid(axis="y", alpha=0.3, which="both")

    lines: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        lines[(_series_name(r), r["batch"], r.get("threads") or 0)].append((r["seq"], r["latency_ms"]["p50"]))
    styles = ["-", "--", ":", "-."]
    batches = sorted({k[1] for k in lines})
    for (s, b, t), pts in sorted(lines.items()):
        pts.sort()
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colors[s],
                 linestyle=styles[batches.index(b) % len(styles)], label=f"{s} b{b} {'t' + str(t) if t else ''}")
    for r in steps:
        ax2.axhline(r["latency_ms"]["p50"], color=colors[_series_name(r)], linestyle=":", linewidth=1)
        ax2.annotate(f"one step b{r['batch']}", (ax2.get_xlim()[0], r["latency_ms"]["p50"]), fontsize=7,
                     color=colors[_series_name(r)], va="bottom")
    if len(batches) > 1 or len({k[2] for k in lines}) > 1:
        from matplotlib.lines import Line2D

        ax2.legend([Line2D([], [], color="gray", linestyle=styles[i % len(styles)]) for i in range(len(batches))],
                   [f"batch {b}" for b in batches], fontsize=8, loc="upper left")
    ax2.set_xlabel("sequence length (time steps)")
    ax2.set_ylabel("p50 latency (ms, log)")
    ax2.set_yscale("log")
    ax2.set_title("latency by sequence length" + (" (dotted: one streaming step)" if steps else ""))
    ax2.grid(alpha=0.3, which="both")
    handles, labels = ax1.get_legend_handles_labels()
    if not handles:
        handles, labels = ax2.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, max(1, len(labels))), fontsize=8, frameon=False)
    dev = data.get("device") or {}
    fig.suptitle(title or f"edgelstm bench — {dev.get('machine') or ''}", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(labels) - 1) // 3), 1, 0.95))
    out = Path(out)
    with atomic_file(out) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return out


def plot_speedups(report: Any, out: str | Path, *, reference_kind: str = "torch-eager", title: str | None = None) -> Path:
    """The benchmark suite's figure: one panel per model, the speed-up of every artifact over torch eager
    (same batch / seq / threads) as grouped bars; hatched bars drifted more than 1% (rel_l2)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendMissing("plots need matplotlib", hint="pip install matplotlib") from None
    data = as_dict(report)
    rows = [r for r in data["results"] if r.get("mode", "window") == "window" and (r.get("extras") or {}).get("model")]
    models = list(dict.fromkeys(r["extras"]["model"] for r in rows))
    if not models:
        raise ValueError("no suite rows (extras.model) to plot")
    kinds = list(dict.fromkeys(r["extras"]["kind"] for r in rows if r["extras"]["kind"] != reference_kind))
    colors = {k: plt.cm.tab10(i % 10) for i, k in enumerate(kinds)}
    fig, axes = plt.subplots(len(models), 1, figsize=(12, 2.8 * len(models) + 1), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        mrows = [r for r in rows if r["extras"]["model"] == model]
        configs = sorted({(r["batch"], r["seq"], r.get("threads") or 0) for r in mrows})
        ref = {(r["batch"], r["seq"], r.get("threads") or 0): r["latency_ms"]["p50"]
               for r in mrows if r["extras"]["kind"] == reference_kind}
        present = [k for k in kinds if any(r["extras"]["kind"] == k for r in mrows)]
        seen: set[str] = set()
        values: list[float] = []
        width = 0.8 / max(1, len(present))
        for i, kind in enumerate(present):
            for j, cfg in enumerate(configs):
                match = [r for r in mrows if r["extras"]["kind"] == kind
                         and (r["batch"], r["seq"], r.get("threads") or 0) == cfg]
                if not match or cfg not in ref:
                    continue
                r = match[0]
                drift = (r["extras"].get("drift") or {}).get("rel_l2")
                xpos, value = j + (i - (len(present) - 1) / 2) * width, ref[cfg] / r["latency_ms"]["p50"]
                ax.bar(xpos, value, width=width, color=colors[kind],
                       hatch="//" if drift is not None and drift > 0.01 else None,
                       edgecolor="black" if drift is not None and drift > 0.01 else None,
                       label=kind if kind not in seen else None)
                seen.add(kind)
                values.append(value)
                ax.annotate(f"{value:.1f}", (xpos, value), ha="center", va="bottom", fontsize=6)
        ax.axhline(1.0, color="black", linewidth=0.8)
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        lo, hi = min(values + [1.0]), max(values + [1.0])
        ax.set_ylim(lo / 1.6, hi * 1.8)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}×"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(configs)))
        ax.set_xticklabels([f"batch {b} · seq {q} · {t or 'default'} thread{'s' if t != 1 else ''}"
                            for b, q, t in configs], fontsize=8)
        ax.set_ylabel("× torch eager")
        ax.set_title(model, fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3, which="both")
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=8, frameon=False)
    dev = data.get("device") or {}
    fig.suptitle(title or f"edgelstm artifacts vs torch eager (p50 speed-up; hatched: rel_l2 > 1%) — "
                 f"{dev.get('machine') or ''}", fontsize=11)
    fig.tight_layout(rect=(0, 0.05 + 0.02 * ((len(labels) - 1) // 4), 1, 0.97))
    out = Path(out)
    with atomic_file(out) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return out
