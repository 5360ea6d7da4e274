"""A Markdown summary for a CI job page (e.g. appended to $GITHUB_STEP_SUMMARY): verdict, outputs x
metrics, task metrics, gates with pass/fail, per-step drift and streaming drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.fileio import write_text_atomic
from edgelstm.validation.reports.validate_json import report_dict

METRIC_COLUMNS = ("max_abs", "mean_abs", "rmse", "rel_l2", "cosine")


def _n(v: Any, metric: str = "") -> str:
    if metric in ("cosine", "agreement", "accuracy", "reference_accuracy") and isinstance(v, float):
        return f"{v:.6g}"  # 0.999973, not 1
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == 0.0:
            return "0"
        return f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(header), "|" + "|".join("---" for _ in header) + "|", *(_row(r) for r in rows)]


def _provenance(rep: dict[str, Any]) -> list[str]:
    """Date, edgelstm version, git commit, both files with their sha256, and the machine (ISA class)."""
    from edgelstm.fileio import sha256_file
    from edgelstm.machine.provenance import provenance, provenance_lines

    cand = Path(str(rep.get("candidate")))
    p = provenance(where=cand.parent if cand.is_file() else None)
    lines = provenance_lines(p)
    machine = lines.pop()
    for role in ("reference", "candidate"):
        f = Path(str(rep.get(role)))
        sha = sha256_file(f) if f.is_file() else None
        lines.append(f"**{role.capitalize()}** `{_cell(f.name)}` · sha256 `{sha or 'n/a (not a file)'}`  ")
    return [*lines, machine, ""]


def markdown_summary(result) -> str:
    """The validate report as Markdown (a PR comment, a job summary): verdict, provenance, drift, task, gates,
    NEW vs OLD, per-step drift, streaming, notes."""
    from edgelstm.validation.compare import against_markdown

    rep = report_dict(result)
    gates = rep.get("gates", [])
    failed = [g for g in gates if not g.get("passed")]
    verdict = "✅ passed" if rep.get("passed") else "❌ failed"
    counts = f"{len(gates) - len(failed)}/{len(gates)} gates passed" if gates else "no gates given"
    lines = [f"### edgelstm validate: {verdict} ({counts})", ""]
    lines += _provenance(rep)
    lines += _pair_line(rep)
    outputs = rep.get("outputs") or {}
    if outputs:
        lines += ["#### Drift per output", ""]
        lines += _table(["output", *METRIC_COLUMNS],
                        [[name, *(_n(m.get(k), k) for k in METRIC_COLUMNS)] for name, m in outputs.items()])
        lines.append("")
    lines += _task_section(rep.get("task") or {})
    lines += _gates_section(gates)
    lines += against_markdown(rep, _n)
    lines += _per_step_section(outputs)
    lines += _streaming_section(rep.get("streaming"))
    notes = rep.get("notes") or []
    if notes:
        lines += ["#### Notes", "", *(f"- {_cell(n)}" for n in notes), ""]
    return "\n".join(lines)


def _pair_line(rep: dict) -> list[str]:
    """Who was compared with whom (backend, precision), on what data and machine; then the warnings."""
    ri, ci = rep.get("reference_info") or {}, rep.get("candidate_info") or {}
    data = rep.get("data") or {}

    def who(path: Any, info: dict) -> str:
        extra = ", ".join(str(x) for x in (info.get("backend"), info.get("precision")) if x)
        return f"`{_cell(Path(str(path)).name)}`" + (f" ({extra})" if extra else "")

    lines = [f"**reference** {who(rep.get('reference'), ri)} → **candidate** {who(rep.get('candidate'), ci)} · "
             f"{rep.get('samples')} samples" + (f" from `{_cell(data['source'])}`" if data.get("source") else "")
             + (f" · seq {data['seq']}" if data.get("seq") else "")
             + (f" · measured on {(rep.get('machine') or {}).get('isa')}" if rep.get("machine") else ""), ""]
    for w in rep.get("warnings") or []:
        lines += [f"> ⚠️ {_cell(w)}", ""]
    return lines


def _task_section(task: dict) -> list[str]:
    if not task:
        return []
    lines = [f"#### Task ({task.get('kind')}, output `{task.get('output')}`)", ""]
    if task.get("kind") == "regression":
        rows = [[k, _n(task.get(k)), _n(task.get(f"reference_{k}")), _n(task.get(f"{k}_delta"))]
                for k in ("mse", "mae") if k in task]
    else:
        rows = []
        if "accuracy" in task:
            rows.append(["accuracy", _n(task["accuracy"]), _n(task.get("reference_accuracy")),
                         _n(task.get("accuracy_delta"))])
        rows.append(["agreement (argmax)", _n(task.get("agreement")), "", ""])
    return [*lines, *_table(["metric", "candidate", "reference", "delta"], rows), ""]


def _gates_section(gates: list) -> list[str]:
    lines = ["#### Gates", ""]
    budgets = [g for g in gates if g.get("source") != "against"]  # the change gates: in "NEW vs OLD" below
    if budgets:
        rows = []
        for g in budgets:
            name = g["metric"] + (f":{g['output']}" if g.get("output") else "")
            if g.get("source") == "baseline":
                name = f"baseline {name} (was {_n(g.get('baseline'))})"
            metric = str(g["metric"]).split(".")[-1]
            rows.append([name, _n(g.get("value"), metric), f"{g.get('op', '<=')} {_n(g.get('limit'), metric)}",
                         "✅ pass" if g.get("passed") else "❌ **fail**"])
        lines += _table(["gate", "value", "limit", "result"], rows)
    elif gates:
        lines.append("No budgets were given: the candidate is gated on its change against OLD (below).")
    else:
        lines.append("No gates were given: drift is reported, not enforced (use `--gate` or `--policy`).")
    return [*lines, ""]


def _per_step_section(outputs: dict) -> list[str]:
    stepped = {n: m for n, m in outputs.items() if m.get("time_axis") is not None}
    lines = ["#### Per-step drift", ""]
    if stepped:
        rows = []
        for name, m in stepped.items():
            s = m.get("per_step_summary") or {}
            rows.append([name, s.get("steps"), _n(s.get("first")), _n(s.get("last")),
                         f"{_n(s.get('max'))} (step {s.get('max_step')})", _n(s.get("growth"))])
        lines += _table(["output", "steps", "first rmse", "last rmse", "max rmse", "last/first"], rows)
    else:
        lines.append("No output has a time axis: drift is measured on the final output only.")
    return [*lines, ""]


def _streaming_section(streaming: dict | None) -> list[str]:
    if not streaming:
        return []
    cs = ", ".join(str(c) for c in streaming.get("chunk_sizes", []))
    lines = [f"#### Streaming (chunks of {cs} steps, state carried; {streaming.get('samples')} samples)", ""]
    rows = []
    for chunk, outs in (streaming.get("by_chunk") or {}).items():
        for name, m in outs.items():
            rows.append([name, chunk, *(_n(m.get(k), k) for k in METRIC_COLUMNS)])
    return [*lines, *_table(["output", "chunk", *METRIC_COLUMNS], rows), ""]


def write_markdown(result, path: str | Path) -> Path:
    return write_text_atomic(path, markdown_summary(result))
