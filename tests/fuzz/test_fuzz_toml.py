"""Pipeline and policy TOML files: random text, mutated bytes of real files, and random tables (known and
unknown sections and keys, values of every type) through load_pipeline / parse_pipeline and load_policy /
parse_policy."""

from __future__ import annotations

import functools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import NASTY_STRINGS, json_values, mutated, only_ours, scalars, scratch

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def example_pipeline() -> bytes:
    return (ROOT / "examples" / "pipelines" / "lstm_regressor.toml").read_bytes()


POLICY = b"""[default]
rel_l2 = 0.01
cosine = ">= 0.999"
[outputs.y]
max_abs = {max = 0.05}
[task]
mse_delta = 0.001
[streaming]
max_abs = 1e-5
[streaming.y]
rel_l2 = 0.02
[baseline]
tolerance = 0.10
floor = 1e-6
"""

SECTION_KEYS = {
    "model": ["zoo", "source", "factory", "trust_pickle", "train_steps", "seed", "input_size", "config"],
    "export": ["seq_len", "batch", "opset", "stateful"],
    "quantize": ["precisions", "calib_method", "exclude", "target_cpu", "max_drift"],
    "data": ["synthetic", "seq", "seed", "validation", "calibration", "window", "features", "target"],
    "validate": ["gates", "precision_gates"],
    "bench": ["enabled", "batch", "seq", "threads", "iters", "warmup", "stream"],
    "targets": ["onnxruntime", "tensorrt"],
    "output": ["dir"],
}
GOOD_VALUES = {"zoo": "lstm_regressor", "train_steps": 2, "seq_len": 8, "precisions": ["fp16", "int8-dynamic"],
               "gates": ["rel_l2<=0.01"], "dir": "out", "synthetic": 8, "seq": 8, "iters": 2, "batch": [1]}


def values() -> st.SearchStrategy:
    return st.one_of(scalars(), st.lists(scalars(), max_size=3), st.dictionaries(st.sampled_from(
        ["hidden_size", "input_size", "num_layers", "fp16", "bogus", ""]), scalars(), max_size=3), json_values(6))


@st.composite
def pipeline_tables(draw) -> dict:
    data: dict = {}
    for section in draw(st.lists(st.sampled_from([*SECTION_KEYS, "extra", ""]), max_size=8, unique=True)):
        keys = SECTION_KEYS.get(section, ["x"])
        table = {}
        for key in draw(st.lists(st.sampled_from([*keys, "unknown"]), max_size=5, unique=True)):
            table[key] = GOOD_VALUES[key] if key in GOOD_VALUES and draw(st.booleans()) else draw(values())
        data[section] = table if draw(st.integers(0, 9)) else draw(values())
    if draw(st.booleans()):
        data.setdefault("model", {"zoo": "lstm_regressor"})
    return data


def _toml_text(path: Path, text: bytes, loader) -> None:
    path.write_bytes(text)
    only_ours(loader, path)


@given(mutated(example_pipeline()))
def test_pipeline_mutated_bytes(tmp_path_factory, text):
    from edgelstm.pipeline.config import load_pipeline

    _toml_text(scratch(tmp_path_factory, "toml") / "pipeline.toml", text, load_pipeline)


@given(st.text(max_size=300))
def test_pipeline_arbitrary_text(tmp_path_factory, text):
    from edgelstm.pipeline.config import load_pipeline

    _toml_text(scratch(tmp_path_factory, "toml") / "pipeline.toml", text.encode("utf-8", "surrogatepass"), load_pipeline)


@given(pipeline_tables())
def test_pipeline_random_tables(tmp_path_factory, data):
    from edgelstm.pipeline.config import parse_pipeline

    only_ours(parse_pipeline, data, base_dir=scratch(tmp_path_factory, "toml"))


@given(mutated(POLICY))
def test_policy_mutated_bytes(tmp_path_factory, text):
    from edgelstm.validation.gates import load_policy

    _toml_text(scratch(tmp_path_factory, "toml") / "policy.toml", text, load_policy)


@st.composite
def policy_tables(draw) -> dict:
    metrics = st.sampled_from(["rel_l2", "max_abs", "cosine", "mse_delta", "accuracy", "agreement", "bogus",
                               "max_step_rmse", "tolerance", "floor", *NASTY_STRINGS[:4]])
    budgets = st.one_of(scalars(), st.sampled_from(["<= 0.1", ">= 0.9", "<0.1", "== 1", "<= nan"]),
                        st.dictionaries(st.sampled_from(["max", "min", "mid"]), scalars(), max_size=2))
    tables = st.dictionaries(metrics, st.one_of(budgets, st.dictionaries(metrics, budgets, max_size=2)), max_size=3)
    return draw(st.dictionaries(st.sampled_from(["default", "outputs", "task", "streaming", "baseline", "other"]),
                                st.one_of(tables, st.dictionaries(st.sampled_from(["y", "x", ""]), tables, max_size=2),
                                          scalars()), max_size=4))


@given(policy_tables())
def test_policy_random_tables(data):
    from edgelstm.validation.gates import parse_policy

    only_ours(parse_policy, data)
