"""torch -> ONNX, verified: the export routes, the verification grid, stateful and float64 forms."""
