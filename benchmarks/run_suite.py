"""edgelstm's benchmark suite: every artifact edgelstm makes, against torch eager, on the zoo models.

    python benchmarks/run_suite.py                 # the full suite (about 5-10 min on 2 CPU cores)
    python benchmarks/run_suite.py --quick         # a smoke run (about a minute), results named *-quick
    python benchmarks/run_suite.py --models lstm_regressor,gru

For each zoo model (trained briefly with edgelstm.models.zoo.train so that drift is measured on a model that
learned something): torch eager FP32 (the reference), ONNX FP32, FP16, INT8 dynamic (all of
onnxruntime's default ops, and the LSTM only), INT8 static (Q/DQ), the stateful ONNX (and its INT8
dynamic variant) for streaming, TensorRT engines FP32/FP16 when TensorRT and a GPU are present, and
torch on CUDA (FP32, FP16 autocast, each with and without CUDA graphs) when CUDA is present. Points:
batch 1 x seq 60 and batch 32 x seq 256, on 1 and 2 threads; streaming: one step with the state carried
vs re-running the 60-step window, at batch 1. Drift (rel_l2 of the output against torch, on held-out
task data) is recorded beside speed. An artifact that cannot be made (a converter missing or failing)
is skipped with the reason recorded.

Writes benchmarks/results/<machine>.json (the full report: device, rows, streaming, drift, skips,
targets), <machine>.md (tables) and <machine>.png (speed-ups per model). Results that already exist are
kept: the new ones go to <machine>-2.* (-3, ...) unless --replace.

The CUDA paths (torch CUDA rows, onnxruntime's CUDA provider, TensorRT) are written for GPU machines and
are skipped, with the reason recorded, where there is no GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import result_stem  # noqa: E402

import numpy as np  # noqa: E402

from edgelstm.latency import (BenchGrid, BenchOptions, BenchReport, BenchRow, BenchTarget, TimingPolicy,  # noqa: E402
                                   bench_artifacts, describe_device, plot_speedups, write_json, write_markdown)
from edgelstm.latency.bencher import looks_disturbed  # noqa: E402
from edgelstm.latency.harness import speed_probe, time_callable  # noqa: E402
from edgelstm.errors import EdgeLSTMError  # noqa: E402

MODELS = ["lstm_regressor", "stacked_lstm", "gru", "hand_lstm", "bilstm_attention"]
POINTS = [(1, 60), (32, 256)]            # (batch, seq)
STREAM_WINDOW = 60
EVAL_SAMPLES = 128
TARGET_MODEL = "lstm_regressor"
TARGET_SPEEDUP = 4.0
TARGET_DRIFT = 0.01
TARGET_STREAM = 20.0


@dataclass(frozen=True)
class SuiteConfig:
    models: tuple[str, ...] = tuple(MODELS)
    threads: tuple[int, ...] = (1, 2)
    train_steps: int = 150
    min_time: float = 0.4                # seconds per row (after warm-up)
    warmup: int = 20
    retry_noisy: int = 2                 # re-measure rows disturbed by other processes (keep the lowest p50)
    quick: bool = False
    out_dir: Path = ROOT / "benchmarks" / "results"
    work_dir: Path = Path("edgelstm-suite-work")
    replace: bool = False                # overwrite <machine>.* instead of writing <machine>-N.*


@dataclass
class Artifact:
    kind: str                             # onnx-fp32, onnx-int8-dynamic, ...
    path: Path
    stateful: bool = False
    note: str = ""
    drift: dict[str, Any] = field(default_factory=dict)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240] if text else ''}"


# ------------------------------------------------------------------------------------- making artifacts


def make_artifacts(name: str, loaded: Any, work: Path, skipped: list[dict[str, Any]]) -> list[Artifact]:
    """Export (plain and stateful) and quantize with the project's converters; skip what cannot be made."""
    from edgelstm.models import zoo

    arts: list[Artifact] = []

    def attempt(kind: str, fn: Callable[[], Artifact | None]) -> None:
        t0 = time.perf_counter()
        try:
            art = fn()
        except ModuleNotFoundError as exc:
            skipped.append({"what": f"{name}:{kind}", "reason": f"converter not available ({exc.name})"})
            return
        except EdgeLSTMError as exc:
            skipped.append({"what": f"{name}:{kind}", "reason": str(exc)[:300]})
            return
        except Exception as exc:  # noqa: BLE001 - a failing converter is recorded, the suite goes on
            skipped.append({"what": f"{name}:{kind}", "reason": first_line(exc)})
            if "--debug" in sys.argv:
                traceback.print_exc()
            return
        if art is not None:
            arts.append(art)
            log(f"    made {kind} ({art.path.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - t0:.1f}s)")

    def export(stateful: bool) -> Artifact:
        from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx

        path = work / ("model.stateful.onnx" if stateful else "model.onnx")
        res = export_onnx(loaded, path, ExportOptions(seq_len=STREAM_WINDOW, stateful=stateful))
        return Artifact("onnx-stateful-fp32" if stateful else "onnx-fp32", res.path, stateful,
                        f"route {res.route.value}")

    attempt("onnx-fp32", lambda: export(False))
    if not any(a.kind == "onnx-fp32" for a in arts):
        return arts
    fp32 = next(a.path for a in arts if a.kind == "onnx-fp32")
    attempt("onnx-stateful-fp32", lambda: export(True))

    def fp16() -> Artifact:
        from edgelstm.converters.quantize.fp16 import Fp16Options, quantize_fp16

        r = quantize_fp16(fp32, work / "model.fp16.onnx", Fp16Options())
        return Artifact("onnx-fp16", r.path, note=f"ort level {r.ort_opt_level}")

    def int8(mode: str, kind: str, src: Path, out: str, **extra: Any) -> Callable[[], Artifact]:
        def make() -> Artifact:
            from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
            from edgelstm.options import QuantMode

            calib = None
            if mode == "static":
                x, _ = zoo.synthetic_task(name, 64, STREAM_WINDOW, seed=7)
                calib = [{"x": x[i:i + 16]} for i in range(0, len(x), 16)]
            r = quantize_int8(src, work / out, Int8Options(mode=QuantMode(mode), **extra), calib=calib)
            counts = r.counts()
            return Artifact(kind, r.path, stateful="stateful" in kind,
                            note=f"int8 ops {counts.get('int8', 0)}, float {counts.get('fp32', 0)}; "
                                 f"ort level {r.ort_opt_level}")
        return make

    attempt("onnx-fp16", fp16)
    attempt("onnx-int8-dynamic", int8("dynamic", "onnx-int8-dynamic", fp32, "model.int8.onnx"))
    if name != "gru":  # GRU has no int8 kernel in onnxruntime: an LSTM-only variant would be FP32
        attempt("onnx-int8-dynamic-lstm", int8("dynamic", "onnx-int8-dynamic-lstm", fp32, "model.int8-lstm.onnx",
                                               op_types=("LSTM",)))
    attempt("onnx-int8-static", int8("static", "onnx-int8-static", fp32, "model.int8-static.onnx"))
    stateful = next((a.path for a in arts if a.kind == "onnx-stateful-fp32"), None)
    if stateful is not None and name != "gru":
        attempt("onnx-stateful-int8-dynamic", int8("dynamic", "onnx-stateful-int8-dynamic", stateful,
                                                   "model.stateful.int8.onnx", op_types=("LSTM",)))
    make_engines(name, fp32, work, arts, skipped)
    return arts


