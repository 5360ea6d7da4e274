"""Drift and size of `edgelstm quantize` on each zoo model at its real size.

    python benchmarks/quantize_drift.py                  # writes benchmarks/results/quantize_drift.{json,md}
    python benchmarks/quantize_drift.py --models gru --out /tmp/bench

Each zoo model is trained briefly (150 steps) on its own synthetic task, exported with the verified
exporter (the hand-written cell is lifted to nn.LSTM), then quantized to FP16, INT8 dynamic and INT8 static
(Q/DQ, minmax and entropy calibration on 256 sequences that are not the held-out set). Every variant runs in
onnxruntime (CPU) on 512 held-out sequences of the task and is compared with the FP32 torch model:

- rel_l2 = ||y_variant - y_torch|| / ||y_torch|| over the whole held-out set;
- the task metric against the labels: mse for the regressors, accuracy for the classifier;
- file size and how many times smaller than the FP32 ONNX file.

Targets (the issue): FP16 rel_l2 < 0.1 %; INT8 dynamic of LSTM models rel_l2 < 1 % and >= 3x smaller. Extra
rows (per-channel, reduce-range, head kept float) are the investigation where a target is missed.

Results that already exist are kept: the new ones go to quantize_drift-2.* (-3, ...) unless --replace.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import N_CALIB, SEQ, result_stem  # noqa: E402,F401

TRAIN_STEPS = 150
N_HELD_OUT = 512
LSTM_MODELS = ("lstm_regressor", "stacked_lstm", "bilstm_attention", "hand_lstm")
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python benchmarks/quantize_drift.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated zoo models (default: all of them)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results directory (default: {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--replace", action="store_true",
                    help="overwrite quantize_drift.{json,md} in --out instead of writing a new -N file beside it")
    args = ap.parse_args(argv)
    from edgelstm.models import zoo

    args.models = [m.strip() for m in (args.models or ",".join(zoo.ZOO)).split(",") if m.strip()]
    unknown = [m for m in args.models if m not in zoo.ZOO]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(zoo.ZOO)}")
    return args


def _variants():
    from edgelstm.converters.quantize.fp16 import Fp16Options
    from edgelstm.converters.quantize.int8 import Int8Options
    from edgelstm.options import CalibMethod, QuantMode

    return [
        ("fp16", "fp16", Fp16Options(), False),
        ("int8 dynamic", "int8", Int8Options(mode=QuantMode.dynamic), False),
        ("int8 dynamic per-channel", "int8", Int8Options(mode=QuantMode.dynamic, per_channel=True), False),
        ("int8 dynamic reduce-range", "int8", Int8Options(mode=QuantMode.dynamic, reduce_range=True), False),
        ("int8 dynamic, head float", "int8", Int8Options(mode=QuantMode.dynamic, exclude=("head",)), False),
        ("int8 static minmax", "int8", Int8Options(mode=QuantMode.static, calib_method=CalibMethod.minmax), True),
        ("int8 static entropy", "int8", Int8Options(mode=QuantMode.static, calib_method=CalibMethod.entropy), True),
        ("fallback int8 dynamic rel_l2=0.01", "int8", Int8Options(mode=QuantMode.dynamic), False),
    ]


def _run_ort(path: Path, x: np.ndarray, batch: int = 128) -> np.ndarray:
    from edgelstm.runners.onnxruntime_runner import OrtRunner

    runner = OrtRunner(path, threads=None)  # honours the manifest's safe opt level
    outs = [runner.run({"x": x[i:i + batch]})["y"] for i in range(0, len(x), batch)]
    runner.close()
    return np.concatenate(outs)


def _task(name: str, y_pred: np.ndarray, labels: np.ndarray) -> tuple[str, float]:
    from edgelstm.models import zoo

    if zoo.ZOO[name].task == "classification":
        return "accuracy", float(np.mean(np.argmax(y_pred, axis=-1) == labels))
    return "mse", float(np.mean((y_pred.astype(np.float64) - labels) ** 2))


def _rel_l2(a: np.ndarray, ref: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    return float(np.linalg.norm(a.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-12))


def _head_pattern(onnx_path: Path) -> str | None:
    """The node name of the model's final linear layer (torch names it /head/...)."""
    import onnx

    names = [n.name for n in onnx.load(str(onnx_path)).graph.node if n.name.startswith("/head/")]
    return names[0] if names else None


