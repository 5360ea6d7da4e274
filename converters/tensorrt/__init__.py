"""ONNX -> TensorRT engine."""
