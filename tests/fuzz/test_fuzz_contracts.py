"""The input contract, fuzzed: ``--input`` / ``--state-arg`` / ``--input-size`` / ``--static`` combinations on
torch models that take plain data, ``(x, lengths)`` and ``(x, hidden)``, and packed-sequence ``lengths`` data.

Properties (run in-process with ``--json``): an exit code allowed for a user's input (0 or 2; never 4), one
``error:`` line exactly when it failed, no traceback, one JSON object on stdout. Where the answer is known it is
checked: options that contradict each other are refused naming both; lengths outside [1, seq] are refused
naming ``lengths`` and never reach torch or onnxruntime, lengths inside are accepted."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .fuzzing import NASTY_STRINGS, scratch
from .test_fuzz_manifest_commands import run_edgelstm

DIMS = st.one_of(st.sampled_from(["batch", "seq", "time", 1, 3, 4, 8, 0, -1, 2 ** 40, "a b", "", "1.5"]),
                 st.integers(-2, 9))
NAMES = st.one_of(st.sampled_from(["x", "lengths", "hidden", "input", "tokens", "h0", "seq_len", "mask", "X"]),
                  st.sampled_from(NASTY_STRINGS))
DTYPES = st.sampled_from(["float32", "float16", "int64", "int32", "bool", "float8", "int4", "FLOAT32", ""])


@st.composite
def input_spec(draw) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=30))
    dims = ",".join(str(d) for d in draw(st.lists(DIMS, max_size=4)))
    rng = draw(st.one_of(st.just(""), st.tuples(st.integers(-3, 50), st.integers(-3, 50)).map(lambda t: f"@{t[0]}:{t[1]}")))
    return f"{draw(NAMES)}:{draw(DTYPES)}[{dims}]{rng}"


@st.composite
def contract_options(draw) -> tuple[list[str], dict]:
    """Command-line options describing a model's inputs, and what they say (for the oracle)."""
    args: list[str] = []
    said: dict = {"inputs": draw(st.lists(input_spec(), max_size=3))}
    for spec in said["inputs"]:
        args += ["--input", spec]
    said["state_arg"] = draw(st.one_of(st.none(), NAMES))
    if said["state_arg"] is not None:
        args += ["--state-arg", said["state_arg"]]
    said["input_size"] = draw(st.one_of(st.none(), st.sampled_from([1, 3, 4, 5, 0, -1, 2 ** 40])))
    if said["input_size"] is not None:
        args += ["--input-size", str(said["input_size"])]
    said["static"] = draw(st.one_of(st.none(), st.sampled_from(["1x6", "2x3", "0x5", "x", "1x100000000", "3*4"])))
    if said["static"] is not None:
        args += ["--static", said["static"]]
    return args, said


#: model -> (files, its forward's argument names)
MODELS = {
    "plain": (("m.pt",), ("x",)),
    "packed": (("packed_sd.pt", "--factory", "{d}/models.py:packed"), ("x", "lengths")),
    "hidden": (("hidden_sd.pt", "--factory", "{d}/models.py:hidden"), ("x", "hidden")),
}


def check_outcome(code: int, stdout: str, stderr: str, what: str) -> dict:
    assert code in (0, 2), f"exit {code} for {what}\n{stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, f"{what}\n{stderr}"
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == (1 if code else 0), f"{what}\n{stderr}"
    obj = json.loads(stdout)
    assert obj["exit_code"] == code and obj["ok"] is (code == 0)
    if code:
        assert obj["kind"] == "bad_input" and obj["error"] == errors[0].removeprefix("error:").strip()
    return obj


@pytest.fixture(scope="module")
def shared_dir(tiny_lstm, tmp_path_factory):
    from contract_models import shared

    d = scratch(tmp_path_factory, "contracts")
    for f in shared().iterdir():
        shutil.copy2(f, d / f.name)
    shutil.copy2(tiny_lstm.pt, d / "m.pt")
    return d


