"""INT8 drift on the zoo models for each weight type, reduce_range setting and target-CPU recipe, with the ISA
class of the machine that measured it named beside every number.

    python benchmarks/int8_targets.py                      # -> benchmarks/results/int8_targets-<machine>.{json,md}
    python benchmarks/int8_targets.py --models lstm_regressor,gru --steps 40 --out /tmp/int8

Why: onnxruntime's x86 int8 GEMM multiplies u8 activations by s8 weights. Without VNNI (AVX2-only, AVX-512
without VNNI) it adds two adjacent u8×s8 products (adjacent along the reduction axis K) into a saturating int16
(VPMADDUBSW): full-range s8 weights can saturate, 7-bit weights (reduce_range) and u8 weights (u8×u8 kernel)
cannot. With VNNI/AMX and on arm64 products accumulate in 32 bits: exact. So the same file drifts differently
on different CPUs; see edgelstm.machine.isa and edgelstm.converters.quantize.int8_target.

Each zoo model is trained briefly on its own synthetic task (--steps), exported with the verified exporter,
quantized in every setting below, run in onnxruntime (CPU) on held-out sequences and compared with the FP32
torch model (helpers and data sizes shared with benchmarks/quantize_drift.py). Settings per model:

- dynamic s8 full range / s8 reduce_range / u8 / u8 reduce_range (explicit --weight-type / --reduce-range);
- dynamic s8 full range run with onnxruntime's ``session.x64quantprecision=1`` (its own x86 fix: s8 weights
  rewritten to u8 at load, slower u8×u8 kernel) — an extra row, not an edgelstm recipe;
- static Q/DQ (minmax), the same file run at onnxruntime level ``all`` (Q/DQ fused into QGemm /
  MatMulIntegerToFloat) and ``basic`` (unfused: int8 rounding, float arithmetic);
- the recipe edgelstm chooses for ``--target-cpu portable`` (the default), ``x86-vnni``, ``x86-amx``, ``x86-avx2``,
  ``arm64`` and ``tensorrt`` (static only), dynamic and static,
  run at the level the quantizer records in the file's manifest.

Columns: rel_l2 vs the FP32 torch model, the task metric, file size, batch-1 latency (1 thread; noisy on small
machines), the onnxruntime level it ran at, and two CPU-independent structural counts from
``edgelstm.converters.quantize.int8_saturation.saturating_pairs``: the s8 weight pairs of the *file* that can saturate on
x86-avx2, and those that reach an integer kernel in the graph onnxruntime runs at that level (saved with
``optimized_model_filepath``). Where the second is 0 the row's number is the same on an AVX2-only machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import N_CALIB, SEQ  # noqa: E402
from benchmarks.quantize_drift import N_HELD_OUT, _rel_l2, _task  # noqa: E402

DEFAULT_STEPS = 100           # quantize_drift trains 150; fewer keeps the whole run near 5 min on 2 cores
EVAL_BATCH = 128
LATENCY_MIN_S = 0.25
X64_PRECISION = {"session.x64quantprecision": "1"}
TARGETS = ("portable", "x86-vnni", "x86-amx", "x86-avx2", "arm64", "tensorrt")

# (key, label, mode, Int8Options kwargs, file group, level (None: the manifest's), session config)
SETTINGS: list[tuple[str, str, str, dict[str, Any], str, str | None, dict[str, str] | None]] = [
    ("dyn-s8", "dynamic s8, full range", "dynamic", {"weight_type": "s8", "reduce_range": False}, "dyn-s8", None, None),
    ("dyn-s8-rr", "dynamic s8, reduce_range", "dynamic", {"weight_type": "s8", "reduce_range": True}, "dyn-s8-rr",
     None, None),
    ("dyn-u8", "dynamic u8", "dynamic", {"weight_type": "u8", "reduce_range": False}, "dyn-u8", None, None),
    ("dyn-u8-rr", "dynamic u8, reduce_range", "dynamic", {"weight_type": "u8", "reduce_range": True}, "dyn-u8-rr",
     None, None),
    ("dyn-s8-x64qp", "dynamic s8, full range + ORT x64quantprecision=1", "dynamic",
     {"weight_type": "s8", "reduce_range": False}, "dyn-s8", "all", X64_PRECISION),
    ("static-all", "static Q/DQ minmax @ level all", "static", {"reduce_range": False}, "static", "all", None),
    ("static-basic", "static Q/DQ minmax @ level basic", "static", {"reduce_range": False}, "static", "basic", None),
    *[(f"target-{t}-dynamic", f"--target-cpu {t} (dynamic)", "dynamic", {"target": t}, f"target-{t}-dynamic", None,
       None) for t in TARGETS if t != "tensorrt"],  # TensorRT runs no dynamic INT8
    *[(f"target-{t}-static", f"--target-cpu {t} (static)", "static", {"target": t}, f"target-{t}-static", None, None)
      for t in TARGETS],
]

#: AVX2-only measurements reported from the field (ARCHITECTURE.md, "Facts the code relies on", 2026-11-27): not ours
FIELD_REPORTS = {
    "source": "ARCHITECTURE.md, 'Facts the code relies on' (field report 2026-11-27): an AVX2-only AMD EPYC",
    "matmul_integer_full_range_wrong_outputs": "68.6% wrong outputs (direct MatMulInteger test, full-range s8); "
                                               "7-bit weights, U8U8 and S8S8 exact",
    "dynamic_rel_l2": {  # model: (default dynamic = s8 full range, with reduce_range)
        "lstm_regressor": (3.0e-2, 7.1e-3), "stacked_lstm": (1.1e-1, 7.7e-2), "gru": (3.7e-2, 1.6e-3),
        "bilstm_attention": (4.8e-2, 3.2e-3),
    },
    "qdq": "Q/DQ models saturate once onnxruntime fuses them into QGemm (levels extended/all); unfused (basic) not",
}


# ------------------------------------------------------------------------------------------------ measuring

def _session(path: Path, level: str, config: dict[str, str] | None = None, *, threads: int | None = None,
             optimized: Path | None = None):
    import onnxruntime as ort

    from edgelstm.artifacts.ort import OPT_LEVELS

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _predict(sess, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + EVAL_BATCH]})[0] for i in range(0, len(x), EVAL_BATCH)])


def _latency_ms(sess, x1: np.ndarray) -> float:
    """Median wall time of one batch-1 call (after warm-up), as many calls as fit in LATENCY_MIN_S."""
    name = sess.get_inputs()[0].name
    feed = {name: np.ascontiguousarray(x1)}
    for _ in range(5):
        sess.run(None, feed)
    times: list[float] = []
    end = time.perf_counter() + LATENCY_MIN_S
    while time.perf_counter() < end or len(times) < 10:
        t = time.perf_counter_ns()
        sess.run(None, feed)
        times.append((time.perf_counter_ns() - t) / 1e6)
    return float(np.median(times))


def _run_graph_saturation(path: Path, level: str, config: dict[str, str] | None, work: Path) -> dict[str, Any]:
    """Saturating pairs in the integer kernels of the graph onnxruntime runs at ``level`` (CPU-independent on
    x86 as far as onnxruntime's graph rewrites go: they depend on the build, not on VNNI)."""
    from edgelstm.converters.quantize.int8_saturation import saturating_pairs

    opt = work / f"{path.stem}.{level}{'.x64qp' if config else ''}.optimized.onnx"
    _session(path, level, config, threads=1, optimized=opt)
    import onnx

    model = onnx.load(str(opt))
    res = saturating_pairs(model, qdq=False)
    res["int8_ops"] = sorted({n.op_type for n in model.graph.node if n.op_type in _INT_OPS})
    return res


_INT_OPS = {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm",
            "QLinearMatMul", "QLinearConv", "ConvInteger", "QAttention"}


def _short(sat: dict[str, Any], *, weights: bool = True) -> dict[str, Any]:
    keep = ("status", "pairs", "saturating", "fraction", "abs_sum_over_limit", "s8_weights", "u8_weights")
    out = {k: sat[k] for k in keep}
    if weights:
        out["weights"] = [{k: w.get(k) for k in ("name", "op", "via", "dtype", "shape", "k_axis", "pairs", "saturating",
                                              "max_same_sign_sum", "min", "max")} for w in sat["weights"]]
    if "int8_ops" in sat:
        out["int8_ops"] = sat["int8_ops"]
    return out


def measure_model(name: str, steps: int, n_held_out: int, work: Path, log) -> list[dict[str, Any]]:
    from benchmarks.common import trained_zoo_model
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
    from edgelstm.converters.quantize.int8_saturation import saturating_pairs
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.fileio import sha256_file

    t = trained_zoo_model(name, steps, n_held_out, work)
    loss, train_s, onnx_path, exp = t.loss, t.train_s, t.onnx_path, t.export
    x, labels, y_torch, calib = t.x, t.labels, t.y_torch, t.calib
    task_name, task_torch = _task(name, y_torch, labels)
    fp32_size = onnx_path.stat().st_size
    base = {"model": name, "task_metric": task_name, "task_torch": task_torch}
    sess = _session(onnx_path, "all")
    y = _predict(sess, x)
    rows = [{**base, "setting": "fp32", "label": "fp32 onnx (reference size and speed)", "mode": None,
             "rel_l2": _rel_l2(y, y_torch), "task": _task(name, y, labels)[1], "size_bytes": fp32_size,
             "times_smaller": 1.0, "ort_level": "all", "p50_ms": _latency_ms(_session(onnx_path, "all", threads=1),
                                                                             x[:1]),
             "train_steps": steps, "train_loss": loss, "train_s": round(train_s, 1), "route": exp.route.value}]
    log(f"{name:17s} trained {steps} steps in {train_s:.0f} s (loss {loss:.4g}); fp32 onnx rel_l2 "
        f"{rows[0]['rel_l2']:.1e}, {task_name} {rows[0]['task']:.4g}")
    files: dict[str, dict[str, Any]] = {}
    for key, label, mode, kwargs, group, level, config in SETTINGS:
        t = time.perf_counter()
        if group not in files:
            out = work / f"{name}.{group}.onnx"
            res = quantize_int8(onnx_path, out, Int8Options(mode=mode, **kwargs), calib if mode == "static" else None)
            man = read_manifest(out)
            details = man.details if man else {}
            q = details.get("quantization", {})
            files[group] = {"path": out, "size": res.size_bytes, "sha256": sha256_file(out), "recorded_level":
                            details.get("ort_opt_level"), "target_isa": details.get("target_isa"),
                            "target": q.get("target", {}), "weight_type": q.get("weight_type"),
                            "reduce_range": q.get("reduce_range"), "int8_nodes": res.counts().get("int8", 0),
                            "file_saturation": saturating_pairs(out), "first": key}
        f = files[group]
        run_level = level or f["recorded_level"] or "all"
        sess = _session(f["path"], run_level, config)
        y = _predict(sess, x)
        run_sat = _run_graph_saturation(f["path"], run_level, config, work)
        p50 = _latency_ms(_session(f["path"], run_level, config, threads=1), x[:1])
        fsat = f["file_saturation"]
        kinds = sorted({w["dtype"] for w in fsat["weights"]})
        same = next((r["setting"] for r in rows if r.get("sha256") == f["sha256"] and r["setting"] != key), None)
        row = {
            **base, "setting": key, "label": label, "mode": mode, "options": kwargs, "session_config": config,
            "rel_l2": _rel_l2(y, y_torch), "task": _task(name, y, labels)[1], "size_bytes": f["size"],
            "times_smaller": fp32_size / f["size"], "ort_level": run_level, "recorded_level": f["recorded_level"],
            "target_isa": f["target_isa"], "recipe": f["target"], "weight_type": f["weight_type"],
            "reduce_range": f["reduce_range"], "int8_weights": "+".join(kinds) if kinds else "none",
            "int8_nodes": f["int8_nodes"], "sha256": f["sha256"], "same_file_as": same, "p50_ms": p50,
            "file_saturation": _short(fsat), "run_saturation": _short(run_sat, weights=False),
            "differs_on_x86_avx2": run_sat["saturating"] > 0, "seconds": round(time.perf_counter() - t, 2),
        }
        rows.append(row)
        log(f"{name:17s} {label:48s} level {run_level:8s} rel_l2 {row['rel_l2']:.2e}  {task_name} {row['task']:.4g}"
            f"  {f['size']:>8,} B  {p50:6.3f} ms  sat file {fsat['saturating']}/{fsat['pairs']}"
            f" run {run_sat['saturating']}")
    return rows


# ------------------------------------------------------------------------------------------------ reporting

def _sat_cell(sat: dict[str, Any], *, run: bool = False) -> str:
    from edgelstm.converters.quantize.int8_saturation import describe

    if run and sat["status"] == "no int8 weights":
        return "none (no int8 weight reaches an integer kernel)"
    return describe(sat)


def _fmt_level(r: dict[str, Any]) -> str:
    lvl = r["ort_level"]
    if r.get("session_config"):
        lvl += " + x64quantprecision"
    if r.get("recorded_level") and r["recorded_level"] != r["ort_level"]:
        lvl += f" (file records {r['recorded_level']})"
    return lvl


def _ratio_text(values: list[float]) -> str:
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}×" if len(values) == 1 or f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}×"


