"""Calibration for INT8: activation range statistics (minmax / entropy / percentile), the onnxruntime
calibration reader and the TensorRT calibrators with their caches. Data comes from `edgelstm.data` (one
re-iterable source contract); nothing here knows a model transformation."""
