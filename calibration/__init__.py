"""Calibration for INT8: activation range statistics (minmax / entropy / percentile), the onnxruntime
calibration reader and the TensorRT calibrators with their caches. Data comes from `edgelstm.data` (one
re-iterable source contract); nothing here knows a model transformation.

The folder sits at the top of the repository and is installed as ``edgelstm.calibration`` (pyproject.toml's
``package-dir``): import it by that name, never as a top-level ``calibration``."""
