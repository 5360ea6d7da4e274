"""`check_device(bundle, out, options) -> results`: the on-device command's stage (`edgelstm device-check`).

    open      verify the bundle (a .tar.gz is unpacked into the work directory, a directory is checked on disk)
    device    record the device (CPU ISA class; Jetson model, L4T/JetPack, nvpmodel mode, jetson_clocks, clocks)
    engines   build the plan's TensorRT engines here (with a timing cache) where TensorRT is installed
    per artifact (every ONNX, every engine built): validate against the recorded reference outputs with its gates,
              bench with the bundle's plan, and on a Jetson measure energy per inference under tegrastats
    write     one results JSON (atomically), with an exit code per gate

A pure stage: progress goes to `options.progress`, nothing is printed, nothing exits. An unreadable or refused
bundle raises (BadInput); a problem with one artifact is recorded on it and the others still run.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import BadInput, EdgeLSTMError, opt
from edgelstm.safe_files import private_tempdir
from edgelstm.fleet.device_artifacts import (bench_on_device, build_engine_on_device, energy_on_device, guarded,
                                             summary_line, validate_on_device)
from edgelstm.fleet.results import SCHEMA, gate_rows, verdict


@dataclass(frozen=True)
class DeviceCheckOptions:
    name: str | None = None                    # the device's name in reports (default: the host name)
    labels: tuple[str, ...] = ()               # e.g. ("orin-nano",): where it sits in a fleet
    work: Path | None = None                   # where the bundle is unpacked and engines built (default: temp, removed)
    only: tuple[str, ...] = ()                 # check only the artifacts matching these globs
    iters: int | None = None                   # override the plan's bench iterations
    energy: bool = True                        # Jetson: energy per inference under tegrastats
    energy_seconds: float | None = None        # override the plan's energy window
    tegrastats: str = "tegrastats"
    calib: Path | None = None                  # calibration data for INT8 engine builds from a float model
    facts: Callable[[], dict[str, Any]] | None = field(default=None, compare=False)   # tests: recorded facts
    progress: Callable[[str], None] | None = field(default=None, compare=False)


def _open(bundle: Path, work: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    from edgelstm.bundle import CHECK_INDEX, INDEX, check_dir, unpack_bundle

    if bundle.is_dir():
        root = bundle
        check_dir(root, bundle).raise_if_failed()
    else:
        root = work / "bundle"
        unpack_bundle(bundle, root, verify=True, force=True)
    plan_path = root / CHECK_INDEX
    if not plan_path.is_file():
        raise BadInput(f"{bundle.name} carries no device check ({CHECK_INDEX}): make the bundle with "
                       "`edgelstm bundle DIR -o B.tar.gz --check`")
    index = json.loads((root / INDEX).read_text(encoding="utf-8"))
    return root, index, json.loads(plan_path.read_text(encoding="utf-8"))


def _bundle_block(bundle: Path, index: dict[str, Any]) -> dict[str, Any]:
    from edgelstm.fileio import sha256_file

    return {"name": bundle.name, "sha256": sha256_file(bundle) if bundle.is_file() else None,
            "created": index.get("created"), "source": index.get("source"),
            "edgelstm_version": index.get("edgelstm_version")}


def _edgelstm_block() -> dict[str, Any]:
    import edgelstm

    here = Path(edgelstm.__file__).resolve().parent
    return {"version": edgelstm.__version__, "path": str(here),
            "from": "bundle wheel" if "site" in here.parts and here.parent.name.startswith("edgelstm-") else "installed"}


def _targets(root: Path, plan: dict[str, Any], only: tuple[str, ...]) -> list[dict[str, Any]]:
    entries = [{**a, "path": root / a["name"], "backend": "onnxruntime"} for a in plan.get("artifacts", [])]
    if only:
        entries = [e for e in entries if any(fnmatch(e["name"], p) for p in only)]
    return entries


def _engines(root: Path, plan: dict[str, Any], work: Path, options: DeviceCheckOptions, say) -> list[dict[str, Any]]:
    """Build the plan's engines; each becomes a target (or a skipped/failed entry)."""
    steps = [s for s in plan.get("engines", []) if not options.only or any(fnmatch(s["engine"], p) for p in options.only)]
    if not steps:
        return []
    try:
        import tensorrt  # noqa: F401 - installed?
    except ImportError:
        return [{"name": s["engine"], "kind": "engine", "backend": "tensorrt", "precision": s["precision"],
                 "status": "skipped", "reason": "TensorRT is not installed on this device"} for s in steps]
    engine_dir = work / "engines"
    engine_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for s in steps:
        entry: dict[str, Any] = {"name": s["engine"], "kind": "engine", "backend": "tensorrt",
                                 "precision": s["precision"], "gates": s.get("gates", []), "status": "ok",
                                 "batch_size": min(32, int(s["batch"][2]))}  # the profile's largest batch
        say(f"build {s['engine']} from {s['onnx']} ({s['precision']})")
        built = guarded(entry, "build", lambda s=s: build_engine_on_device(s, root, engine_dir, options.calib, say))
        if built is not None:
            path, info = built
            entry["build"] = info
            if path is None:
                entry.update(status="skipped", reason=info.get("reason"))
            else:
                entry["path"] = path
        out.append(entry)
    return out