def measure_model(name: str, workdir: Path) -> list[dict]:
    import dataclasses

    import torch

    from benchmarks.common import trained_zoo_model
    from edgelstm.converters.quantize.fp16 import quantize_fp16
    from edgelstm.converters.quantize.int8 import quantize_int8

    t = trained_zoo_model(name, TRAIN_STEPS, N_HELD_OUT, workdir)
    model, loss, train_s, onnx_path, exp = t.model, t.loss, t.train_s, t.onnx_path, t.export
    x, labels, y_torch, calib = t.x, t.labels, t.y_torch, t.calib
    task_name, task_torch = _task(name, y_torch, labels)
    fp32_size = onnx_path.stat().st_size
    y_onnx = _run_ort(onnx_path, x)
    rows = [{"model": name, "variant": "fp32 onnx", "rel_l2": _rel_l2(y_onnx, y_torch), "task_metric": task_name,
             "task_torch": task_torch, "task": _task(name, y_onnx, labels)[1], "size_bytes": fp32_size,
             "times_smaller": 1.0, "int8_nodes": 0, "route": exp.route.value, "train_loss": loss,
             "train_s": round(train_s, 1), "seconds": 0.0, "ort_opt_level": "all"}]
    rows[0]["sensitivity"] = None  # filled below
    head = _head_pattern(onnx_path)
    # a GPU-like FP16 estimate: onnxruntime on CPU has no FP16 LSTM/GRU kernel and runs them in FP32
    # (dropping the cast of their input), so its FP16 drift is optimistic; torch .half() computes in FP16
    import copy

    with torch.no_grad():
        y_half = copy.deepcopy(model).half()(torch.from_numpy(x).half()).float().numpy()
    # why drift differs between models: how much rounding only the input x moves the torch model's output,
    # and how much of the ONNX file is weights (what INT8 can shrink at all)
    with torch.no_grad():
        x16 = torch.from_numpy(x.astype(np.float16).astype(np.float32))
        lo, hi = float(x.min()), float(x.max())
        step = (hi - lo) / 255.0
        x8 = torch.from_numpy((np.round((x - lo) / step) * step + lo).astype(np.float32))
        sens = {"x_fp16_rel_l2": _rel_l2(model(x16).numpy(), y_torch), "x_uint8_rel_l2": _rel_l2(model(x8).numpy(), y_torch)}
    import onnx

    weight_bytes = sum(onnx.numpy_helper.to_array(i).nbytes for i in onnx.load(str(onnx_path)).graph.initializer
                       if i.data_type == onnx.TensorProto.FLOAT)
    sens["weight_share"] = weight_bytes / fp32_size
    sens["max_times_smaller_int8_weights"] = fp32_size / (fp32_size - weight_bytes + weight_bytes / 4)
    from edgelstm.data import dataset_from_arrays
    from edgelstm.models import zoo

    xv, _ = zoo.synthetic_task(name, 256, SEQ, seed=555)
    val = dataset_from_arrays({"x": xv}, exp.io, source="val").batches(64)
    rows[0]["sensitivity"] = sens
    for label, prec, options, needs_calib in _variants():
        if label.endswith("head float"):
            if head is None:
                continue
            options = dataclasses.replace(options, exclude=(head,))
        out = workdir / f"{name}.{label.replace(' ', '_').replace(',', '')}.onnx"
        t = time.perf_counter()
        budget_note = None
        if label.startswith("fallback"):
            from edgelstm.converters.quantize.quant_fallback import quantize_with_budget
            from edgelstm.validation.budget import DriftBudget
            from edgelstm.errors import GateFailed

            try:
                res = quantize_with_budget(onnx_path, out, prec, options, DriftBudget.parse(label.split()[-1]), val,
                                           calib if needs_calib else None)
                budget_note = "kept float: " + (", ".join(res.details["fallback"]["kept_float"]) or "nothing")
            except GateFailed as exc:
                rows.append({"model": name, "variant": label, "failed": str(exc), "seconds": round(time.perf_counter() - t, 2)})
                print(f"{name:18s} {label:28s} FAILED: {exc}", flush=True)
                continue
        elif prec == "fp16":
            res = quantize_fp16(onnx_path, out, options)
        else:
            res = quantize_int8(onnx_path, out, options, calib if needs_calib else None)
        secs = time.perf_counter() - t
        y = _run_ort(out, x)
        rows.append({
            "model": name, "variant": label, "rel_l2": _rel_l2(y, y_torch), "task_metric": task_name,
            "task_torch": task_torch, "task": _task(name, y, labels)[1], "size_bytes": res.size_bytes,
            "times_smaller": fp32_size / res.size_bytes, "int8_nodes": res.counts().get("int8", 0),
            "quantized_ops": sorted({r.op for r in res.report if r.precision in ("int8", "fp16")}),
            "float_ops": sorted({r.op for r in res.report if r.precision == "fp32"}),
            "seconds": round(secs, 2), "ort_opt_level": res.ort_opt_level,
        })
        if prec == "fp16" and not label.startswith("fallback"):
            rows[-1]["rel_l2_torch_half"] = _rel_l2(y_half, y_torch)
        if budget_note:
            rows[-1]["note"] = budget_note
        print(f"{name:18s} {label:28s} rel_l2 {rows[-1]['rel_l2']:.2e}  {task_name} {rows[-1]['task']:.4g} "
              f"(torch {task_torch:.4g})  {res.size_bytes:>9,} B  {rows[-1]['times_smaller']:.2f}x", flush=True)
    return rows


