"""What TensorRT's ONNX parser refuses although ONNX allows it, checked before a build (one line naming the node).

Source: onnx-tensorrt's operator support document, docs/operators.md (github.com/onnx/onnx-tensorrt), at tag
release/10.1-GA ("TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20"), and the static
node checks and importers it describes at that tag (onnxOpCheckers.cpp: LSTM/GRU/RNN; onnxOpImporters.cpp: GRU/RNN
read the input as [seq, batch, ...] ("The input is in SBE format") whatever `layout` says, Q/DQ zero points and
scales, Scan's opset-8 `sequence_lens`; RNNHelpers.cpp: `sequence_lens` is compared with an INT32 loop counter).
The 10.3, 10.13 and 11.x versions of the document were not in this project's reference store (it holds
onnx-tensorrt up to release/10.1-GA); these rules are applied to every TensorRT 10.x/11.x and are to be checked
against those tags when they can be read. One rule is the project's own measurement (ARCHITECTURE.md): a strongly typed
FP16 LSTM/GRU builds from TensorRT 10.14 on.

The table is small on purpose: the operators the document marks unsupported, the data types it lists for the
operators recurrent models use, and the per-node restrictions. An operator not listed here is left to the parser.
The TensorRT stand-in's parser (tests/fakes/parser.py) refuses by the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from edgelstm.errors import BadInput

DOC = "onnx-tensorrt docs/operators.md (release/10.1-GA)"

#: operators the document marks unsupported ("N")
UNSUPPORTED = frozenset(
    "AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Col2Im CenterCropPad "
    "Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear HammingWindow HannWindow ImageDecoder "
    "MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional "
    "OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch STFT SequenceAt SequenceConstruct "
    "SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence "
    "StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique".split())

_F = ("FLOAT", "FLOAT16", "BFLOAT16")
_FI = _F + ("INT32", "INT64")
_FIB = _FI + ("BOOL",)
#: the data types the document lists per operator (of its first input), for the operators recurrent models use.
#: DOUBLE is accepted everywhere: "TensorRT will attempt to cast DOUBLE down to FLOAT".
TYPES: dict[str, tuple[str, ...]] = {
    **{op: _F for op in ("LSTM", "GRU", "RNN", "Scan", "MatMul", "Gemm", "Conv", "Softmax", "LogSoftmax", "Tanh",
                         "Sigmoid", "HardSigmoid", "LeakyRelu", "Elu", "Softplus", "Exp", "Log", "Sqrt", "Pow",
                         "Erf", "Clip", "Dropout", "Einsum", "BatchNormalization", "LayerNormalization", "CumSum")},
    **{op: _FI for op in ("Add", "Sub", "Mul", "Div", "Neg", "Abs", "Relu", "Max", "Min", "Sum", "Mean", "ArgMax",
                          "Equal", "Less", "Greater", "Range", "Pad", "ReduceMean", "ReduceSum", "ReduceMax")},
    **{op: _FIB for op in ("Concat", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Shape", "Size",
                           "Gather", "GatherElements", "Identity", "Expand", "Flatten", "Split", "Tile", "Where", "If",
                           "Loop", "ReverseSequence", "ConstantOfShape")},
    "Cast": _FIB + ("UINT8",), "Not": ("BOOL",), "QuantizeLinear": _F,
}   # DequantizeLinear: the document lists INT8, FP8, INT4, the importer refuses only UINT8 (see _qdq)

#: default activations per direction (ONNX), and how many each direction has
_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
STRONGLY_TYPED_FP16_RNN_FROM = (10, 14, 0)


@dataclass(frozen=True)
class Refusal:
    index: int        # the node's index in the main graph (of the node holding the subgraph, for a body's node)
    node: str
    op: str
    reason: str

    def line(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.reason}"


def _attr(node, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                return value.decode()
            if isinstance(value, list) and value and isinstance(value[0], bytes):
                return [v.decode() for v in value]
            return value
    return default


def _types(model) -> dict[str, str]:
    """tensor name -> ONNX element type name, from the declarations and shape inference (all graphs)."""
    import onnx
    from onnx import TensorProto

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement
        inferred = model
    out: dict[str, str] = {}

    def visit(graph) -> None:
        for vi in (*graph.input, *graph.output, *graph.value_info):
            if vi.type.tensor_type.elem_type:
                out[vi.name] = TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
        for init in graph.initializer:
            out[init.name] = TensorProto.DataType.Name(init.data_type)
        for node in graph.node:
            for a in node.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    visit(g)

    visit(inferred.graph)
    return out


def _constants(graph) -> dict[str, Any]:
    """name -> numpy value of the initializers and Constant nodes of a graph."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output and _attr(node, "value") is not None:
            out[node.output[0]] = numpy_helper.to_array(_attr(node, "value"))
    return out


