"""The reports people read: `report.md` (self-contained Markdown that renders in a CI job summary such as
`$GITHUB_STEP_SUMMARY`: no image links, the figures' numbers are in tables), a self-contained `report.html` (the
plots embedded as data URIs), `junit.xml` (one testcase per gate) and the plots as PNG files.

Both reports open with the same facts, in the same order: the verdict, then where the numbers come from (date,
edgelstm version, git commit, model file and sha256, machine and ISA class, data), the failed gates if any, and
the artifact table whose every latency says at which batch × seq × threads it was measured."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from edgelstm.fileio import write_bytes_atomic, write_text_atomic
from edgelstm.machine.provenance import machine_words, provenance_lines
from edgelstm.pipeline.against import compare_html, compare_markdown

BAR = "█"


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


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def verdict_words(res) -> str:
    gates = res.gates
    failed = sum(not g["passed"] for g in gates)
    if not gates:
        return "no gates were set"
    return f"all {len(gates)} gates passed" if not failed else f"{failed} of {len(gates)} gates failed"


def counts_words(res, rows: list[dict[str, Any]]) -> str:
    """What the artifact table holds, counted from its rows."""
    steps = sum(r["artifact"].endswith("(1 step, state carried)") for r in rows)
    torch = sum(r["gates"] == "reference" for r in rows)
    parts = [f"{len(res.artifacts)} artifact{'s' if len(res.artifacts) != 1 else ''}"]
    if torch:
        parts.append("the torch model they are compared with")
    text = " and ".join(parts) + f": {len(rows)} row{'s' if len(rows) != 1 else ''}"
    if steps:
        text += f" (the streaming export is also timed one step at a time: {steps} row{'s' if steps != 1 else ''})"
    return text


def _headline_shape(rows: list[dict[str, Any]]) -> str | None:
    return next((r["shape"] for r in rows if r.get("shape") and "one step" not in r["shape"]), None)


def grid_rows(bench: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every row of the bench grid, for the full table (a bar of the p50, scaled to the slowest row)."""
    from edgelstm.latency import summarize

    rows = summarize(bench) if bench else []
    top = max((r["p50_ms"] for r in rows), default=0.0) or 1.0
    return [{**r, "bar": BAR * max(1, round(12 * r["p50_ms"] / top))} for r in rows]


# ------------------------------------------------------------------------------------------------ Markdown


def render_markdown(res, rows: list[dict[str, Any]]) -> str:
    status = ("✅ " if res.passed else "❌ ") + verdict_words(res)
    shape = _headline_shape(rows)
    lines = [f"# edgelstm report — {status}", "", *provenance_lines(res.provenance)]
    lines[-1] += "  "
    lines += [f"**Data** validated on {res.data.get('validation', '?')}"
              + (f" · static INT8 calibrated on {res.data['calibration']}" if "calibration" in res.data else ""),
              "", f"Pipeline `{res.pipeline.name}` · artifacts in `{res.out_dir}`", ""]
    failed = [g for g in res.gates if not g["passed"]]
    if failed:
        lines += ["## Failed gates", "", *(f"- **{_cell(g['suite'])}**: {_cell(g['message'])}" for g in failed), ""]
    lines += ["## Artifacts", "", counts_words(res, rows) + "." + (f" Latency p50 at {shape}." if shape else ""), "",
              f"| artifact | precision | size | rel_l2 vs torch | task | gates | p50 ms{f' ({shape})' if shape else ''} "
              "| speed-up vs torch | notes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p50 = _fmt(r["p50_ms"]) + (" (one step)" if r["p50_ms"] is not None and "one step" in (r.get("shape") or "")
                                    else "")
        lines.append(f"| {_cell(r['artifact'])} | {r['precision']} | {_size(r['size_bytes'])} | "
                     f"{_fmt(r['rel_l2'], '.2e')} | {r['task'] or '–'} | {r['gates']} | {p50} | "
                     f"{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'} | "
                     f"{_cell('; '.join(r.get('remarks') or [])) or '–'} |")
    if res.notes:
        lines += ["", "## Notes", "", *(f"- {_cell(n)}" for n in res.notes)]
    lines += ["", "## Gates", "", "| where | gate | value | result |", "|---|---|---|---|"]
    for g in res.gates:
        lines.append(f"| {_cell(g['suite'])} | `{_cell(g['name'])}` | {_fmt(g.get('value'), '.3e')} | "
                     f"{'pass' if g['passed'] else '**FAIL**'} |")
    lines += compare_markdown(res.comparisons, str(res.pipeline.compare.against))
    lines += _drift_markdown(res)
    lines += _grid_markdown(res)
    plot_files = [Path(p).name for k, p in res.reports.items() if k.endswith("_plot")]
    if plot_files:  # no image links: a relative link does not show in a CI job summary
        lines += ["", "Plots: " + ", ".join(f"`{f}`" for f in plot_files) + " beside this file, and in `report.html`."]
    if res.skipped:
        lines += ["", "## Skipped", ""] + [f"- {s['stage']}: {_cell(s['reason'])}" for s in res.skipped]
    lines += ["", "<details><summary>Environment</summary>", "", "```", *_env_lines(res), "```", "</details>", ""]
    return "\n".join(lines)