def targets(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if r["variant"] == "fp16":
            out.append({"model": r["model"], "target": "fp16 rel_l2 < 0.1% (onnxruntime CPU)", "value": r["rel_l2"],
                        "met": r["rel_l2"] < 1e-3})
            out.append({"model": r["model"], "target": "fp16 rel_l2 < 0.1% (GPU-like: torch .half())",
                        "value": r["rel_l2_torch_half"], "met": r["rel_l2_torch_half"] < 1e-3})
        if r["variant"] == "int8 dynamic" and r["model"] in LSTM_MODELS:
            out.append({"model": r["model"], "target": "int8 dynamic rel_l2 < 1%", "value": r["rel_l2"],
                        "met": r["rel_l2"] < 1e-2})
            out.append({"model": r["model"], "target": "int8 dynamic >= 3x smaller", "value": r["times_smaller"],
                        "met": r["times_smaller"] >= 3.0})
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    target = result_stem(args.out, "quantize_drift", (".json", ".md"), args.replace)
    print(f"results will be written to {target}.{{json,md}}", file=sys.stderr)
    import torch

    from edgelstm.machine.environment import cpu_facts, package_versions

    torch.set_num_threads(max(1, torch.get_num_threads()))
    host = cpu_facts()
    rows: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgelstm-qdrift-") as tmp:
        for name in args.models:
            rows += measure_model(name, Path(tmp))
    total = time.perf_counter() - t0
    tg = targets(rows)
    import platform

    out = {"machine": {**host, "versions": {"python": platform.python_version(), **package_versions()}}, "date": _dt.date.today().isoformat(),
           "setup": {"train_steps": TRAIN_STEPS, "seq": SEQ, "held_out": N_HELD_OUT, "calib": N_CALIB,
                     "reference": "the FP32 torch model", "runtime": "onnxruntime CPU"},
           "seconds": round(total, 1), "rows": rows, "targets": tg}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_name(target.name + ".json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    v = out["machine"]["versions"]
    lines = [
        "# quantize: drift and size on the zoo models", "",
        f"{host.get('cpu')} ({host.get('cores')} cores), python {v.get('python')}, torch {v.get('torch')}, "
        f"onnx {v.get('onnx')}, onnxruntime {v.get('onnxruntime')}; {out['date']}; {total:.0f} s in all.", "",
        f"Each model trained {TRAIN_STEPS} steps on its synthetic task (seq {SEQ}), exported with `export_onnx`, "
        f"quantized; run in onnxruntime (CPU) on {N_HELD_OUT} held-out sequences and compared with the FP32 torch "
        f"model. Static INT8 calibrated on {N_CALIB} other sequences. Task metric: mse (regressors, lower is "
        "better) or accuracy (classifier). FP16 rows also give a GPU-like estimate (the torch model run with "
        "`.half()`): onnxruntime on CPU has no FP16 LSTM/GRU kernel and runs them in FP32, so its FP16 drift is "
        "optimistic. `fallback ... rel_l2=0.01` is `--data VAL --max-drift rel_l2=0.01` (256 other sequences).", "",
        "| model | variant | rel_l2 vs torch | task (torch) | task (variant) | size | x smaller | int8 nodes | ORT level |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['model']} | {r['variant']} | failed: {r['failed']} | | | | | | |")
            continue
        rel = f"{r['rel_l2']:.2e}"
        if "rel_l2_torch_half" in r:
            rel += f" (GPU-like {r['rel_l2_torch_half']:.2e})"
        if r.get("note"):
            rel += f"; {r['note']}"
        lines.append(f"| {r['model']} | {r['variant']} | {rel} | {r['task_metric']} {r['task_torch']:.4g} | "
                     f"{r['task']:.4g} | {r['size_bytes']:,} B | {r['times_smaller']:.2f} | {r['int8_nodes']} | "
                     f"{r['ort_opt_level']} |")
    lines += ["", "## why the models differ", "",
              "Input sensitivity: rel_l2 of the FP32 torch model's output when only its input x is rounded (to float16, "
              "or to 256 uniform levels over its range like a per-tensor uint8 activation). Weight share: FP32 weight "
              "bytes / ONNX file size; the last column is the most an INT8 model can shrink if every weight became "
              "int8 and nothing else changed.", "",
              "| model | x to fp16 | x to 8 bits | weight share | max x smaller with int8 weights |", "|---|---|---|---|---|"]
    for r in rows:
        sv = r.get("sensitivity")
        if sv:
            lines.append(f"| {r['model']} | {sv['x_fp16_rel_l2']:.2e} | {sv['x_uint8_rel_l2']:.2e} | "
                         f"{sv['weight_share']:.1%} | {sv['max_times_smaller_int8_weights']:.2f} |")
    lines += ["", "## targets", "", "| model | target | value | met |", "|---|---|---|---|"]
    for t in tg:
        val = f"{t['value']:.2e}" if "rel_l2" in t["target"] else f"{t['value']:.2f}x"
        lines.append(f"| {t['model']} | {t['target']} | {val} | {'yes' if t['met'] else '**no**'} |")
    target.with_name(target.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {target}.json and {target}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
