"""Torch eager runner (CPU, or CUDA when asked and present)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from edgelstm.errors import BackendMissing, BadInput, require_torch
from edgelstm.artifacts.iospec import IOSpec, TensorSpec


def output_names_for(n: int) -> list[str]:
    return ["y"] if n == 1 else [f"y{i}" for i in range(n)]


def flatten_outputs(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        flat: list[Any] = []
        for o in out:
            flat.extend(flatten_outputs(o))
        return flat
    if isinstance(out, dict):
        return [v for _, v in sorted(out.items())]
    return [out]


def probe_torch_io(module, input_size: int, fixed: tuple[int, int] | None = None) -> IOSpec:
    """Run the model at two (batch, seq) points to find which output axes are batch and seq
    (at one point, the model's own, for fixed-shape models)."""
    torch = require_torch()
    shapes = []
    points = ((2, 3), (3, 5)) if fixed is None else (fixed, fixed)
    with torch.inference_mode():
        for b, t in points:
            try:
                out = module(torch.zeros(b, t, input_size))
            except Exception as exc:  # noqa: BLE001
                raise BadInput(f"the model does not run on input [batch, seq, {input_size}]: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                               hint="check --input-size") from None
            shapes.append([tuple(o.shape) for o in flatten_outputs(out)])
    outs = []
    for i, (s1, s2) in enumerate(zip(*shapes)):
        dims: list[int | str] = []
        for a, b in zip(s1, s2):
            dims.append(a if a == b else ("batch" if (a, b) == (2, 3) else "seq" if (a, b) == (3, 5) else "?"))
        outs.append(TensorSpec(output_names_for(len(shapes[0]))[i], "float32", tuple(dims)))
    x_shape = ("batch", "seq", input_size) if fixed is None else (*fixed, input_size)
    return IOSpec((TensorSpec("x", "float32", x_shape),), tuple(outs))


class TorchRunner:
    backend = "torch"
    precision = "fp32"

    def __init__(self, model: Any, *, input_size: int | None = None, threads: int | None = None, device: str = "cpu"):
        torch = require_torch()
        from edgelstm.models.loading import LoadedModel, from_module, infer_input_size

        loaded = model if isinstance(model, LoadedModel) else from_module(model)
        self.loaded = loaded
        self.module = loaded.module
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise BackendMissing("torch CUDA was asked for but no CUDA device is available",
                                     hint="install a CUDA build of torch on a GPU machine, or use --backend torch on CPU")
            self.module = self.module.to(device)
        self.device = device
        if threads:
            torch.set_num_threads(int(threads))
        size = input_size or infer_input_size(self.module)
        if size is None:
            raise BadInput("cannot infer the model's input size (no recurrent layer found)",
                           hint="pass --input-size")
        self.input_size = size
        self.io = probe_torch_io(self.module, size)
        self.label = loaded.name

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require_torch()
        x = torch.from_numpy(np.ascontiguousarray(feeds["x"], dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            out = flatten_outputs(self.module(x))
        return {spec.name: o.detach().float().cpu().numpy() for spec, o in zip(self.io.outputs, out)}

    def close(self) -> None:
        pass
