"""[compare] against: each artifact of this run (NEW) against the artifact of the same file name in another run's
output folder (OLD, main's in a pull request's job), in this run, on this machine (edgelstm.latency.compare and
edgelstm.validation.compare):

- accuracy: NEW and OLD validated against this run's reference on this run's data; NEW's drift and task error
  may grow to [compare].max_growth x OLD's (+ 1e-6) for every metric both have ("vs OLD" gates);
- latency (``[compare].latency``): NEW and OLD timed interleaved at every [bench] grid point, a confidence interval
  on NEW/OLD; the gate fails when the interval lies above max_slowdown ("slower"), and when it straddles it
  ("inconclusive") unless on_inconclusive is warn or pass.

``compare_artifact`` is the stage (its result goes to ``compare/<artifact>.json``), ``compare_markdown`` /
``compare_html`` render the results as the reports' "Against" section (``verdict.compare_gates``: as gates)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from edgelstm.fileio import write_text_atomic
from edgelstm.latency.summary import shape_words


def compare_artifact(ref_runner, artifact, old: Path, val, p, report_path: Path):
    """One artifact against its OLD version: (output paths, {"comparison": ...}) for the stage cache."""
    from edgelstm.latency import BenchGrid, BenchOptions
    from edgelstm.latency.compare import CompareOptions, compare_latency
    from edgelstm.validation.compare import AgainstOptions, compare_accuracy
    from edgelstm.validation.validate import ValidateOptions

    c = p.compare
    acc = compare_accuracy(ref_runner, artifact.path, old, val, ValidateOptions(),
                           AgainstOptions(tolerance=c.max_growth - 1.0))
    out: dict[str, Any] = {"artifact": artifact.name, "new": str(artifact.path), "old": str(old),
                           "accuracy": {"passed": all(g.passed for g in acc.changes), "max_growth": c.max_growth,
                                        "changes": [g.to_dict() for g in acc.changes]},
                           "latency": None}
    if c.latency:
        grid = BenchGrid(batches=p.bench.batch, seqs=p.bench.seq, threads=p.bench.threads)
        options = CompareOptions(max_slowdown=c.max_slowdown, on_inconclusive=c.on_inconclusive, max_time=c.max_time)
        out["latency"] = compare_latency(artifact.path, old, options, grid=grid,
                                         bench=BenchOptions(measure_memory=False)).to_json()
    write_text_atomic(report_path, json.dumps(out, indent=2, default=str) + "\n")
    return [report_path], {"comparison": out}


def compare_rows(comparisons: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per artifact: OLD's file, the accuracy verdict, and the latency verdict at each grid point."""
    rows = []
    for name, c in comparisons.items():
        acc = c["accuracy"]
        failed = [g for g in acc["changes"] if not g["passed"]]
        accuracy = (f"within {acc['max_growth']:g}x OLD ({len(acc['changes'])} metrics)" if not failed else
                    f"{len(failed)} of {len(acc['changes'])} metrics beyond {acc['max_growth']:g}x OLD")
        points = (c.get("latency") or {}).get("points", [])
        latency = "; ".join(f"{pt['verdict']} (NEW/OLD {pt['ratio']['estimate'] or float('nan'):.3f}, "
                            f"{shape_words(pt['batch'], pt['seq'], pt['threads'])})" for pt in points) or "not timed"
        rows.append([name, Path(c["old"]).name, accuracy, latency])
    return rows


def compare_markdown(comparisons: dict[str, dict[str, Any]], against: str) -> list[str]:
    if not comparisons:
        return []
    lines = ["", f"## Against `{against}` (same run, same machine)", "",
             "| artifact | OLD | accuracy | latency NEW/OLD |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in compare_rows(comparisons)]
    return lines


def compare_html(comparisons: dict[str, dict[str, Any]], against: str) -> str:
    if not comparisons:
        return ""
    e = html.escape
    rows = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in compare_rows(comparisons))
    return (f"<h2>Against <code>{e(against)}</code> (same run, same machine)</h2><table id='against'><tr>"
            f"<th>artifact</th><th>OLD</th><th>accuracy</th><th>latency NEW/OLD</th></tr>{rows}</table>")
