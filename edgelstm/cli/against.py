"""`--against OLD` on `edgelstm bench` and `edgelstm validate`: the same-run A/B comparison of a pull request's
model (NEW) with main's (OLD), needing no stored number from another machine. The commands' thin part; the
work is in edgelstm.latency.compare and edgelstm.validation.compare."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

from edgelstm import console

COMPARE_HELP = """--against OLD.onnx --max-slowdown 1.10 times ONE artifact (NEW) and OLD interleaved in the same run
(alternating blocks, order random, warm-up for each) and puts a confidence interval on the latency ratio NEW/OLD
at every --batch x --seq x --threads point: "slower" (exit 1) when the whole interval is above --max-slowdown,
"not slower" when it is below, "inconclusive" otherwise; the run then measures more pairs (up to --max-pairs,
--max-time seconds per point) and, if still undecided, --on-inconclusive says what happens (default fail: exit
1). The way to gate latency on a hosted CI runner, where a stored --baseline from another machine means nothing."""


def check_bench_against(artifacts: list[Path], against: Path, *, baseline: Optional[Path], stream: bool,
                        iters: Optional[int], min_time: Optional[float], csv_out: Optional[Path],
                        plot: Optional[Path], gpu: Optional[dict[str, Any]] = None) -> None:
    """Options that make no sense with --against, refused in one line before anything runs (``gpu``: the
    trtexec-style timing options given, which the comparison's own interleaved blocks do not use)."""
    from edgelstm.errors import BadInput, opt

    if len(artifacts) != 1:
        raise BadInput(f"{opt('against')} compares one artifact (NEW) with OLD; got {len(artifacts)} artifacts",
                       hint="edgelstm bench NEW.onnx --against OLD.onnx")
    if not against.exists():
        raise BadInput(f"{opt('against')} {against} does not exist")
    clash = [name for name, given in (("baseline", baseline), ("stream", stream), ("iters", iters),
                                      ("min_time", min_time), ("csv", csv_out), ("plot", plot),
                                      *(gpu or {}).items()) if given]
    if clash:
        raise BadInput(f"{', '.join(opt(c) for c in clash)} cannot be combined with {opt('against')}",
                       hint=f"the comparison sizes its own blocks (see {opt('max_pairs')} and {opt('max_time')}) "
                            f"and writes its result with {opt('report')} or --json")


def bench_against(new: Path, old: Path, grid: Any, bench_options: Any, compare_options: Any, *,
                  report: Optional[Path], json_out: bool) -> None:
    """Run the comparison, print the table and the verdict, write the report; exit 1 when the gate fails."""
    from edgelstm.cli.common import finish
    from edgelstm.latency.compare import compare_latency
    from edgelstm.latency.compare_report import TABLE_COLUMNS, table_rows, verdict_line
    from edgelstm.latency.report import device_line, write_json

    points = len(grid.points())
    console.step(f"comparing {new.name} (NEW) with {old.name} (OLD) in one run, interleaved, at {points} grid "
                 f"point(s) (max slowdown {compare_options.max_slowdown:g}x)")
    done = {"point": 0}
    with console.progress("comparing", total=points) as advance:
        def on_progress(index: int, _total: int, _pairs: int, _planned: int) -> None:
            while done["point"] < index:  # a point finished
                done["point"] += 1
                advance()

        result = compare_latency(new, old, compare_options, grid=grid, bench=bench_options, on_progress=on_progress)
        advance(points - done["point"])
    payload = result.to_json()
    console.info(f"[dim]device: {device_line(result.device)}[/]")
    for w in payload["warnings"]:
        console.warn(w)
    for n in payload["notes"]:
        console.info(f"  [dim]{n}[/]")
    console.table(f"NEW/OLD latency, same run ({payload['per_look_confidence']:.2%} interval per look)",
                  TABLE_COLUMNS, table_rows(payload))
    if report is not None:
        write_json(payload, report)
        console.success(f"wrote {report}")
    line = verdict_line(payload)
    if payload["verdict"] == "not slower":
        console.success(line)
    elif payload["verdict"] == "inconclusive" and result.passed:
        (console.warn if str(compare_options.on_inconclusive) == "warn" else console.info)(line)
    else:
        console.error(line)
    finish(payload, json_out, 0 if result.passed else 1)


def validate_against(reference: Path, candidate: Path, old: Path, request: Any, options: Any, tolerance: float,
                     floor: float, stack: contextlib.ExitStack) -> Any:
    """compare_accuracy with a progress bar per phase; returns NEW's ValidationResult (its report carries the
    comparison; its gates include the change gates)."""
    from edgelstm.validation.compare import AgainstOptions, compare_accuracy

    bars: dict[str, Any] = {}

    def on_progress(phase: str, _done: int, total: int) -> None:
        if phase not in bars:
            bars[phase] = stack.enter_context(console.progress(f"validating {phase.upper()}", total))
        bars[phase](1)

    console.step(f"validating {candidate.name} (NEW) and {old.name} (OLD) against {reference.name}, same data")
    return compare_accuracy(reference, candidate, old, request, options, AgainstOptions(tolerance, floor),
                            on_progress=on_progress).new


def print_against(section: dict[str, Any]) -> None:
    """The NEW vs OLD table of a validate report's `against` section."""
    from edgelstm.validation.compare import change_text

    def num(v: Any) -> str:
        return "n/a" if v is None else f"{v:.6g}"

    console.table(f"NEW vs OLD ({Path(str(section['old'])).name}): drift may grow to {section['max_growth']:g} x OLD "
                  f"+ {section['floor']:g}", ["metric", "OLD", "NEW", "change", "limit", "result"],
                  [[c["metric"] + (f":{c['output']}" if c.get("output") else ""), num(c["old"]), num(c["new"]),
                    change_text(c), f"{c['op']} {num(c['limit'])}",
                    "[green]pass[/]" if c["passed"] else "[bold red]FAIL[/]"] for c in section["changes"]])
    for w in section.get("warnings") or []:
        console.warn(w)
