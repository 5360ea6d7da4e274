"""Time `convert` (export + verification + simplification) on each zoo model at its real size.

    python benchmarks/convert_times.py            # writes benchmarks/results/convert_<machine>.{json,md}

Each model is exported plainly and (where it applies) --stateful; the first export in a process also pays
for importing torch.onnx, so it is reported separately as `cold`."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from converters.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm import zoo
    from edgelstm.environment import cpu_facts, package_versions

    host = cpu_facts()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cold_start = time.perf_counter()
        export_onnx(zoo.build("lstm_regressor"), Path(tmp) / "cold.onnx")
        cold = time.perf_counter() - cold_start
        for name in zoo.ZOO:
            for stateful in (False, True):
                if stateful and name == "bilstm_attention":
                    continue
                times = []
                for rep in range(3):
                    model = zoo.build(name)
                    t = time.perf_counter()
                    r = export_onnx(model, Path(tmp) / f"{name}{rep}.onnx", ExportOptions(stateful=stateful))
                    times.append(time.perf_counter() - t)
                rows.append({"model": name, "stateful": stateful, "route": r.route.value,
                             "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                             "checks": len(r.verification.checks), "max_abs": r.verification.max_abs})
    machine = f"{platform.machine()}-{host['cores']}core"
    out = {"machine": {**host, "versions": package_versions()}, "cold_first_export_s": round(cold, 3), "rows": rows}
    res = ROOT / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / f"convert_{machine}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    lines = [f"# convert timings on {host['cpu']} ({host['cores']} cores)", "",
             f"torch {out['machine']['versions']['torch']}, onnxruntime {out['machine']['versions']['onnxruntime']}; "
             f"first export in a fresh process (imports): {cold:.2f} s", "",
             "| model | stateful | route | median s | max s | checks | max abs diff |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['stateful']} | {r['route']} | {r['median_s']} | {r['max_s']} | {r['checks']} | "
              f"{r['max_abs']:.1e} |" for r in rows]
    (res / f"convert_{machine}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