def _spark(values: list[float]) -> str:
    """A one-line picture of a series on a log scale (renders wherever text does)."""
    import math

    ticks = "▁▂▃▄▅▆▇█"
    logs = [math.log10(max(v, 1e-12)) for v in values]
    lo, hi = min(logs, default=0.0), max(logs, default=0.0)
    return "".join(ticks[0 if hi == lo else round((x - lo) / (hi - lo) * 7)] for x in logs)


def _drift_markdown(res) -> list[str]:
    series = {n: d for n, d in res.drift_by_length.items() if d.get("lengths")}
    if not series:
        return []
    lengths = next(iter(series.values()))["lengths"]
    out = ["", "## Drift along the recurrence", "", "rel_l2 against torch when the sequence is cut at T time steps "
           "(the trend column: log scale, per artifact).", "",
           "| artifact | " + " | ".join(f"T={t}" for t in lengths) + " | trend |", "|---|" + "---|" * (len(lengths) + 1)]
    for name, d in series.items():
        out.append(f"| {name} | " + " | ".join(f"{v:.1e}" for v in d["rel_l2"]) + f" | {_spark(d['rel_l2'])} |")
    return out


def _grid_markdown(res) -> list[str]:
    rows = grid_rows(res.bench)
    if not rows:
        return []
    out = ["", "## Latency over the whole bench grid", "", f"{len(rows)} measurements (p50 bar scaled to the "
           "slowest).", "", "| artifact | backend | precision | batch × seq × threads | p50 | p99 | seq/s | "
           "speed-up vs torch | p50 |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    from edgelstm.latency.summary import shape_words
    from edgelstm.latency.winners import with_variant

    for r in rows:
        shape = shape_words(r["batch"], None if r["mode"] == "step" else r["seq"], r["threads"])
        out.append(f"| {_cell(r['artifact'])} | {with_variant(r, 'backend')} | {r['precision']} | {shape} | {_fmt(r['p50_ms'])} ms | "
                   f"{_fmt(r['p99_ms'])} ms | {r['seq_per_s']:.0f} | "
                   f"{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'} | `{r['bar']}` |")
    reg = (res.bench or {}).get("regression")
    if reg:
        out += ["", f"Against the baseline `{reg.get('baseline')}` (max slowdown {reg['max_slowdown']:g}×): "
                f"{reg['compared']} rows compared, {len(reg['regressed'])} regressed."]
    return out


def _env_lines(res) -> list[str]:
    env = (res.bench or {}).get("device") or {}
    lines = [f"machine: {machine_words(res.provenance.get('machine', {}))}"]
    for k, v in (env.get("versions") or {}).items():
        if v:
            lines.append(f"{k}: {v}")
    for k in ("os", "python", "memory_gb"):
        if env.get(k) is not None:
            lines.append(f"{k}: {env[k]}")
    return lines


# ---------------------------------------------------------------------------------------------------- HTML

CSS = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}"
       "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
       "th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}"
       "#provenance{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;line-height:1.6}"
       "#provenance code{word-break:break-all}"
       "img{max-width:100%;border:1px solid #eee}pre{background:#f6f8fa;padding:1rem;overflow:auto}")


