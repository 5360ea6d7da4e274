"""The fake network definition and ONNX parser: OnnxParser.parse reads the ONNX with onnx itself, refuses ops it
does not know (or that the module was told to refuse) and what TensorRT's ONNX parser refuses although ONNX allows
it (the table of converters/tensorrt/onnx_support.py, sourced from onnx-tensorrt's operator support document:
LSTM layout/input_forget/activations, GRU/RNN, Loop scan outputs, Q/DQ zero points, data types), and fills the
network's inputs, outputs and layers.

As onnx-tensorrt does (ModelImporter.cpp, ImporterContext.cpp at 10.x): every ITensor is named after the ONNX
tensor it computes, every layer after its node (a second layer of the same node gets `<node>_<n>`) with
`ILayer.metadata` = "[ONNX Layer: <node>]"; a recurrent op (LSTM/GRU/RNN, Loop, Scan) becomes a loop: a RECURRENCE
layer whose output lives inside the loop (it cannot be a network output) and one LOOP_OUTPUT layer per ONNX output
(Y, Y_h, Y_c). `INetworkDefinition.mark_output` makes any tensor a network output, as for a debug build
(Polygraphy's `--mark all`). TensorRT 10.x layers take precision constraints (`precision`, `set_output_type`; removed
in 11.x, where strong typing is the only mode)."""

from __future__ import annotations

from .pybind import (PybindObject, cast_buffer, cast_enum, cast_instance, cast_int, cast_opt_str, checked_set,
                     cast_str, pybind)
from .tensorrt_api import ONNX_TO_TRT

# ONNX op -> (the layer type the engine inspector shows, ILayer.type)
LAYER_TYPES = {"LSTM": ("Loop", "RECURRENCE"), "GRU": ("Loop", "RECURRENCE"), "RNN": ("Loop", "RECURRENCE"),
               "Loop": ("Loop", "RECURRENCE"), "Gemm": ("MatrixMultiply", "MATRIX_MULTIPLY"),
               "MatMul": ("MatrixMultiply", "MATRIX_MULTIPLY"), "QuantizeLinear": ("Quantize", "QUANTIZE"),
               "DequantizeLinear": ("Dequantize", "DEQUANTIZE"), "Softmax": ("SoftMax", "SOFTMAX"),
               "Tanh": ("Activation", "ACTIVATION"), "Sigmoid": ("Activation", "ACTIVATION"),
               "Relu": ("Activation", "ACTIVATION"), "Cast": ("Cast", "CAST"), "Identity": ("Identity", "IDENTITY"),
               "Constant": ("Constant", "CONSTANT"), "Reshape": ("Shuffle", "SHUFFLE"),
               "Transpose": ("Shuffle", "SHUFFLE"), "Squeeze": ("Shuffle", "SHUFFLE"),
               "Unsqueeze": ("Shuffle", "SHUFFLE")}


# ONNX op -> (the layer type the engine inspector shows, ILayer.type)
LAYER_TYPES = {"LSTM": ("Loop", "RECURRENCE"), "GRU": ("Loop", "RECURRENCE"), "RNN": ("Loop", "RECURRENCE"),
               "Loop": ("Loop", "RECURRENCE"), "Scan": ("Loop", "RECURRENCE"),
               "Gemm": ("MatrixMultiply", "MATRIX_MULTIPLY"),
               "MatMul": ("MatrixMultiply", "MATRIX_MULTIPLY"), "QuantizeLinear": ("Quantize", "QUANTIZE"),
               "DequantizeLinear": ("Dequantize", "DEQUANTIZE"), "Softmax": ("SoftMax", "SOFTMAX"),
               "Tanh": ("Activation", "ACTIVATION"), "Sigmoid": ("Activation", "ACTIVATION"),
               "Relu": ("Activation", "ACTIVATION"), "Cast": ("Cast", "CAST"), "Identity": ("Identity", "IDENTITY"),
               "Constant": ("Constant", "CONSTANT"), "Reshape": ("Shuffle", "SHUFFLE"),
               "Transpose": ("Shuffle", "SHUFFLE"), "Squeeze": ("Shuffle", "SHUFFLE"),
               "Unsqueeze": ("Shuffle", "SHUFFLE"), "Shape": ("Shape", "SHAPE"), "Gather": ("Gather", "GATHER")}
LOOP_OPS = ("LSTM", "GRU", "RNN", "Loop", "Scan")


def _str_property(public: str):
    """A read-write str property stored as `_<public>` (names, metadata), typed as pybind11 does."""
    def fget(self):
        return getattr(self, f"_{public}")

    def fset(self, value):
        setattr(self, f"_{public}", checked_set(self, public, value, cast_str))

    return property(fget, fset)


