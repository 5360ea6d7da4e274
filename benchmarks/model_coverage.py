"""Coverage of users' model forms: convert each wild model (tests/wild_models_inputs.py, every model class in
tests/wild_models.py, the unseen forms of tests/wild_models_unseen.py) and Keras models (benchmarks/coverage_keras.py:
files built with h5py, and files saved by Keras 3 where it is installed), check the ONNX file independently with
onnxruntime against torch (Keras rows: against Keras' own computation) at 3 lengths x 2 batches with a relative
tolerance, quantize it (INT8 dynamic, FP16) and measure the drift, and time torch eager (Keras 3 rows: Keras calling
the model) against onnxruntime. A model edgelstm refuses gets its one-line refusal and exit code instead.

    python benchmarks/model_coverage.py                    # writes benchmarks/results/model_coverage-<machine>.*
    python benchmarks/model_coverage.py --models word_lm,crnn_head --iters 20 --out /tmp/cov

Independent check: lengths 1, the example length (--seq) and max(3 x --seq + 1, 16); batches 1 and 3; state inputs
random; it passes when every output's ||onnx - torch|| <= 1e-4 ||torch|| (+1e-6). Models exported at one fixed
shape are checked at that shape. Models whose state lives on the module (or is drawn at random) are exported with
state inputs by the exporter and checked there by streaming; the table says so.

Drift: rel_l2 of the first output, quantized vs FP32 ONNX, on 64 synthetic samples (token ids within their
range). Speed-up: median torch eager time / median onnxruntime FP32 time at batch 1 and the example length (fixed
shape: its own), one thread each, timed call by call in turn (a same-run ratio).

Results that already exist are kept: new ones go to model_coverage-<machine>-2.* (-3, ...) unless --replace."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.common import RESULTS, result_stem  # noqa: E402

REL_TOL = 1e-4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python benchmarks/model_coverage.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated model names (default: all; see --list)")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--seq", type=int, default=8, help="example sequence length of the export (default 8)")
    ap.add_argument("--iters", type=int, default=50, help="timed calls per backend for the speed-up (default 50)")
    ap.add_argument("--no-quantize", action="store_true", help="skip the INT8/FP16 drift columns")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results directory (default: {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--replace", action="store_true",
                    help="overwrite model_coverage-<machine>.{json,md} in --out instead of writing a new -N file")
    args = ap.parse_args(argv)
    if args.seq < 1 or args.iters < 1:
        ap.error("--seq and --iters must be >= 1")
    return args


def catalogue() -> dict[str, dict[str, Any]]:
    """name -> {build, options(**extra) -> ExportOptions, what, source}."""
    from edgelstm.converters.export.torch_to_onnx import ExportOptions

    out: dict[str, dict[str, Any]] = {}
    from wild_models_inputs import WILD_INPUT_MODELS, export_options

    for name, wm in WILD_INPUT_MODELS.items():
        out[name] = {"build": wm.build, "options": lambda _wm=wm, **kw: export_options(_wm, **kw), "what": wm.what,
                     "source": "tests/wild_models_inputs.py"}
    from wild_models_unseen import UNSEEN_MODELS, unseen_export_options

    for name, wm in UNSEEN_MODELS.items():
        out[name] = {"build": wm.build, "options": lambda _wm=wm, **kw: unseen_export_options(_wm, **kw),
                     "what": wm.what, "source": "tests/wild_models_unseen.py"}
    try:
        import h5py  # noqa: F401 - the Keras rows read their files with it
    except ImportError:
        pass
    else:
        from benchmarks.coverage_keras import catalogue as keras_catalogue

        out.update(keras_catalogue())
    try:
        wild = importlib.import_module("wild_models")
    except ImportError:
        return out
    import torch

    for cls_name, cls in vars(wild).items():
        if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module) and cls.__module__ == wild.__name__):
            continue
        try:
            inspect.signature(cls).bind()  # only classes that build with their defaults (not the cells inside)
        except TypeError:
            continue

        def build(_cls=cls) -> Any:
            torch.manual_seed(0)
            return _cls().eval()

        doc = (inspect.getdoc(cls) or "").split("\n")[0]
        out[cls_name] = {"build": build, "options": lambda **kw: ExportOptions(**kw), "what": doc,
                         "source": "tests/wild_models.py"}
    return out


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def independent_check(model, path: Path, io, example_seq: int) -> dict[str, Any]:
    """onnxruntime vs torch at 3 lengths x 2 batches (the fixed shape only, for a static export)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgelstm.artifacts.feeds import random_feeds
    from edgelstm.models.calling import resolve_call
    from edgelstm.models.inputs import InputOptions

    data = tuple(t for t in io.inputs if not t.state)
    fixed = any(isinstance(d, int) for t in data for d in t.shape[:2]) and not any(
        isinstance(d, str) for t in data for d in t.shape)
    state_param = None
    call = resolve_call(model, InputOptions(inputs=data, state_arg=state_param,
                                            static=_fixed_point(data) if fixed else None))
    if [t.name for t in call.io.inputs] != io.input_names:
        return {"passed": None, "note": f"torch takes {call.io.input_names}, the file {io.input_names}: the exporter's "
                                        "own (streaming) checks cover it"}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(11)
    points = [_fixed_point(data)] if fixed else [(b, t) for b in (1, 3)
                                                 for t in sorted({1, example_seq, max(3 * example_seq + 1, 16)})]
    worst, checks, squeezed = 0.0, [], set()
    for b, t in points:
        feeds = random_feeds(io, b, t, rng, random_state=True)
        with torch.no_grad():
            ref = [o.detach().numpy() for o in call(call.tensors(feeds))]
        got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
        errs = []
        for r, g in zip(ref, got):
            if g.shape != r.shape and g.size == r.size and np.squeeze(g).shape == np.squeeze(r).shape:
                squeezed.add(f"{list(r.shape)} vs {list(g.shape)}")  # torch squeezed a size-1 axis the file keeps
                g = g.reshape(r.shape)
            errs.append(float(np.linalg.norm(g - r) / max(float(np.linalg.norm(r)), 1e-12)) if g.shape == r.shape
                        else float("inf"))
        worst = max([worst, *errs])
        checks.append({"batch": b, "seq": t, "rel_l2": max(errs) if errs else 0.0})
    passed = all(c["rel_l2"] <= REL_TOL or c["rel_l2"] < 1e-6 for c in checks)
    out = {"passed": passed, "worst_rel_l2": worst, "checks": checks}
    if squeezed:
        out["note"] = f"torch output shape differs only by a size-1 axis ({', '.join(sorted(squeezed))})"
    return out


