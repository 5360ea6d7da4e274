"""Time `edgelstm convert` (torch -> ONNX export + verification against torch + simplification) on each zoo
model at its real size.

    python benchmarks/convert_times.py                  # writes benchmarks/results/convert_<machine>.{json,md}
    python benchmarks/convert_times.py --models gru --reps 1 --out /tmp/bench

Each model is exported plainly and (where it applies) --stateful, --reps times; the table gives the median
and max seconds per export, the route the exporter chose, how many verification runs it did and the largest
difference from torch. The first export in a process also pays for importing torch.onnx, so it is reported
separately as `cold`.

Results that already exist are kept: the new ones go to convert_<machine>-2.* (-3, ...) unless --replace."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import result_stem  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python benchmarks/convert_times.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated zoo models (default: all of them)")
    ap.add_argument("--reps", type=int, default=3, help="exports per model and mode; the median is reported (default 3)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results directory (default: {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--replace", action="store_true",
                    help="overwrite convert_<machine>.{json,md} in --out instead of writing a new -N file beside it")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    from edgelstm.models import zoo

    args.models = [m.strip() for m in (args.models or ",".join(zoo.ZOO)).split(",") if m.strip()]
    unknown = [m for m in args.models if m not in zoo.ZOO]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(zoo.ZOO)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo
    from edgelstm.machine.environment import cpu_facts, package_versions

    host = cpu_facts()
    machine = f"{platform.machine()}-{host['cores']}core"
    target = result_stem(args.out, f"convert_{machine}", (".json", ".md"), args.replace)
    print(f"results will be written to {target}.{{json,md}}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cold_start = time.perf_counter()
        export_onnx(zoo.build("lstm_regressor"), Path(tmp) / "cold.onnx")
        cold = time.perf_counter() - cold_start
        for name in args.models:
            for stateful in (False, True):
                if stateful and name == "bilstm_attention":
                    continue
                times = []
                for rep in range(args.reps):
                    model = zoo.build(name)
                    t = time.perf_counter()
                    r = export_onnx(model, Path(tmp) / f"{name}{rep}.onnx", ExportOptions(stateful=stateful))
                    times.append(time.perf_counter() - t)
                rows.append({"model": name, "stateful": stateful, "route": r.route.value,
                             "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                             "checks": len(r.verification.checks), "max_abs": r.verification.max_abs})
    out = {"machine": {**host, "versions": package_versions()}, "cold_first_export_s": round(cold, 3), "rows": rows}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_name(target.name + ".json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    lines = [f"# convert timings on {host['cpu']} ({host['cores']} cores)", "",
             f"torch {out['machine']['versions']['torch']}, onnxruntime {out['machine']['versions']['onnxruntime']}; "
             f"first export in a fresh process (imports): {cold:.2f} s", "",
             "| model | stateful | route | median s | max s | checks | max abs diff |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['stateful']} | {r['route']} | {r['median_s']} | {r['max_s']} | {r['checks']} | "
              f"{r['max_abs']:.1e} |" for r in rows]
    target.with_name(target.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {target}.json and {target}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