def make_engines(name: str, onnx_path: Path, work: Path, arts: list[Artifact], skipped: list[dict[str, Any]]) -> None:
    """TensorRT engines (FP32, FP16) with a profile covering the suite's points; only with TensorRT + a GPU.
    Not exercised on CPU-only machines."""
    if importlib.util.find_spec("tensorrt") is None:
        skipped.append({"what": f"{name}:tensorrt", "reason": "tensorrt is not installed"})
        return
    try:
        from edgelstm.converters.tensorrt.build import BuildOptions, build_engine
    except ImportError as exc:
        skipped.append({"what": f"{name}:tensorrt", "reason": f"converter not available ({first_line(exc)})"})
        return
    max_batch = max(b for b, _ in POINTS)
    max_seq = max(s for _, s in POINTS)
    for precision in ("fp32", "fp16"):
        try:
            res = build_engine(onnx_path, work / f"model.{precision}.plan",
                               BuildOptions(precision=precision, batch=(1, 1, max_batch), seq=(1, STREAM_WINDOW, max_seq)))
            arts.append(Artifact(f"trt-{precision}", res.path, note=f"{res.route}, TensorRT {res.tensorrt_version}"))
        except Exception as exc:  # noqa: BLE001
            skipped.append({"what": f"{name}:trt-{precision}", "reason": first_line(exc)})