class ITensor(PybindObject):
    def _init(self, name, shape, dtype, is_input, is_output=None, in_loop=False):
        self._name, self._shape, self._dtype, self._is_input = name, tuple(shape), dtype, is_input
        self._is_output = (not is_input) if is_output is None else bool(is_output)
        self._in_loop = in_loop

    name = _str_property("name")

    @property
    def shape(self):
        return self._api.trt.Dims(list(self._shape))

    @property
    def dtype(self):
        return self._dtype

    @property
    def is_network_input(self):
        return self._is_input

    @property
    def is_network_output(self):
        return self._is_output

    @property
    def is_execution_tensor(self):
        return True

    @property
    def is_shape_tensor(self):
        return False


class ILayer(PybindObject):
    def _init(self, name, kind, layer_type, op, outputs=(), inputs=(), node=None):
        self._name, self._kind, self._type, self._op = name, kind, layer_type, op
        self._outputs, self._inputs = list(outputs), list(inputs)
        self._node = node if node is not None else name
        self._metadata = f"[ONNX Layer: {self._node}]"
        self._precision = None                 # set through LayerPrecision (10.x)
        self._output_types: dict[int, object] = {}

    name = _str_property("name")
    metadata = _str_property("metadata")

    @property
    def type(self):
        return self._type

    @property
    def num_outputs(self):
        return len(self._outputs)

    @property
    def num_inputs(self):
        return len(self._inputs)

    @pybind(index=cast_int)
    def get_output(self, index):
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    @pybind(index=cast_int)
    def get_input(self, index):
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    @pybind(index=cast_int)
    def get_output_type(self, index):
        if index in self._output_types:
            return self._output_types[index]
        return self._outputs[index].dtype if 0 <= index < len(self._outputs) else self._api.member("DataType", "FLOAT")


class LayerPrecision:
    """ILayer members that exist in 10.x only (precision constraints; TensorRT 11 is strongly typed only)."""

    @property
    def precision(self):
        return self._precision if self._precision is not None else self._api.member("DataType", "FLOAT")

    @precision.setter
    def precision(self, value):
        value = checked_set(self, "precision", value, cast_enum("DataType"))
        self._api.rec.add("ILayer.precision=", self._name, value.name)
        self._precision = value

    @property
    def precision_is_set(self):
        return self._precision is not None

    def reset_precision(self):
        self._precision = None

    @pybind(index=cast_int, dtype=cast_enum("DataType"))
    def set_output_type(self, index, dtype):
        self._api.rec.add("ILayer.set_output_type", self._name, index, dtype.name)
        self._output_types[index] = dtype

    @pybind(index=cast_int)
    def output_type_is_set(self, index):
        return index in self._output_types

    @pybind(index=cast_int)
    def reset_output_type(self, index):
        self._output_types.pop(index, None)


class INetworkDefinition(PybindObject):
    def _init(self, flags):
        self._flags = flags
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._layers: list[ILayer] = []
        self._symbols: dict[str, list] = {}   # tensor name -> dims as ints/symbols (from ONNX)
        self._onnx_precision = "fp32"
        self._has_qdq = False
        self._onnx = b""                       # the parsed model (the stand-in's engine may compute with it)

    @pybind(flag=cast_enum("NetworkDefinitionCreationFlag"))
    def get_flag(self, flag):
        return bool(self._flags & (1 << int(flag)))

    @property
    def flags(self):
        return self._flags

    @property
    def num_inputs(self):
        return len(self._inputs)

    @property
    def num_outputs(self):
        return len(self._outputs)

    @property
    def num_layers(self):
        return len(self._layers)

    @pybind(index=cast_int)
    def get_input(self, index):
        return self._inputs[index]

    @pybind(index=cast_int)
    def get_output(self, index):
        return self._outputs[index]

    @pybind(index=cast_int)
    def get_layer(self, index):
        return self._layers[index]

    def __len__(self):
        return len(self._layers)

    @pybind(arg0=cast_int)
    def __getitem__(self, arg0):
        if not -len(self._layers) <= arg0 < len(self._layers):
            raise IndexError("Out of bounds")
        return self._layers[arg0]

    @pybind(tensor=cast_instance("ITensor"))
    def mark_output(self, tensor):
        self._api.rec.add("INetworkDefinition.mark_output", tensor.name)
        if tensor not in self._outputs:
            self._outputs.append(tensor)
        tensor._is_output = True

    @pybind(tensor=cast_instance("ITensor"))
    def unmark_output(self, tensor):
        self._api.rec.add("INetworkDefinition.unmark_output", tensor.name)
        if tensor in self._outputs:
            self._outputs.remove(tensor)
        tensor._is_output = False


