"""Runners: one interface over torch, onnxruntime and TensorRT (see base.Runner)."""

from edgelstm.runners.base import Runner, artifact_kind, open_runner  # noqa: F401
