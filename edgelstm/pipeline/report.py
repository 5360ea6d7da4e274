"""The report people read: `report.md` (fits a CI job summary) and a self-contained `report.html`, with the
drift-per-time-step plot, the latency/size/drift comparison across artifacts, the gates and the environment."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from edgelstm.fileio import write_bytes_atomic, write_text_atomic


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.2f} MiB"


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def drift_plot(drift_by_length: dict[str, dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, d in drift_by_length.items():
        vals = [max(v, 1e-12) for v in d["rel_l2"]]
        ax.plot(d["lengths"], vals, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("time steps (sequence length)")
    ax.set_ylabel("rel_l2 drift vs torch")
    ax.set_title("Drift along the recurrence")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _figure_png(fig)


def latency_plot(rows: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("p50_ms") is not None]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [r["artifact"] for r in rows]
    vals = [r["p50_ms"] for r in rows]
    colors = ["#888888" if r["gates"] == "reference" else "#2a9d8f" if r["gates"] == "pass" else "#e76f51"
              for r in rows]
    ax.barh(names, vals, color=colors)
    for i, r in enumerate(rows):
        if r.get("speedup"):
            ax.text(vals[i], i, f"  {r['speedup']:.1f}×", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("p50 latency (ms)")
    ax.set_title("Latency by artifact (green: gates pass, red: fail, grey: torch)")
    return _figure_png(fig)


def _environment(res) -> dict[str, Any]:
    if res.bench and res.bench.get("device"):
        return res.bench["device"]
    from edgelstm.machine.environment import cpu_facts, package_versions

    from edgelstm.machine.isa import isa_facts

    return {**cpu_facts(), **isa_facts(), "versions": package_versions()}


def _isa(env: dict[str, Any]) -> str:
    cpu = env.get("cpu")
    return str((cpu.get("isa") if isinstance(cpu, dict) else env.get("isa")) or "unknown")


def _gate_lines(res) -> list[tuple[str, dict[str, Any]]]:
    return [(name, g) for name, v in res.validations.items() for g in v.get("gates", [])]


def render_markdown(res, rows, env) -> str:
    status = "✅ all gates passed" if res.passed else "❌ a gate failed"
    lines = [f"# edgelstm report — {status}", "",
             f"Model: `{res.model_path.name if res.model_path else '?'}` · artifacts in `{res.out_dir}` · "
             f"measured on a {_isa(env)} CPU", "",
             "| artifact | precision | size | rel_l2 vs torch | task | gates | p50 ms | speed-up vs torch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['artifact']} | {r['precision']} | {_size(r['size_bytes'])} | {_fmt(r['rel_l2'], '.2e')} | "
                     f"{r['task'] or '–'} | {r['gates']} | {_fmt(r['p50_ms'])} | "
                     f"{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'} |")
    if res.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in res.notes)]
    lines += ["", "## Gates", "", "| artifact | gate | value | limit | result |", "|---|---|---|---|---|"]
    for name, g in _gate_lines(res):
        lines.append(f"| {name} | `{g.get('metric')}{':' + g['output'] if g.get('output') else ''}` | "
                     f"{_fmt(g.get('value'), '.3e')} | {g.get('op', '<=')} {g.get('limit')} | "
                     f"{'pass' if g.get('passed') else '**FAIL**'} |")
    lines += ["", "## Drift along the recurrence", "", "![drift per time step](drift_per_step.png)", ""]
    if res.drift_by_length:
        first = next(iter(res.drift_by_length.values()))
        lines += ["| artifact | " + " | ".join(f"T={t}" for t in first["lengths"]) + " |",
                  "|---|" + "---|" * len(first["lengths"])]
        for name, d in res.drift_by_length.items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.1e}" for v in d["rel_l2"]) + " |")
    lines += ["", "## Latency", "", "![latency](latency.png)", ""]
    if res.skipped:
        lines += ["## Skipped", ""] + [f"- {s['stage']}: {s['reason']}" for s in res.skipped] + [""]
    lines += ["<details><summary>Environment</summary>", "", "```", *_env_lines(env), "```", "</details>", ""]
    return "\n".join(lines)


def _env_lines(env: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in env.items():
        if isinstance(v, dict):
            out += _env_lines(v, f"{prefix}{k}.")
        elif v is not None:
            out.append(f"{prefix}{k}: {v}")
    return out


def render_html(res, rows, env, pngs: dict[str, bytes]) -> str:
    e = html.escape
    status = "all gates passed" if res.passed else "a gate failed"
    css = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:1000px;color:#222}"
           "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
           "th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}"
           "img{max-width:100%;border:1px solid #eee}pre{background:#f6f8fa;padding:1rem;overflow:auto}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgelstm report</title><style>{css}</style>"
             f"</head><body><h1>edgelstm report — <span class='{'pass' if res.passed else 'fail'}'>{status}</span></h1>",
             f"<p>Model <code>{e(res.model_path.name if res.model_path else '?')}</code>, artifacts in "
             f"<code>{e(str(res.out_dir))}</code>, {len(res.artifacts)} artifacts.</p>",
             "<h2>Artifacts: size, drift, speed</h2><table id='summary'><tr><th>artifact</th><th>precision</th>"
             "<th>size</th><th>rel_l2 vs torch</th><th>task</th><th>gates</th><th>p50 ms</th><th>speed-up</th></tr>"]
    for r in rows:
        cls = "pass" if r["gates"] == "pass" else "fail" if r["gates"] == "FAIL" else ""
        parts.append(f"<tr><td>{e(r['artifact'])}</td><td>{e(r['precision'])}</td><td>{_size(r['size_bytes'])}</td>"
                     f"<td>{_fmt(r['rel_l2'], '.2e')}</td><td>{e(r['task'] or '–')}</td>"
                     f"<td class='{cls}'>{e(r['gates'])}</td><td>{_fmt(r['p50_ms'])}</td>"
                     f"<td>{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'}</td></tr>")
    parts.append(f"</table><p id='machine-isa'>Measured on a <b>{e(_isa(env))}</b> CPU "
                 "(INT8 drift and speed depend on the CPU's int8 class).</p>")
    if res.notes:
        parts.append("<h2>Notes</h2><ul id='notes'>" + "".join(f"<li>{e(n)}</li>" for n in res.notes) + "</ul>")
    parts.append("<h2>Gates</h2><table id='gates'><tr><th>artifact</th><th>gate</th><th>value</th>"
                 "<th>limit</th><th>result</th></tr>")
    for name, g in _gate_lines(res):
        ok = g.get("passed")
        parts.append(f"<tr><td>{e(name)}</td><td><code>{e(str(g.get('metric')))}</code></td>"
                     f"<td>{_fmt(g.get('value'), '.3e')}</td><td>{e(str(g.get('op', '<=')))} {e(str(g.get('limit')))}</td>"
                     f"<td class='{'pass' if ok else 'fail'}'>{'pass' if ok else 'FAIL'}</td></tr>")
    parts.append("</table>")
    for key, title in (("drift_per_step", "Drift along the recurrence"), ("latency", "Latency")):
        if key in pngs:
            b64 = base64.b64encode(pngs[key]).decode()
            parts.append(f"<h2>{title}</h2><img class='plot' id='{key}' alt='{title}' src='data:image/png;base64,{b64}'>")
    if res.skipped:
        parts.append("<h2>Skipped</h2><ul>" + "".join(f"<li>{e(s['stage'])}: {e(s['reason'])}</li>"
                                                      for s in res.skipped) + "</ul>")
    parts.append("<h2>Environment</h2><pre>" + e("\n".join(_env_lines(env))) + "</pre>")
    if res.pipeline.source_text:
        parts.append("<h2>Pipeline</h2><pre>" + e(res.pipeline.source_text) + "</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def write_reports(res) -> tuple[list[Path], dict[str, Any]]:
    rows = res.summary_rows()
    env = _environment(res)
    pngs: dict[str, bytes] = {}
    if res.drift_by_length:
        pngs["drift_per_step"] = drift_plot(res.drift_by_length)
    if any(r.get("p50_ms") is not None for r in rows):
        pngs["latency"] = latency_plot(rows)
    out = res.out_dir
    paths = {}
    for key, data in pngs.items():
        paths[key] = write_bytes_atomic(out / f"{key}.png", data)
    paths["markdown"] = write_text_atomic(out / "report.md", render_markdown(res, rows, env))
    paths["html"] = write_text_atomic(out / "report.html", render_html(res, rows, env, pngs))
    return list(paths.values()), {"paths": {k: str(v) for k, v in paths.items()}, "rows": rows}
