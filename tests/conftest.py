"""Shared fixtures: tiny zoo models built in the test, the tiny LSTM exported once per session, a CLI runner,
and GPU/TensorRT markers."""

from __future__ import annotations

import importlib.util

import pytest

TINY = {
    "lstm_regressor": {"hidden_size": 8},
    "stacked_lstm": {"hidden_size": 8},
    "bilstm_attention": {"input_size": 5, "hidden_size": 8, "attention_size": 4},
    "gru": {"hidden_size": 8},
    "hand_lstm": {"hidden_size": 8},
}


def pytest_collection_modifyitems(config, items):
    trt_items = [i for i in items if i.get_closest_marker("trt") is not None]
    gpu_items = [i for i in items if i.get_closest_marker("gpu") is not None]
    # markers, not keywords: a test's keywords include its fixture names, and the stand-in tests take a fixture
    # called `trt` (pytest 9 skipped all of them as "needs TensorRT" before this). Asked only when such a test was
    # collected: importing torch to ask costs seconds.
    has_gpu = _torch_sees_cuda() if (trt_items or gpu_items) else False
    if trt_items:
        has_trt = importlib.util.find_spec("tensorrt") is not None
        # TensorRT needs a CUDA device, not a CUDA build of torch (the TensorRT image has CPU torch)
        if not (has_trt and (has_gpu or _cuda_device_visible())):
            for item in trt_items:
                item.add_marker(pytest.mark.skip(reason="needs TensorRT and an NVIDIA GPU (see docker/README.md)"))
    if not has_gpu:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def _torch_sees_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


#: optional test dependencies: a test module (or folder) that cannot import one is skipped, not an error, so that
#: `pytest -m trt` runs in images without them (docker/Dockerfile.jetson has no torch)
OPTIONAL_TEST_DEPS = ("torch", "hypothesis")
#: folders whose conftest.py itself imports an optional dependency
collect_ignore = [] if importlib.util.find_spec("hypothesis") is not None else ["fuzz"]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        text = str(rep.longrepr)
        missing = next((m for m in OPTIONAL_TEST_DEPS if f"No module named '{m}'" in text), None)
        if missing is not None and importlib.util.find_spec(missing) is None:
            rep.outcome = "skipped"
            rep.longrepr = (str(collector.path), None, f"Skipped: needs {missing}, which is not installed")
            rep.result = []


def _cuda_device_visible() -> bool:
    import os
    import shutil
    import subprocess

    if os.path.exists("/etc/nv_tegra_release"):  # Jetson: no nvidia-smi on older JetPacks
        return True
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture
def tiny_model():
    from edgelstm.models import zoo

    def make(name: str, **overrides):
        return zoo.build(name, {**TINY[name], **overrides}, seed=0)

    return make


@pytest.fixture(scope="session")
def tiny_lstm(tmp_path_factory):
    """The tiny ``lstm_regressor`` (hidden 8, seed 0) saved and exported once per test session.

    ``.dir`` holds ``m.pt`` (an edgelstm checkpoint), ``m.onnx``, ``m.stateful.onnx`` (h0/c0 in, hn/cn
    out) and ``m.static.onnx`` (batch 1 x seq 6), each ONNX with its manifest, exported at seq_len 6 and verified at seq 6 / batch 2. Shared by every
    test: never write into ``.dir``; ``copy_to(d)`` copies the files (manifests included) into a test's own
    directory."""
    import shutil
    from types import SimpleNamespace

    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    from edgelstm.models.loading import from_module

    d = tmp_path_factory.mktemp("tiny_lstm")
    model = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)
    zoo.save_checkpoint(model, d / "m.pt")
    loaded = from_module(model)
    loaded.path = d / "m.pt"  # manifests name the checkpoint as their parent
    quick = dict(seq_len=6, verify_seqs=(6,), verify_batches=(2,))
    export_onnx(loaded, d / "m.onnx", ExportOptions(**quick))
    export_onnx(loaded, d / "m.stateful.onnx", ExportOptions(stateful=True, **quick))
    export_onnx(loaded, d / "m.static.onnx", ExportOptions(static=True, seq_len=6, batch=1, verify_seqs=(6,),
                                                           verify_batches=(1,)))

    def copy_to(dest):
        dest.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            shutil.copy2(f, dest / f.name)
        return dest

    return SimpleNamespace(dir=d, pt=d / "m.pt", onnx=d / "m.onnx", stateful=d / "m.stateful.onnx",
                           static=d / "m.static.onnx", model=model, copy_to=copy_to)


@pytest.fixture
def cli():
    """Invoke the CLI in-process: returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    runner = CliRunner()

    def invoke(*args: str):
        res = runner.invoke(app, [str(a) for a in args])
        return res.exit_code, res.stdout, res.stderr

    return invoke