# ---------------------------------------------------------------------------------------------- drift


def primary_output(io: Any) -> str:
    return next(t.name for t in io.outputs if not t.state)


def measure_drift(art: Artifact, x: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    from edgelstm.latency.stream import zero_state
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.validation.metrics import output_metrics
    from edgelstm.runners import open_runner

    m = read_manifest(art.path)
    opts = {}
    if art.path.suffix == ".onnx":
        opts["opt_level"] = (m.details.get("ort_opt_level") if m else None) or "all"
    runner = open_runner(art.path, threads=1, **opts)
    try:
        feeds = {"x": x}
        if runner.io.stateful:
            feeds.update(zero_state(runner.io, len(x), m.details if m else None))
        y = runner.run(feeds)[primary_output(runner.io)]
        metrics = output_metrics(ref, y)
        out = {"rel_l2": float(metrics["rel_l2"]), "max_abs": float(metrics["max_abs"])}
        if runner.io.stateful:  # streaming, one step at a time, must land on the same prediction
            from edgelstm.latency.stream import state_pairs

            state = zero_state(runner.io, len(x), m.details if m else None)
            for t in range(x.shape[1]):
                o = runner.run({"x": x[:, t:t + 1], **state})
                state = {si: o[so] for si, so in state_pairs(runner.io)}
            out["stream_rel_l2"] = float(output_metrics(ref, o[primary_output(runner.io)])["rel_l2"])
        return out
    finally:
        runner.close()


# ------------------------------------------------------------------------------------- torch references


def torch_step_call(model: Any, batch: int, feature: int) -> Callable[[], Any] | None:
    """torch eager, one step with the state carried, for the zoo models that can stream (None otherwise)."""
    import torch

    x = torch.randn(batch, 1, feature)
    rnn, head = getattr(model, "rnn", None), getattr(model, "head", None)
    if isinstance(rnn, torch.nn.RNNBase) and not rnn.bidirectional and head is not None:
        state: list[Any] = [None]

        def step():
            with torch.inference_mode():
                out, state[0] = rnn(x, state[0])
                return head(out[:, -1])
        return step
    cell = getattr(model, "cell", None)
    if cell is not None and head is not None and hasattr(model, "hidden_size"):
        hc = [(torch.zeros(batch, model.hidden_size), torch.zeros(batch, model.hidden_size))]

        def step_cell():
            with torch.inference_mode():
                hc[0] = cell(x[:, 0], hc[0])
                return head(hc[0][0])
        return step_cell
    return None


def torch_step_rows(name: str, model: Any, feature: int, threads: tuple[int, ...], policy: TimingPolicy,
                    size: int, retry_noisy: int = 0) -> list[BenchRow]:
    import torch

    rows = []
    before = torch.get_num_threads()
    try:
        for t in threads:
            call = torch_step_call(model, 1, feature)
            if call is None:
                return []
            torch.set_num_threads(t)
            best: BenchRow | None = None
            p50s: list[float] = []
            while best is None or (len(p50s) <= retry_noisy and looks_disturbed(best, None)):
                probe = speed_probe()
                timing = time_callable(call, policy)
                stats = timing.stats()
                row = BenchRow(
                    artifact=f"{name}:torch-eager", backend="torch", precision="fp32", batch=1, seq=1, threads=t,
                    iters=timing.iters, latency_ms=stats, throughput_seq_per_s=1e3 / stats["p50"],
                    throughput_steps_per_s=1e3 / stats["p50"], mode="step", warmup=policy.warmup,
                    timing_path="torch-eager-step", model_size_bytes=size, probe_ms=max(probe, speed_probe()),
                    extras={"model": name, "kind": "torch-eager"})
                p50s.append(row.p50)
                if best is None or row.p50 < best.p50:
                    best = row
            if len(p50s) > 1:
                best.extras["attempts_p50_ms"] = p50s
            rows.append(best)
    finally:
        torch.set_num_threads(before)
    return rows


def cuda_targets(name: str, model: Any, skipped: list[dict[str, Any]], arts: list[Artifact]) -> list[BenchTarget]:
    """torch on CUDA (FP32 / FP16 autocast, with and without CUDA graphs) and onnxruntime's CUDA provider.
    Written for GPU machines; not exercised where there is no GPU."""
    import torch

    targets: list[BenchTarget] = []
    if not torch.cuda.is_available():
        skipped.append({"what": f"{name}:torch-cuda", "reason": "no CUDA device (torch.cuda.is_available() is False)"})
    else:
        import copy

        gpu_model = copy.deepcopy(model).cuda().eval()
        for variant, kind in (("", "torch-cuda-fp32"), ("cuda-graph", "torch-cuda-fp32-graph"),
                              ("amp", "torch-cuda-fp16-autocast"), ("amp+cuda-graph", "torch-cuda-fp16-autocast-graph")):
            targets.append(BenchTarget(gpu_model, name=f"{name}:{kind}", device="cuda", variant=variant,
                                       extras={"model": name, "kind": kind}))
    try:
        import onnxruntime as ort

        has_cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        has_cuda_ep = False
    if has_cuda_ep:
        for a in arts:
            if a.kind in ("onnx-fp32", "onnx-fp16"):
                targets.append(BenchTarget(a.path, name=f"{name}:{a.kind}-cuda", device="cuda",
                                           extras={"model": name, "kind": f"{a.kind}-cuda", "drift": a.drift}))
    else:
        skipped.append({"what": f"{name}:onnxruntime-cuda", "reason": "CUDAExecutionProvider not available "
                                                                      "(pip install onnxruntime-gpu on a GPU machine)"})
    return targets


# ---------------------------------------------------------------------------------------------- suite


def run_model(name: str, cfg: SuiteConfig, report: BenchReport, models_info: dict[str, Any]) -> None:
    import torch

    from edgelstm.models import zoo
    from edgelstm.models.loading import from_module

    t_model = time.perf_counter()
    work = cfg.work_dir / name
    work.mkdir(parents=True, exist_ok=True)
    log(f"== {name}: training ({cfg.train_steps} steps)")
    model = zoo.build(name, seed=0)
    t0 = time.perf_counter()
    loss = zoo.train(model, name, steps=cfg.train_steps, seq=40, seed=0)
    train_s = time.perf_counter() - t0
    ckpt = zoo.save_checkpoint(model, work / "model.pt")
    loaded = from_module(model)
    loaded.path = ckpt
    arts = make_artifacts(name, loaded, work, report.skipped)

    x_eval, _ = zoo.synthetic_task(name, EVAL_SAMPLES, STREAM_WINDOW, seed=123)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x_eval)).numpy()
    for a in arts:
        if a.kind.startswith("trt-") and not torch.cuda.is_available():
            continue
        try:
            a.drift = measure_drift(a, x_eval, ref)
        except Exception as exc:  # noqa: BLE001
            a.drift = {"error": first_line(exc)}
    from edgelstm.fileio import sha256_file

    models_info[name] = {
        "train_steps": cfg.train_steps, "final_loss": loss, "train_seconds": round(train_s, 2),
        "config": zoo.ZOO[name].defaults, "checkpoint_sha256": sha256_file(ckpt),
        "artifacts": {a.kind: {"file": a.path.name, "sha256": sha256_file(a.path),
                               "size_bytes": a.path.stat().st_size, "drift": a.drift, "note": a.note} for a in arts},
    }
    policy = TimingPolicy(warmup=cfg.warmup, min_time=cfg.min_time, min_iters=5)
    options = BenchOptions(policy=policy, retry_noisy=cfg.retry_noisy)
    torch_size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    window_targets = [BenchTarget(model, name=f"{name}:torch-eager", extras={"model": name, "kind": "torch-eager",
                                                                               "drift": {"rel_l2": 0.0, "max_abs": 0.0}})]
    window_targets += [BenchTarget(a.path, name=f"{name}:{a.kind}", extras={"model": name, "kind": a.kind,
                                                                           "drift": a.drift, "note": a.note})
                       for a in arts if not a.stateful and not (a.kind.startswith("trt-") and not torch.cuda.is_available())]
    window_targets += cuda_targets(name, model, report.skipped, arts)
    for batch, seq in POINTS:
        log(f"   timing {len(window_targets)} target(s) at batch {batch}, seq {seq}, threads {list(cfg.threads)}")
        r = bench_artifacts(window_targets, BenchGrid((batch,), (seq,), cfg.threads), options,
                            device=report.device)
        report.results += r.results
    stream_targets = [BenchTarget(a.path, name=f"{name}:{a.kind}", extras={"model": name, "kind": a.kind,
                                                                          "drift": a.drift, "note": a.note})
                      for a in arts if a.stateful]
    if stream_targets:
        log(f"   streaming: {len(stream_targets)} stateful artifact(s), window {STREAM_WINDOW}")
        r = bench_artifacts(stream_targets, BenchGrid((1,), (STREAM_WINDOW,), cfg.threads),
                            BenchOptions(policy=policy, stream=True, retry_noisy=cfg.retry_noisy),
                            device=report.device)
        report.results += r.results
        report.results += torch_step_rows(name, model, zoo.ZOO[name].input_size, cfg.threads, policy, torch_size,
                                          cfg.retry_noisy)
    else:
        report.skipped.append({"what": f"{name}:streaming", "reason": "no stateful artifact (a bidirectional model "
                                                                      "needs the whole sequence: it cannot stream)"})
    models_info[name]["seconds"] = round(time.perf_counter() - t_model, 1)
    log(f"   {name} done in {models_info[name]['seconds']:.0f}s")


