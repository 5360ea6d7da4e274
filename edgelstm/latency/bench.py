"""`bench_artifacts`: the bench stage. Latency of artifacts over a grid of batch sizes, sequence lengths and
thread counts, through edgelstm.runners.open_runner; with a baseline, the regression gate. A pure stage:
nothing printed, no sys.exit; progress is reported through callbacks.

Every problem that can be found before timing (unknown or missing backend, a batch/seq outside a
fixed-shape artifact or an engine profile, streaming on a non-stateful artifact, a baseline from another
machine or model or without a row to compare) raises before the first measurement.

The parts: schema.py (grid, options, rows, report, row keys), preflight.py (the checks), bencher.py (the
timing engine), summary.py (speed-ups, streaming), regression.py (the gate), report.py / plot.py (files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from edgelstm.latency.bencher import Bencher
from edgelstm.latency.preflight import ResolvedTarget
from edgelstm.latency.regression import compare_reports, load_baseline, planned_keys, precheck_baseline
from edgelstm.latency.schema import BenchGrid, BenchOptions, BenchReport, BenchRow, BenchTarget  # noqa: F401
# re-exported for callers that import them from here (edgelstm.pipeline.flow); new code: edgelstm.latency
from edgelstm.latency.summary import summarize  # noqa: F401
from edgelstm.options import check_float, check_int


def bench_artifacts(targets: Sequence[Any], grid: BenchGrid = BenchGrid(), options: BenchOptions = BenchOptions(), *,
                    on_row: Callable[[BenchRow], None] | None = None, device: dict[str, Any] | None = None,
                    baseline: Mapping[str, Any] | str | Path | None = None, max_slowdown: float = 1.10,
                    repeats: int = 3) -> BenchReport:
    """Time every target over the grid (and, with options.stream, one streaming step per batch/threads).

    targets: paths (torch file, ONNX, engine), in-memory models, or BenchTarget. With `baseline` (a report
    dict or a path to one), rows are compared with it and suspected regressions are re-measured `repeats`
    times before they count; the verdict is in `report.regression` (["passed"] False: a confirmed
    regression, exit code 1 in the CLI). Raises BadInput/BackendMissing before any timing."""
    base = None
    if baseline is not None:
        check_float(max_slowdown, "max_slowdown", minimum=1.0)  # the numbers before the file
        check_int(repeats, "repeats")
        base = load_baseline(baseline) if isinstance(baseline, (str, Path)) else dict(baseline)

    def check(dev: dict[str, Any], resolved: list[ResolvedTarget]) -> None:
        if base is not None:
            precheck_baseline(base, dev, [{"artifact": r.name, "sha256": r.sha256, "parent_sha256": r.parent_sha256}
                                          for r in resolved], max_slowdown=max_slowdown,
                              planned=planned_keys(resolved, grid))

    with Bencher(options, grid) as bencher:
        report = bencher.run(targets, on_row=on_row, device=device, before_timing=check)
        if base is not None:
            result = compare_reports(report.to_dict(), base, max_slowdown=max_slowdown,
                                     remeasure=bencher.remeasure, repeats=repeats)
            report.regression = result.to_dict()
    return report


__all__ = ["bench_artifacts", "BenchGrid", "BenchOptions", "BenchReport", "BenchRow", "BenchTarget", "summarize"]
