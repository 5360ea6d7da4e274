"""Every command in README.md and examples/README.md runs: the fenced ```bash blocks are read, each command
(continuation lines joined, comments dropped) must have an entry in ``COVERAGE``, and the entries say how it is run
or why it is not (with a check that still can fail). A command nobody covers fails
``test_every_readme_command_is_covered``; an entry whose command left the README fails it too.

The commands run with bash, in the order the documents give them, in one temp folder: the README's own
`edgelstm demo && cd edgelstm-demo` makes the model and the data (`model.pt`, `val.npz`, `calib.npz`) the later
commands use; files that stand for a user's own model (`weights.pt` with `mypkg/`, `lm.pt`, `dec.pt`, `ae.pt2`) are
made by the entry's ``prepare`` just before its command. `examples/` is copied into the temp folder, so that the
commands that name it run there.

To cover a new README command: add ``"the command as the README writes it": Run(...)`` (or ``Skip(why, check)``
when it needs hardware or would run the suite itself) to ``COVERAGE``. ``Run`` runs it as written in the demo folder
and expects exit 0; ``where="root"`` runs it in the temp folder's root (beside `edgelstm-demo/` and `examples/`),
``codes`` lists other expected exit codes, ``env`` adds environment variables, and ``as_run`` states the command
really run when it must differ (say why in ``why``)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "examples" / "README.md")
FENCE = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.S | re.M)


def doc_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined, `# comments` dropped, spaces normalised."""
    out: list[str] = []
    for block in FENCE.finditer(text):
        pending = ""
        for line in block.group(2).splitlines():
            line = pending + " " + line.strip() if pending else line
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1].rstrip()
                continue
            pending = ""
            command = " ".join(_without_comment(line).split())
            if command:
                out.append(command)
    return out


def _without_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


# ------------------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Run:
    where: str = "demo"                    # "demo": edgelstm-demo/ (after `cd edgelstm-demo`); "root": the temp folder
    codes: tuple[int, ...] = (0,)
    env: dict[str, str] = field(default_factory=dict)
    as_run: str | None = None              # the command actually run, when it must differ (why says why)
    why: str = ""
    prepare: Callable[[Path], None] | None = None   # before the command, in its folder
    after: Callable[[Path], None] | None = None     # after it


@dataclass(frozen=True)
class Skip:
    why: str
    check: Callable[[str], None]


def options_exist(command: str) -> None:
    """Every `--option` (and `-o`) of an edgelstm command line is one its `--help` lists."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    for part in command.split("&&"):
        words = shlex.split(part)
        if not words or words[0] != "edgelstm":
            continue
        res = CliRunner().invoke(app, [words[1], "--help"], env={"COLUMNS": "300"})
        assert res.exit_code == 0, res.output
        for word in words[2:]:
            if word.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", word):
                assert re.search(rf"(^|[\s,│]){re.escape(word.split('=')[0])}([\s,/│]|$)", res.output, re.M), \
                    f"{word} is not an option of `edgelstm {words[1]}`"


def paths_exist(*paths: str) -> Callable[[str], None]:
    def check(_command: str) -> None:
        for p in paths:
            assert (ROOT / p).exists(), p

    return check


def script_runs(script: str, last: str) -> Callable[[str], None]:
    """A script that is a README entry point: bash can parse it and it ends by running ``last``."""
    def check(_command: str) -> None:
        path = ROOT / script
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
        assert path.read_text().rstrip().splitlines()[-1] == last

    return check


def extras_exist(_command: str) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^dev = \[", text, re.M) and "torch==" not in text.split("[project.optional-dependencies]")[0]


def _demo_model(folder: Path):
    from edgelstm.models.loading import load_model

    return load_model(folder / "model.pt").module


def prepare_factory(folder: Path) -> None:
    """`weights.pt` (the demo model's state_dict) and `mypkg/models.py:build` (its architecture)."""
    import torch

    (folder / "mypkg").mkdir(exist_ok=True)
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "models.py").write_text(
        "from edgelstm.models import zoo\n\n\ndef build():\n    return zoo.build('lstm_regressor', {}, seed=0)\n")
    torch.save(_demo_model(folder).state_dict(), folder / "weights.pt")


