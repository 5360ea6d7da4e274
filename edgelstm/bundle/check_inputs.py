"""The device check's inputs, fixed when the bundle is made: a stated sample of the validation data, the
reference model's outputs on it, the gates per artifact and the bench plan (check/check.json).

On the device, accuracy is then judged against the original model's outputs on real data (not an engine against
its own ONNX on noise), without the original model (no torch there). Defaults come from the bundled pipeline.toml
([data], [validate], [bench]) so that the device judges what the pipeline judged at home.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgelstm.bundle.types import (CHECK_DATA, CHECK_INDEX, CHECK_REFERENCE, CHECK_SCHEMA, CheckOptions, Source)
from edgelstm.errors import BadInput, opt
from edgelstm.fileio import human_size, npz_bytes, parse_toml, read_text_file, sha256_file

if TYPE_CHECKING:
    from edgelstm.runners.contract import RunnerBase

DEFAULT_GATE = "rel_l2<=0.01"
DEFAULT_SYNTHETIC = 64
#: `edgelstm run`'s [data] defaults (edgelstm/pipeline/schema.py DataSection): the device gets the pipeline's data
PIPELINE_DATA = {"synthetic": 256, "seq": 60, "seed": 1}
BENCH_DEFAULTS = {"batch": (1,), "seq": (60,), "threads": (1,), "iters": 50, "warmup": 5}
#: pipeline artifact names of the files `edgelstm run` writes ([validate.precision_gates] keys)
PIPELINE_NAMES = {"model.onnx": "fp32", "model.stateful.onnx": "fp32-stateful"}


@dataclass
class CheckPayload:
    """What make_bundle adds for the device check: members (name, bytes, role), the index summary, warnings."""

    members: list[tuple[str, bytes, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _pipeline(sources: list[Source]) -> tuple[dict[str, Any], Path | None]:
    pipe = next((s for s in sources if s.role == "pipeline"), None)
    if pipe is None:
        return {}, None
    return parse_toml(read_text_file(pipe.path, what="pipeline"), name=pipe.name), pipe.path


def pipeline_name(member: str) -> str:
    """The pipeline's name for an artifact file (model.int8-dynamic.onnx -> int8-dynamic), else the file name."""
    base = posixpath.basename(member)
    if base in PIPELINE_NAMES:
        return PIPELINE_NAMES[base]
    if base.startswith("model.") and base.endswith(".onnx"):
        return base[len("model."):-len(".onnx")]
    return base


def _ints(values: Any, key: str) -> tuple[int, ...]:
    vals = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in vals):
        raise BadInput(f"{opt(key)} must list positive integers, got {list(vals)}")
    return vals


def resolve_plan(options: CheckOptions, pipe: dict[str, Any]) -> dict[str, Any]:
    """Gates and the bench plan: the options, else the pipeline's, else the defaults."""
    val, bench = pipe.get("validate") or {}, pipe.get("bench") or {}
    gates = list(options.gates) or [str(g) for g in (val.get("gates") or [DEFAULT_GATE])]
    precision_gates = {str(k): [str(g) for g in v] for k, v in (val.get("precision_gates") or {}).items()}
    from edgelstm.validation.gates import parse_gates

    for g in gates + [g for gs in precision_gates.values() for g in gs]:
        parse_gates([g])  # a bad gate is refused at home, not on the device
    plan = {
        "batch": _ints(options.batch or bench.get("batch", BENCH_DEFAULTS["batch"]), "batch"),
        "seq": _ints(options.seqs or bench.get("seq", BENCH_DEFAULTS["seq"]), "seq"),
        "threads": _ints(options.threads or bench.get("threads", BENCH_DEFAULTS["threads"]), "threads"),
        "iters": _ints(options.iters or bench.get("iters", BENCH_DEFAULTS["iters"]), "iters")[0],
        "warmup": int(options.warmup if options.warmup is not None else bench.get("warmup", BENCH_DEFAULTS["warmup"])),
        "energy_seconds": float(options.energy_seconds),
        # the pipeline's [bench] batch_parallel: the device also times ONNX / OpenVINO batch-parallel at threads >= 2
        "batch_parallel": bench.get("batch_parallel") is True,
    }
    if plan["warmup"] < 0 or not plan["energy_seconds"] > 0:
        raise BadInput(f"{opt('warmup')} must be >= 0 and the energy window > 0 seconds")
    return {"gates": gates, "precision_gates": precision_gates, "bench": {k: list(v) if isinstance(v, tuple) else v
                                                                          for k, v in plan.items()}}


