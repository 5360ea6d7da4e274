"""`edgelstm validate`: how far did an artifact drift from its reference? Reports + gates + exit code."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command
from edgelstm.cli.data_options import FeaturesOpt, GroupOpt, HorizonOpt, StrideOpt, TargetOpt, WindowOpt
from edgelstm.cli.localize_options import JumpOpt, LocalizeOpt, LocalizeOutOpt, MarkOpt
from edgelstm.cli.model_options import (FactoryOpt, InputOpt, InputSizeOpt, StateArgOpt, TrustPickleOpt,
                                        input_options)

HELP = """Measure how far a CANDIDATE artifact drifted from a REFERENCE on the same data, and fail (exit 1)
when a gate is exceeded. Both may be any artifact: a torch model (TorchScript, .pt2, edgelstm
checkpoint, state_dict with --factory), an ONNX file of any precision, or a TensorRT engine.

Per output it reports max_abs, mean_abs, rmse, rel_l2 (||c-r||/||r||), cosine and, for outputs with a
time axis, the rmse at every step. With labels (y in the .npz, or --target for a .csv) it adds task
metrics: regression mse/mae of both and their delta; classification accuracy of both and the argmax
agreement. A stateful candidate (inputs h0/c0) is also fed the sequence in chunks (1 step and seq/4
steps) with its state carried, and compared with the reference's full-sequence output ("streaming").

Gates are METRIC[:OUTPUT]<=VALUE (>= for cosine, accuracy, agreement). Metrics: max_abs, mean_abs,
rmse, rel_l2, cosine, max_step_rmse, streaming.<metric>, and with labels mse, mae, mse_delta,
mae_delta, accuracy, accuracy_delta, agreement. Without an OUTPUT a gate applies to every output.

