"""The pipeline's CPU engines: OpenVINO IRs (``[targets] openvino = ["fp32", "bf16", "int8"]``) built from the
verified ONNX, and the pick of the fastest artifact within the drift budget for a stated shape
(``[bench] pick = "32x256"``, ``pick_max_drift = "rel_l2<=0.01"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgelstm import stages
from edgelstm.errors import BackendMissing
from edgelstm.fileio import sha256_file

OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_PICK_BUDGET = "rel_l2<=0.01"


def openvino_irs(p: Any, res: Any, step: Callable[..., Any], calib: Any) -> None:
    """One IR per precision in ``[targets].openvino``; a missing OpenVINO, or BF16 on a CPU without it, is skipped
    and said so (like TensorRT where it is not installed)."""
    from edgelstm.data import as_calibration_source

    src = res.out_dir / "model.onnx"
    for prec in p.targets.openvino:
        xml = res.out_dir / f"model.{prec}.xml"
        material = {"onnx": sha256_file(src), "precision": prec, "calib": prec == "int8"}

        def build(prec: str = prec, xml: Path = xml) -> tuple[list[Path], dict[str, Any]]:
            source = as_calibration_source(calib, 32) if prec == "int8" else None
            r = stages.build_openvino(src, xml, stages.OpenVinoOptions(precision=prec), calib=source)
            return ([xml, xml.with_suffix(".bin"), xml.with_name(xml.name + ".json")],
                    {"precision": prec, "drift": r.drift, "inference_precision": r.inference_precision})

        try:
            step(f"build openvino {prec}", material, build, section="targets")
        except BackendMissing as exc:
            res.skipped.append({"stage": f"build openvino {prec}", "reason": str(exc)})
            continue
        res.artifacts.append(res.artifact(f"openvino-{prec}", xml, prec))


def pick_note(p: Any, bench: dict[str, Any]) -> str | None:
    """The note naming the fastest artifact within the budget at ``[bench].pick`` (None when not asked)."""
    if not p.bench.pick:
        return None
    from edgelstm.errors import BadInput
    from edgelstm.latency.winners import parse_shape, pick_fastest, with_variant
    from edgelstm.validation.gates import parse_budget

    metric, limit = parse_budget(p.bench.pick_max_drift or DEFAULT_PICK_BUDGET, option="pick_max_drift")
    shape = parse_shape(p.bench.pick)
    try:
        best = pick_fastest(bench["results"], shape, max_drift=limit, metric=metric)
    except BadInput as exc:
        return f"pick for {shape[0]}x{shape[1]}: {exc}"
    drift = "" if best.get("drift") is None else f", {metric} {best['drift']:.2g}"
    margin = (f", {best['margin']:.2f}x faster than {with_variant(best['runner_up'])}" if best.get("runner_up")
              else "")
    how = with_variant(best, "backend")
    return (f"fastest within {metric} <= {limit:g} at batch {shape[0]} x seq {shape[1]}: {best['artifact']} "
            f"({how} {best['precision']}, threads {best['threads'] or 'default'}, p50 {best['p50_ms']:.3g} ms"
            f"{drift}{margin})")


def check_cpu_engines(p: Any, problems: Any) -> None:
    """The pipeline check of the keys above."""
    for prec in p.targets.openvino:
        if prec not in OPENVINO_PRECISIONS:
            problems.add(f"[targets].openvino has unknown {prec!r}; known: {', '.join(OPENVINO_PRECISIONS)}")
    if p.bench.pick is not None:
        from edgelstm.latency.winners import parse_shape
        from edgelstm.validation.gates import parse_budget

        with problems.check("bench"):
            batch, seq = parse_shape(p.bench.pick)
            parse_budget(p.bench.pick_max_drift or DEFAULT_PICK_BUDGET, option="pick_max_drift")
            if batch not in p.bench.batch or seq not in p.bench.seq:
                problems.add(f"[bench].pick {p.bench.pick!r} must be a point of the grid ([bench].batch "
                             f"{list(p.bench.batch)}, [bench].seq {list(p.bench.seq)})")


__all__ = ["openvino_irs", "pick_note", "check_cpu_engines", "OPENVINO_PRECISIONS"]
