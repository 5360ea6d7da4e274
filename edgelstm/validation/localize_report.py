"""Localisation reports: the verdict sentence, the per-tensor table (Markdown, HTML) and the JSON; the plots are
localize_plot.py. ``write_localization(result, folder)`` writes ``localize.md``, ``localize.html`` (plots embedded),
``localize.json``, ``localize_graph.png`` and, when a recurrent output has a time axis, ``localize_time.png``, all
or none."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from edgelstm.validation.localize_graph import ROLE_TEXT

MAX_ROWS = 200


def _g(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def verdict(result: Any) -> str:
    a = result.analysis
    entry = a.get("entry")
    worst = a.get("worst_output_rel_l2", 0.0)
    if entry is None:
        return (f"no tensor adds drift above {a.get('threshold', 0):.2g}: the candidate's outputs drift "
                f"rel_l2 {worst:.3g} from the reference")
    if entry.get("quantized_copy_of"):
        reader = next((r for r in a.get("rows", []) if r["node"] == entry["node"] and not r["quantized_copy_of"]), None)
        text = (f"drift enters at the {entry['op']} of {entry['quantized_copy_of']} in front of {entry['node']}"
                + (f" ({reader['op']})" if reader else ""))
    else:
        text = f"drift enters at {entry['node']} ({entry['op']}), tensor {entry['label']}"
    step = entry.get("time_step")
    if step is not None:
        text += f", at time step {step}"
    text += (f": rel_l2 {entry['rel_l2']:.3g} (adds {entry['added']:.3g}; the worst model output drifts "
             f"{worst:.3g})")
    rec = [r for r in a.get("recurrent", []) if r.get("entry_step") is not None]
    if rec and step is None:
        r = rec[0]
        text += (f"; in the recurrence {r['node']}'s hidden state it enters at step {r['entry_step']} and peaks at "
                 f"step {r['peak_step']} ({r['peak']:.3g})")
    return text


def _rows(result: Any) -> list[list[str]]:
    entry = (result.entry or {}).get("tensor")
    out = []
    for r in result.analysis.get("rows", [])[:MAX_ROWS]:
        mark = "◀ enters" if r["tensor"] == entry else ""
        t = r.get("time") or {}
        steps = "" if not t or t.get("peak_step") is None else (
            f"enters t={t['entry_step']}, peak t={t['peak_step']}" if t.get("entry_step") is not None
            else f"peak t={t['peak_step']}")
        out.append([r["node"] or "", r["op"], r["label"], _g(r["rel_l2"]), _g(r["added"]), _g(r.get("isolated")),
                    _g(r["max_abs"]), _g(r["cosine"]), steps, mark])
    return out


COLUMNS = ["node", "op", "tensor", "rel_l2", "added", "isolated", "max_abs", "cosine", "along time", ""]


def markdown(result: Any, *, images: dict[str, str] | None = None) -> str:
    a = result.analysis
    lines = [f"# Where the drift comes from: {Path(result.candidate).name} vs {Path(result.reference).name}", "",
             f"**{verdict(result)}**", "",
             f"{result.samples} samples, backend {result.backend}; a tensor *adds* drift when its rel_l2 exceeds its "
             f"inputs' by at least {a.get('jump', 0.1):g} × the worst output's ({a.get('threshold', 0):.3g}); "
             "*isolated* is its rel_l2 when its node runs on the reference's own inputs (ONNX candidates).", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _rows(result)]
    rec = a.get("recurrent", [])
    if rec:
        lines += ["", "## Along time (the hidden state of each recurrent layer)", "",
                  "| node | tensor | step 0 | entry step | peak step | peak | last | last / first |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rec:
            lines.append(f"| {r['node']} | {r['tensor']} ({ROLE_TEXT.get(r.get('role') or '', '')}) | "
                         f"{_g(r.get('first'))} | {_g(r.get('entry_step'))} | {_g(r.get('peak_step'))} | "
                         f"{_g(r.get('peak'))} | {_g(r.get('last'))} | {_g(r.get('growth_last_over_first'))} |")
    ranking = a.get("ranking", [])
    if ranking:
        lines += ["", "## Nodes by the drift they add (the accuracy fallback keeps them in float in this order)", ""]
        lines += [f"{i + 1}. {s['node']} ({s['op'] or 'input quantization'}): adds {s['added']:.3g}"
                  + (f", {s['isolated']:.3g} isolated" if s.get("isolated") is not None else "") + f" via {s['via']}"
                  for i, s in enumerate(ranking[:20])]
    m = result.matching
    if m.get("unmatched"):
        lines += ["", "## Reference tensors without a counterpart", ""]
        lines += [f"- {u['tensor']} ({u['node']}, {u['op']}): {u['why']}" for u in m["unmatched"][:50]]
    if m.get("candidate_only_count"):
        lines += ["", f"{m['candidate_only_count']} candidate tensor(s) have no reference counterpart (made by the "
                      f"converter): {', '.join(m['candidate_only'][:10])}"]
    if result.marking_effect:
        lines += ["", "Exposing the tensors moved the candidate's outputs by rel_l2 "
                  + ", ".join(f"{k}: {v:.2g}" for k, v in result.marking_effect.items()) + "."]
    lines += [f"- {n}" for n in result.notes]
    for title, ref in (images or {}).items():
        lines += ["", f"![{title}]({ref})"]
    return "\n".join(lines) + "\n"


def html_page(result: Any, images: dict[str, bytes]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = "".join("<tr" + (' class="entry"' if row[-1] else "") + ">" + "".join(f"<td>{esc(c)}</td>" for c in row)
                   + "</tr>" for row in _rows(result))
    pics = "".join(f'<h2>{esc(t)}</h2><img alt="{esc(t)}" src="data:image/png;base64,'
                   f'{base64.b64encode(png).decode()}">' for t, png in images.items())
    md_rest = markdown(result).split("\n## ", 1)
    rest = "" if len(md_rest) < 2 else "<pre>" + esc("## " + md_rest[1]) + "</pre>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>edgelstm localize</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px 6px;font-size:13px}tr.entry{background:#fde2e2;font-weight:bold}</style></head><body>"
            f"<h1>Where the drift comes from: {esc(Path(result.candidate).name)} vs {esc(Path(result.reference).name)}"
            f"</h1><p><b>{esc(verdict(result))}</b></p><table><tr>{head}</tr>{body}</table>{pics}{rest}"
            "</body></html>\n")


def write_localization(result: Any, folder: str | Path) -> list[Path]:
    """Write the reports into ``folder`` (created if missing); all files commit together or none does."""
    from edgelstm.fileio import write_bytes_atomic, write_text_atomic
    from edgelstm.safe_files import all_or_nothing
    from edgelstm.validation.localize_plot import plot_graph, plot_time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = {"error along the graph": plot_graph(result)}
    time_png = plot_time(result)
    if time_png is not None:
        images["error along time (hidden state)"] = time_png
    names = {"error along the graph": "localize_graph.png", "error along time (hidden state)": "localize_time.png"}
    written = []
    with all_or_nothing():
        for title, png in images.items():
            written.append(write_bytes_atomic(folder / names[title], png))
        written.append(write_text_atomic(folder / "localize.md", markdown(result, images={
            t: names[t] for t in images})))
        written.append(write_text_atomic(folder / "localize.html", html_page(result, images)))
        written.append(write_text_atomic(folder / "localize.json", json.dumps(result.to_dict(), indent=1,
                                                                              default=float) + "\n"))
    return written


__all__ = ["verdict", "markdown", "html_page", "write_localization", "COLUMNS"]