USER_MODELS = '''
import torch
from torch import nn


class WordLM(nn.Module):
    """A word-level language model the PyTorch tutorial way: token ids [seq, batch], forward(input, hidden)."""

    def __init__(self, vocab=10000, emb=16, hidden=16):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, input, hidden):
        out, hidden = self.rnn(self.encoder(input), hidden)
        return self.decoder(out), hidden


class Decoder(nn.Module):
    """One decoding step per call: the previous token and the encoder's outputs in, next-token logits out."""

    def __init__(self, vocab=100):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.attend = nn.Linear(256, 16)
        self.rnn = nn.LSTM(32, 16, batch_first=True)
        self.out = nn.Linear(16, vocab)

    def forward(self, token, encoder_outputs):
        context = self.attend(encoder_outputs).mean(dim=1)
        y, _ = self.rnn(torch.cat([self.embed(token), context], dim=-1).unsqueeze(1))
        return self.out(y[:, -1])


def decoder():
    return Decoder()


class AutoEncoder(nn.Module):
    """Takes one shape only, [1, 100, 1]: the bottleneck flattens the whole window."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(1, 4, batch_first=True)
        self.squeeze = nn.Linear(400, 8)
        self.expand = nn.Linear(8, 100)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.expand(self.squeeze(y.reshape(1, 400))).reshape(1, 100, 1)
'''


def _user_models(folder: Path):
    import importlib

    (folder / "usermodels.py").write_text(USER_MODELS)
    (folder / "nmt.py").write_text("from usermodels import decoder  # noqa: F401\n")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("usermodels")
    finally:
        sys.path.remove(str(folder))


def prepare_lm(folder: Path) -> None:
    """`lm.pt`: a whole pickled module (its class importable from usermodels.py in this folder)."""
    import torch

    torch.save(_user_models(folder).WordLM().eval(), folder / "lm.pt")


def prepare_decoder(folder: Path) -> None:
    """`dec.pt`: the state_dict of `nmt:decoder`'s one-step decoder."""
    import torch

    torch.save(_user_models(folder).decoder().state_dict(), folder / "dec.pt")


def prepare_autoencoder(folder: Path) -> None:
    """`ae.pt2`: a torch.export program that takes [1, 100, 1] only."""
    import torch

    model = _user_models(folder).AutoEncoder().eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 100, 1),)), folder / "ae.pt2")


def keep_demo_cache(root: Path) -> None:
    """The demo's pipeline outputs as they are right after `edgelstm demo` (later commands overwrite model.onnx)."""
    shutil.copytree(root / "edgelstm-demo", root / ".demo-outputs")


def restore_example_cache(root: Path) -> None:
    """examples/pipelines/lstm_regressor.toml is the demo's pipeline (same model, seed, export, precisions, data):
    its train/convert/quantize stages have the demo's content hashes. Its output folder starts from the demo's, as
    `actions/cache` restores one in the example workflow; validate, bench and report run (other gates, iters)."""
    shutil.copytree(root / ".demo-outputs", root / "examples" / "pipelines" / "edgelstm-out" / "lstm_regressor")


def run_by(module: str, test: str) -> Callable[[str], None]:
    """A command that ``module``'s ``test`` runs as the README writes it (its ``readme_commands()`` reads the README
    block; the test swaps in what this machine lacks), with options that are the command's own."""
    def check(command: str) -> None:
        import importlib

        sys.path.insert(0, str(ROOT / "tests"))
        try:
            mod = importlib.import_module(module)
        finally:
            sys.path.remove(str(ROOT / "tests"))
        assert callable(getattr(mod, test)), f"{module}.{test}"
        read = [shlex.split(c)[1:] if isinstance(c, str) else list(c) for c in mod.readme_commands()]
        assert shlex.split(command)[1:] in read, f"{module}.readme_commands() does not read: {command}"
        options_exist(command)

    return check


def prepare_untrusted(folder: Path) -> None:
    """`untrusted.onnx`: an initializer in external data at ../outside.bin, outside its folder: `inspect` refuses it
    (exit 2, checked here) and only --describe-only looks at it (tests/bad_input/test_bad_paths.py: never reading
    the outside file)."""
    from bad_input.test_bad_paths import _external

    made = _external(folder, "../outside.bin", "untrusted")  # models/untrusted.onnx
    os.replace(made, folder / "untrusted.onnx")
    made.parent.rmdir()
    (folder.parent / "outside.bin").write_bytes(b"\x00\x00\x80\x3f")
    code, output = _in_process("edgelstm inspect untrusted.onnx", folder)
    assert code == 2 and "outside its folder" in output, output


def _keras_files():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import keras_files
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return keras_files


