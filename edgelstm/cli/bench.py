"""`edgelstm bench`: latency of artifacts over a batch x seq x threads grid; streaming; regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.cli.bench_device import CudaGraphOpt, ProfileOpt, ShapesOpt, SpinOpt, SplitOpt, StreamsOpt
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.model_options import (FactoryOpt, InputOpt, InputSizeOpt, StateArgOpt, TrustPickleOpt,
                                        input_options)

HELP = """Measure latency and throughput of one or more artifacts (torch models, ONNX files, TensorRT engines)
over a grid of batch sizes, sequence lengths and thread counts, with warm-up and percentiles
(p50/p90/p99/mean/min), model size, peak memory and the machine described.

Backends: torch (CPU; CUDA with --device cuda), onnxruntime (CPU; CUDA provider with --device cuda when
onnxruntime-gpu is installed; a session that falls back to the CPU is refused, exit 3), tensorrt (engines,
timed with CUDA events).

Every row says how it was timed (column "clock"): wall (the host clock around each call) or cuda-events
(CUDA events around each enqueue), "+copies" when the timed call also moves inputs and outputs (numpy in
and out, host-device copies); compare rows timed the same way.

--stream times one step of a stateful artifact (inputs h0/c0; `edgelstm convert --stateful`) with the state
carried, beside the cost of re-running the whole window (--seq) for one new sample.

--amx auto|allow|block: on Xeons with AMX-INT8 (class x86-amx) onnxruntime runs INT8 on AMX tiles, which is
slower than its AVX512-VNNI kernel at small batch. auto (default) blocks AMX for this run (a seccomp filter on
its permission request) when INT8 ONNX files are timed at batch < 16 only; the report records the INT8 kernel the
process had and whether it was pinned to fewer CPUs.

--batch-parallel adds, beside each ONNX / OpenVINO artifact, rows of the same file run batch-parallel (variant
"batch-parallel"): at --threads N, N single-threaded copies (onnxruntime sessions, or OpenVINO streams) each take
a contiguous share of the batch. A recurrent step is a small matrix product with a barrier, so at batch >= N this
usually beats N threads inside one inference; the "fastest per shape" table says where it does on this machine.

--baseline OLD.json --max-slowdown 1.10 compares with an earlier report from the same machine and model:
a row that looks slower is re-measured (--repeats) and fails the run (exit 1) only when the slowdown holds.

{compare}

Examples:

  edgelstm bench model.onnx model.int8.onnx model.pt --batch 1,8 --seq 60,256 --threads 1,2

  edgelstm bench model.stateful.onnx --stream --batch 1 --seq 60 --threads 1

  edgelstm bench model.onnx model.bf16.xml --batch 32 --seq 256 --threads 2 --batch-parallel

  edgelstm bench model.onnx --min-time 2 --report bench.json --csv bench.csv --plot bench.png

  edgelstm bench model.onnx --baseline bench.json --max-slowdown 1.10    # same machine: exit 1 on a regression

  edgelstm bench pr/model.onnx --against main/model.onnx --max-slowdown 1.10 --batch 1 --seq 60 --threads 1

  edgelstm bench model.plan --shapes x:8x256x1 --cuda-graph --split-transfers --streams 2 --profile-layers

