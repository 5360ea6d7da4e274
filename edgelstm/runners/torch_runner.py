"""Torch eager runner (CPU, or CUDA when asked and present). The model is called through its input contract
(``edgelstm.models.calling``): any number of inputs (token ids, lengths, recurrent state), the real axis roles."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from edgelstm.errors import BackendMissing, opt, require_torch
from edgelstm.artifacts.iospec import IOSpec
from edgelstm.models.calling import flatten_outputs, module_device, output_names_for  # noqa: F401 - re-exported
from edgelstm.models.inputs import InputOptions
from edgelstm.options import Precision
from edgelstm.runners.contract import RunnerBase


def probe_torch_io(module, input_size: int | None = None, fixed: tuple[int, int] | None = None, *,
                   options: InputOptions | None = None) -> IOSpec:
    """The I/O spec of a torch model, learned by running it (at two (batch, seq) points; at ``fixed`` only, for a
    fixed-shape model). The probe runs on the module's device."""
    from edgelstm.models.calling import resolve_call

    options = options or InputOptions(input_size=input_size, static=fixed)
    return resolve_call(module, options).io


class TorchRunner(RunnerBase):
    backend = "torch"
    precision = Precision.fp32

    def __init__(self, model: Any, *, input_size: int | None = None, threads: int | None = None, device: str = "cpu",
                 inputs: InputOptions | None = None):
        torch = require_torch()
        from edgelstm.models.calling import resolve_call
        from edgelstm.models.loading import LoadedModel, from_module

        loaded = model if isinstance(model, LoadedModel) else from_module(model)
        self.loaded = loaded
        module = loaded.module
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise BackendMissing("torch CUDA was asked for but no CUDA device is available",
                                     hint="install a CUDA build of torch on a GPU machine, or run on the CPU "
                                          f"({opt('device')} cpu)")
            module = module.to(device)
        self.device = device
        if threads:
            torch.set_num_threads(int(threads))
        options = inputs or InputOptions()
        if input_size is not None and options.input_size is None and not options.inputs:
            options = InputOptions(options.inputs, input_size, options.state_arg, options.static, options.fallback_points)
        self.call = resolve_call(module, options)
        self.io = self.call.io
        self.input_size = self.call.contract.feature_size
        # the module the timers call positionally with the inputs in io order: the model itself when it takes one
        # tensor and returns what io says, else a thin wrapper that packs the state and names the outputs
        plain = len(self.io.inputs) == 1 and self.call.state_index is None
        self.module = module if plain else self.call.as_module()
        self.input_order = list(self.io.input_names)
        self.label = loaded.name

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require_torch()
        from edgelstm.models.probing import module_state_guard

        # a model that keeps state on the module starts every call from the state it was given (as its export does)
        with torch.inference_mode(), module_state_guard(self.loaded.module):
            outs = self.call(self.call.tensors(feeds, self.device))
        return {spec.name: o.detach().float().cpu().numpy() for spec, o in zip(self.io.outputs, outs)}

    def close(self) -> None:
        pass