def prepare_keras(folder: Path) -> None:
    """`model.keras` (a Keras 3 zip: LSTM, LSTM, Dense) built with h5py (tests/keras_files.py; no Keras needed)."""
    import numpy as np

    K = _keras_files()
    layers = [K.lstm("lstm", 6, return_sequences=True), K.lstm("lstm_1", 6), K.dense("dense", 1)]
    K.init_weights(layers, 3, np.random.default_rng(0))
    K.write_keras_zip(folder / "model.keras", layers, [None, None, 3], version="3.5.0")


def prepare_keras_h5(folder: Path) -> None:
    """`model.h5` (model.save("m.h5") of Keras 2: a GRU and a Dense) and `pred.npz`, Keras' predictions as the README
    makes them, here from tests/keras_files.py's numpy oracle of Keras' equations."""
    import numpy as np

    K = _keras_files()
    rng = np.random.default_rng(1)
    layers = [K.gru("gru", 5), K.dense("dense", 2)]
    K.init_weights(layers, 4, rng)
    K.write_legacy_h5(folder / "model.h5", layers, [None, None, 4], version="2.15.0")
    x = rng.standard_normal((4, 9, 4)).astype(np.float32)
    np.savez(folder / "pred.npz", x=x, y=K.predict(layers, x, major=2).astype(np.float32))


#: the Keras commands write model.onnx in the README; here they write beside it, so that the demo's model.onnx the
#: later commands quantize, validate and bench stays the demo's
KERAS_OUT = "the README's -o model.onnx would replace the demo's model.onnx that later commands use; the same " \
            "command writes keras.onnx instead"


def prepare_main_and_pr(folder: Path) -> None:
    """main/model.onnx: the demo's export as it was (main's model); pr/model.onnx: this folder's latest export (the
    pull request's), each with its manifest."""
    for side, src in (("main", folder.parent / ".demo-outputs"), ("pr", folder)):
        (folder / side).mkdir(exist_ok=True)
        for name in ("model.onnx", "model.onnx.json"):
            shutil.copy2(src / name, folder / side / name)


DEVICES = ("needs devices over SSH: tests/test_remote_ssh.py runs this block as written against two OpenSSH servers "
           "on 127.0.0.1 (the hosts swapped for theirs)")
DEVICE_TEST = "test_readme_commands_check_two_devices_from_a_pipeline_output"
TRT = "needs TensorRT and an NVIDIA GPU (the `trt` tests build engines where they exist)"
TRT_STAND_IN = TRT + "; tests/test_readme_localize.py runs it as written on the TensorRT stand-in (tests/fakes)"
JETSON = "Jetson only: JetPack's system packages"
SUITE = "runs the test suite itself"
USER_CLASS = {"PYTHONPATH": "."}  # the user's model class is importable where they run it: here usermodels.py