def _rnn(node, types: dict[str, str], version: tuple[int, ...], strongly: bool) -> Iterator[str]:
    if int(_attr(node, "layout", 0)) != 0:
        yield (f"layout={_attr(node, 'layout')}; TensorRT reads X as [seq, batch, input] (layout=0) and only that "
               f"({DOC}; the importer takes the input in SBE order) - export with batch_first handled outside the op")
    if node.op_type == "LSTM" and int(_attr(node, "input_forget", 0)) != 0:
        yield f"input_forget=1 (coupled input/forget gates) is unsupported ({DOC}: `input_forget` must be 0)"
    per_dir = _ACTIVATIONS[node.op_type]
    if _attr(node, "direction", "forward") == "bidirectional":
        acts = [a.lower() for a in (_attr(node, "activations") or [a for a in per_dir * 2])]
        n = len(per_dir)
        halves = [(acts[i * n:(i + 1) * n], _pad(_attr(node, "activation_alpha"), 2 * n)[i * n:(i + 1) * n],
                   _pad(_attr(node, "activation_beta"), 2 * n)[i * n:(i + 1) * n]) for i in (0, 1)]
        if halves[0] != halves[1]:
            yield (f"a bidirectional {node.op_type} with other activations (or alphas/betas) in the reverse "
                   f"direction than in the forward one: {acts[:n]} vs {acts[n:]} ({DOC}: they must be the same)")
    seq_lens = node.input[4] if len(node.input) > 4 else ""
    if seq_lens and types.get(seq_lens, "INT32") != "INT32":
        yield (f"sequence_lens {seq_lens!r} is {types[seq_lens]}; ONNX and TensorRT need INT32 (TensorRT compares it "
               "with an INT32 loop counter, onnx-tensorrt RNNHelpers.cpp): cast it first")
    if strongly and version < STRONGLY_TYPED_FP16_RNN_FROM and types.get(node.input[0]) == "FLOAT16":
        yield (f"a strongly typed FP16 {node.op_type} builds from TensorRT 10.14 on (measured by edgelstm); build this model "
               "weakly typed (the 10.x default) or the FP32 ONNX with --precision fp16")


def _pad(values, n: int) -> list:
    values = list(values or [])
    return values + [None] * (n - len(values))


def _loop(node) -> Iterator[str]:
    n_state = max(0, len(node.input) - 2)
    if len(node.output) <= n_state:
        return  # no scan outputs
    body = _attr(node, "body")
    if not node.input or not node.input[0]:
        yield (f"a Loop with scan outputs and no trip count M: the scan output length would be dynamic ({DOC}: "
               "\"Scan output length cannot be dynamic\")")
        return
    cond_in, cond_out = body.input[1].name, body.output[0].name
    producers = {o: n for n in body.node for o in n.output}
    source = producers.get(cond_out)
    passthrough = cond_out == cond_in or (source is not None and (
        source.op_type == "Constant" or (source.op_type == "Identity" and source.input[0] == cond_in)))
    if not passthrough:
        yield (f"a Loop whose body computes its condition ({cond_out!r}) and has scan outputs: it may stop early, so "
               f"the scan output length is dynamic ({DOC}: \"Scan output length cannot be dynamic\")")