class ParserError(PybindObject):
    def _init(self, node, name, op, desc):
        self._node, self._name, self._op, self._desc = node, name, op, desc

    def code(self):
        return self._api.member("ErrorCode", "UNSUPPORTED_NODE")

    def desc(self):
        return self._desc

    def node(self):
        return self._node

    def node_name(self):
        return self._name

    def node_operator(self):
        return self._op

    def func(self):
        return "importNode"

    def file(self):
        return "ModelImporter.cpp"

    def line(self):
        return 0

    def __str__(self):
        return f"In node {self._node} with name: {self._name} and operator: {self._op} : {self._desc}"


def _dims(vi) -> list:
    return [int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]


class OnnxParser(PybindObject):
    _constructible = True

    @pybind(network=cast_instance("INetworkDefinition"), logger=cast_instance("ILogger"))
    def __init__(self, network, logger):
        self._ready()
        self._api.rec.add("OnnxParser", network, logger)
        self._network, self._logger = network, logger
        self._errors: list[ParserError] = []

    @property
    def num_errors(self):
        return len(self._errors)

    @pybind(index=cast_int)
    def get_error(self, index):
        return self._errors[index]

    def clear_errors(self):
        self._errors = []

    @pybind(model=cast_buffer, path=cast_opt_str)
    def parse(self, model, path=None):
        import onnx
        from onnx import defs

        api = self._api
        api.rec.add("OnnxParser.parse", len(model), path)
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # noqa: BLE001
            self._errors.append(api.trt.ParserError._make(-1, "", "", f"Failed to parse ONNX model: {exc}"))
            return False
        net = self._network
        for i, node in enumerate(proto.graph.node):
            if node.op_type in api.unsupported_ops or (node.domain in ("", "ai.onnx") and not defs.has(node.op_type)):
                self._errors.append(api.trt.ParserError._make(i, node.name, node.op_type,
                                                              f"No importer registered for op: {node.op_type}"))
        from edgelstm.converters.tensorrt.onnx_support import refusals

        strongly = api.v11 or net.get_flag(api.member("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"))
        for r in refusals(proto, api.version, strongly_typed=strongly):
            self._errors.append(api.trt.ParserError._make(r.index, r.node, r.op, r.reason))
        if self._errors:
            return False
        _fill(api, net, proto)
        return True


def _value_facts(proto) -> tuple[dict[str, int], dict[str, list]]:
    """Element types and dims (ints or symbol names) of the graph's values, from ONNX shape inference."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001
        inferred = proto
    types, dims = {}, {}
    for vi in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
        dims[vi.name] = _dims(vi)
    return types, dims


def _fill(api, net, proto) -> None:
    """The network of a parsed model: inputs, one ITensor per ONNX tensor, layers named after their nodes, outputs."""
    layer_type = api.enum("LayerType").__members__
    data_type = api.enum("DataType").__members__
    inits = {i.name for i in proto.graph.initializer}
    types, dims = _value_facts(proto)
    tensors: dict[str, ITensor] = {}

    def tensor(name, *, is_input=False, in_loop=False):
        ds = dims.get(name, [])
        net._symbols[name] = ds
        t = api.trt.ITensor._make(name, [d if isinstance(d, int) else -1 for d in ds],
                                  data_type[ONNX_TO_TRT.get(types.get(name, 1), "FLOAT")], is_input, False, in_loop)
        if not in_loop:
            tensors[name] = t
        return t

    for vi in proto.graph.input:
        if vi.name not in inits:
            net._inputs.append(tensor(vi.name, is_input=True))
    taken: set[str] = set()

    def unique(base):
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    for i, node in enumerate(proto.graph.node):
        node_name = node.name or f"{node.op_type}_{i}"
        ins = [tensors[n] for n in node.input if n in tensors]
        outs = [o for o in node.output if o]
        if node.op_type in LOOP_OPS:
            inner = tensor(f"{node_name}/loop_state", in_loop=True)
            net._layers.append(api.trt.ILayer._make(unique(node_name), "Loop", layer_type["RECURRENCE"], node.op_type,
                                                    [inner], ins, node_name))
            for o in outs:
                net._layers.append(api.trt.ILayer._make(unique(node_name), "LoopOutput", layer_type["LOOP_OUTPUT"],
                                                        node.op_type, [tensor(o)], [inner], node_name))
            continue
        kind, member = LAYER_TYPES.get(node.op_type, ("Elementwise", "ELEMENTWISE"))
        net._layers.append(api.trt.ILayer._make(unique(node_name), kind, layer_type[member], node.op_type,
                                                [tensor(o) for o in outs], ins, node_name))
    for vi in proto.graph.output:
        t = tensors.get(vi.name) or tensor(vi.name)
        t._is_output = True
        net._outputs.append(t)
    types_ = {i.data_type for i in proto.graph.initializer}
    net._onnx_precision = "fp16" if 10 in types_ and 1 not in types_ else "fp32"
    net._has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    net._onnx = proto.SerializeToString()


CLASSES = (ITensor, ILayer, INetworkDefinition, ParserError, OnnxParser)
