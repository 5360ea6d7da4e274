"""INT8 with and without AMX, A/B in fresh processes: the evidence for onnxruntime's MLAS picking its AMX u8×s8
kernel at small batch, where the AVX512-VNNI kernel is faster, and for refusing AMX with a seccomp filter.

AMX permission is per process and cannot be revoked, so the two arms cannot share a process: each round starts one
child per arm, in rotating order, and each child times the FP32 and the INT8 ONNX of the model at every batch:

- ``amx``: a plain process (onnxruntime gets AMX where the CPU and kernel offer it)
- ``no-amx``: the same under edgelstm's filter (``python -m edgelstm.machine.noamx --``: ARCH_REQ_XCOMP_PERM → EPERM)
- ``pinned`` (with --pinned): a plain process started pinned to one CPU (onnxruntime 1.32 skips AMX then)

Each child reports the AMX state it ended with (edgelstm.machine.amx: permission held, blocked, pinned), so every
figure names the kernel that produced it. Output: per batch, the median time of each arm, the per-round ratios
no-amx/amx, and the per-step AMX penalty ((INT8 amx − INT8 no-amx) / seq), beside the cost model of the field report.

On a CPU without AMX both arms run the same kernel: the run then measures the filter's own cost (none expected),
which is what a machine without AMX can show. The model's outputs under the filter are checked bit for bit.

    python benchmarks/amx_int8.py                         # lstm_regressor and bilstm_attention, batch 1..64
    python benchmarks/amx_int8.py --models lstm_regressor --batches 1,32 --rounds 3 --pinned
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, result_stem, trained_zoo_model  # noqa: E402

#: field report 2026-12-06 (ARCHITECTURE.md, "Facts the code relies on"), Xeon with AMX-INT8, onnxruntime 1.32, batch 1: one 1×64×256 u8×s8 GEMM
FIELD_STEP_US = {"amx": 1.1, "avx512-vnni": 0.6, "fp32": 0.77}
FIELD_LSTM_REGRESSOR_US = {"int8 amx": 74, "int8 no-amx": 43, "fp32": 55, "int8 pinned": 44}

CHILD = r"""
import json, os, statistics, sys, time
arm, spec = sys.argv[1], json.loads(sys.argv[2])
if arm == "pinned":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import numpy as np, onnxruntime as ort
out = {"arm": arm, "times": {}, "outputs": {}}
for label, path in spec["files"].items():
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for b in spec["batches"]:
        x = np.random.default_rng(b).standard_normal((b, spec["seq"], spec["features"])).astype(np.float32)
        for _ in range(5):
            y = s.run(None, {"x": x})[0]
        t0 = time.perf_counter(); s.run(None, {"x": x}); one = max(time.perf_counter() - t0, 1e-6)
        n = max(5, min(400, int(spec["block_s"] / one)))
        ts = []
        for _ in range(n):
            t0 = time.perf_counter_ns(); s.run(None, {"x": x}); ts.append((time.perf_counter_ns() - t0) / 1e3)
        out["times"][f"{label}@{b}"] = statistics.median(ts)
        out["outputs"][f"{label}@{b}"] = np.asarray(y, np.float64).tobytes().hex()[:4096]
