"""Model-to-model transformations, by concern: ``export/`` (torch -> ONNX, verified), ``quantize/`` (ONNX ->
FP16/INT8 ONNX), ``tensorrt/`` (ONNX -> TensorRT engine) and ``openvino`` (ONNX -> OpenVINO IR).

The folder sits at the top of the repository and is installed as ``edgelstm.converters`` (pyproject.toml's
``package-dir``): import it by that name, never as a top-level ``converters``."""
