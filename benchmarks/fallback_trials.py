"""How many quantize-and-measure trials the accuracy fallback (`quantize --max-drift`) needs, ranking the nodes
by drift localisation (the default) against trying every remaining node each round (leave-one-out, the old way).

    python benchmarks/fallback_trials.py                 # writes benchmarks/results/fallback_trials.{json,md}
    python benchmarks/fallback_trials.py --models gru --out /tmp/bench

Each zoo model is trained briefly on its synthetic task and exported (benchmarks/common.py), then quantized to
INT8 dynamic and INT8 static (minmax on 256 calibration sequences) with a budget of one half and one quarter of the
all-quantized drift (rel_l2 vs the FP32 ONNX on 256 held-out sequences), once per strategy. A row says whether the
budget was met, the drift reached, the nodes kept float, the trials (each one quantizes the model and runs it on
the data) and the wall time (the localisation adds two instrumented runs; the machine may be shared, so time is
a same-run comparison only).

Results that already exist are kept: the new ones go to fallback_trials-2.* (-3, ...) unless --replace.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, SEQ, result_stem  # noqa: E402

TRAIN_STEPS = 150
N_HELD_OUT = 256
FRACTIONS = (0.5, 0.25)
STRATEGIES = ("leave-one-out", "localize")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python benchmarks/fallback_trials.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated zoo models (default: all of them)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ap.add_argument("--replace", action="store_true", help="overwrite fallback_trials.{json,md} in --out")
    args = ap.parse_args(argv)
    from edgelstm.models import zoo

    args.models = [m.strip() for m in (args.models or ",".join(zoo.ZOO)).split(",") if m.strip()]
    return args


def _fallback(src: Path, out: Path, mode: str, budget: float, data, calib, strategy: str) -> dict:
    from edgelstm.converters.quantize.int8 import Int8Options
    from edgelstm.converters.quantize.quant_fallback import FallbackOptions, quantize_with_budget
    from edgelstm.validation.budget import DriftBudget
    from edgelstm.errors import GateFailed

    t0 = time.perf_counter()
    try:
        res = quantize_with_budget(src, out, "int8", Int8Options(mode=mode), DriftBudget("rel_l2", budget), data,
                                   calib if mode == "static" else None, FallbackOptions(strategy=strategy))
        fb = res.details["fallback"]
        return {"met": True, "drift": fb["drift"], "kept": fb["kept_float"], "trials": fb["trials"],
                "drift_all": fb["drift_all_quantized"], "candidates": len(fb["candidates"]),
                "seconds": round(time.perf_counter() - t0, 2)}
    except GateFailed as exc:
        return {"met": False, "error": str(exc)[:200], "seconds": round(time.perf_counter() - t0, 2)}


def measure_model(name: str, workdir: Path) -> list[dict]:
    from benchmarks.common import trained_zoo_model
    from edgelstm.data import dataset_from_arrays

    t = trained_zoo_model(name, TRAIN_STEPS, N_HELD_OUT, workdir)
    data = dataset_from_arrays({"x": t.x}, t.export.io, source="held-out").batches(64)
    rows = []
    for mode in ("dynamic", "static"):
        loose = _fallback(t.onnx_path, workdir / f"{name}.{mode}.onnx", mode, 1e9, data, t.calib, "localize")
        drift_all = loose.get("drift")
        for fraction in FRACTIONS:
            for strategy in STRATEGIES:
                r = _fallback(t.onnx_path, workdir / f"{name}.{mode}.{strategy}.onnx", mode, drift_all * fraction,
                              data, t.calib, strategy)
                rows.append({"model": name, "mode": mode, "budget": drift_all * fraction, "fraction": fraction,
                             "drift_all": drift_all, "strategy": strategy, **r})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def write(rows: list[dict], out_dir: Path, replace: bool) -> Path:
    import platform

    from edgelstm.machine.isa import isa_facts

    stem = result_stem(out_dir, "fallback_trials", (".json", ".md"), replace)
    facts = {**isa_facts(), "cpu": _cpu_name() or platform.processor(), "cores": _cores()}
    meta = {"date": _dt.date.today().isoformat(), "machine": facts, "train_steps": TRAIN_STEPS,
            "held_out": N_HELD_OUT, "seq": SEQ}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    lines = [f"# Accuracy fallback: trials with and without drift localisation ({meta['date']})", "",
             f"Machine: {facts.get('cpu', '?')} ({facts.get('cores')} cores, shared), ISA class {facts.get('isa', '?')}. Zoo models trained {TRAIN_STEPS} "
             f"steps; drift = rel_l2 vs the FP32 ONNX on {N_HELD_OUT} held-out sequences of {SEQ} steps. "
             "`python benchmarks/fallback_trials.py`.", "",
             "| model | INT8 | budget | strategy | met | drift | kept float | trials | s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kept = ", ".join(r.get("kept", [])) if r["met"] else "(none meets it)"
        lines.append(f"| {r['model']} | {r['mode']} | {r['fraction']} × {r['drift_all']:.2e} = {r['budget']:.2e} | "
                     f"{r['strategy']} | {'yes' if r['met'] else 'no'} | "
                     f"{r['drift']:.2e} | {kept} | {r.get('trials', '')} | {r['seconds']} |" if r["met"] else
                     f"| {r['model']} | {r['mode']} | {r['fraction']} × {r['drift_all']:.2e} = {r['budget']:.2e} | "
                     f"{r['strategy']} | no | | {kept} | | {r['seconds']} |")
    met = [(a, b) for a, b in zip(rows[::2], rows[1::2]) if a["met"] and b["met"]]
    if met:
        lo = sum(a["trials"] for a, _ in met)
        lz = sum(b["trials"] for _, b in met)
        same = sum(len(a["kept"]) == len(b["kept"]) for a, b in met)
        fewer = sum(len(b["kept"]) < len(a["kept"]) for a, b in met)
        lines += ["", f"Where both met the budget ({len(met)} cases): {lo} trials leave-one-out, {lz} with "
                      f"localisation; the localisation kept as many nodes float in {same} and fewer in {fewer} of them."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edgelstm-fallback-") as tmp:
        for name in args.models:
            rows += measure_model(name, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    print(write(rows, args.out, args.replace))


if __name__ == "__main__":
    main()