def _qdq(node, constants: dict[str, Any], types: dict[str, str]) -> Iterator[str]:
    uint8 = [n for n in (node.input[0], node.input[2] if len(node.input) > 2 else "") if n and types.get(n) == "UINT8"]
    if uint8:   # the importer's notInvalidType(..., {"UINT8"}) on the data (and on Q's zero point)
        yield (f"{uint8[0]!r} is UINT8: TensorRT quantizes to signed INT8 only (asymmetric uint8 Q/DQ from "
               "onnxruntime's defaults is refused by onnx-tensorrt's QuantDequantLinearHelper) - quantize with "
               "`edgelstm quantize --precision int8 --mode static`")
        return
    scale = constants.get(node.input[1]) if len(node.input) > 1 else None
    if scale is not None and (scale.size == 0 or (scale <= 0).any()):
        yield "scale coefficients must all be positive (onnx-tensorrt QuantDequantLinearHelper)"
    zp = node.input[2] if len(node.input) > 2 else ""
    if zp:
        value = constants.get(zp)
        if value is None:
            yield f"zero point {zp!r} must be a constant of zeros ({DOC}: TensorRT quantizes symmetrically)"
        elif value.any():
            yield (f"zero point {zp!r} is not zero (asymmetric quantization); TensorRT supports symmetric INT8 only "
                   f"({DOC}) - quantize with `edgelstm quantize --precision int8 --mode static`")


def _custom(node) -> str:
    hint = (" (onnxruntime's dynamic INT8: build the FP32 or FP16 ONNX, or a static Q/DQ one)"
            if node.domain == "com.microsoft" else "")
    return (f"no TensorRT importer for the custom op {node.domain}.{node.op_type} (onnx-tensorrt imports ONNX's own "
            f"operators; others need a plugin){hint}")


def _node_reasons(node, types, constants, version, strongly, opset: int) -> Iterator[str]:
    if node.domain not in ("", "ai.onnx"):
        yield _custom(node)
        return
    if node.op_type in UNSUPPORTED:
        yield f"{node.op_type} is not supported by TensorRT's ONNX parser ({DOC})"
        return
    allowed = TYPES.get(node.op_type)
    first = types.get(node.input[0]) if node.input and node.input[0] else None
    if allowed and first and first != "DOUBLE" and first not in allowed:
        yield f"TensorRT's {node.op_type} takes {', '.join(allowed)}, input {node.input[0]!r} is {first} ({DOC})"
    if node.op_type in _ACTIVATIONS:
        yield from _rnn(node, types, version, strongly)
    elif node.op_type == "Loop":
        yield from _loop(node)
    elif node.op_type == "Scan" and opset == 8 and node.input and node.input[0]:
        yield "Scan's sequence_lens input (opset 8) is not supported (onnx-tensorrt Scan importer)"
    elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        yield from _qdq(node, constants, types)


def refusals(model, version: str | tuple[int, ...], *, strongly_typed: bool = False) -> list[Refusal]:
    """Every node of `model` (subgraphs included) TensorRT's ONNX parser would refuse, in graph order."""
    from edgelstm.artifacts.trt import parse_version

    v = parse_version(version) if isinstance(version, str) else tuple(version)
    types = _types(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    out: list[Refusal] = []

    def visit(graph, top_index: int | None, outer: dict[str, Any]) -> None:
        constants = {**outer, **_constants(graph)}
        for i, node in enumerate(graph.node):
            index = i if top_index is None else top_index
            name = node.name or f"{node.op_type}#{i}"
            out.extend(Refusal(index, name, node.op_type, r)
                       for r in _node_reasons(node, types, constants, v, strongly_typed, opset))
            for a in node.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    visit(g, index, constants)

    visit(model.graph, None, {})
    return out


def check_for_tensorrt(model, file_name: str, version: str, *, strongly_typed: bool = False) -> None:
    """BadInput (one line, naming the first node and how many more) when TensorRT's parser would refuse `model`."""
    found = refusals(model, version, strongly_typed=strongly_typed)
    if found:
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise BadInput(f"TensorRT {version} cannot build {file_name}: {found[0].line()}{more}",
                       hint="fix or re-export the model (edgelstm convert exports LSTM/GRU the way TensorRT reads them)")