def _fixed_point(data) -> tuple[int, int]:
    t = data[0]
    b = t.shape[t.batch_axis] if isinstance(t.shape[t.batch_axis], int) else 1
    s = t.shape[1] if len(t.shape) > 1 and isinstance(t.shape[1], int) else 1
    return int(b), int(s)


def drift(path: Path, workdir: Path, seq: int) -> dict[str, Any]:
    from edgelstm import stages
    from edgelstm.validation.validate import DataRequest, ValidateOptions, validate_artifacts

    out: dict[str, Any] = {}
    for prec in ("int8-dynamic", "fp16"):
        q = workdir / f"{path.stem}.{prec}.onnx"
        try:
            stages.quantize(path, q, prec)
            r = validate_artifacts(path, q, DataRequest(synthetic=64, seq=seq, seed=3), ValidateOptions(streaming=False))
            first = next(iter(r.outputs.values()))
            out[prec] = {"rel_l2": first["rel_l2"], "max_abs": first["max_abs"]}
        except Exception as exc:  # noqa: BLE001 - a quantizer failure is a finding, not a crash of the table
            out[prec] = {"error": _one_line(f"{type(exc).__name__}: {exc}", 160)}
    return out


def speed(model, path: Path, io, seq: int, iters: int, *, baseline: Callable[[Any], Any] | None = None,
          baseline_name: str | None = None) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgelstm.artifacts.feeds import random_feeds
    from edgelstm.models.calling import resolve_call
    from edgelstm.models.inputs import InputOptions

    data = tuple(t for t in io.inputs if not t.state)
    call = resolve_call(model, InputOptions(inputs=data, static=_fixed_point(data) if not any(
        isinstance(d, str) for t in data for d in t.shape) else None))
    feeds = random_feeds(io, 1, seq, np.random.default_rng(0))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ort_feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tensors = call.tensors({t.name: feeds[t.name] for t in call.io.inputs})
        def torch_call():
            with torch.inference_mode():
                return call(tensors)

        fns = [torch_call, lambda: sess.run(None, ort_feeds)]
        if baseline is not None:  # what a Keras user runs: Keras calling the model
            fns.append(lambda: baseline(feeds[io.data_inputs[0].name]))
        times = _interleaved_ms(fns, iters)
        torch_ms, ort_ms = times[0], times[1]
        base_ms = times[2] if baseline is not None else torch_ms
    finally:
        torch.set_num_threads(before)
    return {"torch_ms": torch_ms, "ort_ms": ort_ms, "speedup": base_ms / ort_ms if ort_ms > 0 else None,
            "batch": 1, "seq": seq, "threads": 1, "baseline": baseline_name or "torch eager",
            **({"baseline_ms": base_ms, "speedup_vs_torch_form": torch_ms / ort_ms if ort_ms > 0 else None}
               if baseline is not None else {})}


