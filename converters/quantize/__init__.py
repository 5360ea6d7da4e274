"""ONNX -> FP16 / INT8 ONNX: the quantizers, their op-by-op reports, layer precisions and the accuracy fallback."""
