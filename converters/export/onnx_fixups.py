"""Small corrections to an exported graph's interface, each re-verified by the caller:

- an output dim that is a constant gets its integer (the exporter names dims it could not infer, e.g.
  ``Reshapey_dim_2``); a dynamic dim that is not batch or seq gets a readable name (``y_dim_1``);
- ``x.squeeze()`` exports as a Squeeze without axes, which drops the batch axis at batch 1 (0-d output while
  the graph declares ``[batch]``; onnxruntime warns on every run, TensorRT cannot size it): the axes that are
  size 1 at export time are written out, so the output keeps its rank at every batch."""

from __future__ import annotations

from typing import Sequence


def declare_output_dims(model, outputs: Sequence) -> bool:
    """Set each graph output's declared dims from the probed output specs (by name): integers where torch's
    output dim is constant, the spec's symbol (batch, seq, ...) where it varies."""
    specs = {t.name: t for t in outputs}
    changed = False
    for out in model.graph.output:
        spec = specs.get(out.name)
        shape = out.type.tensor_type.shape
        if spec is None or not out.type.tensor_type.HasField("shape") or len(shape.dim) != len(spec.shape):
            continue
        for dim, want in zip(shape.dim, spec.shape):
            if isinstance(want, int) and not isinstance(want, bool) and want > 0:
                if dim.dim_value != want:
                    dim.dim_value = want
                    changed = True
            elif isinstance(want, str) and want and want != "?" and dim.dim_param != want:
                dim.dim_param = want
                changed = True
    return changed


def pin_squeeze_axes(model) -> list[str]:
    """Give each axis-less Squeeze that produces a graph output the axes that are constant 1 in its input's
    inferred shape; returns the outputs it pinned (they keep size-1 axes torch squeezes at batch 1)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    outputs = {o.name for o in model.graph.output}
    targets = [n for n in model.graph.node if n.op_type == "Squeeze" and n.output[0] in outputs
               and not (len(n.input) > 1 and n.input[1]) and not any(a.name == "axes" for a in n.attribute)]
    if not targets:
        return []
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    shapes = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    pinned = []
    for node in targets:
        dims = shapes.get(node.input[0])
        axes = [i for i, d in enumerate(dims or []) if d == 1]
        if not axes or None not in dims:  # nothing to pin, or no dynamic dim that could become 1
            continue
        if opset >= 13:
            name = f"{node.name or node.output[0]}_axes"
            model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), name))
            node.input.append(name)
        else:
            node.attribute.append(helper.make_attribute("axes", axes))
        pinned.append(node.output[0])
        for out in model.graph.output:  # the declared rank follows
            if out.name == node.output[0] and out.type.tensor_type.HasField("shape"):
                keep = [d for i, d in enumerate(dims) if i not in axes]
                if len(out.type.tensor_type.shape.dim) != len(keep):
                    out.type.tensor_type.ClearField("shape")
    return pinned


def fix_interface(model, outputs: Sequence) -> list[str]:
    """Both fixes above; returns the outputs that keep axes torch squeezes (for the verifier)."""
    pinned = pin_squeeze_axes(model)
    declare_output_dims(model, outputs)
    return pinned