def _contradictions(said: dict, forward: tuple[str, ...]) -> list[str]:
    """The options the oracle knows must be named (refused, or for inspect noted) when the parser accepted the
    rest: --input-size against --input, --state-arg against --input or naming the data argument."""
    from edgelstm.errors import BadInput
    from edgelstm.models.inputs import parse_inputs

    if said["static"] in ("0x5", "x") or said["input_size"] is not None and said["input_size"] < 1:
        return []  # refused for its own value first
    try:
        inputs = parse_inputs(said["inputs"])
    except BadInput:
        return []  # refused for its syntax: any one-line error will do
    flags = []
    sizes = {t.shape[-1] for t in inputs if t.role is None and not t.is_integer and t.shape
             and isinstance(t.shape[-1], int)}
    if inputs and said["input_size"] is not None and sizes != {said["input_size"]}:
        flags.append("--input-size")
    if said["state_arg"] and (said["state_arg"] in {t.name for t in inputs} or said["state_arg"] == forward[0]):
        flags.append("--state-arg")
    return flags


@pytest.mark.parametrize("model", list(MODELS))
def test_input_options_on_inspect(model, shared_dir):
    files, forward = MODELS[model]

    @settings(max_examples=max(3, settings().max_examples // 2))
    @given(contract_options())
    def run(options):
        args, said = options
        argv = ["inspect", str(shared_dir / files[0]), *[a.format(d=shared_dir) for a in files[1:]], *args, "--json"]
        code, stdout, stderr = run_edgelstm(*argv)
        check_outcome(code, stdout, stderr, " ".join(argv))
        flags = _contradictions(said, forward)
        if flags:  # inspect describes a model it cannot call, saying why: either way the option is named
            assert any(f in stderr for f in flags), f"{argv}: expected {flags} named\n{stderr}"

    run()


LENGTH_VALUES = st.one_of(st.integers(-3, 10), st.sampled_from([0, 2 ** 62, -(2 ** 63), 2 ** 31, 6, 1]))


@st.composite
def packed_data(draw) -> tuple[int, list, str]:
    n, seq = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    values = draw(st.lists(LENGTH_VALUES, min_size=n, max_size=n))
    kind = draw(st.sampled_from(["int64", "int64", "int32", "float-whole", "float-half"]))
    return seq, values, kind


def _expected(seq: int, values: list, kind: str) -> bool:
    """Whether the data is good: every length an integer in [1, seq] that the dtype holds."""
    if kind == "float-half":
        return False
    if kind == "int32" and any(not -(2 ** 31) <= v < 2 ** 31 for v in values):
        return False
    return all(1 <= v <= seq for v in values)


def _write(path, seq: int, values: list, kind: str) -> None:
    n = len(values)
    x = np.random.default_rng(0).standard_normal((n, seq, 4)).astype(np.float32)
    if kind == "float-half":
        lengths = np.array(values, np.float64) + 0.5
    elif kind == "float-whole":
        lengths = np.array(values, np.float64)
    elif kind == "int32":
        lengths = np.array([v if -(2 ** 31) <= v < 2 ** 31 else 2 ** 31 - 1 for v in values], np.int64)
        if any(not -(2 ** 31) <= v < 2 ** 31 for v in values):
            lengths = np.array(values, np.int64)  # cannot be int32: stays int64 (and is out of range anyway)
        else:
            lengths = lengths.astype(np.int32)
    else:
        lengths = np.array(values, np.int64)
    np.savez(path, x=x, lengths=lengths)


@pytest.mark.parametrize("reference", ["onnx", "torch"])
def test_packed_lengths(reference, shared_dir):
    ref = ([str(shared_dir / "packed.onnx")] if reference == "onnx"
           else [str(shared_dir / "packed_sd.pt"), "--factory", f"{shared_dir}/models.py:packed"])

    @settings(max_examples=max(3, settings().max_examples // (1 if reference == "onnx" else 2)))
    @given(packed_data())
    def run(data):
        seq, values, kind = data
        path = shared_dir / "fuzz_lengths.npz"
        _write(path, seq, values, kind)
        argv = ["validate", "-r", *ref, "-c", str(shared_dir / "packed.onnx"), "--data", str(path), "--json", "-q"]
        code, stdout, stderr = run_edgelstm(*argv)
        what = f"lengths {values} ({kind}) for seq {seq}"
        check_outcome(code, stdout, stderr, what)
        good = _expected(seq, values, kind)
        assert code == (0 if good else 2), f"{what}: exit {code}\n{stderr}"
        if not good:
            assert "'lengths'" in stderr and "onnxruntime" not in stderr and "RuntimeError" not in stderr, stderr

    run()
