"""ONNX -> TensorRT engine: the build stage and what it shares with its callers.

``options`` (BuildOptions, BuildResult, range/workspace parsing), ``profile`` (optimization profiles),
``config`` (the builder-config steps), ``layers`` (per-layer precision from the engine inspector), ``build``
(``build_engine``, the stage). The runtime side of an engine (logger, dtypes, I/O spec) is in
``edgelstm.artifacts.trt``, so that the runner does not depend on the build."""

from edgelstm.converters.tensorrt.build import build_engine, rebuild_command
from edgelstm.converters.tensorrt.layers import layer_group, layer_precision_summary, summary_rows
from edgelstm.converters.tensorrt.options import (DEFAULT_BATCH, DEFAULT_SEQ, BuildOptions, BuildResult, Range, check_range,
                                         parse_workspace)
from edgelstm.converters.tensorrt.profile import plan_profile

__all__ = ["BuildOptions", "BuildResult", "build_engine", "rebuild_command", "parse_workspace", "check_range",
           "plan_profile", "layer_precision_summary", "layer_group", "summary_rows", "Range", "DEFAULT_BATCH",
           "DEFAULT_SEQ"]
