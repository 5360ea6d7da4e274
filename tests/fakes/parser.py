"""The fake network definition and ONNX parser: OnnxParser.parse reads the ONNX with onnx itself, refuses ops it
does not know (or that the module was told to refuse), and fills the network's inputs, outputs and layers."""

from __future__ import annotations

from .tensorrt_api import ONNX_TO_TRT

LAYER_TYPES = {"LSTM": "Loop", "GRU": "Loop", "RNN": "Loop", "Loop": "Loop", "Gemm": "MatrixMultiply",
               "MatMul": "MatrixMultiply", "QuantizeLinear": "Quantize", "DequantizeLinear": "Dequantize",
               "Softmax": "SoftMax", "Tanh": "Activation", "Sigmoid": "Activation", "Relu": "Activation"}


class ITensor:
    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, tuple(shape), dtype


class ILayer:
    def __init__(self, name, layer_type, op):
        self.name, self.type, self._op = name, layer_type, op


class INetworkDefinition:
    def __init__(self, flags):
        self._flags = flags
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._layers: list[ILayer] = []
        self._symbols: dict[str, list] = {}   # tensor name -> dims as ints/symbols (from ONNX)
        self._onnx_precision = "fp32"
        self._has_qdq = False

    def get_flag(self, flag):
        return bool(self._flags & (1 << int(flag)))

    @property
    def num_inputs(self):
        return len(self._inputs)

    @property
    def num_outputs(self):
        return len(self._outputs)

    @property
    def num_layers(self):
        return len(self._layers)

    def get_input(self, index):
        return self._inputs[index]

    def get_output(self, index):
        return self._outputs[index]

    def get_layer(self, index):
        return self._layers[index]


class ParserError:
    def __init__(self, node, name, op, desc):
        self._node, self._name, self._op, self._desc = node, name, op, desc

    def code(self):
        return "UNSUPPORTED_NODE"

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


class OnnxParser:
    def __init__(self, network, logger):
        self._api.rec.add("OnnxParser", network, logger)
        self._network, self._logger = network, logger
        self._errors: list[ParserError] = []

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]

    def clear_errors(self):
        self._errors = []

    def parse(self, model, path=None):
        import onnx
        from onnx import defs

        api = self._api
        api.rec.add("OnnxParser.parse", len(model), path)
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # noqa: BLE001
            self._errors.append(api.trt.ParserError(-1, "", "", f"Failed to parse ONNX model: {exc}"))
            return False
        net = self._network
        for i, node in enumerate(proto.graph.node):
            if node.op_type in api.unsupported_ops or (node.domain in ("", "ai.onnx") and not defs.has(node.op_type)):
                self._errors.append(api.trt.ParserError(i, node.name, node.op_type,
                                                        f"No importer registered for op: {node.op_type}"))
            net._layers.append(api.trt.ILayer(node.name or f"{node.op_type}_{i}",
                                              LAYER_TYPES.get(node.op_type, "Elementwise"), node.op_type))
        if self._errors:
            return False
        inits = {i.name for i in proto.graph.initializer}
        data_type = api.trt.DataType
        for vis, into in ((proto.graph.input, net._inputs), (proto.graph.output, net._outputs)):
            for vi in vis:
                if vi.name in inits:
                    continue
                ds = _dims(vi)
                net._symbols[vi.name] = ds
                into.append(api.trt.ITensor(vi.name, [d if isinstance(d, int) else -1 for d in ds],
                                            data_type[ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")]))
        types_ = {i.data_type for i in proto.graph.initializer}
        net._onnx_precision = "fp16" if 10 in types_ and 1 not in types_ else "fp32"
        net._has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
        return True


CLASSES = (ITensor, ILayer, INetworkDefinition, ParserError, OnnxParser)
