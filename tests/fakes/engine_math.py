"""What the stand-in's engine computes when the fake machine is told to compute the network
(``install(..., engine_math="onnxruntime")``): the ONNX model the parser read, run by onnxruntime on the host, with
the engine's precisions emulated, so that drift between an FP32 reference and an engine can be measured and
localised against the stand-in.

- Layers the plan says ran in Half (a weakly typed build with BuilderFlag.FP16, unless a precision constraint keeps
  them Float) compute in float32 on float16-rounded weights and inputs, and their outputs are rounded to float16:
  a Cast to float16 and back around each, which is where TensorRT stores the activations of such a layer.
- A strongly typed network computes in the ONNX model's own types (FP16 or Q/DQ), as TensorRT does.
- INT8 from a calibrator (TensorRT 10.x implicit quantization) is not emulated: those layers compute in float here.
- The engine's outputs are the model outputs plus every tensor marked with ``INetworkDefinition.mark_output``.

Without engine_math the engine writes mean(x) to every output (runtime.py): enough to check data flow.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np

_SESSIONS: dict[str, Any] = {}
FLOAT, FLOAT16 = 1, 10
ONNX_OF = {"FLOAT": 1, "HALF": 10, "INT8": 3, "UINT8": 2, "INT32": 6, "INT64": 7, "BOOL": 9}


def _half_model(model, half_nodes: set[str]):
    """``model`` with every node in ``half_nodes`` computing on float16-rounded weights, inputs and outputs."""
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*inferred.graph.input, *inferred.graph.value_info,
                                                                *inferred.graph.output)}
    inits = {i.name: i for i in model.graph.initializer}
    produced_half: set[str] = set()
    nodes = []
    for i, original in enumerate(model.graph.node):
        node = onnx.NodeProto()
        node.CopyFrom(original)
        name = node.name or f"{node.op_type}_{i}"
        if name not in half_nodes:
            nodes.append(node)
            continue
        for k, inp in enumerate(node.input):
            if inp in inits and inits[inp].data_type == FLOAT:
                rounded = f"{inp}__half"
                if rounded not in inits:
                    arr = numpy_helper.to_array(inits[inp]).astype(np.float16).astype(np.float32)
                    inits[rounded] = numpy_helper.from_array(arr, rounded)
                node.input[k] = rounded
            elif inp and types.get(inp) == FLOAT and inp not in produced_half:
                nodes += _round_trip(helper, inp, f"{inp}__to_half_{i}")
                node.input[k] = f"{inp}__to_half_{i}"
        outs = list(node.output)
        for k, out in enumerate(outs):
            if out and types.get(out) == FLOAT:
                node.output[k] = f"{out}__full"
        nodes.append(node)
        for out in outs:
            if out and types.get(out) == FLOAT:
                nodes += _round_trip(helper, f"{out}__full", out)
                produced_half.add(out)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits.values())
    return model


def _round_trip(helper, src: str, dst: str) -> list:
    return [helper.make_node("Cast", [src], [f"{dst}__h"], to=FLOAT16, name=f"{dst}__cast_half"),
            helper.make_node("Cast", [f"{dst}__h"], [dst], to=FLOAT, name=f"{dst}__cast_float")]


def _session(plan: dict):
    key = hashlib.sha256(plan["onnx"].encode() + repr([(lay["node"], lay["precision"]) for lay in plan["layers"]]
                                                      ).encode() + repr([t["name"] for t in plan["outputs"]]).encode()
                         ).hexdigest()
    if key in _SESSIONS:
        return _SESSIONS[key]
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load_from_string(base64.b64decode(plan["onnx"]))
    if not plan["strongly_typed"]:
        model = _half_model(model, {lay["node"] for lay in plan["layers"] if lay["precision"] == "Half"})
    present = {o.name for o in model.graph.output}
    for t in plan["outputs"]:
        if t["name"] not in present:
            model.graph.output.append(helper.make_tensor_value_info(t["name"], ONNX_OF.get(t["dtype"], FLOAT), None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    _SESSIONS[key] = session
    return session


def compute(plan: dict, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of the engine (model outputs and marked tensors) for these inputs."""
    session = _session(plan)
    names = [o.name for o in session.get_outputs()]
    feeds = {i.name: arrays[i.name] for i in session.get_inputs() if i.name in arrays}
    return dict(zip(names, session.run(None, feeds)))


def output_shapes(plan: dict, input_shapes: dict[str, tuple]) -> dict[str, tuple]:
    """The output shapes for these input shapes (one run on zeros), for outputs whose shape the plan cannot say."""
    from .tensorrt_api import NP_OF

    zeros = {t["name"]: np.zeros(input_shapes.get(t["name"], [max(1, d) for d in t["shape"]]), NP_OF[t["dtype"]])
             for t in plan["inputs"]}
    return {k: tuple(v.shape) for k, v in compute(plan, zeros).items()}


__all__ = ["compute", "output_shapes"]
