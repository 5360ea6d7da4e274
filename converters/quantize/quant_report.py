"""The op-by-op quantization report and the result every quantizer returns.

Each node of the input model gets one row: what it became (op type in the output), which precision it
computes in (int8, fp16, fp32, or n/a for nodes without float math such as Shape) and why. The rows go
into the manifest (``details["quantization"]["report"]``), the CLI table and ``--json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgelstm.errors import BadInput, InternalError
from edgelstm.artifacts.iospec import IOSpec, TensorSpec, iospec_from_onnx
from edgelstm.options import Precision

NA = "n/a"


@dataclass(frozen=True)
class OpRow:
    node: str
    op: str
    precision: str          # "int8" | "fp16" | "fp32" | "n/a"
    reason: str = ""
    graph: str = "main"     # "main" or "<node>.<attr>" for a Loop/If/Scan body
    became: str = ""        # op type(s) it turned into, e.g. "DynamicQuantizeLSTM"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OpRow":
        return cls(**{k: d[k] for k in ("node", "op", "precision", "reason", "graph", "became") if k in d})


@dataclass
class QuantResult:
    path: Path
    precision: Precision
    report: list[OpRow]
    size_bytes: int
    parent_size_bytes: int
    manifest: Any = None
    details: dict[str, Any] = field(default_factory=dict)   # the manifest's details["quantization"]
    ort_opt_level: str = "all"

    @property
    def size_ratio(self) -> float:
        """Output size / input size (0.28 means 3.5x smaller)."""
        return self.size_bytes / max(1, self.parent_size_bytes)

    @property
    def times_smaller(self) -> float:
        return self.parent_size_bytes / max(1, self.size_bytes)

    def counts(self) -> dict[str, int]:
        return count_precisions(self.report)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "precision": self.precision.value, "size_bytes": self.size_bytes,
                "parent_size_bytes": self.parent_size_bytes, "size_ratio": round(self.size_ratio, 4),
                "times_smaller": round(self.times_smaller, 3), "ort_opt_level": self.ort_opt_level,
                "counts": self.counts(), "quantization": self.details}


def count_precisions(rows: Iterable[OpRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.precision] = out.get(r.precision, 0) + 1
    return out


def summarize(rows: Iterable[OpRow], *, include_na: bool = False) -> list[dict[str, Any]]:
    """Rows grouped by (op, precision, became, reason, main graph or body): one line per kind of decision."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if r.precision == NA and not include_na:
            continue
        where = "main" if r.graph == "main" else "body"
        key = (r.op, r.precision, r.became, r.reason, where)
        g = groups.setdefault(key, {"op": r.op, "precision": r.precision, "became": r.became, "reason": r.reason,
                                    "where": where, "count": 0, "nodes": []})
        g["count"] += 1
        g["nodes"].append(r.node)
    order = {"int8": 0, "fp16": 1, "fp32": 2, NA: 3}
    return sorted(groups.values(), key=lambda g: (order.get(g["precision"], 9), g["where"] != "main", g["op"]))


def table_rows(rows: Iterable[OpRow]) -> list[list[Any]]:
    """Rows for console.table(["op", "nodes", "precision", "became", "why"])."""
    out = []
    for g in summarize(rows):
        names = ", ".join(g["nodes"][:3]) + (f" (+{len(g['nodes']) - 3})" if len(g["nodes"]) > 3 else "")
        op = g["op"] + (" (in body)" if g["where"] == "body" else "")
        out.append([op, f"{g['count']}: {names}", g["precision"], g["became"], g["reason"]])
    return out


TABLE_COLUMNS = ["op", "nodes", "precision", "became", "why"]


def io_for_output(src: Path, parent_model, out_model) -> IOSpec:
    """The output's I/O spec: the parent's manifest spec (state roles, symbolic dims) with dtypes from the
    output model (FP16 without keep_io_types changes them)."""
    from edgelstm.artifacts.artifact import io_spec_of

    parent_io = io_spec_of(src, parent_model)
    new = iospec_from_onnx(out_model)
    dtypes = {t.name: t.dtype for t in (*new.inputs, *new.outputs)}

    def fix(t: TensorSpec) -> TensorSpec:
        from dataclasses import replace

        return replace(t, dtype=dtypes.get(t.name, t.dtype))  # value ranges and roles carry over

    return IOSpec(tuple(fix(t) for t in parent_io.inputs), tuple(fix(t) for t in parent_io.outputs))


def _reject_source_onnxruntime_cannot_run(src: Path, level: str) -> None:
    """When the result does not run: BadInput if the input model does not run either (the user's to fix)."""
    from edgelstm.artifacts.ort import probe_session

    ok, why = probe_session(src, opt_level=level)
    if not ok:
        raise BadInput(f"{src.name} does not run in onnxruntime ({why.splitlines()[0][:240] if why else 'no reason'}); "
                       "quantize needs a model that onnxruntime can run")


def write_quantized(model, src: Path, out: Path, *, precision: Precision, parent_model, rows: list[OpRow],
                    details: dict[str, Any], probe: bool = True, levels: tuple[str, ...] = ("all", "extended", "basic"),
                    target_isa: str | None = None) -> QuantResult:
    """Serialize ``model`` to ``out`` atomically after an onnxruntime session over it has been probed
    crash-safely (``all``, then ``extended``, then ``basic``); then write its manifest. Nothing is written
    when no level runs it."""
    from edgelstm.artifacts.manifest import write_artifact
    from edgelstm.artifacts.ort import first_safe_level

    data = model.SerializeToString()
    parent_size = src.stat().st_size
    level, tried = levels[0], {}
    with write_artifact(out) as pair:
        pair.write_bytes(data)
        if probe:
            level, tried = first_safe_level(pair.tmp, levels)
            if level is None:
                _reject_source_onnxruntime_cannot_run(src, levels[-1])
                raise InternalError(
                    f"the {precision.value} model does not run in onnxruntime at any optimization level "
                    f"({'; '.join(f'{k}: {v}' for k, v in tried.items())}); nothing was written")
        size = pair.tmp.stat().st_size
        q = dict(details)
        q.update({"report": [r.to_dict() for r in rows], "summary": summarize(rows),
                  "counts": count_precisions(rows), "size_bytes": size, "parent_size_bytes": parent_size,
                  "size_ratio": round(size / max(1, parent_size), 4),
                  "times_smaller": round(parent_size / max(1, size), 3)})
        man_details: dict[str, Any] = {"quantization": q, "parent": src.name, "ort_opt_level": level}
        if tried:
            man_details["ort_probe"] = tried
        if target_isa:
            man_details["target_isa"] = target_isa
        io = io_for_output(src, parent_model, model)
        manifest = pair.write_manifest(kind="onnx", precision=precision.value, parent=src, io=io,
                                       details=man_details)
    return QuantResult(out, precision, rows, size, parent_size, manifest, q, level)
