"""Bad input to the commands that run whole pipelines (run, demo) and to doctor's view of a broken machine.
A pipeline file is written into the case's directory before the snapshot; its [output].dir is ``out``
inside it, which a refused run must not create."""

from __future__ import annotations

import pytest

from .conftest import case, ids, run_case

GOOD = """[model]
zoo = "lstm_regressor"
train_steps = 2
[export]
seq_len = 8
[data]
synthetic = 8
seq = 8
[bench]
iters = 2
[output]
dir = "out"
"""


def _raw(data: bytes):
    def setup(w, ws, mp):
        (w / "p.toml").write_bytes(data)
    return setup


def _edit(old: str, new: str):
    def setup(w, ws, mp):
        assert old in GOOD
        (w / "p.toml").write_text(GOOD.replace(old, new), encoding="utf-8")
    return setup


def pipe(id: str, setup, *needles: str):
    return case(id, "run", "{w}/p.toml", setup=setup, needles=needles)


RUN = [
    case("missing-file", "run", "{w}/nope.toml", needles="does not exist"),
    case("directory", "run", "{w}/gooddir", needles="directory"),
    case("empty-directory", "run", "{ws}/emptydir", needles="directory"),
    pipe("not-utf8", _raw("[model]\nzoo = \"lstm_regressor\" # é\n".encode("latin-1")), "UTF-8"),
    pipe("binary", _raw(bytes(range(256)) * 4)),
    pipe("empty-file", _raw(b""), "[model]"),
    pipe("toml-syntax", _raw(b"[model\nzoo = \n"), "TOML"),
    pipe("unknown-section", _edit("[bench]", "[benchmark]"), "[benchmark]"),
    pipe("unknown-key", _edit("iters = 2", "iterations = 2"), "iterations"),
    pipe("unknown-zoo", _edit('"lstm_regressor"', '"transformer"'), "transformer"),
    pipe("zoo-and-source", _edit('zoo = "lstm_regressor"', 'zoo = "lstm_regressor"\nsource = "m.pt"')),
    pipe("source-missing", _edit('zoo = "lstm_regressor"', 'source = "nope.pt"'), "nope.pt"),
    pipe("source-directory", _edit('zoo = "lstm_regressor"', 'source = "gooddir"'), "directory"),
    pipe("config-negative-hidden", _edit("train_steps = 2", "train_steps = 2\nconfig = {hidden_size = -5}"),
         "hidden_size"),
    pipe("config-unknown-key", _edit("train_steps = 2", "train_steps = 2\nconfig = {bogus = 1}"), "bogus"),
    pipe("train-steps-0", _edit("train_steps = 2", "train_steps = 0"), "train_steps"),
    pipe("seed-negative", _edit("train_steps = 2", "train_steps = 2\nseed = -1"), "seed"),
    pipe("seed-a-string", _edit("train_steps = 2", 'train_steps = 2\nseed = "zero"'), "seed"),
    pipe("bench-iters-0", _edit("iters = 2", "iters = 0"), "iters"),
    pipe("bench-threads-0", _edit("iters = 2", "iters = 2\nthreads = [0]"), "threads"),
    pipe("bench-batch-empty", _edit("iters = 2", "iters = 2\nbatch = []"), "batch"),
    pipe("export-batch-0", _edit("seq_len = 8", "seq_len = 8\nbatch = 0"), "batch"),
    pipe("export-seq-len-huge", _edit("seq_len = 8", "seq_len = 100000000"), "seq_len"),
    pipe("export-opset-5", _edit("seq_len = 8", "seq_len = 8\nopset = 5"), "opset"),
    pipe("export-stateful-string", _edit("seq_len = 8", 'seq_len = 8\nstateful = "yes"'), "stateful"),
    pipe("precision-unknown", _edit("[data]", '[quantize]\nprecisions = ["int4"]\n[data]'), "int4"),
    pipe("gate-garbage", _edit("[bench]", '[validate]\ngates = ["bogus"]\n[bench]'), "bogus"),
    pipe("synthetic-0", _edit("synthetic = 8", "synthetic = 0"), "synthetic"),
    pipe("synthetic-10^12", _edit("synthetic = 8", "synthetic = 1000000000000"), "synthetic", "would take"),
    pipe("data-seq-10^12", _edit("seq = 8", "seq = 1000000000000"), "seq", "would take"),
    pipe("validation-missing", _edit("synthetic = 8", 'validation = "nope.npz"'), "nope.npz"),
    pipe("validation-directory", _edit("synthetic = 8", 'validation = "gooddir"'), "directory"),
    pipe("validation-unknown-format", _edit("synthetic = 8", 'validation = "good.json"'), "format"),
    pipe("output-is-a-file", _edit('dir = "out"', 'dir = "good.json"'), "good.json"),
    pipe("output-under-a-file", _edit('dir = "out"', 'dir = "good.json/sub"'), "good.json"),
    pipe("sections-not-tables", _raw(b'model = "lstm_regressor"\n'), "[model]"),
]


@pytest.mark.parametrize("c", RUN, ids=ids(RUN))
def test_run(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


DEMO = [
    case("steps-0", "demo", "--out", "{w}/demo", "--steps", "0", needles="--steps"),
    case("steps-negative", "demo", "--out", "{w}/demo", "--steps", "-1", needles="--steps"),
    case("seed-negative", "demo", "--out", "{w}/demo", "--seed", "-1", needles="--seed"),
    case("out-is-a-file", "demo", "--out", "{w}/good.json", needles="good.json"),
    case("out-under-a-file", "demo", "--out", "{w}/good.json/demo", needles="good.json"),
    case("steps-not-a-number", "demo", "--out", "{w}/demo", "--steps", "many", usage=True),
    case("default-out-steps-negative", "demo", "--steps", "-1", needles="--steps"),  # nothing in the cwd
]


@pytest.mark.parametrize("c", DEMO, ids=ids(DEMO))
def test_demo(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ doctor on a broken machine


def _broken_tensorrt(error: str):
    """A ``tensorrt`` package on sys.path whose import fails like a broken install does."""
    def setup(w, ws, mp):
        pkg = w.parent / "site" / "tensorrt"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"raise {error}\n")
        mp.syspath_prepend(str(pkg.parent))
        mp.delitem(__import__("sys").modules, "tensorrt", raising=False)
    return setup


def _fake_nvidia_smi(script: str):
    def setup(w, ws, mp):
        bin_dir = w.parent / "bin"
        bin_dir.mkdir()
        exe = bin_dir / "nvidia-smi"
        exe.write_text("#!/bin/sh\n" + script + "\n")
        exe.chmod(0o755)
        mp.setenv("PATH", f"{bin_dir}:{__import__('os').environ.get('PATH', '')}")
    return setup


DOCTOR = [
    case("unknown-option", "doctor", "--bogus", usage=True),
    case("tensorrt-missing-library", "doctor", code=0,
         setup=_broken_tensorrt("OSError('libnvinfer.so.10: cannot open shared object file')")),
    case("tensorrt-import-crashes", "doctor", "--json", code=0,
         setup=_broken_tensorrt("RuntimeError('CUDA driver version is insufficient')")),
    case("nvidia-smi-garbage", "doctor", code=0, setup=_fake_nvidia_smi("echo 'garbage, ,, ??'; exit 0")),
    case("nvidia-smi-fails", "doctor", "--json", code=0, setup=_fake_nvidia_smi("echo 'NVIDIA-SMI has failed' >&2; exit 9")),
]


@pytest.mark.parametrize("c", DOCTOR, ids=ids(DOCTOR))
def test_doctor(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)