A policy file keeps budgets as data (a bare number takes the metric's natural direction):

  \\[default]
  rel_l2 = 0.01
  cosine = 0.999
  \\[outputs.y]
  max_abs = 0.05
  \\[task]
  mse_delta = 0.001
  \\[baseline]
  max_growth = 1.10

Exit codes: 0 all gates passed, 1 a gate failed (all reports are written first), 2 bad input
(data that does not fit the model, NaN/inf, outputs that do not match, an unknown metric), 3 a
backend is missing.

Examples:

  edgelstm validate -r model.pt -c model.onnx --synthetic 256 --gate "max_abs<=1e-5"

  edgelstm validate -r model.onnx -c model.int8.onnx --data val.npz \\
      --gate "rel_l2:y<=0.02" --gate "mse_delta<=0.001" --report drift.json --junit drift.xml

  edgelstm validate -r model.pt -c model.fp16.onnx --data sensors.csv --window 60 --stride 10 \\
      --group unit --features temp,pressure --target label --policy drift-policy.toml --markdown summary.md

  edgelstm validate -r model.onnx -c model.int8.onnx --data val.npz --policy drift-policy.toml \\
      --baseline last-release.json --max-growth 1.10

  edgelstm validate -r model.pt -c pr/model.onnx --against main/model.onnx --data val.npz \\
      --gate "rel_l2<=0.01" --junit drift.xml --markdown summary.md     # CI: main vs PR, same data

  edgelstm validate -r model.onnx -c model.int8.onnx --synthetic 64 --seq 60 --localize --localize-out where/
"""


def _parse_chunks(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if not text:
        return None
    from edgelstm.options import parse_int_list

    return tuple(parse_int_list(text, what="--chunks"))


def validate(
    reference: Path = typer.Option(..., "--reference", "-r", metavar="REF", show_default=False,
                                   help="The artifact to trust: usually the torch model or the FP32 ONNX."),
    candidate: Path = typer.Option(..., "--candidate", "-c", metavar="CAND", show_default=False,
                                   help="The artifact to check: ONNX (fp32/fp16/int8), TensorRT engine or torch model."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", metavar="DATA", show_default=False,
                                        help="Data: .npz (arrays named like the model inputs or a single x; optional "
                                             "labels y), .npy (the one input) or .csv (with --window)."),
    synthetic: Optional[int] = typer.Option(None, "--synthetic", metavar="N", show_default=False,
                                            help="Use N seeded standard-normal samples instead of --data."),
    seq: int = typer.Option(16, "--seq", metavar="N", help="Sequence length of --synthetic samples."),
    batch_size: int = typer.Option(32, "--batch", metavar="N", help="Samples per inference batch (a static model's "
                                                                    "fixed batch overrides it)."),
    window: Optional[int] = WindowOpt,
    stride: int = StrideOpt,
    horizon: int = HorizonOpt,
    group: Optional[str] = GroupOpt,
    features: Optional[str] = FeaturesOpt,
    target: Optional[str] = TargetOpt,
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of --synthetic data."),
    min_samples: int = typer.Option(1, "--min-samples", metavar="N", help="Refuse data sets with fewer samples than this."),
    gate: Optional[List[str]] = typer.Option(None, "--gate", "-g", metavar="METRIC<=VALUE", show_default=False,
                                             help="METRIC[:OUTPUT]<=VALUE or >=VALUE; repeatable. Overrides the "
                                                  "policy's budget for the same metric and output."),
    policy: Optional[Path] = typer.Option(None, "--policy", metavar="FILE.toml", show_default=False,
                                          help="TOML budgets: tables default (every output), outputs.NAME, task, "
                                               "streaming and baseline (max_growth, floor); see the example above."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", metavar="OLD.json", show_default=False,
                                            help="A previous --report JSON of the same reference/candidate pair: fail "
                                                 "where drift grew beyond --max-growth (another pair is refused)."),
    max_growth: Optional[float] = typer.Option(None, "--max-growth", metavar="RATIO", show_default=False,
                                               help="With --baseline: the largest allowed drift ratio new/baseline "
                                                    "(1.10 = 10% more drift; default: the policy's, else 1.10)."),
    baseline_floor: Optional[float] = typer.Option(None, "--baseline-floor", metavar="X", show_default=False,
                                                   help="Absolute slack added to every baseline limit so that "
                                                        "zero-drift baselines don't false-alarm (default 1e-6)."),
    report: Optional[Path] = typer.Option(None, "--report", metavar="OUT.json", show_default=False,
                                          help="Write the JSON report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="OUT.xml", show_default=False,
                                         help="Write JUnit XML here (one testcase per gate) for CI test tabs."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", metavar="OUT.md", show_default=False,
                                            help="Write a Markdown summary here (e.g. for $GITHUB_STEP_SUMMARY)."),
    task: Optional[str] = typer.Option(None, "--task", metavar="regression|classification", show_default=False,
                                       help="Default: inferred from the labels and the output shape."),
    no_streaming: bool = typer.Option(False, "--no-streaming", help="Skip the chunked run of a stateful candidate."),
    chunks: Optional[str] = typer.Option(None, "--chunks", metavar="1,4", show_default=False,
                                         help="Streaming chunk sizes, comma-separated (default: 1 and seq/4)."),
    input_size: Optional[int] = InputSizeOpt,
    input: Optional[List[str]] = InputOpt,
    state_arg: Optional[str] = StateArgOpt,
    static: bool = typer.Option(False, "--static", help="A torch model that takes one fixed shape: run it only at "
                                "--batch x --seq (a fixed-shape ONNX candidate also says its shape)."),
    factory: Optional[str] = FactoryOpt,
    trust_pickle: bool = TrustPickleOpt,
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", show_default=False,
                                          help="Intra-op threads for both runners."),
    batch_parallel: bool = typer.Option(False, "--batch-parallel", help="Run the candidate (ONNX / OpenVINO IR) as "
                                        "`bench --batch-parallel` does: one single-threaded copy per --threads (default:"
                                        " the usable cores), each batch split between them; the drift is this mode's."),
    against: Optional[Path] = typer.Option(None, "--against", metavar="OLD.onnx", show_default=False,
                                           help="Also validate OLD (main's version of the candidate) against the same "
                                                "reference on the same data, and fail where the candidate's drift "
                                                "grew beyond OLD's (--max-growth, --baseline-floor); gates apply to the "
                                                "candidate."),
    localize: bool = LocalizeOpt,
    localize_out: Optional[Path] = LocalizeOutOpt,
    mark: str = MarkOpt,
    jump: float = JumpOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.validation.validate import DataRequest, ValidateOptions

    # everything that can be checked without running a model, first
    _check_options(reference, candidate, data=data, synthetic=synthetic, task=task, report=report, junit=junit,
                   markdown=markdown, localize_out=localize_out, policy=policy, baseline=baseline, against=against)
    gates, base, tol, floor = _gates(gate, policy, baseline, max_growth, baseline_floor)
    stack = contextlib.ExitStack()
    options = ValidateOptions(gates=gates, baseline=base, baseline_tolerance=tol, baseline_floor=floor,
                              batch_size=batch_size, streaming=not no_streaming, chunk_sizes=_parse_chunks(chunks),
                              task=task, input_size=input_size, factory=factory, trust_pickle=trust_pickle,
                              model_inputs=input_options(input, input_size, state_arg,
                                                         (batch_size, seq) if static else None,
                                                         fallback_points=((batch_size, seq),)),
                              threads=threads, batch_parallel=batch_parallel, progress=_progress_bar(stack))
    request = DataRequest(path=data, synthetic=synthetic, seq=seq, seed=seed, window=window, features=features,
                          target=target, min_samples=min_samples, stride=stride, horizon=horizon, group=group)
    localize_ref = None
    if localize or localize_out is not None:
        from edgelstm.cli.localize_options import check_localization

        localize_ref = check_localization(reference, candidate, mark, jump)
    with stack:
        if against is not None:
            from edgelstm.cli.against import validate_against

            result = validate_against(reference, candidate, against, request, options, tol, floor, stack)
        else:
            from edgelstm.validation.validate import validate_artifacts

            console.step(f"validating {candidate.name} against {reference.name}")
            result = validate_artifacts(reference, candidate, request, options)
    located = None
    if localize_ref is not None:
        from edgelstm.cli.localize_options import run_localization

        located = run_localization(localize_ref, candidate, request, mark=mark, jump=jump, batch_size=batch_size,
                                   threads=threads, out=localize_out)
        result.info["localization"] = located.to_dict()
    written = _write_reports(result, report, junit, markdown)
    _show(result, located, written)
    _verdict(result, json_out)


def _check_options(reference: Path, candidate: Path, *, data: Optional[Path], synthetic: Optional[int],
                   task: Optional[str], report: Optional[Path], junit: Optional[Path], markdown: Optional[Path],
                   localize_out: Optional[Path], policy: Optional[Path], baseline: Optional[Path],
                   against: Optional[Path]) -> None:
    from edgelstm.errors import BadInput, opt
    from edgelstm.fileio import refuse_overwriting_inputs

    if (data is None) == (synthetic is None):
        raise BadInput(f"give exactly one of {opt('data')} FILE or {opt('synthetic')} N")
    if task is not None and task not in ("regression", "classification"):
        raise BadInput(f"{opt('task')} must be regression or classification, got {task!r}")
    refuse_overwriting_inputs({"report": report, "junit": junit, "markdown": markdown, "localize_out": localize_out},
                              [reference, candidate, data, policy, baseline, against])
    if against is not None and not against.exists():
        raise BadInput(f"{opt('against')} {against} does not exist")


def _gates(gate: Optional[List[str]], policy: Optional[Path], baseline: Optional[Path], max_growth: Optional[float],
           baseline_floor: Optional[float]) -> tuple:
    """(the policy's gates and --gate's, the baseline report, its tolerance and floor)."""
    from edgelstm.errors import BadInput, opt
    from edgelstm.validation.gates import (DEFAULT_BASELINE_FLOOR, DEFAULT_BASELINE_TOLERANCE, load_baseline,
                                           load_policy, parse_gates)

    gates = parse_gates(gate)
    pol = load_policy(policy) if policy else None
    base = load_baseline(baseline) if baseline else None
    for note in pol.deprecated if pol else ():
        console.deprecated(note)
    tol = max_growth - 1.0 if max_growth is not None else (
        pol.baseline_tolerance if pol and pol.baseline_tolerance is not None else DEFAULT_BASELINE_TOLERANCE)
    floor = baseline_floor if baseline_floor is not None else (
        pol.baseline_floor if pol and pol.baseline_floor is not None else DEFAULT_BASELINE_FLOOR)
    if tol < 0 or floor < 0:
        raise BadInput(f"{opt('max_growth')} must be >= 1 and {opt('baseline_floor')} >= 0")
    return tuple(pol.gates if pol else ()) + tuple(gates), base, tol, floor


def _progress_bar(stack: contextlib.ExitStack):
    """A progress callback whose bar opens (inside ``stack``) at the first report of work done."""
    bar: dict[str, object] = {}

    def on_progress(done: int, total: int) -> None:
        if "advance" not in bar:
            bar["advance"] = stack.enter_context(console.progress("validating", total))
        bar["advance"](1)  # type: ignore[operator]

    return on_progress


def _write_reports(result, report: Optional[Path], junit: Optional[Path], markdown: Optional[Path]) -> list[str]:
    from edgelstm.safe_files import all_or_nothing
    from edgelstm.validation.reports import write_junit, write_markdown, write_validate_report

    written = []
    with all_or_nothing():  # the reports of one command commit together, or none does
        if report:
            written.append(str(write_validate_report(result, report)))
        if junit:
            written.append(str(write_junit(result, junit)))
        if markdown:
            written.append(str(write_markdown(result, markdown)))
    return written


def _show(result, located, written: list[str]) -> None:
    _summary(result)
    if located is not None:
        from edgelstm.cli.localize_options import render

        render(located)
    for w in result.info.get("warnings", []):
        console.warn(w)
    for note in result.info.get("notes", []):
        console.info(f"  [dim]{note}[/]")
    for w in written:
        console.info(f"  wrote {w}")


def _verdict(result, json_out: bool) -> None:
    """--json's result (printed with the outcome, a failed gate included), then exit 1 on a failed gate."""
    from edgelstm.errors import GateFailed

    if json_out:
        from edgelstm.validation.reports.validate_json import report_dict

        console.result(report_dict(result.to_dict()))
    failed = result.failed_gates
    if failed:
        listed = "; ".join(g.message or g.name for g in failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        raise GateFailed(f"{len(failed)} of {len(result.gates)} gate(s) failed: {listed}")
    if result.gates:
        console.success(f"all {len(result.gates)} gate(s) passed on {result.samples} samples")
    else:
        console.warn("no gates given: drift is reported, not enforced (use --gate or --policy)")


def _summary(result) -> None:
    from edgelstm.validation.metrics import GATE_PREFIX

    cols = ["output", "max_abs", "mean_abs", "rmse", "rel_l2", "cosine"]
    rows = [[name, *(m.get(k) for k in cols[1:-1]), f"{m['cosine']:.6g}"] for name, m in result.outputs.items()]
    console.table(f"drift: {Path(result.candidate).name} vs {Path(result.reference).name} "
                  f"({result.samples} samples)", cols, rows)
    if result.task:
        t = result.task
        keys = [k for k in ("mse", "reference_mse", "mse_delta", "mae", "reference_mae", "mae_delta", "accuracy",
                            "reference_accuracy", "accuracy_delta", "agreement") if k in t]
        console.table(f"task ({t.get('kind')}, output {t.get('output')})", ["metric", "value"],
                      [[k, t[k]] for k in keys])
    if result.streaming:
        s = result.streaming
        rows = [[o, c, m.get("max_abs"), m.get("rel_l2")] for c, outs in s["by_chunk"].items() for o, m in outs.items()]
        console.table("streaming (state carried between chunks)", ["output", "chunk", "max_abs", "rel_l2"], rows)
    if result.info.get("against"):
        from edgelstm.cli.against import print_against

        print_against(result.info["against"])
    budgets = [g for g in result.gates if g.source != "against"]  # the change gates: in the NEW vs OLD table
    if budgets:
        console.table("gates", ["gate", "value", "limit", "result"],
                      [[(GATE_PREFIX.get(g.source, "") + g.metric + (f":{g.output}" if g.output else "")),
                        None if g.value is None else f"{g.value:.6g}" if g.metric.endswith("cosine") else g.value,
                        f"{g.op} {g.limit:.6g}" if g.metric.endswith("cosine") else f"{g.op} {g.limit:.4g}", "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"]
                       for g in budgets])


def register(app: typer.Typer) -> None:
    app.command("validate", help=HELP)(command(validate))
