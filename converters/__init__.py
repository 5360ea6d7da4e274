"""Model-to-model transformations: torch -> ONNX (verified), ONNX -> FP16/INT8 ONNX, ONNX -> TensorRT."""
