"""Torch on CUDA. The `gpu`-marked test runs only where torch sees a CUDA device; the others check the same path
everywhere with a fake device (PyTorch's "meta" device standing in for "cuda")."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _moving_to_meta(model, monkeypatch):
    """Make `model.to("cuda")` move it to the meta device, and torch believe CUDA exists."""
    real_to = model.to
    monkeypatch.setattr(model, "to", lambda device, *a, **k: real_to("meta") if str(device).startswith("cuda")
                        else real_to(device, *a, **k))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return model


def test_the_io_probe_runs_on_the_modules_device(tiny_model):
    """Issue 14.1: the probe's inputs are made on the module's device, not on the CPU."""
    from edgelstm.runners.torch_runner import module_device, probe_torch_io

    model = tiny_model("lstm_regressor").to("meta")
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].device.type))
    assert module_device(model).type == "meta"
    io = probe_torch_io(model, 1)
    assert seen == ["meta", "meta"]
    assert io.outputs[0].shape == ("batch", 1)


def test_torch_runner_on_cuda_probes_on_the_device(tiny_model, monkeypatch):
    """TorchRunner(device="cuda") moves the module, then probes it there (it used to feed CPU tensors)."""
    from edgelstm.runners.torch_runner import TorchRunner

    model = _moving_to_meta(tiny_model("lstm_regressor"), monkeypatch)
    runner = TorchRunner(model, device="cuda")
    assert runner.device == "cuda" and next(runner.module.parameters()).device.type == "meta"
    assert runner.io.input_names == ["x"] and runner.io.outputs[0].shape == ("batch", 1)


def test_module_without_parameters_probes_on_cpu():
    from edgelstm.runners.torch_runner import module_device

    assert module_device(torch.nn.Identity()).type == "cpu"


@pytest.mark.gpu
def test_torch_runner_runs_on_cuda(tiny_model):
    from edgelstm.runners.torch_runner import TorchRunner

    model = tiny_model("lstm_regressor")
    x = np.random.default_rng(0).normal(size=(3, 12, 1)).astype(np.float32)
    want = TorchRunner(model).run({"x": x})
    gpu = TorchRunner(tiny_model("lstm_regressor"), device="cuda")
    assert next(gpu.module.parameters()).is_cuda
    got = gpu.run({"x": x})
    assert got["y"].dtype == np.float32
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-4, atol=1e-5)