GPU options in trtexec's manner: --cuda-graph, --shapes, --split-transfers (H2D / compute / D2H), --spin-wait,
--streams N (throughput over N execution contexts), --profile-layers (IProfiler); --min-time is the duration.
"""


def bench(
    artifacts: List[Path] = typer.Argument(..., metavar="ARTIFACT", help="Artifacts to time: torch files, .onnx files, engines (.plan).",
                                           show_default=False),
    backend: Optional[str] = typer.Option(None, metavar="torch|onnxruntime|tensorrt", help="torch | onnxruntime | tensorrt. Default: by file type "
                                          "(torch files -> torch, .onnx -> onnxruntime, .plan -> tensorrt)."),
    device: str = typer.Option("cpu", metavar="cpu|cuda", help="cpu or cuda (torch on the GPU, onnxruntime's CUDA provider); "
                               "engines always run on the GPU."),
    batch: str = typer.Option("1,8", metavar="1,8", help="Batch sizes, comma-separated."),
    seq: str = typer.Option("60,256", metavar="60,256", help="Sequence lengths (time steps), comma-separated."),
    threads: Optional[str] = typer.Option(None, metavar="1,2", help="CPU thread counts to try, comma-separated (e.g. 1,2). "
                                          "Default: the backend's own default."),
    warmup: int = typer.Option(10, metavar="N", help="Untimed warm-up iterations before each measurement."),
    iters: Optional[int] = typer.Option(None, metavar="N", help="Timed iterations per row (default 100 unless --min-time)."),
    min_time: Optional[float] = typer.Option(None, "--min-time", metavar="SECONDS", help="Instead of --iters: time each row for at "
                                             "least this many seconds (and at least 5 iterations)."),
    stream: bool = typer.Option(False, "--stream", help="Also time one streaming step (state carried) of a "
                                "stateful artifact and compare it with re-running the window."),
    input_size: Optional[int] = InputSizeOpt,
    input: Optional[List[str]] = InputOpt,
    state_arg: Optional[str] = StateArgOpt,
    static: bool = typer.Option(False, "--static", help="A torch model that takes one fixed shape: run it only at the "
                                "first --batch x --seq point (a model that refuses the usual probe shapes is also "
                                "tried at every grid point)."),
    factory: Optional[str] = FactoryOpt,
    trust_pickle: bool = TrustPickleOpt,
    opt_level: Optional[str] = typer.Option(None, metavar="disable|basic|extended|all", help="onnxruntime graph optimisation: disable | basic | extended "
                                            "| all. Default: the level recorded in the artifact's manifest, else all."),
    report: Optional[Path] = typer.Option(None, metavar="OUT.json", help="Write the full report as JSON here."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", metavar="OUT.csv", help="Write one CSV line per row here."),
    plot: Optional[Path] = typer.Option(None, metavar="OUT.png", help="Write a PNG plot here (latency by backend/precision and by "
                                        "sequence length; needs matplotlib)."),
    baseline: Optional[Path] = typer.Option(None, metavar="OLD.json", help="An earlier --report from the same machine and model to "
                                            "compare with (exit 1 on a confirmed regression)."),
    max_slowdown: float = typer.Option(1.10, metavar="RATIO", help="With --baseline or --against: the largest allowed "
                                       "latency ratio current/baseline, NEW/OLD (1.10 = 10% slower)."),
    repeats: int = typer.Option(3, metavar="N", help="With --baseline: how many times a row that looks slower is re-measured "
                                "before it counts as a regression."),
    retry_noisy: int = typer.Option(0, metavar="N", help="Re-measure a row up to N times when it looks disturbed by other "
                                    "processes (p50 > 1.5x min, or the machine probe slower than earlier), keeping the "
                                    "lowest p50. Useful on shared machines."),
    against: Optional[Path] = typer.Option(None, "--against", metavar="OLD.onnx", show_default=False,
                                           help="Compare ONE artifact (NEW) with OLD timed in the same run, "
                                                "interleaved (exit 1 when NEW is slower than --max-slowdown x OLD)."),
    on_inconclusive: str = typer.Option("fail", "--on-inconclusive", metavar="fail|warn|pass",
                                        help="With --against: what an undecided comparison does (fail: exit 1; "
                                             "warn: exit 0 with a warning; pass: exit 0)."),
    confidence: float = typer.Option(0.95, "--confidence", metavar="P",
                                     help="With --against: confidence of the ratio's interval, for the whole run."),
    max_pairs: int = typer.Option(128, "--max-pairs", metavar="N",
                                  help="With --against: pairs of blocks per grid point at most (looks at 16, 32, ...)."),
    min_pairs: int = typer.Option(16, "--min-pairs", metavar="N",
                                  help="With --against: pairs of blocks per grid point at the first look."),
    max_time: float = typer.Option(60.0, "--max-time", metavar="SECONDS",
                                   help="With --against: seconds of measuring per grid point at most."),
    cuda_graph: bool = CudaGraphOpt,
    shapes: Optional[str] = ShapesOpt,
    split_transfers: bool = SplitOpt,
    spin_wait: bool = SpinOpt,
    streams: int = StreamsOpt,
    profile_layers: bool = ProfileOpt,
    batch_parallel: bool = typer.Option(False, "--batch-parallel", help="Also time each ONNX / OpenVINO artifact "
                                        "batch-parallel (variant rows): one single-threaded copy per thread, the batch "
                                        "split between them; rows at --threads >= 2 only."),
    amx: str = typer.Option("auto", "--amx", metavar="auto|allow|block", help="AMX for INT8 on x86-amx CPUs: auto "
                            "(block it when INT8 ONNX runs at batch < 16 only), allow, or block (seccomp filter)."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.cli.bench_device import device_options
    from edgelstm.latency import BenchOptions, TimingPolicy

    gpu = {"cuda_graph": cuda_graph, "shapes": shapes, "split_transfers": split_transfers, "spin_wait": spin_wait,
           "streams": streams != 1, "profile_layers": profile_layers}
    _check_options(artifacts, iters=iters, min_time=min_time, opt_level=opt_level, report=report, csv_out=csv_out,
                   plot=plot, baseline=baseline, against=against, stream=stream, gpu=gpu)
    grid = _grid(batch, seq, threads, shapes)
    options = BenchOptions(backend=backend, device=device,
                           policy=TimingPolicy(warmup=warmup, iters=iters, min_time=min_time), stream=stream,
                           input_size=input_size, opt_level=opt_level, retry_noisy=retry_noisy, amx=amx,
                           batch_parallel=batch_parallel,
                           device_options=device_options(cuda_graph, shapes, split_transfers, spin_wait, streams,
                                                         profile_layers),
                           torch_options={"factory": factory, "trust_pickle": trust_pickle,
                                          "inputs": input_options(input, input_size, state_arg,
                                                                  (grid.batches[0], grid.seqs[0]) if static else None,
                                                                  [(b, s) for b in grid.batches for s in grid.seqs])})
    if against is not None:
        from edgelstm.cli.against import bench_against
        from edgelstm.latency.compare import CompareOptions

        compare = CompareOptions(max_slowdown=max_slowdown, confidence=confidence, min_pairs=min_pairs,
                                 max_pairs=max_pairs, max_time=max_time, warmup=warmup, on_inconclusive=on_inconclusive)
        return bench_against(artifacts[0], against, grid, options, compare, report=report, json_out=json_out)
    result = _time_grid(list(artifacts), grid, options, stream=stream, baseline=baseline,
                        max_slowdown=max_slowdown, repeats=repeats)
    payload = result.to_dict()
    _show(result, payload)
    _write_reports(payload, report, csv_out, plot)
    finish(payload, json_out, _regression_verdict(payload, baseline, max_slowdown))


def _check_options(artifacts: List[Path], *, iters: Optional[int], min_time: Optional[float],
                   opt_level: Optional[str], report: Optional[Path], csv_out: Optional[Path], plot: Optional[Path],
                   baseline: Optional[Path], against: Optional[Path], stream: bool, gpu: dict) -> None:
    """Everything that can be refused before a model is opened: exclusive options, report suffixes, matplotlib."""
    from edgelstm.artifacts.ort import OPT_LEVELS
    from edgelstm.errors import BadInput, opt
    from edgelstm.fileio import refuse_overwriting_inputs

    if iters is not None and min_time is not None:
        raise BadInput(f"pass either {opt('iters')} or {opt('min_time')}, not both")
    if opt_level is not None and opt_level not in OPT_LEVELS:
        raise BadInput(f"{opt('opt_level')} must be one of {', '.join(OPT_LEVELS)}, got {opt_level!r}")
    refuse_overwriting_inputs({"report": report, "csv": csv_out, "plot": plot}, [*artifacts, baseline, against])
    if against is not None:
        from edgelstm.cli.against import check_bench_against

        check_bench_against(list(artifacts), against, baseline=baseline, stream=stream, iters=iters,
                            min_time=min_time, csv_out=csv_out, plot=plot, gpu=gpu)
    for out, suffix, key in ((report, ".json", "report"), (csv_out, ".csv", "csv"), (plot, ".png", "plot")):
        if out is not None and out.suffix.lower() != suffix:
            raise BadInput(f"{opt(key)} must end in {suffix}, got {out.name}")
    if plot is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            from edgelstm.errors import BackendMissing

            raise BackendMissing(f"{opt('plot')} needs matplotlib", hint="pip install matplotlib")


def _grid(batch: str, seq: str, threads: Optional[str], shapes: Optional[str]):
    from edgelstm.errors import opt
    from edgelstm.latency import BenchGrid
    from edgelstm.options import parse_int_list

    grid = BenchGrid(tuple(parse_int_list(batch, what=opt("batch"))), tuple(parse_int_list(seq, what=opt("seq"))),
                     tuple(parse_int_list(threads, what=opt("threads"))) if threads else (None,))
    if shapes:  # the shapes decide batch and seq: one grid point per thread count
        grid = BenchGrid(grid.batches[:1], grid.seqs[:1], grid.threads)
    return grid


def _time_grid(artifacts: list, grid, options, *, stream: bool, baseline: Optional[Path], max_slowdown: float,
               repeats: int):
    """Every artifact at every grid point, with a progress bar; the regression check when a baseline is given."""
    from edgelstm.latency import bench_artifacts, planned_rows

    parallel = sum(1 for a in artifacts if Path(a).suffix.lower() in (".onnx", ".xml")) if options.batch_parallel else 0
    total = planned_rows(len(artifacts), grid, stream, parallel=parallel)
    console.step(f"timing {len(artifacts)} artifact(s) x {len(grid.points())} grid point(s)"
                 + (" + streaming steps" if stream else "") + f" ({options.policy.describe()} each)")
    with console.progress("benchmarking", total=total) as advance:
        return bench_artifacts(artifacts, grid, options, on_row=lambda _row: advance(),
                               baseline=baseline, max_slowdown=max_slowdown, repeats=repeats)


def _show(result, payload: dict) -> None:
    from edgelstm.cli.bench_device import print_tables
    from edgelstm.latency.report import device_line

    console.info(f"[dim]device: {device_line(result.device)}[/]")
    if result.device.get("process"):
        from edgelstm.latency.amx_guard import describe_process

        console.info(f"[dim]{describe_process(result.device['process'])}[/]")
    for w in payload.get("warnings", []):
        console.warn(w)
    _print_tables(payload)
    print_tables(payload)


def _write_reports(payload: dict, report: Optional[Path], csv_out: Optional[Path], plot: Optional[Path]) -> None:
    from edgelstm.latency import plot_report, write_csv, write_json
    from edgelstm.safe_files import all_or_nothing

    with all_or_nothing():  # the reports of one command commit together, or none does
        for path, write in ((report, write_json), (csv_out, write_csv), (plot, plot_report)):
            if path is not None:
                write(payload, path)
    for path in (report, csv_out, plot):
        if path is not None:
            console.success(f"wrote {path}")


def _regression_verdict(payload: dict, baseline: Optional[Path], max_slowdown: float) -> int:
    """1 when rows regressed against the baseline (said), else 0."""
    reg = payload.get("regression")
    if reg is None:
        return 0
    if reg["passed"]:
        cleared = len(reg["noise_cleared"])
        console.success(f"no latency regression against {baseline.name}: {reg['compared']} row(s) within "
                        f"{max_slowdown:g}x{_ratio_range(reg['rows'])}"
                        + (f" ({cleared} suspect(s) cleared as noise on re-measurement)" if cleared else ""))
        return 0
    worst = ", ".join(f"{r['row']} {r['confirmed_ratio'] or r['ratio']:.2f}x" for r in reg["regressed"])
    console.error(f"latency regression: {len(reg['regressed'])} row(s) slower than {max_slowdown:g}x "
                  f"the baseline: {worst}")
    return 1


def _ratio_range(rows: list[dict]) -> str:
    """`: p50 ratios 0.97x-1.04x (slowest b8 s256 t1)`: what "within" means, row by row in the table above."""
    ratios = [(r["confirmed_ratio"] or r["ratio"], r["row"]) for r in rows]
    if not ratios:
        return ""
    (low, _), (high, slowest) = min(ratios), max(ratios)
    return f": p50 ratio {low:.2f}x" if len(ratios) == 1 else f": p50 ratios {low:.2f}x-{high:.2f}x (slowest {slowest})"


_CPU_EP = "CPUExecutionProvider"


def _short_provider(name: str) -> str:
    """CUDAExecutionProvider -> CUDA: which onnxruntime provider really ran, short enough for a table cell."""
    return name.removesuffix("ExecutionProvider") or name


def _fmt_ms(v: float) -> str:
    return f"{v * 1000:.1f} µs" if v < 1 else f"{v:.3f} ms"


def _print_tables(payload: dict) -> None:
    from edgelstm.latency import summarize

    rows = payload["results"]
    summary = summarize(payload)
    console.table("latency", ["artifact", "backend", "precision", "mode", "batch", "seq", "threads", "p50", "p90",
                              "p99", "seq/s", "steps/s", "clock", "size", "vs torch"],
                  [[r["artifact"], r["backend"] + (f" ({r['variant']})" if r.get("variant") else "")
                    + (f" [{_short_provider(r['provider'])}]" if r.get("provider") not in (None, _CPU_EP) else ""),
                    r["precision"],
                    r["mode"], r["batch"], r["seq"], "default" if r["threads"] is None else r["threads"],
                    _fmt_ms(r["latency_ms"]["p50"]), _fmt_ms(r["latency_ms"]["p90"]), _fmt_ms(r["latency_ms"]["p99"]),
                    f"{r['throughput_seq_per_s']:.0f}", f"{r['throughput_steps_per_s']:.0f}", s["clock"],
                    f"{r['model_size_bytes'] / 1024:.0f} KiB" if r.get("model_size_bytes") else "",
                    f"{s['speedup']:.2f}x" if s["speedup"] is not None and s["reference"] != r["artifact"] else ""]
                   for r, s in zip(rows, summary)])
    if payload.get("stream"):
        console.table("streaming: one step (state carried) vs re-running the window",
                      ["artifact", "backend", "batch", "threads", "window", "step p50", "window p50", "step cheaper by"],
                      [[s["artifact"], s["backend"], s["batch"], "default" if s["threads"] is None else s["threads"],
                        s["window"], _fmt_ms(s["step_p50_ms"]), _fmt_ms(s["window_p50_ms"]), f"{s['speedup']:.1f}x"]
                       for s in payload["stream"]])
    fastest = [f for f in payload.get("fastest", []) if f.get("candidates", 0) > 1 and "artifact" in f]
    if fastest:
        from edgelstm.latency.winners import with_variant

        console.table("fastest per shape", ["batch", "seq", "threads", "artifact", "backend", "precision", "p50",
                                            "runner-up", "margin"],
                      [[f["batch"], f["seq"], "default" if f["threads"] is None else f["threads"], f["artifact"],
                        with_variant(f, "backend"), f["precision"], _fmt_ms(f["p50_ms"]),
                        with_variant(f.get("runner_up") or {}),
                        f"{f['margin']:.2f}x" if f.get("margin") else ""] for f in fastest])
    reg = payload.get("regression")
    if reg and reg.get("rows"):  # every compared row with its ratio, passing or not
        console.table(f"against the baseline (max slowdown {reg['max_slowdown']:g}x)",
                      ["row", "baseline p50", "p50", "ratio", "re-measured ratio", "verdict"],
                      [[r["row"], _fmt_ms(r["baseline_p50_ms"]), _fmt_ms(r["current_p50_ms"]), f"{r['ratio']:.2f}x",
                        "" if r["confirmed_ratio"] is None else f"{r['confirmed_ratio']:.2f}x",
                        "REGRESSED" if r["regressed"] else "noise" if r["suspected"] else "ok"]
                       for r in reg["rows"]])


def register(app: typer.Typer) -> None:
    from edgelstm.cli.against import COMPARE_HELP

    app.command("bench", help=HELP.replace("{compare}", COMPARE_HELP))(command(bench))