def _provenance_html(res) -> str:
    e = html.escape
    p = res.provenance
    git = p.get("git")
    commit = (f"<code>{e(git['commit'])}</code>" + (" (with uncommitted changes)" if git.get("dirty") else "")
              if git else "not in a git work tree")
    model = p.get("model") or {}
    items = [("Date", e(p.get("date", "?"))), ("edgelstm", e(str(p.get("edgelstm")))), ("Commit", commit),
             ("Model", f"<code>{e(Path(str(model.get('file', '?'))).name)}</code> sha256 "
                       f"<code>{e(str(model.get('sha256') or 'n/a'))}</code>"),
             ("Machine", e(machine_words(p.get("machine", {})))),
             ("Data", e(f"validated on {res.data.get('validation', '?')}"
                        + (f"; static INT8 calibrated on {res.data['calibration']}" if "calibration" in res.data else "")))]
    return "<div id='provenance'>" + "<br>".join(f"<b>{k}</b> {v}" for k, v in items) + "</div>"


def render_html(res, rows: list[dict[str, Any]], pngs: dict[str, bytes]) -> str:
    e = html.escape
    shape = _headline_shape(rows)
    cls = "pass" if res.passed else "fail"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgelstm report</title><style>{CSS}</style>"
             f"</head><body><h1>edgelstm report — <span class='{cls}'>{e(verdict_words(res))}</span></h1>",
             _provenance_html(res)]
    failed = [g for g in res.gates if not g["passed"]]
    if failed:
        parts.append("<h2>Failed gates</h2><ul id='failed'>" + "".join(
            f"<li class='fail'>{e(g['suite'])}: {e(g['message'])}</li>" for g in failed) + "</ul>")
    parts.append(f"<h2>Artifacts</h2><p id='counts'>{e(counts_words(res, rows))}.</p><table id='summary'><tr>"
                 "<th>artifact</th><th>precision</th><th>size</th><th>rel_l2 vs torch</th><th>task</th><th>gates</th>"
                 f"<th>p50 ms{e(f' ({shape})') if shape else ''}</th><th>speed-up</th><th>notes</th></tr>")
    for r in rows:
        c = "pass" if r["gates"] == "pass" else "fail" if r["gates"] == "FAIL" else ""
        parts.append(f"<tr><td>{e(r['artifact'])}</td><td>{e(r['precision'])}</td><td>{_size(r['size_bytes'])}</td>"
                     f"<td>{_fmt(r['rel_l2'], '.2e')}</td><td>{e(r['task'] or '–')}</td>"
                     f"<td class='{c}'>{e(r['gates'])}</td><td>{_fmt(r['p50_ms'])}</td>"
                     f"<td>{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'}</td>"
                     f"<td>{e('; '.join(r.get('remarks') or [])) or '–'}</td></tr>")
    parts.append("</table>")
    if res.notes:
        parts.append("<h2>Notes</h2><ul id='notes'>" + "".join(f"<li>{e(n)}</li>" for n in res.notes) + "</ul>")
    parts.append("<h2>Gates</h2><table id='gates'><tr><th>where</th><th>gate</th><th>value</th><th>result</th></tr>")
    for g in res.gates:
        ok = g["passed"]
        parts.append(f"<tr><td>{e(g['suite'])}</td><td><code>{e(g['name'])}</code></td>"
                     f"<td>{_fmt(g.get('value'), '.3e')}</td>"
                     f"<td class='{'pass' if ok else 'fail'}'>{'pass' if ok else 'FAIL'}</td></tr>")
    parts.append("</table>")
    parts.append(compare_html(res.comparisons, str(res.pipeline.compare.against)))
    for key, title in (("drift_per_step", "Drift along the recurrence"), ("latency", "Latency by artifact"),
                       ("latency_grid", "Latency over the bench grid")):
        if key in pngs:
            b64 = base64.b64encode(pngs[key]).decode()
            parts.append(f"<h2>{title}</h2><img class='plot' id='{key}' alt='{title}' src='data:image/png;base64,{b64}'>")
    grid = grid_rows(res.bench)
    if grid:
        from edgelstm.latency.summary import shape_words
        from edgelstm.latency.winners import with_variant

        parts.append("<table id='grid'><tr><th>artifact</th><th>backend</th><th>precision</th>"
                     "<th>batch × seq × threads</th><th>p50 ms</th><th>p99 ms</th><th>seq/s</th><th>speed-up</th></tr>")
        parts += [f"<tr><td>{e(r['artifact'])}</td><td>{e(with_variant(r, 'backend'))}</td><td>{e(r['precision'])}</td>"
                  f"<td>{e(shape_words(r['batch'], None if r['mode'] == 'step' else r['seq'], r['threads']))}</td>"
                  f"<td>{_fmt(r['p50_ms'])}</td><td>{_fmt(r['p99_ms'])}</td><td>{r['seq_per_s']:.0f}</td>"
                  f"<td>{_fmt(r['speedup'], '.2f') + '×' if r['speedup'] else '–'}</td></tr>" for r in grid]
        parts.append("</table>")
    if res.skipped:
        parts.append("<h2>Skipped</h2><ul>" + "".join(f"<li>{e(s['stage'])}: {e(s['reason'])}</li>"
                                                      for s in res.skipped) + "</ul>")
    parts.append("<h2>Environment</h2><pre>" + e("\n".join(_env_lines(res))) + "</pre>")
    if res.pipeline.source_text:
        parts.append("<h2>Pipeline</h2><pre>" + e(res.pipeline.source_text) + "</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def write_reports(res) -> tuple[list[Path], dict[str, Any]]:
    """report.md, report.html, junit.xml and the plots, into the output folder, all or nothing."""
    from edgelstm.pipeline import plots
    from edgelstm.safe_files import all_or_nothing
    from edgelstm.validation.reports.junit import junit_document

    rows = res.summary_rows()
    pngs: dict[str, bytes] = {}
    if any(d.get("lengths") for d in res.drift_by_length.values()):
        pngs["drift_per_step"] = plots.drift_plot(res.drift_by_length)
    if any(r.get("p50_ms") is not None for r in rows):
        pngs["latency"] = plots.latency_plot(rows, _headline_shape(rows))
    grid = plots.grid_plot(res.bench) if res.bench else None
    if grid is not None:
        pngs["latency_grid"] = grid
    out = res.out_dir
    paths: dict[str, Path] = {}
    with all_or_nothing():  # the reports of one run commit together, or none does (safe_files)
        for key, data in pngs.items():
            paths[f"{key}_plot"] = write_bytes_atomic(out / f"{key}.png", data)
        res.reports = dict(paths)
        paths["markdown"] = write_text_atomic(out / "report.md", render_markdown(res, rows))
        paths["html"] = write_text_atomic(out / "report.html", render_html(res, rows, pngs))
        paths["junit"] = write_text_atomic(out / "junit.xml", junit_document(pipeline_suites(res),
                                                                              name="edgelstm run"))
    return list(paths.values()), {"paths": {k: str(v) for k, v in paths.items()}, "rows": rows}


def pipeline_suites(res) -> list[dict[str, Any]]:
    """The run's gates as JUnit suites: one per place (validate fp16, bench baseline ...), a testcase per gate."""
    suites: dict[str, dict[str, Any]] = {}
    for g in res.gates:
        s = suites.setdefault(g["suite"], {"name": g["suite"], "cases": []})
        s["cases"].append({"classname": "edgelstm." + g["suite"].replace(" ", ".").replace("-", "_"),
                           "name": g["name"], "failure": None if g["passed"] else g["message"]})
    if not suites:
        suites["edgelstm run"] = {"name": "edgelstm run", "cases": [{"classname": "edgelstm.run",
                                                                    "name": "pipeline ran (no gates set)",
                                                                    "failure": None}]}
    return list(suites.values())
