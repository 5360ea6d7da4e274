"""Which ONNX nodes and inputs can run in float16: read from the ONNX operator schemas (a type constraint
without tensor(float16)), ONNX-ML ops, custom domains and a short list of ops kept float32 for precision."""

from __future__ import annotations

from edgelstm.artifacts.onnx_graph import opset_of

#: ops kept in float32 for precision although the schema allows float16
PRECISION_FP32_OPS: dict[str, str] = {
    "CumSum": "running sums lose precision in float16; kept float32",
}
#: ops whose output does not depend on the float precision of their input (no cast needed)
TYPE_AGNOSTIC_OPS = {"Shape", "Size"}
#: ops that only move data: they run in the precision of their (float32) inputs instead of forcing a cast
TRANSPARENT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Gather",
                    "Expand", "Tile", "Concat", "Split"}

def _schema(node, model):
    from onnx import defs

    domain = node.domain or ""
    if domain not in ("", "ai.onnx"):
        return None
    try:
        return defs.get_schema(node.op_type, max_inclusive_version=opset_of(model, ""), domain="")
    except Exception:  # noqa: BLE001 - unknown op
        return None


def fp16_policy(node, model) -> tuple[str | None, set[int]]:
    """(reason to keep the whole node float32 or None, indices of inputs that must stay float32)."""
    if node.domain == "ai.onnx.ml":
        return "ONNX-ML operators are float32-only", set()
    if node.op_type in PRECISION_FP32_OPS and node.domain in ("", "ai.onnx"):
        return PRECISION_FP32_OPS[node.op_type], set()
    schema = _schema(node, model)
    if schema is None:
        if node.domain in ("", "ai.onnx"):
            return f"no ONNX schema for {node.op_type}; kept float32", set()
        return f"custom-domain op ({node.domain}); float16 support unknown, kept float32", set()
    allowed = {tc.type_param_str: set(tc.allowed_type_strs) for tc in schema.type_constraints}

    def types_of(type_str: str) -> set[str]:
        return allowed.get(type_str, {type_str})

    def float_only(type_str: str) -> bool:
        t = types_of(type_str)
        return "tensor(float)" in t and "tensor(float16)" not in t

    out_params = {p.type_str for p in schema.outputs}
    for p in schema.outputs:
        if float_only(p.type_str):
            return f"the ONNX spec has no float16 {node.op_type} (opset {schema.since_version})", set()
    fp32_inputs: set[int] = set()
    formal = list(schema.inputs)
    for i in range(len(node.input)):
        if not formal:
            break
        p = formal[min(i, len(formal) - 1)]
        if float_only(p.type_str):
            if p.type_str in out_params:
                return f"the ONNX spec has no float16 {node.op_type} (opset {schema.since_version})", set()
            fp32_inputs.add(i)
    return None, fp32_inputs