def costs_paragraph(rows: list[dict[str, Any]]) -> list[str]:
    """'What each target costs', derived from the rows of this run."""
    by = {(r["model"], r["setting"]): r for r in rows}
    models = sorted({r["model"] for r in rows}, key=[r["model"] for r in rows].index)
    lines = []

    def pairs(a: str, b: str, field: str) -> list[tuple[str, float, float]]:
        return [(m, by[(m, a)][field], by[(m, b)][field]) for m in models if (m, a) in by and (m, b) in by]

    dyn = pairs("target-x86-avx2-dynamic", "target-x86-vnni-dynamic", "rel_l2")
    if dyn:
        ratios = [a / b for _, a, b in dyn if b > 0]
        per = ", ".join(f"{m} {a:.1e} vs {b:.1e}" for m, a, b in dyn)
        lat = [a / b for _, a, b in pairs("target-x86-avx2-dynamic", "target-x86-vnni-dynamic", "p50_ms")]
        lines.append(
            f"- **x86-avx2, dynamic** (7-bit s8 weights) drifts {_ratio_text(ratios)} as much as the x86-vnni recipe "
            f"(full 8-bit s8) when both run exactly ({per}); same size, batch-1 latency {_ratio_text(lat)} "
            "(same kernels).")
    st = pairs("target-x86-avx2-static", "target-x86-vnni-static", "rel_l2")
    if st:
        lat = pairs("target-x86-avx2-static", "target-x86-vnni-static", "p50_ms")
        rel = [a / b for _, a, b in st if b > 0]
        lines.append(
            f"- **x86-avx2, static** writes the same Q/DQ file and records level basic instead of all: drift "
            f"{_ratio_text(rel)} the fused run here (where the fused kernels are exact; on an AVX2-only machine the "
            f"fused run is the one that would saturate), batch-1 latency {_ratio_text([a / b for _, a, b in lat])} "
            "(unfused Q/DQ computes in float; static INT8 covers only the MatMul/Gemm layers, LSTM/GRU stay float, "
            "so the level barely matters for speed on these models).")
    arm = [m for m in models if (m, "target-arm64-dynamic") in by and (m, "target-x86-vnni-dynamic") in by
           and by[(m, "target-arm64-dynamic")]["sha256"] == by[(m, "target-x86-vnni-dynamic")]["sha256"]]
    arm_s = [m for m in models if (m, "target-arm64-static") in by and (m, "target-x86-vnni-static") in by
             and by[(m, "target-arm64-static")]["sha256"] == by[(m, "target-x86-vnni-static")]["sha256"]]
    if arm or arm_s:
        lines.append(f"- **arm64** writes byte-identical model files to x86-vnni (dynamic: {len(arm)}/{len(models)} "
                     f"models, static: {len(arm_s)}/{len(models)}; only the manifest's target differs): it costs "
                     "nothing over x86-vnni.")
    u8 = pairs("dyn-u8", "dyn-s8", "rel_l2")
    if u8:
        rel = [a / b for _, a, b in u8 if b > 0]
        lines.append(f"- **u8 weights** (not a target recipe) drift {_ratio_text(rel)} as much as s8 full range. "
                     "onnxruntime's quantizer keeps LSTM weights s8 whatever the weight type (its LSTM quantizer "
                     "hard-codes INT8), so on LSTM models `--weight-type u8` alone does not avoid saturation.")
    x64 = pairs("dyn-s8-x64qp", "dyn-s8", "p50_ms")
    if x64:
        rel = [by[(m, "dyn-s8-x64qp")]["rel_l2"] / max(by[(m, "dyn-s8")]["rel_l2"], 1e-30) for m, _, _ in x64]
        lines.append(f"- onnxruntime's own switch `session.x64quantprecision=1` (full 8-bit s8 file, weights rewritten "
                     f"to u8 at load, u8×u8 kernel) drifts {_ratio_text(rel)} as much as s8 full range, batch-1 latency "
                     f"{_ratio_text([a / b for _, a, b in x64])} the s8 row's here (on a VNNI machine; the u8×u8 "
                     "kernel's speed on AVX2 was not measured). Not an edgelstm recipe: a session option the runner "
                     "would have to set.")
    return lines