def _reference_path(src: Path, options: CheckOptions, pipe: dict[str, Any], pipe_path: Path | None,
                    sources: list[Source]) -> tuple[Path, str | None]:
    if options.reference is not None:
        if not Path(options.reference).is_file():
            raise BadInput(f"{opt('reference')} {options.reference} is not a file")
        return Path(options.reference), None
    if (src / "model.pt").is_file():
        return src / "model.pt", None
    source = (pipe.get("model") or {}).get("source")
    if isinstance(source, str) and pipe_path is not None and (pipe_path.parent / source).is_file():
        return pipe_path.parent / source, None
    fp32 = [s for s in sources if s.role == "onnx" and s.precision in (None, "fp32")
            and not (s.facts or {}).get("stateful")]
    if not fp32:
        raise BadInput(f"no reference model for the device check: pass {opt('reference')} MODEL (the torch model "
                       "or the FP32 ONNX the artifacts were made from)")
    return fp32[0].path, (f"the reference is {fp32[0].name} (no torch model found): the device measures drift "
                          f"against the FP32 ONNX, not the original model ({opt('reference')} names it)")


def _dataset(spec: Any, options: CheckOptions, pipe: dict[str, Any], pipe_path: Path | None):
    """The validation set against the reference's I/O, and how it was made (for the statement)."""
    from edgelstm.data import dataset_from_arrays, load_dataset, synthetic_dataset

    data = {**(PIPELINE_DATA if pipe else {}), **(pipe.get("data") or {})}
    seq = int(options.seq or data.get("seq") or 60)
    seed = int(options.seed if options.seed is not None else data.get("seed", 0))
    path = Path(options.data) if options.data is not None else None
    if path is None and options.synthetic is None and isinstance(data.get("validation"), str) and pipe_path:
        path = pipe_path.parent / data["validation"]
    if path is not None:
        window = options.window if options.window is not None else data.get("window")
        ds = load_dataset(path, spec, window=window, features=data.get("features"), target=data.get("target"))
        return ds, {"source": path.name, "sha256": sha256_file(path), "kind": "file"}
    zoo_name = (pipe.get("model") or {}).get("zoo")
    n = int(options.synthetic or data.get("synthetic") or DEFAULT_SYNTHETIC)
    if zoo_name and options.synthetic is None:
        from edgelstm.models import zoo

        x, y = zoo.synthetic_task(zoo_name, n, seq, seed=seed)
        return (dataset_from_arrays({"x": x}, spec, labels=y, source=f"zoo task {zoo_name}"),
                {"source": f"{zoo_name}'s synthetic task (n={n}, seq={seq}, seed={seed})", "kind": "zoo-task"})
    return (synthetic_dataset(spec, n, seq=seq, seed=seed),
            {"source": f"synthetic (n={n}, seq={seq}, seed={seed})", "kind": "synthetic"})


def _outputs_of(runner: Any, dataset: Any) -> dict[str, np.ndarray]:
    outs: dict[str, list[np.ndarray]] = {}
    for batch in dataset.batches(32):
        for name, value in runner.run(batch).items():
            outs.setdefault(name, []).append(np.asarray(value))
    axes = {t.name: t.batch_axis for t in runner.io.outputs}
    return {k: np.concatenate(v, axis=axes.get(k, 0)) for k, v in outs.items()}


def _onnx_names(ref: RunnerBase, fp32_onnx: Path | None) -> dict[str, str]:
    """Reference output name -> the ONNX artifacts' name (a torch model's output names are edgelstm's own)."""
    if fp32_onnx is None or ref.backend != "torch":
        return {n: n for n in ref.io.output_names}
    from edgelstm.artifacts.artifact import io_spec_of
    from edgelstm.validation.validate import map_outputs

    return map_outputs(ref.io, io_spec_of(fp32_onnx), positional_fallback=True)


def _check_size(members: list[tuple[str, bytes, str]], options: CheckOptions, n: int) -> None:
    total = sum(len(b) for _, b, _ in members)
    if total > options.max_size:
        raise BadInput(f"the device check's data and reference outputs take {human_size(total)} for {n} samples, "
                       f"over the limit of {human_size(options.max_size)}: lower {opt('check_samples')}")