def _check_one(entry: dict[str, Any], reference: Any, data: Path, plan: dict[str, Any], sampler: Any,
               options: DeviceCheckOptions) -> None:
    entry.setdefault("status", "ok")
    if entry["status"] != "ok":
        return
    path, backend = entry["path"], entry["backend"]
    guarded(entry, "validate", lambda: validate_on_device(reference, path, entry.get("gates", []), data, backend,
                                                          batch_size=entry.get("batch_size", 32)))
    guarded(entry, "bench", lambda: bench_on_device(path, plan["bench"], backend, iters=options.iters))
    if sampler is not None:
        seconds = float(options.energy_seconds or plan["bench"].get("energy_seconds", 3.0))
        guarded(entry, "energy", lambda: energy_on_device(path, plan["bench"], backend, sampler, seconds))


def _reference(root: Path, plan: dict[str, Any]):
    from edgelstm.artifacts.iospec import IOSpec
    from edgelstm.fleet.recorded import RecordedReference

    ref = plan["reference"]
    return RecordedReference(IOSpec.from_dict(ref["io"]), root / plan["data"]["member"], root / ref["member"],
                             label=f"{ref['model']} (recorded at bundle time)")


def _sampler(options: DeviceCheckOptions, device: dict[str, Any]):
    if not options.energy or device.get("kind") != "jetson":
        return None
    from edgelstm.fleet.energy import TegrastatsSampler

    sampler = TegrastatsSampler(command=options.tegrastats)
    return sampler if sampler.available() else None


def check_device(bundle: str | Path, out: str | Path, options: DeviceCheckOptions = DeviceCheckOptions()) -> dict[str, Any]:
    """Check a bundle on this device and write the results JSON to out; returns the results."""
    from edgelstm.fileio import write_text_atomic

    bundle, out = Path(bundle), Path(out)
    if not bundle.exists():
        raise BadInput(f"{bundle} does not exist")
    if out.suffix.lower() != ".json":
        raise BadInput(f"{opt('out')} must be a .json file, got {out.name}")
    say = options.progress or (lambda _m: None)
    own = options.work is None
    scratch = private_tempdir("check") if own else None  # swept later if a killed check leaves it
    work = Path(scratch.name) if scratch is not None else Path(options.work)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    steps: list[dict[str, Any]] = []

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        say(name)
        try:
            value = fn()
        except EdgeLSTMError as exc:
            steps.append({"step": name, "status": "error", "error": str(exc), "exit_code": exc.exit_code})
            raise
        steps.append({"step": name, "status": "ok", "seconds": round(time.perf_counter() - t0, 3)})
        return value

    try:
        work.mkdir(parents=True, exist_ok=True)
        root, index, plan = step("open bundle", lambda: _open(bundle, work))
        device = step("describe device", lambda: (options.facts or _describe(options))())
        targets = step("build engines", lambda: _engines(root, plan, work, options, say))
        targets = _targets(root, plan, options.only) + targets
        reference = _reference(root, plan)
        data = root / plan["data"]["member"]
        sampler = _sampler(options, device)
        for i, entry in enumerate(targets, 1):
            say(f"[{i}/{len(targets)}] check {entry['name']}")
            _check_one(entry, reference, data, plan, sampler, options)
            say(f"[{i}/{len(targets)}] {entry['name']}: {summary_line(entry)}")
        results = _results(bundle, index, plan, device, targets, steps, started)
        write_text_atomic(out, json.dumps(results, indent=2, default=str) + "\n")
        return results
    finally:
        if scratch is not None:
            scratch.cleanup()


def _describe(options: DeviceCheckOptions) -> Callable[[], dict[str, Any]]:
    from edgelstm.fleet.device_facts import describe_target

    return lambda: describe_target(options.name, labels=options.labels)


def _results(bundle: Path, index: dict[str, Any], plan: dict[str, Any], device: dict[str, Any],
             targets: list[dict[str, Any]], steps: list[dict[str, Any]], started: str) -> dict[str, Any]:
    artifacts, gates = [], []
    for e in targets:
        e = {k: (str(v) if isinstance(v, Path) else v) for k, v in e.items()}
        gates += gate_rows(e["name"], (e.get("validate") or {}).get("gates", []))
        artifacts.append(e)
    code = verdict(artifacts, gates, steps)
    return {"schema": SCHEMA, "device": device, "bundle": _bundle_block(bundle, index), "edgelstm": _edgelstm_block(),
            "data": plan.get("data"), "reference": {k: v for k, v in plan.get("reference", {}).items() if k != "io"},
            "plan": plan.get("bench"), "artifacts": artifacts, "gates": gates, "steps": steps,
            "exit_code": code, "passed": code == 0, "started": started,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
