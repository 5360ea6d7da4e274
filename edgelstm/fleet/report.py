"""The cross-device report (compare.merge_results) as Markdown (a CI job summary), self-contained HTML, and JSON.

Every table is artifacts x devices; a device that did not finish is a column saying where it stopped. Text from
results files (names, errors) is escaped: Markdown table cells cannot be broken by a `|`, HTML gets html.escape.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

Table = tuple[str, list[str], list[list[str]]]


def _num(v: Any, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt)


def device_hardware(d: dict[str, Any]) -> str:
    jet = d.get("jetson")
    if jet:
        jp = (jet.get("jetpack") or {}).get("version")
        return f"{jet.get('model') or 'Jetson'}" + (f", JetPack {jp}" if jp else "") + \
            (f" (L4T {jet['l4t']})" if jet.get("l4t") else "")
    parts = [d.get("cpu") or d.get("slug") or "?"]
    if d.get("isa"):
        parts.append(f"ISA {d['isa']}")
    if d.get("gpu"):
        parts.append(d["gpu"])
    return ", ".join(str(p) for p in parts)


def device_power(d: dict[str, Any]) -> str:
    jet = d.get("jetson")
    if not jet:
        return "–"
    nvp = (jet.get("nvpmodel") or {}).get("mode")
    clocks = jet.get("clocks") or {}
    on = jet.get("jetson_clocks")
    bits = [f"nvpmodel {nvp}" if nvp else "nvpmodel ?",
            "jetson_clocks " + ("on" if on else "off" if on is False else "?")]
    if clocks.get("gpu_mhz"):
        bits.append(f"GPU {clocks['gpu_mhz']} MHz")
    if clocks.get("emc_mhz"):
        bits.append(f"EMC {clocks['emc_mhz']} MHz")
    return ", ".join(bits)


def device_result(d: dict[str, Any]) -> str:
    if d["status"] == "incomplete":
        last = d.get("last_progress")
        where = f" (last: {last})" if last and last not in str(d.get("error")) else ""
        return f"stopped at {d['failed_step']}: {d.get('error')}{where}"
    if d["status"] == "error":
        return f"error (exit {d['exit_code']}): " + "; ".join(d.get("errors") or ["see its results file"])
    return {"passed": "passed", "gate failed": "gate failed (exit 1)"}[d["status"]]


def _gate_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return "–"
    if c["status"] != "ok":
        return f"{c['status']}: {c.get('reason') or ''}".strip(": ")
    if c["failed_gates"]:
        return "FAIL " + ", ".join(f"{g['gate']} ({_num(g['value'])})" for g in c["failed_gates"])
    return "pass" if c["passed"] else "–"


def tables(report: dict[str, Any]) -> list[Table]:
    """(title, columns, rows) of every table, in order: devices, gates, drift, latency, energy."""
    devs = [d["name"] for d in report["devices"]]
    cells = report["cells"]
    arts = report["artifacts"]
    out: list[Table] = [("Devices", ["device", "hardware", "power", "result"],
                         [[d["name"], device_hardware(d), device_power(d), device_result(d)]
                          for d in report["devices"]])]
    if not arts:
        return out
    out.append(("Gate verdicts", ["artifact", *devs], [[a, *(_gate_cell(cells[a].get(n)) for n in devs)] for a in arts]))
    out.append(("Drift against the reference (max rel_l2 over outputs)", ["artifact", *devs, "spread"],
                [[a, *(_num((cells[a].get(n) or {}).get("rel_l2")) for n in devs),
                  _num(report["drift_spread"].get(a))] for a in arts]))
    point = next((c["point"] for row in cells.values() for c in row.values() if c.get("point")), None)
    where = f" at batch {point['batch']} x seq {point['seq']}, {point['threads']} thread(s)" if point else ""
    out.append((f"Latency p50 / p99 (ms){where}", ["artifact", *devs],
                [[a, *(f"{_num(c.get('p50_ms'), '.4g')} / {_num(c.get('p99_ms'), '.4g')}"
                       if (c := cells[a].get(n)) and c.get("p50_ms") is not None else "–" for n in devs)]
                 for a in arts]))
    if report.get("energy"):
        out.append(("Energy per inference (mJ: module input / above idle; measured on the device by tegrastats)",
                    ["artifact", *devs],
                    [[a, *(f"{_num(c.get('mj'))} / {_num(c.get('dynamic_mj'))}"
                           if (c := cells[a].get(n)) and c.get("mj") is not None else "–" for n in devs)]
                     for a in arts]))
    return out


def headline(report: dict[str, Any]) -> str:
    n = len(report["devices"])
    failed = sorted({f"{g['device']}: {g['artifact']}" for g in report["failed_gates"]})
    stopped = [d["name"] for d in report["devices"] if d["status"] in ("incomplete", "error")]
    if report["passed"]:
        return f"all gates passed on {n} device(s)"
    parts = []
    if failed:
        parts.append(f"gate failed on {'; '.join(failed)}")
    if stopped:
        parts.append(f"did not finish: {', '.join(stopped)}")
    return f"exit {report['exit_code']}: " + "; ".join(parts)


def _md_cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    b = report.get("bundle") or {}
    lines = [f"# Device check: {_md_cell(b.get('source') or b.get('name') or 'bundle')}", "",
             f"**{_md_cell(headline(report))}** (bundle {_md_cell(b.get('name'))}, sha256 "
             f"{(b.get('sha256') or '?')[:12]}, {len(report['devices'])} device(s))", ""]
    if report.get("mixed_bundles"):
        lines += ["Warning: these results come from different bundles; compare them with care.", ""]
    for title, cols, rows in tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(_md_cell(c) for c in cols) + " |",
                  "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    b = report.get("bundle") or {}
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>edgelstm device check</title><style>",
             "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}"
             ".fail{color:#b00020;font-weight:bold}.pass{color:#1b7f3a}</style></head><body>",
             f"<h1>Device check: {e(str(b.get('source') or b.get('name') or 'bundle'))}</h1>",
             f"<p><b>{e(headline(report))}</b> &mdash; bundle {e(str(b.get('name')))}, sha256 "
             f"{e((b.get('sha256') or '?')[:12])}</p>"]
    for title, cols, rows in tables(report):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>")
        for row in rows:
            tds = []
            for c in row:
                cls = " class='fail'" if str(c).startswith(("FAIL", "stopped", "error", "gate failed")) else \
                    " class='pass'" if c in ("pass", "passed") else ""
                tds.append(f"<td{cls}>{e(str(c))}</td>")
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_reports(report: dict[str, Any], *, markdown: Path | None = None, html_path: Path | None = None,
                  json_path: Path | None = None) -> dict[str, str]:
    from edgelstm.fileio import write_text_atomic

    written = {}
    for key, path, text in (("markdown", markdown, lambda: render_markdown(report)),
                            ("html", html_path, lambda: render_html(report)),
                            ("json", json_path, lambda: json.dumps(report, indent=2, default=str) + "\n")):
        if path is not None:
            write_text_atomic(path, text())
            written[key] = str(path)
    return written