def stream_rows(report: BenchReport) -> list[dict[str, Any]]:
    """One line per stateful artifact step row: vs its own window and vs torch eager re-running the window."""
    out = []
    for step in (r for r in report.results if r.mode == "step"):
        model = step.extras.get("model")
        own = next((w for w in report.results if w.mode == "window" and w.artifact == step.artifact
                    and w.batch == step.batch and w.threads == step.threads and w.seq == STREAM_WINDOW), None)
        eager = next((w for w in report.results if w.mode == "window" and w.extras.get("model") == model
                      and w.extras.get("kind") == "torch-eager" and w.batch == step.batch
                      and w.threads == step.threads and w.seq == STREAM_WINDOW), None)
        out.append({
            "model": model, "artifact": step.artifact, "kind": step.extras.get("kind"), "backend": step.backend,
            "batch": step.batch, "threads": step.threads, "window": STREAM_WINDOW, "step_p50_ms": step.p50,
            "window_p50_ms": own.p50 if own else None,
            "speedup": (own.p50 / step.p50) if own else None,
            "torch_eager_window_p50_ms": eager.p50 if eager else None,
            "speedup_vs_torch_eager_window": (eager.p50 / step.p50) if eager else None,
            "stream_rel_l2": (step.extras.get("drift") or {}).get("stream_rel_l2"),
        })
    return out


