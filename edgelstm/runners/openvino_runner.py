"""OpenVINO runner (CPU): an IR (``model.xml`` + ``model.bin``) compiled at the inference precision its manifest
records (``edgelstm.artifacts.openvino``), with the thread count asked for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.artifacts.openvino import (check_ir_pair, compile_config, inference_precision, require_openvino,
                                         runtime_layer_precisions)
from edgelstm.errors import BadInput
from edgelstm.options import Precision
from edgelstm.runners.contract import RunnerBase, typed_precision


def _io_from_model(model: Any):
    """The I/O spec of an IR without a manifest: names, element types, dims (dynamic ones as '?')."""
    from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, IOSpec, TensorSpec

    def spec(port: Any, names: tuple[str, ...]) -> TensorSpec:
        name = port.get_any_name()
        dims = tuple(int(d.get_length()) if d.is_static else "?" for d in port.get_partial_shape())
        dtype = {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "boolean": "bool"}.get(
            port.get_element_type().get_type_name(), "float32")
        return TensorSpec(name, dtype, dims, name in names)

    return IOSpec(tuple(spec(p, STATE_INPUTS) for p in model.inputs),
                  tuple(spec(p, STATE_OUTPUTS) for p in model.outputs))


class OpenVinoRunner(RunnerBase):
    backend = "openvino"

    def __init__(self, path: str | Path, *, threads: int | None = None, precision_hint: str | None = None,
                 streams: int | None = None):
        from edgelstm.artifacts.artifact import Artifact

        self.path = Path(path)
        self.manifest = Artifact.open(self.path).manifest
        check_ir_pair(self.path, self.manifest)
        ov = require_openvino()
        self.core = ov.Core()
        try:
            model = self.core.read_model(str(self.path))
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"OpenVINO cannot read {self.path.name}: {str(exc).splitlines()[0][:240]}") from None
        self.io = self.manifest.io if self.manifest is not None and self.manifest.io else _io_from_model(model)
        self.precision = typed_precision(self.manifest.precision if self.manifest is not None else Precision.fp32)
        self.precision_hint = precision_hint or inference_precision(self.manifest)
        try:
            self.compiled = self.core.compile_model(model, "CPU", compile_config(self.precision_hint, threads,
                                                                                       streams))
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"OpenVINO cannot compile {self.path.name} for the CPU: "
                           f"{str(exc).splitlines()[0][:240]}") from None
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self._in_types = {p.get_any_name(): p.get_element_type().get_type_name() for p in self.compiled.inputs}
        self.request = self.compiled.create_infer_request()
        self.label = self.path.name

    def _cast(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        dtypes = {"f32": np.float32, "i64": np.int64, "i32": np.int32, "f16": np.float16, "boolean": np.bool_}
        return {n: np.ascontiguousarray(a, dtype=dtypes.get(self._in_types.get(n, "f32"), np.float32))
                for n, a in feeds.items() if n in self._in_types}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cast = self._cast(feeds)
        try:
            result = self.request.infer(cast)
        except Exception as exc:  # noqa: BLE001
            shapes = {k: list(v.shape) for k, v in cast.items()}
            raise BadInput(f"OpenVINO failed on {self.path.name} with inputs {shapes}: "
                           f"{str(exc).splitlines()[0][:300]}") from None
        return {n: np.array(result[o], dtype=np.float32) for n, o in zip(self.output_names, self.compiled.outputs)}

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        """Inputs staged once as tensors sharing the arrays' memory; the call runs one inference."""
        ov = require_openvino()
        cast = self._cast(feeds)
        request = self.compiled.create_infer_request()
        for name, arr in cast.items():
            request.set_tensor(name, ov.Tensor(arr, shared_memory=True))

        def call(_request=request, _keep=cast):
            _request.infer()

        return call

    def lane(self) -> "OpenVinoRunner":
        """Another runner on the same compiled model with its own infer request: with ``streams`` > 1, lanes run
        concurrently on separate streams (batch-parallel execution)."""
        other = copy.copy(self)
        other.request = self.compiled.create_infer_request()
        return other

    def layer_precisions(self) -> dict[str, int]:
        return runtime_layer_precisions(self.compiled)

    def close(self) -> None:
        self.request = None
        self.compiled = None
