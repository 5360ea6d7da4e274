"""The fake network definition and ONNX parser: OnnxParser.parse reads the ONNX with onnx itself, refuses ops it
does not know (or that the module was told to refuse) and what TensorRT's ONNX parser refuses although ONNX allows
it (the table of converters/tensorrt/onnx_support.py, sourced from onnx-tensorrt's operator support document:
LSTM layout/input_forget/activations, GRU/RNN, Loop scan outputs, Q/DQ zero points, data types), and fills the
network's inputs, outputs and layers."""

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


class ITensor(PybindObject):
    def _init(self, name, shape, dtype, is_input):
        self._name, self._shape, self._dtype, self._is_input = name, tuple(shape), dtype, is_input

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = checked_set(self, "name", value, cast_str)

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
        return not self._is_input


class ILayer(PybindObject):
    def _init(self, name, kind, layer_type, op):
        self._name, self._kind, self._type, self._op = name, kind, layer_type, op

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = checked_set(self, "name", value, cast_str)

    @property
    def type(self):
        return self._type


class INetworkDefinition(PybindObject):
    def _init(self, flags):
        self._flags = flags
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._layers: list[ILayer] = []
        self._symbols: dict[str, list] = {}   # tensor name -> dims as ints/symbols (from ONNX)
        self._onnx_precision = "fp32"
        self._has_qdq = False

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
        layer_type = api.enum("LayerType")
        for i, node in enumerate(proto.graph.node):
            if node.op_type in api.unsupported_ops or (node.domain in ("", "ai.onnx") and not defs.has(node.op_type)):
                self._errors.append(api.trt.ParserError._make(i, node.name, node.op_type,
                                                              f"No importer registered for op: {node.op_type}"))
            kind, member = LAYER_TYPES.get(node.op_type, ("Elementwise", "ELEMENTWISE"))
            net._layers.append(api.trt.ILayer._make(node.name or f"{node.op_type}_{i}", kind,
                                                    layer_type.__members__[member], node.op_type))
        from converters.tensorrt.onnx_support import refusals

        strongly = api.v11 or net.get_flag(api.member("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"))
        for r in refusals(proto, api.version, strongly_typed=strongly):
            self._errors.append(api.trt.ParserError._make(r.index, r.node, r.op, r.reason))
        if self._errors:
            return False
        inits = {i.name for i in proto.graph.initializer}
        data_type = api.enum("DataType").__members__
        for vis, into, is_input in ((proto.graph.input, net._inputs, True), (proto.graph.output, net._outputs, False)):
            for vi in vis:
                if vi.name in inits:
                    continue
                ds = _dims(vi)
                net._symbols[vi.name] = ds
                into.append(api.trt.ITensor._make(vi.name, [d if isinstance(d, int) else -1 for d in ds],
                                                  data_type[ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")],
                                                  is_input))
        types_ = {i.data_type for i in proto.graph.initializer}
        net._onnx_precision = "fp16" if 10 in types_ and 1 not in types_ else "fp32"
        net._has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
        return True


CLASSES = (ITensor, ILayer, INetworkDefinition, ParserError, OnnxParser)