def _load_text(report: dict[str, Any]) -> str:
    load = report.get("load_average") or {}
    if not load.get("start") or not load.get("end"):
        return ""
    return (f"; 1-min load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end (the machine "
            "was shared: wall times, training and latency are inflated by that; drift is not)")


def render_markdown(report: dict[str, Any]) -> str:
    dev, isa, rows = report["device"], report["isa"], report["rows"]
    cpu = dev.get("cpu") or {}
    v = dev.get("versions") or {}
    exact = isa["isa"] in ("x86-vnni", "arm64")
    lines = [
        f"# INT8 per target CPU: drift on the zoo models — {dev['machine']}", "",
        f"- **machine**: {cpu.get('model')} ({cpu.get('usable_cores') or cpu.get('logical_cores')} usable cores), "
        f"ISA class **{isa['isa']}**, int8-relevant flags: {', '.join(isa['int8_flags']) or 'none'}; "
        f"{dev.get('memory_gb')} GB; {dev.get('os')}",
        f"- **versions**: python {dev.get('python')}, torch {v.get('torch')}, onnx {v.get('onnx')}, "
        f"onnxruntime {v.get('onnxruntime')}, numpy {v.get('numpy')}, edgelstm {v.get('edgelstm')}",
        f"- **date**: {report['date']}; {report['seconds']:.0f} s in all (`{report['command']}`)"
        + _load_text(report),
        f"- **setup**: each model trained {report['setup']['train_steps']} steps on its synthetic task (seq "
        f"{SEQ}; benchmarks/quantize_drift.py trains 150), exported with `export_onnx`, quantized with "
        f"`quantize_int8`; static calibrated (minmax) on {N_CALIB} other sequences; run in onnxruntime (CPU) on "
        f"{report['setup']['held_out']} held-out sequences and compared with the FP32 torch model. p50: batch 1 × "
        f"{SEQ} steps, 1 thread, median wall time (2-core machine: noisy, compare within a model).", "",
    ]
    if exact:
        lines += [f"This machine is **{isa['isa']}**: onnxruntime's int8 products accumulate in 32 bits here, so every "
                  "number below is an exact-kernel number. The same files on an AVX2-only x86 would give the same "
                  "numbers except where the last column says *yes*.", ""]
    else:
        lines += [f"This machine is **{isa['isa']}**: rows whose last column says *yes* include u8×s8 saturation.", ""]
    lines += [
        "Saturation columns (CPU-independent, `edgelstm.converters.quantize.int8_saturation.saturating_pairs`): s8 weight pairs "
        "(k, k+1 along the reduction axis K, k even, as MLAS packs them for VPMADDUBSW) with the same sign and "
        "|w_k|+|w_k+1| > 128, i.e. 255·(|w_k|+|w_k+1|) outside int16, / all s8 pairs. *file*: every int8 weight of "
        "the file (Q/DQ weights counted as the fused op would read them). *run*: only weights that reach an "
        "integer kernel in the graph onnxruntime runs at that level. u8 weights run the u8×u8 kernel: n/a.", "",
        "| model | setting | int8 weights | ORT level | rel_l2 vs torch | task (torch) | size | p50 ms | "
        "pairs that can saturate on x86-avx2 (file) | … in the kernels run at this level | differs on x86-avx2? |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        task = f"{r['task_metric']} {r['task']:.4g} ({r['task_torch']:.4g})"
        if r["setting"] == "fp32":
            lines.append(f"| {r['model']} | {r['label']} | — | all | {r['rel_l2']:.1e} | {task} | {r['size_bytes']:,} B "
                         f"| {r['p50_ms']:.3f} | — | — | no |")
            continue
        label = r["label"]
        if r.get("same_file_as"):
            label += f" (same file as `{r['same_file_as']}`)"
        wt = r["int8_weights"] + (" 7-bit" if r.get("reduce_range") else "")
        lines.append(
            f"| {r['model']} | {label} | {wt} | {_fmt_level(r)} | {r['rel_l2']:.2e} | {task} | {r['size_bytes']:,} B "
            f"({r['times_smaller']:.1f}× smaller) | {r['p50_ms']:.3f} | {_sat_cell(r['file_saturation'])} | "
            f"{_sat_cell(r['run_saturation'], run=True)} | {'**yes**' if r['differs_on_x86_avx2'] else 'no'} |")
    lines += ["", "## What each target costs", "", *costs_paragraph(rows), ""]
    differ = sorted({r["label"] for r in rows if r.get("differs_on_x86_avx2")}, key=[r["label"] for r in rows].index)
    lines += [
        "## What would differ on an AVX2-only machine", "",
        "Only rows marked **yes**: s8 weights with saturating pairs that reach the u8×s8 kernel. Here: "
        + ("; ".join(f"`{d}`" for d in differ) if differ else "none") + ". "
        "Every other row (7-bit weights, the u8 head of `dynamic u8`, Q/DQ unfused at level basic, "
        "`x64quantprecision`, GRU layers that stay float) runs the same arithmetic on any x86 and would "
        "reproduce within run-to-run noise. Note `dynamic u8` without reduce_range is a *yes* on LSTM models: "
        "the LSTM weights stay s8.", "",
        f"Field reports, **not our measurements** ({FIELD_REPORTS['source']}; models trained there with their own "
        "settings, so compare orders of magnitude, not digits):", "",
        f"- {FIELD_REPORTS['matmul_integer_full_range_wrong_outputs']}.",
        f"- {FIELD_REPORTS['qdq']}.", "",
        "| model | AVX2-only EPYC: dynamic s8 full range | AVX2-only EPYC: reduce_range | here "
        f"({isa['isa']}): dynamic s8 full range | here: reduce_range |", "|---|---|---|---|---|",
    ]
    by = {(r["model"], r["setting"]): r for r in rows}
    for m, (full, rr) in FIELD_REPORTS["dynamic_rel_l2"].items():
        here = by.get((m, "dyn-s8"))
        here_rr = by.get((m, "dyn-s8-rr"))
        lines.append(f"| {m} | {full:.1e} | {rr:.1e} | {here['rel_l2']:.1e} | {here_rr['rel_l2']:.1e} |" if here and here_rr
                     else f"| {m} | {full:.1e} | {rr:.1e} | not run | not run |")
    full = [(m, f / by[(m, "dyn-s8")]["rel_l2"], r / by[(m, "dyn-s8-rr")]["rel_l2"])
            for m, (f, r) in FIELD_REPORTS["dynamic_rel_l2"].items()
            if (m, "dyn-s8") in by and (m, "dyn-s8-rr") in by]
    if full:
        lines += ["", f"The field's reduce_range figures are {_ratio_text([r for _, _, r in full])} ours (both exact: "
                  "only training differs), its full-range figures "
                  f"{_ratio_text([f for _, f, _ in full])} ours: the gap the reduce_range column does not show is "
                  "consistent with saturation on that machine."]
    lines += ["", "Reproduce: `python benchmarks/int8_targets.py` (see `--help`); the JSON beside this file has every "
              "row with its per-weight saturation counts, recipe and sha256.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI

def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def build_parser() -> argparse.ArgumentParser:
    from edgelstm.models import zoo

    p = argparse.ArgumentParser(
        prog="python benchmarks/int8_targets.py",
        description=(
            "Measure INT8 drift of every zoo model under each weight type / reduce_range setting (dynamic s8, "
            "s8 reduce_range, u8, u8 reduce_range; static Q/DQ at onnxruntime level all and basic) and under the "
            "recipe edgelstm chooses for each --target-cpu (x86-vnni, x86-avx2, arm64; dynamic and static), "
            "against the FP32 torch model on held-out data. Also counts, from each quantized file, the int8 weight "
            "pairs that can saturate onnxruntime's u8×s8 kernel on x86 without VNNI (CPU-independent), so the "
            "results say which numbers would differ on an AVX2-only machine. Writes "
            "int8_targets-<machine>.json and .md, where <machine> names the CPU, cores and ISA class."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="directory for the results")
    p.add_argument("--models", default=",".join(zoo.ZOO), help="comma-separated zoo models")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per model")
    p.add_argument("--held-out", type=int, default=N_HELD_OUT, help="held-out sequences per model")
    p.add_argument("--replace", action="store_true", help="overwrite existing int8_targets-<machine>.* results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from edgelstm.models import zoo
    from edgelstm.machine.device import describe_device
    from edgelstm.machine.isa import isa_facts
    from edgelstm.fileio import write_text_atomic

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in zoo.ZOO]
    if unknown or not models:
        print(f"error: unknown zoo model(s) {unknown}; known: {', '.join(zoo.ZOO)}", file=sys.stderr)
        return 2
    if args.steps < 0 or args.held_out < 1:
        print("error: --steps must be >= 0 and --held-out >= 1", file=sys.stderr)
        return 2
    device = describe_device()
    stem = f"int8_targets-{device['machine']}"
    paths = [args.out / f"{stem}.json", args.out / f"{stem}.md"]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not args.replace:
        print(f"error: {', '.join(existing)} already exist(s); pass --replace to overwrite", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    isa = isa_facts()
    log(f"int8_targets on {device['machine']} ({isa['isa']}; {', '.join(isa['int8_flags'])}): models {models}")
    load_start = _loadavg()
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgelstm-int8-targets-") as tmp:
        for name in models:
            rows += measure_model(name, args.steps, args.held_out, Path(tmp), log)
    total = time.perf_counter() - t0
    report = {
        "benchmark": "int8_targets", "date": _dt.date.today().isoformat(), "seconds": round(total, 1),
        "command": " ".join(["python benchmarks/int8_targets.py", *(argv if argv is not None else sys.argv[1:])]),
        "load_average": {"start": load_start, "end": _loadavg()},
        "device": device, "isa": isa, "python": platform.python_version(),
        "setup": {"train_steps": args.steps, "seq": SEQ, "held_out": args.held_out, "calib": N_CALIB,
                  "reference": "the FP32 torch model", "runtime": "onnxruntime CPU",
                  "latency": f"batch 1 x {SEQ} steps, 1 thread, median over >= {LATENCY_MIN_S} s",
                  "settings": [{"key": k, "label": lab, "mode": mo, "options": kw, "level": lv, "session_config": c}
                               for k, lab, mo, kw, _, lv, c in SETTINGS]},
        "field_reports_not_measured_here": FIELD_REPORTS,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths[0], json.dumps(report, indent=2, default=str) + "\n")
    md = render_markdown(report)
    write_text_atomic(paths[1], md)
    print(md)
    log(f"wrote {paths[0]} and {paths[1]} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
