"""The sequence lengths an export is good for (``details.lengths`` of its manifest; read back by
``edgelstm.artifacts.lengths``): the range it was verified at, the maximum it states (``--max-seq``), and the
memory one more time step costs.

Memory per step is computed, not timed: the graph's shapes are inferred at two lengths (batch 1, every other symbolic
dim 1) and the bytes of every tensor whose size is known are summed; the difference per step is what a longer
sequence adds. It counts every intermediate as if all were alive at once (an upper bound: onnxruntime reuses
buffers) and leaves out tensors whose size shape inference cannot tell (inside an ONNX Loop)."""

from __future__ import annotations

from typing import Any

import numpy as np

_LENGTHS = (64, 128)


def _total_bytes(model, seq: int) -> int:
    import onnx
    from onnx import helper

    m = onnx.ModelProto.FromString(model.SerializeToString())
    del m.graph.value_info[:]
    for vi in (*m.graph.input, *m.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                value = seq if d.dim_param == "seq" else 1
                d.ClearField("dim_param")
                d.dim_value = value
    for vi in m.graph.output:  # outputs are re-inferred from the inputs
        vi.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    total = 0
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if not t.HasField("shape") or any(d is None for d in dims):
            continue
        try:
            size = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
        except (KeyError, TypeError, ValueError):
            continue
        total += size * int(np.prod(dims)) if dims else size
    return total


def memory_per_step(model) -> int | None:
    """Bytes one more time step adds to the tensors of one sequence (see the module doc); None when the graph has no
    ``seq`` axis or its shapes cannot be inferred."""
    has_seq = any(d.dim_param == "seq" for vi in model.graph.input for d in vi.type.tensor_type.shape.dim)
    if not has_seq:
        return None
    try:
        a, b = (_total_bytes(model, t) for t in _LENGTHS)
    except Exception:  # noqa: BLE001 - shape inference failing is a fact to record, not an export failure
        return None
    per_step = (b - a) / (_LENGTHS[1] - _LENGTHS[0])
    return int(round(per_step)) if per_step > 0 else None


def length_facts(model, verified_seqs, max_seq_len: int, *, static: bool) -> dict[str, Any]:
    seqs = sorted(int(s) for s in verified_seqs)
    facts: dict[str, Any] = {"verified": [seqs[0], seqs[-1]], "maximum": seqs[-1] if static else int(max_seq_len)}
    mem = None if static else memory_per_step(model)
    if mem:
        facts["memory_per_step_bytes"] = mem
        facts["memory_note"] = ("bytes one more step adds per sequence (batch 1), summing every tensor of known size "
                                "as if all were alive at once: an upper bound; onnxruntime reuses buffers")
    return facts


__all__ = ["length_facts", "memory_per_step"]