def _interleaved_ms(fns: list[Callable[[], Any]], iters: int) -> list[float]:
    """Median ms of each function, timed in turn call by call (a same-run ratio that a loaded machine shifts
    for all of them alike)."""
    for fn in fns:
        for _ in range(max(3, iters // 10)):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(iters):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
    return [statistics.median(t) for t in times]


def cover(name: str, entry: dict[str, Any], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from edgelstm.converters.export.torch_to_onnx import export_onnx
    from edgelstm.errors import EdgeLSTMError

    row: dict[str, Any] = {"model": name, "what": entry["what"], "source": entry["source"]}
    if entry.get("skip"):
        row.update({"status": "skipped", "exit_code": None, "refusal": entry["skip"], "file_written": False})
        return row
    out = workdir / f"{name}.onnx"
    options = entry["options"]()
    if not options.static:
        options = entry["options"](seq_len=args.seq)
    t0 = time.perf_counter()
    try:
        model = entry["build"]()  # loading a Keras file may refuse it already
        result = export_onnx(model, out, options)
    except EdgeLSTMError as exc:
        row.update({"status": "refused", "exit_code": exc.exit_code, "refusal": _one_line(str(exc)),
                    "file_written": out.exists(), "seconds": round(time.perf_counter() - t0, 2)})
        return row
    except Exception as exc:  # noqa: BLE001 - an internal error is a finding: record it
        row.update({"status": "internal error", "exit_code": 4, "refusal": _one_line(f"{type(exc).__name__}: {exc}"),
                    "file_written": out.exists(), "seconds": round(time.perf_counter() - t0, 2)})
        return row
    from edgelstm.artifacts.manifest import read_manifest

    details = read_manifest(out).details
    row.update({"status": "converted", "route": result.route.value, "seconds": round(time.perf_counter() - t0, 2),
                "exporter_checks": result.verification.summary(),
                "io": [t.describe() for t in (*result.io.inputs, *result.io.outputs)]})
    if details.get("import"):
        row["import_check"] = details["import"]["verification"].get("method")
    if details.get("cast"):
        row["cast"] = details["cast"]
    held = details.get("held_state") or details.get("initial_state")
    if entry.get("check"):
        try:
            row["independent"] = entry["check"](out, result.io, args.seq)
        except Exception as exc:  # noqa: BLE001
            row["independent"] = {"passed": False, "note": _one_line(f"{type(exc).__name__}: {exc}", 200)}
    elif held:
        row["independent"] = {"passed": None, "note": "state on the module / random initial state: exported with "
                                                      "state I/O, checked by the exporter's streaming"}
    else:
        try:
            row["independent"] = independent_check(entry["build"](), out, result.io, args.seq)
        except Exception as exc:  # noqa: BLE001
            row["independent"] = {"passed": False, "note": _one_line(f"{type(exc).__name__}: {exc}", 200)}
    if not args.no_quantize:
        row["drift"] = drift(out, workdir, args.seq)
    if not held:
        try:
            fixed = not any(isinstance(d, str) for t in result.io.data_inputs for d in t.shape)
            seq = _fixed_point(result.io.data_inputs)[1] if fixed else args.seq
            built = entry["build"]()
            row["speed"] = speed(getattr(built, "module", built), out, result.io, seq, args.iters,
                                 baseline=entry.get("baseline"), baseline_name=entry.get("baseline_name"))
        except Exception as exc:  # noqa: BLE001
            row["speed"] = {"error": _one_line(f"{type(exc).__name__}: {exc}", 160)}
    return row


def _fmt_drift(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    return d.get("error", "")[:40] if "error" in d else f"{d['rel_l2']:.1e}"


def markdown(rows: list[dict[str, Any]], device: dict[str, Any], args: argparse.Namespace) -> str:
    cpu = (device.get("cpu") or {}).get("model", "?")
    v = device.get("versions") or {}
    lines = [f"# Model coverage on {device.get('machine')}", "",
             f"{cpu}; torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}. Example length {args.seq}; "
             f"independent check: onnxruntime vs torch at lengths 1, {args.seq}, {max(3 * args.seq + 1, 16)} x batches "
             f"1, 3, rel_l2 <= {REL_TOL:g}. Drift: rel_l2 of the first output vs FP32 ONNX on 64 synthetic samples. "
             "Speed-up: torch eager (Keras 3 rows: Keras calling the model) / onnxruntime FP32, batch 1, 1 thread. "
             "Keras rows are checked against Keras' own computation (a numpy oracle of its equations for h5py-built "
             "files, model.predict for files Keras 3 saved); `import:` says how edgelstm verified the import itself.",
             "",
             "| model | form | result | route | independent check | int8 drift | fp16 drift | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "skipped":
            lines.append(f"| {r['model']} | {r['what']} | skipped: {r['refusal']} | | | | | |")
            continue
        if r["status"] != "converted":
            lines.append(f"| {r['model']} | {r['what']} | **{r['status']}** (exit {r['exit_code']}"
                         f"{', FILE WRITTEN' if r.get('file_written') else ', no file'}): {r['refusal']} | | | | | |")
            continue
        ind = r.get("independent") or {}
        if ind.get("passed") is None:
            check = "n/a: " + ind.get("note", "")
        elif ind.get("passed"):
            check = f"pass ({len(ind['checks'])} points, worst {ind['worst_rel_l2']:.1e})" + (
                f"; {ind['note']}" if ind.get("note") else "")
        else:
            check = "**FAIL** " + (ind.get("note") or f"worst {ind.get('worst_rel_l2', float('nan')):.1e}")
        d = r.get("drift") or {}
        sp = r.get("speed") or {}
        speed_txt = f"{sp['speedup']:.1f}x" if sp.get("speedup") else sp.get("error", "")[:40]
        if sp.get("speedup_vs_torch_form"):
            speed_txt += f" vs Keras ({sp['speedup_vs_torch_form']:.1f}x vs its torch form)"
        if r.get("import_check"):
            check += f"; import: {r['import_check']}"
        if r.get("cast"):
            check += f"; float64 model, file float32 (vs float64: {r['cast'].get('max_rel_l2', float('nan')):.1e})"
        lines.append(f"| {r['model']} | {r['what']} | converted | {r['route']} | {check} | "
                     f"{_fmt_drift(d.get('int8-dynamic'))} | {_fmt_drift(d.get('fp16'))} | {speed_txt} |")
    conv = [r for r in rows if r["status"] == "converted"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    silent = [r["model"] for r in conv if (r.get("independent") or {}).get("passed") is False]
    lines += ["", f"{len(conv)} of {len(rows) - len(skipped)} converted; {len(rows) - len(conv) - len(skipped)} "
                  f"refused{f'; {len(skipped)} skipped' if skipped else ''}; "
                  f"silent wrong exports (converted, independent check failed): {silent or 'none'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = catalogue()
    if args.list:
        for name, e in models.items():
            print(f"{name:28s} {e['source']:30s} {e['what']}")
        return 0
    wanted = [m.strip() for m in (args.models or ",".join(models)).split(",") if m.strip()]
    unknown = [m for m in wanted if m not in models]
    if unknown:
        print(f"unknown model(s) {unknown}; see --list", file=sys.stderr)
        return 2
    from edgelstm.machine.device import describe_device

    device = describe_device(gpu=False)
    target = result_stem(args.out, f"model_coverage-{device['machine']}", (".json", ".md"), args.replace)
    print(f"results will be written to {target}.{{json,md}}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            print(f"  {name} ...", file=sys.stderr, flush=True)
            rows.append(cover(name, models[name], Path(tmp), args))
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"device": device, "seq": args.seq, "rel_tolerance": REL_TOL, "rows": rows}
    target.with_name(target.name + ".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    text = markdown(rows, device, args)
    target.with_name(target.name + ".md").write_text(text)
    print(text)
    print(f"wrote {target}.json and {target}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
