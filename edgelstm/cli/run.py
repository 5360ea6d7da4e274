"""`edgelstm run PIPELINE.toml`: every stage, cached, one report."""

from __future__ import annotations

from pathlib import Path

import typer

from edgelstm import console
from edgelstm.fileio import human_size
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish

HELP = """Run a pipeline file: model → convert → quantize → validate → bench → report. Every stage is cached by
the content hash of its inputs and options, so a re-run with nothing changed does no work (and says so), and
an interrupted run resumes. Exit code 1 when any gate fails (after the report is written).

The whole file is checked first (every bad key is named, nothing runs); one pipeline at a time writes into an
output directory (a second fails at once naming the first, or waits with --wait).

  edgelstm run examples/pipelines/lstm_regressor.toml

Sections: [model] zoo|source, [export], [quantize] precisions, [data], [validate] gates, [bench], [targets],
[output] dir, [devices] hosts|inventory (end with a check on those devices over SSH, as `edgelstm remote`).
See examples/pipelines/ for every key.
"""




def _task(text):
    """`mse=0.0004413` -> `mse 0.000441` (3 significant digits; wraps at the space in a narrow table)."""
    name, sep, value = (text or "").partition("=")
    try:
        return f"{name} {float(value):.3g}" if sep else text
    except ValueError:
        return text


def render_summary(result) -> None:
    from rich.markup import escape

    rows = result.summary_rows()
    # The artifact's file name says its precision (model.int8-dynamic.onnx); --json and report.md carry the column.
    # Short cells that can wrap at a space keep the table readable in an 80-column terminal.
    console.table("pipeline summary", ["artifact", "size", "rel_l2", "task", "gates", "p50 ms", "speed-up vs torch"],
                  [[r["artifact"], human_size(r["size_bytes"]),
                    None if r["rel_l2"] is None else f"{r['rel_l2']:.2e}", _task(r["task"]),
                    {"pass": "[green]pass[/]", "FAIL": "[red]FAIL[/]"}.get(r["gates"], r["gates"]),
                    None if r["p50_ms"] is None else f"{r['p50_ms']:.3g}",
                    None if not r["speedup"] else f"{r['speedup']:.2f}×"] for r in rows])
    for s in result.skipped:
        console.info(f"[dim]skipped {s['stage']}: {s['reason']}[/]")
    for note in result.notes:
        console.info(f"  {escape(note)}")
    cached = sum(s["cached"] for s in result.stages)
    if result.cached_everything:
        console.success(f"nothing changed: all {len(result.stages)} stages served from cache "
                        f"({result.seconds:.1f}s)")
    else:
        console.info(f"{len(result.stages) - cached} stages ran, {cached} from cache, {result.seconds:.1f}s")
    for kind, path in result.reports.items():
        if kind in ("markdown", "html"):
            console.info(f"report: {path}")
    if getattr(result, "devices", None) is not None:  # [devices]
        console.info(f"devices: {escape(result.devices['headline'])}; report: {result.devices['reports'].get('markdown')}")
    for name, v in result.validations.items():
        for g in v.get("gates", []):
            if not g.get("passed"):
                metric = f"{g.get('metric')}{':' + g['output'] if g.get('output') else ''}"
                limit = g.get("limit")
                console.error(f"gate failed for {name}: {metric} = {console.fmt_value(g.get('value'), limit)} "
                              f"(limit {g.get('op', '<=')} {'n/a' if limit is None else format(limit, 'g')})")


def payload(result) -> dict:
    return {"passed": result.passed, "out_dir": str(result.out_dir), "seconds": result.seconds,
            "stages": result.stages, "summary": result.summary_rows(), "skipped": result.skipped,
            "notes": result.notes, "devices": getattr(result, "devices", None),
            "reports": {k: str(v) for k, v in result.reports.items()}}


def run(
    pipeline: Path = typer.Argument(..., metavar="PIPELINE.toml", help="The pipeline TOML file.", show_default=False),
    wait: bool = typer.Option(False, "--wait", help="If another pipeline is writing into the same output "
                                                     "directory, wait for it instead of failing."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.pipeline.flow import run_pipeline
    from edgelstm.pipeline.config import load_pipeline

    p = load_pipeline(pipeline, on_renamed=console.deprecated)  # the whole file is checked before anything runs
    result = run_pipeline(p, on_step=console.step, wait=wait)
    render_summary(result)
    finish(payload(result), json_out, 0 if result.passed else 1)


def register(app: typer.Typer) -> None:
    app.command("run", help=HELP)(command(run))