COVERAGE: dict[str, Run | Skip] = {
    # README.md: two commands
    "bash scripts/demo.sh": Skip("sets up the venv (the one this suite runs in), then runs exactly `edgelstm demo`, "
                                 "which the next block runs", script_runs("scripts/demo.sh", 'exec .venv/bin/edgelstm demo "$@"')),
    "bash scripts/test.sh": Skip(SUITE, script_runs("scripts/test.sh", 'exec .venv/bin/python -m pytest "$@"')),
    "edgelstm demo && cd edgelstm-demo": Run(where="root", after=keep_demo_cache),
    # install by hand
    "python3 -m venv .venv && . .venv/bin/activate": Skip("makes a venv: this suite runs in one", extras_exist),
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu": Skip("installs torch", extras_exist),
    'pip install -e ".[dev]"': Skip("installs edgelstm: this suite runs the installed one", extras_exist),
    "edgelstm doctor": Run(),
    # --json: one object on stdout, also on failure
    "edgelstm quantize missing.onnx -p fp16 -o q.onnx --json": Run(codes=(2,)),
    # convert
    "edgelstm convert model.pt -o model.onnx": Run(),
    "PYTHONPATH=. edgelstm convert weights.pt --factory mypkg.models:build -o model.onnx": Run(prepare=prepare_factory),
    "edgelstm convert model.pt -o model.stateful.onnx --stateful": Run(),
    "edgelstm convert lm.pt --trust-pickle -o lm.onnx --input tokens:int64[seq,batch]@0:10000 --state-arg hidden":
        Run(prepare=prepare_lm, env=USER_CLASS),
    "edgelstm convert dec.pt --factory nmt:decoder -o dec.onnx --input token:int64[batch] "
    "--input encoder_outputs:float32[batch,src,256]": Run(prepare=prepare_decoder, env=USER_CLASS),
    "edgelstm convert ae.pt2 -o ae.onnx --static --batch 1 --seq 100": Run(prepare=prepare_autoencoder),
    "edgelstm inspect model.keras": Run(prepare=prepare_keras),
    "edgelstm convert model.keras -o model.onnx": Run(as_run="edgelstm convert model.keras -o keras.onnx",
                                                      why=KERAS_OUT),
    "edgelstm convert model.h5 -o model.onnx --keras-reference pred.npz":
        Run(prepare=prepare_keras_h5, as_run="edgelstm convert model.h5 -o keras.h5.onnx --keras-reference pred.npz",
            why=KERAS_OUT),
    # quantize
    "edgelstm quantize model.onnx --precision fp16 -o model.fp16.onnx": Run(),
    "edgelstm quantize model.onnx --precision int8 -o model.int8.onnx": Run(),
    "edgelstm quantize model.onnx --precision int8-static --calib calib.npz -o model.qdq.onnx": Run(),
    "edgelstm quantize model.onnx --precision int8-static --calib-synthetic 128 -o model.noise.qdq.onnx": Run(),
    'edgelstm quantize model.onnx --precision int8 --data val.npz --max-drift "rel_l2<=0.01" -o model.int8.onnx': Run(),
    "edgelstm quantize model.onnx --precision int8 --target-cpu x86-vnni -o model.vnni.int8.onnx": Run(),
    "edgelstm quantize model.onnx --precision int8 --layer-precisions recurrent:fp32 -o model.int8-dense.onnx": Run(),
    # validate
    "edgelstm validate -r model.onnx -c model.int8.onnx --data val.npz --localize-out where/": Run(),
    'edgelstm validate -r model.pt -c model.int8.onnx --data val.npz --gate "rel_l2:y<=0.02" --gate "mse_delta<=0.001" '
    "--report drift.json --junit drift.xml --markdown drift.md": Run(),
    # bench
    "edgelstm bench model.pt model.onnx model.int8.onnx --batch 1,8 --seq 60,256 --threads 1,2 --min-time 1 "
    "--report bench.json --csv bench.csv --plot bench.png":
        Run(as_run="edgelstm bench model.pt model.onnx model.int8.onnx --batch 1,8 --seq 60,256 --threads 1,2 "
                   "--min-time 0.05 --report bench.json --csv bench.csv --plot bench.png",
            why="--min-time 1 times each of the 24 rows for a second; 0.05 s runs the same grid and options"),
    "edgelstm bench model.stateful.onnx --stream --batch 1 --seq 60 --threads 1": Run(),
    "edgelstm bench model.pt model.onnx model.int8.onnx --batch 1,8 --seq 60,256 --threads 1,2 --min-time 1 "
    "--baseline bench.json --max-slowdown 1.10":
        Run(codes=(0, 1), as_run="edgelstm bench model.pt model.onnx model.int8.onnx --batch 1,8 --seq 60,256 "
                                 "--threads 1,2 --min-time 0.05 --baseline bench.json --max-slowdown 1.10",
            why="the same grid as the baseline (0.05 s per row, as above); whether a shared test machine is slower "
                "now than a minute ago is no test result (1 = a regression held on re-measurement), 2 would be"),
    # gate latency in CI (same-run comparison)
    "edgelstm validate -r model.pt -c pr/model.onnx --against main/model.onnx --data val.npz --junit drift.xml":
        Run(prepare=prepare_main_and_pr),
    "edgelstm bench pr/model.onnx --against main/model.onnx --max-slowdown 1.10 --batch 1,8 --seq 60 --threads 1":
        Run(codes=(0, 1), why="the verdict on a shared test machine is no test result (1 = slower or inconclusive); "
                              "tests/test_compare_latency.py judges it on a fake clock; 2 would be a failure"),
    # OpenVINO IR (openvino is in the dev extra)
    "pip install 'edgelstm[openvino]'": Skip("installs OpenVINO: this suite runs with the dev extra, which has it",
                                            extras_exist),
    "edgelstm build model.onnx -o model.xml --precision fp32": Run(),
    "edgelstm build model.onnx -o model.bf16.xml --precision bf16":
        Run(codes=(0, 3), why="BF16 needs a CPU with AVX512-BF16 or AMX; elsewhere the build says so with exit 3 and "
                              "writes nothing (tests/test_openvino.py checks both outcomes)"),
    "edgelstm build model.onnx -o model.int8.xml --precision int8 --calib calib.npz": Run(),
    "edgelstm bench model.onnx model.int8.onnx model.xml model.bf16.xml --batch 1,32 --seq 60,256 --threads 1":
        Run(as_run="edgelstm bench model.onnx model.int8.onnx model.xml $(ls model.bf16.xml 2>/dev/null) "
                   "--batch 1,32 --seq 60,256 --threads 1 --iters 5",
            why="model.bf16.xml exists only on a CPU with BF16 (see above); 5 iterations per row run the same grid"),
    # run
    "edgelstm run examples/pipelines/lstm_regressor.toml": Run(where="root", prepare=restore_example_cache),
    # TensorRT
    "edgelstm build model.onnx -o model.fp16.plan --precision fp16 --batch 1:8:32 --seq 1:128:512 "
    "--timing-cache trt.cache": Skip(TRT, options_exist),
    "edgelstm validate --reference model.onnx --candidate model.fp16.plan --synthetic 256": Skip(TRT, options_exist),
    "edgelstm bench model.fp16.plan --batch 1,8 --seq 64,256": Skip(TRT, options_exist),
    "edgelstm build model.onnx -o model.fp16.plan --precision fp16 --layer-precisions recurrent:fp32":
        Skip(TRT_STAND_IN, run_by("test_readme_localize", "test_every_readme_command_runs")),
    "edgelstm bench model.fp16.plan --shapes x:8x256x1 --cuda-graph --split-transfers --streams 2":
        Skip(TRT_STAND_IN, run_by("test_readme_localize", "test_every_readme_command_runs")),
    "edgelstm bench model.fp16.plan --shapes x:1x60x1 --profile-layers":
        Skip(TRT_STAND_IN, run_by("test_readme_localize", "test_every_readme_command_runs")),
    "sudo apt-get install python3-libnvinfer python3-venv": Skip(JETSON, paths_exist("docker/Dockerfile.jetson")),
    "python3 -m venv --system-site-packages .venv && . .venv/bin/activate": Skip(JETSON, extras_exist),
    'pip install "cuda-python>=12.6,<12.7" edgelstm': Skip(JETSON, paths_exist("docker/Dockerfile.jetson")),
    "edgelstm build model.onnx -o model.plan --precision fp16": Skip(TRT, options_exist),
    "edgelstm build model.onnx -o model.dla.plan --precision fp16 --dla-core 0": Skip(TRT + " (a Jetson's DLA)",
                                                                                     options_exist),
    # bundle
    "edgelstm bundle edgelstm-demo -o lstm.tar.gz --precision fp16 --batch 1:1:8 --seq 1:60:512": Run(where="root"),
    "edgelstm unbundle lstm.tar.gz -o lstm && ./lstm/build_engine.sh":
        Run(where="root", codes=(3,), why="the engine build needs TensorRT: without it the script stops at "
                                          "`edgelstm build`, exit 3, after unbundle and its checks passed"),
    "edgelstm unbundle --verify-only lstm.tar.gz --json": Run(where="root"),
    # check on your devices
    "edgelstm remote edgelstm-out/lstm_regressor nvidia@orin-nano-1 nvidia@xavier-nx-1 --markdown fleet.md "
    "--html fleet.html": Skip(DEVICES, run_by("test_remote_ssh", DEVICE_TEST)),
    "edgelstm compare results/*.json --markdown fleet.md --html fleet.html":
        Skip(DEVICES, run_by("test_remote_ssh", DEVICE_TEST)),
    # inspect, doctor
    "edgelstm inspect model.onnx": Run(),
    "edgelstm inspect untrusted.onnx --describe-only": Run(prepare=prepare_untrusted),
    # development
    "bash scripts/test.sh -x -q": Skip(SUITE, script_runs("scripts/test.sh", 'exec .venv/bin/python -m pytest "$@"')),
    "bash scripts/test.sh -m trt": Skip(SUITE + " (the TensorRT tests)", paths_exist("tests/test_tensorrt_real.py")),
    "bash scripts/gpu-check.sh": Skip("needs a CUDA GPU", paths_exist("scripts/gpu-check.sh", "tests/test_gpu.py")),
    "bash scripts/test.sh tests/bad_input tests/fuzz": Skip(SUITE, paths_exist("tests/bad_input", "tests/fuzz")),
    "EDGELSTM_FUZZ=long .venv/bin/python -m pytest tests/fuzz -q": Skip(SUITE, paths_exist("tests/fuzz/fuzzing.py")),
    # examples/README.md
    "edgelstm quantize model.onnx --precision int8 --mode dynamic -o model.int8.onnx": Run(),
    'edgelstm validate -r model.pt -c model.int8.onnx --data val.npz --gate "rel_l2<=0.05" --report drift.json '
    "--junit drift.xml --markdown drift.md": Run(),
    "edgelstm bundle examples/pipelines/edgelstm-out/lstm_regressor -o lstm.tar.gz --pipeline "
    "examples/pipelines/lstm_regressor.toml --precision fp16 --batch 1:1:8 --seq 1:60:512": Run(where="root"),
}