def targets(report: BenchReport) -> dict[str, Any]:
    """The issue's targets, from the measured rows (batch 1, seq 60, one thread)."""
    rows = [r for r in report.results if r.extras.get("model") == TARGET_MODEL and r.mode == "window"
            and r.batch == 1 and r.seq == STREAM_WINDOW and r.threads == 1 and r.device == "cpu"]
    eager = next((r for r in rows if r.extras.get("kind") == "torch-eager"), None)
    out: dict[str, Any] = {"model": TARGET_MODEL, "point": "batch 1, seq 60, 1 thread"}
    if eager is None:
        return {**out, "error": "no torch eager row"}
    # candidates: the artifacts a user deploys for whole windows (the stateful ones are listed, not chosen)
    cands = [r for r in rows if r.extras.get("kind") != "torch-eager" and "stateful" not in r.extras.get("kind", "")
             and (r.extras.get("drift") or {}).get("rel_l2") is not None
             and r.extras["drift"]["rel_l2"] < TARGET_DRIFT]
    table = sorted(({"artifact": r.artifact, "p50_ms": r.p50, "speedup": eager.p50 / r.p50,
                     "rel_l2": (r.extras.get("drift") or {}).get("rel_l2")} for r in rows
                    if r.extras.get("kind") != "torch-eager"), key=lambda d: -d["speedup"])
    best = min(cands, key=lambda r: r.p50) if cands else None
    out["torch_eager_p50_ms"] = eager.p50
    out["artifacts"] = table
    if best is not None:
        sp = eager.p50 / best.p50
        out["best"] = {"artifact": best.artifact, "p50_ms": best.p50, "speedup": sp,
                       "rel_l2": best.extras["drift"]["rel_l2"], "target": TARGET_SPEEDUP, "met": sp >= TARGET_SPEEDUP}
    steps = [s for s in stream_rows(report) if s["model"] == TARGET_MODEL and s["batch"] == 1 and s["threads"] == 1]
    if steps:
        best_step = max(steps, key=lambda s: s["speedup"] or 0)
        out["stream"] = {**best_step, "target": TARGET_STREAM,
                         "met_vs_own_window": (best_step["speedup"] or 0) >= TARGET_STREAM,
                         "met_vs_torch_eager_window": (best_step["speedup_vs_torch_eager_window"] or 0) >= TARGET_STREAM}
    return out