def _check_profiles(steps: list[Any], data_seq: int | None, bench: dict[str, Any]) -> None:
    """An engine the recipe builds must take the check's data and the bench plan: refused now, not on the device."""
    for st in steps:
        (b_lo, _, b_hi), (s_lo, _, s_hi) = st.batch, st.seq
        seqs = sorted({*bench["seq"], *([data_seq] if data_seq else [])})
        bad_seq = [s for s in seqs if not s_lo <= s <= s_hi]
        bad_batch = [b for b in bench["batch"] if not b_lo <= b <= b_hi]
        if bad_seq or bad_batch:
            what = (f"sequence length(s) {bad_seq}" if bad_seq else "") + (" and " if bad_seq and bad_batch else "") + \
                (f"batch size(s) {bad_batch}" if bad_batch else "")
            raise BadInput(f"the engine {st.engine} is built for batch {b_lo}:{b_hi}, seq {s_lo}:{s_hi}, but the device "
                           f"check uses {what}: widen {opt('batch')}/{opt('seq')} or change the check's data or "
                           "bench plan")


def prepare_check(src: Path, sources: list[Source], steps: list[Any], options: CheckOptions) -> CheckPayload:
    """Run the reference on the stated sample and write down everything the device check judges with."""
    from edgelstm.runners import open_runner

    pipe, pipe_path = _pipeline(sources)
    payload = CheckPayload()
    plan = resolve_plan(options, pipe)
    ref_path, note = _reference_path(src, options, pipe, pipe_path, sources)
    if note:
        payload.warnings.append(note)
    factory = (pipe.get("model") or {}).get("factory")
    ref = open_runner(ref_path, **({"factory": factory} if factory else {}))
    try:
        dataset, statement = _dataset(ref.io, options, pipe, pipe_path)
        total = dataset.n
        dataset = dataset.head(min(total, int(options.samples)))
        data_inputs = {t.name for t in ref.io.data_inputs}
        arrays = {k: v for k, v in dataset.inputs.items() if k in data_inputs}
        if dataset.labels is not None:
            arrays["y"] = dataset.labels
        fp32 = next((s.path for s in sources if s.role == "onnx" and posixpath.basename(s.name) == "model.onnx"),
                    None)
        names = _onnx_names(ref, fp32)
        outputs = {names.get(k, k): v for k, v in _outputs_of(ref, dataset).items() if k in names}
        ref_io = {"inputs": [t.to_dict() for t in ref.io.data_inputs],
                  "outputs": [{**t.to_dict(), "name": names[t.name]} for t in ref.io.outputs if t.name in names]}
    finally:
        ref.close()
    _check_profiles(steps, dataset.seq, plan["bench"])
    data_bytes, ref_bytes = npz_bytes(arrays), npz_bytes(outputs)
    members = [(CHECK_DATA, data_bytes, "check-data"), (CHECK_REFERENCE, ref_bytes, "check-reference")]
    _check_size(members, options, dataset.n)
    statement.update({"samples": dataset.n, "of": total, "which": f"the first {dataset.n} of {total} samples",
                      "member": CHECK_DATA, "member_sha256": hashlib.sha256(data_bytes).hexdigest(),
                      "labels": dataset.labels is not None})
    artifacts = [{"name": s.name, "kind": "onnx", "precision": s.precision,
                  "gates": plan["gates"] + plan["precision_gates"].get(pipeline_name(s.name), [])}
                 for s in sources if s.role == "onnx"]
    engines = [{**st.to_dict(), "kind": "engine",
                "gates": plan["gates"] + plan["precision_gates"].get(st.precision, [])} for st in steps]
    check = {"schema": CHECK_SCHEMA, "reference": {"model": ref_path.name, "sha256": sha256_file(ref_path),
                                                   "backend": str(ref.backend), "io": ref_io,
                                                   "member": CHECK_REFERENCE,
                                                   "member_sha256": hashlib.sha256(ref_bytes).hexdigest()},
             "data": statement, "bench": plan["bench"], "artifacts": artifacts, "engines": engines}
    import json

    members.append((CHECK_INDEX, (json.dumps(check, indent=2, default=str) + "\n").encode(), "check-plan"))
    payload.members = members
    payload.summary = {"plan": CHECK_INDEX, "reference": ref_path.name, "data": statement["source"],
                       "samples": dataset.n, "artifacts": len(artifacts), "engines": len(engines)}
    return payload