def documented() -> list[str]:
    """Every command of the documents, in order, each once."""
    return list(dict.fromkeys(c for doc in DOCS for c in doc_commands(doc.read_text())))


def test_every_readme_command_is_covered():
    commands = documented()
    uncovered = [c for c in commands if c not in COVERAGE]
    stale = [c for c in COVERAGE if c not in commands]
    assert not uncovered, "README commands no test runs (add them to COVERAGE in tests/test_readme.py): " + \
        "; ".join(uncovered)
    assert not stale, "COVERAGE entries the README no longer has: " + "; ".join(stale)
    for command, plan in COVERAGE.items():
        assert not isinstance(plan, Run) or plan.as_run is None or plan.why, f"{command}: as_run needs a why"


def test_extraction_joins_continuations_and_drops_comments():
    text = "```bash\nedgelstm a \\\n    --b \"x # y\"   # note\n# only a comment\n\n```\n```toml\nx = 1\n```\n"
    assert doc_commands(text) == ['edgelstm a --b "x # y"']


@pytest.mark.parametrize("command", [c for c, p in COVERAGE.items() if isinstance(p, Skip)])
def test_skipped_commands_still_check_out(command):
    COVERAGE[command].check(command)  # type: ignore[union-attr]


def _run(command: str, plan: Run, root: Path) -> str | None:
    """Run one command as planned; None when it did what was expected, else what went wrong."""
    cwd = root / "edgelstm-demo" if plan.where == "demo" else root
    if plan.prepare is not None:
        plan.prepare(cwd)
    line = plan.as_run or command
    then_cd = re.fullmatch(r"(.*) && cd (\S+)", line)
    line = then_cd.group(1) if then_cd else line
    code, output = _in_process(line, cwd) if _plain(line) and not plan.env else _in_bash(line, cwd, plan.env)
    if code not in plan.codes:
        tail = "\n".join(output.strip().splitlines()[-8:])
        return f"`{command}` in {cwd.name}/ exited {code} (expected {plan.codes}):\n{tail}"
    if then_cd and not (cwd / then_cd.group(2)).is_dir():
        return f"`{command}`: no folder {then_cd.group(2)} to cd into"
    if plan.after is not None:
        plan.after(cwd)
    return None


