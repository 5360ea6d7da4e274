"""`edgelstm compare RESULTS...`: merge devices' results files into one cross-device report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish

HELP = """Merge devices' check results into one report: artifacts x devices.

RESULTS are results files of `edgelstm device-check` (one per device, however they came home: pulled
by `edgelstm remote`, uploaded by a CI matrix of self-hosted runners, copied by hand). The report has
the devices (hardware, JetPack, power mode, clocks, how the check ended), the gate verdicts, drift
against the reference (and its spread across devices), latency p50/p99 and, from Jetsons, energy per
inference. It prints as tables and writes Markdown (a CI job summary), HTML and JSON.

Not to be confused with `--against` on bench/validate (one run compared with another on this machine):
compare merges what devices measured.

Exit code: the worst device's: 0 all passed, 1 a gate failed (the report names device and artifact),
3 a device did not finish (unreachable, lost connection, missing backend; the report says where).

Examples:

  edgelstm compare results/*.json --markdown fleet.md --html fleet.html

  edgelstm compare results/orin-nano.json results/x86.json --report fleet.json --json
"""


def print_report(report: dict[str, Any]) -> None:
    """The report's tables on the terminal, and its one-line verdict."""
    from edgelstm.fleet.report import headline, tables

    lit = console.literal
    for title, cols, rows in tables(report):
        console.table(title, cols, [[lit(c) for c in row] for row in rows])
    if report["passed"]:
        console.success(lit(headline(report)))
    else:
        console.info(f"[bold red]✗[/] {lit(headline(report))}")


def compare(
    results: List[Path] = typer.Argument(..., metavar="RESULTS...", show_default=False,
                                         help="Results files (results/*.json) of `device-check` or `remote`."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", show_default=False, metavar="OUT.md", help="Write the report as Markdown."),
    html_out: Optional[Path] = typer.Option(None, "--html", show_default=False, metavar="OUT.html", help="Write the report as HTML."),
    report: Optional[Path] = typer.Option(None, "--report", show_default=False, metavar="OUT.json", help="Write the report as JSON."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.fleet.compare import merge_results
    from edgelstm.fleet.report import write_reports
    from edgelstm.fleet.results import load_results

    loaded = [load_results(p) for p in results]
    merged = merge_results(loaded, [str(p) for p in results])
    write_reports(merged, markdown=markdown, html_path=html_out, json_path=report)
    print_report(merged)
    for p in (markdown, html_out, report):
        if p is not None:
            console.info(f"report: {console.literal(p)}")
    finish(merged, json_out, merged["exit_code"])


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(command(compare))