def markdown(report: BenchReport, info: dict[str, Any], tgt: dict[str, Any], cfg: SuiteConfig, seconds: float) -> str:
    lines = [f"Measured {time.strftime('%Y-%m-%d')} in {seconds / 60:.1f} min with "
             f"`python benchmarks/run_suite.py{' --quick' if cfg.quick else ''}` "
             f"({cfg.warmup} warm-up + >= {cfg.min_time:g} s per row, a row disturbed by other processes re-measured "
             f"up to {cfg.retry_noisy}x keeping the lowest p50; p50 latency; speed-up = torch eager p50 / "
             "artifact p50 at the same batch, seq and threads; rel_l2 = drift of the output against torch on "
             f"{EVAL_SAMPLES} held-out task sequences of length {STREAM_WINDOW}).", ""]
    if tgt.get("best"):
        b = tgt["best"]
        lines.append(f"**Target** ({TARGET_MODEL}, batch 1, seq 60, 1 thread): best artifact `{b['artifact']}` is "
                     f"**{b['speedup']:.2f}×** faster than torch eager ({b['p50_ms'] * 1e3:.1f} µs vs "
                     f"{tgt['torch_eager_p50_ms'] * 1e3:.1f} µs) with rel_l2 {b['rel_l2']:.1e} — target ≥ "
                     f"{TARGET_SPEEDUP:g}× {'met' if b['met'] else 'NOT met'}.")
    if tgt.get("stream"):
        s = tgt["stream"]
        lines.append(f"**Streaming** ({TARGET_MODEL}, batch 1, 1 thread): one step of `{s['artifact']}` costs "
                     f"{s['step_p50_ms'] * 1e3:.1f} µs: {s['speedup']:.1f}× less than re-running its 60-step window "
                     f"({s['window_p50_ms'] * 1e3:.1f} µs) and {s['speedup_vs_torch_eager_window']:.1f}× less than "
                     f"torch eager re-running the window ({s['torch_eager_window_p50_ms'] * 1e3:.1f} µs) — target ≥ "
                     f"{TARGET_STREAM:g}×: {'met' if s['met_vs_own_window'] else 'not met'} against the same artifact's "
                     f"window, {'met' if s['met_vs_torch_eager_window'] else 'not met'} against torch eager.")
    lines.append("")
    lines.append("## Models")
    lines.append("")
    lines.append("| model | train steps | final loss | artifacts (size, rel_l2) |")
    lines.append("|---|---:|---:|---|")
    for name, m in info.items():
        arts = "; ".join(f"{k} {v['size_bytes'] / 1024:.0f} KiB"
                         + (f", {v['drift']['rel_l2']:.1e}" if isinstance(v.get("drift"), dict)
                            and v["drift"].get("rel_l2") is not None else "")
                         for k, v in m["artifacts"].items())
        lines.append(f"| {name} | {m['train_steps']} | {m['final_loss']:.4f} | {arts} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/run_suite.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short smoke run (fewer training steps, 0.05 s per row, "
                    "1 thread); results are written as <machine>-quick.*")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated zoo models (default: {','.join(MODELS)})")
    ap.add_argument("--threads", default=None, help="thread counts (default 1,2; --quick: 1)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per row (default 0.4; --quick 0.05)")
    ap.add_argument("--train-steps", type=int, default=None, help="training steps per model (default 150; --quick 30)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                    help="results directory (default: benchmarks/results)")
    ap.add_argument("--replace", action="store_true",
                    help="overwrite <machine>.{json,md,png} in --out instead of writing new <machine>-N.* files")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the trained models and artifacts here (default: a temporary directory, removed)")
    ap.add_argument("--retry-noisy", type=int, default=2, help="re-measure a row disturbed by other processes up "
                    "to this many times, keeping the lowest p50 (default 2)")
    ap.add_argument("--debug", action="store_true", help="print tracebacks of skipped artifacts")
    args = ap.parse_args(argv)
    from edgelstm.models import zoo

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in zoo.ZOO]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(zoo.ZOO)}")
    try:
        threads = tuple(int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(","))
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    import tempfile

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="edgelstm-suite-")
    cfg = SuiteConfig(models=models, threads=threads,
                      train_steps=args.train_steps or (30 if args.quick else 150),
                      min_time=args.min_time or (0.05 if args.quick else 0.4),
                      warmup=5 if args.quick else 20, retry_noisy=args.retry_noisy, quick=args.quick, out_dir=args.out,
                      work_dir=args.work or Path(tmp.name), replace=args.replace)  # type: ignore[union-attr]
    try:
        return run_suite(cfg)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run_suite(cfg: SuiteConfig) -> int:
    models, threads = cfg.models, cfg.threads
    started = time.perf_counter()
    device = describe_device()
    report = BenchReport(device=device, options={"suite": True, "points": POINTS, "threads": list(cfg.threads),
                                                 "min_time_s": cfg.min_time, "warmup": cfg.warmup,
                                                 "train_steps": cfg.train_steps, "quick": cfg.quick})
    info: dict[str, Any] = {}
    target = result_stem(cfg.out_dir, device["machine"] + ("-quick" if cfg.quick else ""), (".json", ".md", ".png"),
                         cfg.replace)
    log(f"edgelstm benchmark suite on {device['machine']}: models {list(models)}, threads {list(threads)}, "
        f"{cfg.min_time:g} s per row; results to {target}.{{json,md,png}}")
    for name in models:
        run_model(name, cfg, report, info)
    from edgelstm.latency.summary import stream_summary

    for row in report.results:  # the artifacts lived in a work directory: keep file names only
        if row.path:
            row.path = Path(row.path).name
    report.stream = stream_summary(report.results)
    tgt = targets(report)
    seconds = time.perf_counter() - started
    report.extras = {"suite": {"models": info, "targets": tgt, "streaming": stream_rows(report),
                               "seconds": round(seconds, 1)}}
    target.parent.mkdir(parents=True, exist_ok=True)
    json_path = write_json(report, target.with_name(target.name + ".json"))
    md_path = write_markdown(report, target.with_name(target.name + ".md"),
                             title=f"edgelstm benchmark suite — {device['machine']}",
                             preamble=markdown(report, info, tgt, cfg, seconds))
    png_path = plot_speedups(report, target.with_name(target.name + ".png"))
    log(f"wrote {json_path}, {md_path}, {png_path} in {seconds / 60:.1f} min")
    if tgt.get("best"):
        b = tgt["best"]
        log(f"target: {b['artifact']} {b['speedup']:.2f}x torch eager (rel_l2 {b['rel_l2']:.1e}) -> "
            f"{'met' if b['met'] else 'NOT met'} (>= {TARGET_SPEEDUP:g}x)")
    if tgt.get("stream"):
        s = tgt["stream"]
        log(f"streaming: step {s['speedup']:.1f}x cheaper than its own window, "
            f"{s['speedup_vs_torch_eager_window']:.1f}x cheaper than torch eager re-running it (target {TARGET_STREAM:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