#: torch's intra-op threads for the commands: one. On the 2 shared cores this suite runs on, a second torch thread
#: spin-waits for a CPU another process holds (validating the demo took 26 s instead of 2.3 s); no README command
#: depends on the default (bench's `--threads` rows set their own).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _plain(line: str) -> bool:
    """An `edgelstm ...` line with no shell syntax: the same argv in bash and in-process."""
    return line.startswith("edgelstm ") and not re.search(r"[;&|<>$`]", line)


def _in_process(line: str, cwd: Path) -> tuple[int, str]:
    """The CLI in this process (what the console script runs, without re-importing torch for every command)."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    import torch

    before, threads = os.getcwd(), torch.get_num_threads()
    os.chdir(cwd)
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 does for the bash commands (see ONE_THREAD)
    try:
        res = CliRunner().invoke(app, shlex.split(line)[1:], env={"COLUMNS": "200"})
    finally:
        os.chdir(before)
        torch.set_num_threads(threads)
    return res.exit_code, res.output


def _in_bash(line: str, cwd: Path, extra: dict[str, str]) -> tuple[int, str]:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
           "COLUMNS": "200", **ONE_THREAD, **extra}
    proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("edgelstm-out", "__pycache__"))
    problems = []
    for command in documented():
        plan = COVERAGE.get(command)
        if isinstance(plan, Run):
            problem = _run(command, plan, tmp_path)
            if problem:
                problems.append(problem)
    assert not problems, "\n\n".join(problems)