from edgelstm.machine.amx import amx_state
out["amx"] = amx_state()
print(json.dumps(out))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_arm(arm: str, spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-c", CHILD, arm, json.dumps(spec)]
    if arm == "no-amx":
        cmd = [sys.executable, "-m", "edgelstm.machine.noamx", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"arm {arm} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prepare(name: str, steps: int, work: Path) -> dict[str, str]:
    from edgelstm import stages
    from edgelstm.options import PrecisionSpec

    trained = trained_zoo_model(name, steps, 16, work)
    files = {"fp32": str(trained.onnx_path)}
    for target in ("portable", "x86-vnni"):
        out = work / f"{name}.int8-{target}.onnx"
        stages.quantize(trained.onnx_path, out, "int8-dynamic",
                        stages.default_options(PrecisionSpec.parse("int8-dynamic"), target=target))
        files[f"int8-{target}"] = str(out)
    return files


def summarize(runs: list[dict[str, Any]], arms: list[str], batches: list[int], labels: list[str],
              seq: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for b in batches:
        for label in labels:
            key = f"{label}@{b}"
            per_arm = {a: [r["times"][key] for r in runs if r["arm"] == a] for a in arms}
            entry = {a: statistics.median(v) for a, v in per_arm.items() if v}
            if "no-amx" in per_arm and per_arm["amx"]:
                entry["amx_over_no_amx"] = statistics.median(x / y for x, y in zip(per_arm["amx"], per_arm["no-amx"]))
                entry["amx_penalty_us_per_step"] = (entry["amx"] - entry["no-amx"]) / seq
            table[key] = entry
    identical = all(len({r["outputs"][k] for r in runs}) == 1 for k in runs[0]["outputs"])
    return {"times_us": table, "outputs_identical_across_arms": identical,
            "amx_state": {a: next(r["amx"] for r in runs if r["arm"] == a) for a in arms}}


def markdown(device: dict[str, Any], args: Any, result: dict[str, Any]) -> str:
    cpu = device.get("cpu") or {}
    lines = [f"# INT8 with and without AMX — {device['machine']}", "",
             f"CPU {cpu.get('model')}, ISA class **{cpu.get('isa')}**, onnxruntime "
             f"{(device.get('versions') or {}).get('onnxruntime')}; load average {device['loadavg'][0]:.1f} at the "
             f"start{' (shared, loaded machine: ratios only)' if device['loadavg'][0] > 1.5 else ''}. "
             f"{args.rounds} rounds, arms {', '.join(result['arms'])} in fresh processes, 1 thread, seq {args.seq}.", ""]
    for model, r in result["models"].items():
        states = "; ".join(f"{a}: {s['int8_kernel']}" + (", filter on" if s.get("blocked") else "")
                           + (", pinned" if s.get("pinned") else "") for a, s in r["amx_state"].items())
        lines += [f"## {model}", "", f"INT8 kernel per arm: {states}. Outputs identical across arms: "
                  f"{'yes' if r['outputs_identical_across_arms'] else '**no**'}.", "",
                  "| file @ batch | " + " | ".join(f"{a} µs" for a in result["arms"]) + " | amx / no-amx | "
                  "AMX penalty µs/step |", "|---" * (len(result["arms"]) + 3) + "|"]
        for key, e in r["times_us"].items():
            lines.append(f"| {key} | " + " | ".join(f"{e.get(a, float('nan')):,.1f}" for a in result["arms"])
                         + f" | {e.get('amx_over_no_amx', float('nan')):.2f}× | "
                           f"{e.get('amx_penalty_us_per_step', float('nan')):+.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/amx_int8.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lstm_regressor,bilstm_attention")
    ap.add_argument("--batches", default="1,4,8,16,32,64")
    ap.add_argument("--seq", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=float, default=0.1, help="seconds per timed block in a child (default 0.1)")
    ap.add_argument("--pinned", action="store_true", help="add an arm started pinned to one CPU")
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--replace", action="store_true")
    args = ap.parse_args(argv)
    from edgelstm.fileio import write_text_atomic
    from edgelstm.machine.device import describe_device
    from edgelstm.models import zoo

    device = describe_device(gpu=False)
    device["loadavg"] = list(os.getloadavg())
    arms = ["amx", "no-amx"] + (["pinned"] if args.pinned else [])
    batches = [int(b) for b in args.batches.split(",")]
    stem = result_stem(args.out, f"amx_int8-{device['machine']}", (".json", ".md"), args.replace)
    result: dict[str, Any] = {"arms": arms, "field_report": {"per_step_us": FIELD_STEP_US,
                                                             "lstm_regressor_b1x60_us": FIELD_LSTM_REGRESSOR_US},
                              "models": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgelstm-amx-") as tmp:
        for name in [m for m in args.models.split(",") if m]:
            work = Path(tmp) / name
            work.mkdir()
            files = prepare(name, args.train_steps, work)
            spec = {"files": files, "batches": batches, "seq": args.seq, "block_s": args.block,
                    "features": zoo.zoo_entry(name).input_size}
            runs = []
            for r in range(args.rounds):
                for arm in arms[r % len(arms):] + arms[:r % len(arms)]:
                    runs.append(run_arm(arm, spec))
                log(f"  {name}: round {r + 1}/{args.rounds}")
            result["models"][name] = summarize(runs, arms, batches, list(files), args.seq)
    result["seconds"] = round(time.perf_counter() - started, 1)
    payload = {"device": device, "options": vars(args) | {"out": str(args.out)}, **result}
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(f"{stem}.json"), json.dumps(payload, indent=2, default=str) + "\n")
    write_text_atomic(Path(f"{stem}.md"), markdown(device, args, result) + "\n")
    log(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
