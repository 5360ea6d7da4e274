"""Gates from --gate strings and policy TOML, resolution per output, evaluation, baselines."""

from __future__ import annotations

import pytest

from edgelstm.errors import BadInput
from edgelstm.validation.gates import (Gate, baseline_gates, evaluate_gates, load_baseline, load_policy, parse_gate,
                            parse_policy, resolve_gates)


@pytest.mark.parametrize("text, metric, output, op, limit", [
    ("rel_l2<=0.01", "rel_l2", None, "<=", 0.01),
    ("max_abs:y <= 1e-5", "max_abs", "y", "<=", 1e-5),
    ("cosine>=0.999", "cosine", None, ">=", 0.999),
    ("cosine=0.999", "cosine", None, ">=", 0.999),           # natural direction
    ("rmse=0.1", "rmse", None, "<=", 0.1),
    ("accuracy>=0.9", "accuracy", None, ">=", 0.9),
    ("streaming.max_abs:y<=1e-4", "streaming.max_abs", "y", "<=", 1e-4),
])
def test_parse_gate(text, metric, output, op, limit):
    g = parse_gate(text)
    assert (g.metric, g.output, g.op, g.limit, g.source) == (metric, output, op, limit, "cli")


@pytest.mark.parametrize("text, needle", [
    ("bogus<=1", "unknown metric 'bogus'"),
    ("rel_l2 < 0.1", "is not METRIC"),
    ("rel_l2<=abc", "expected a number"),
    ("", "is not METRIC"),
])
def test_parse_gate_errors(text, needle):
    with pytest.raises(BadInput, match=needle):
        parse_gate(text)


POLICY = """
[default]
rel_l2 = 0.01
cosine = 0.999

[outputs.y]
rel_l2 = 0.05
max_abs = "<= 0.2"

[task]
mse_delta = 0.001
accuracy = { min = 0.9 }

[streaming]
max_abs = 1e-4

[baseline]
tolerance = 0.2
floor = 1e-5
"""


def test_load_policy(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text(POLICY)
    pol = load_policy(p)
    got = {(g.metric, g.output, g.op, g.limit) for g in pol.gates}
    assert got == {("rel_l2", None, "<=", 0.01), ("cosine", None, ">=", 0.999), ("rel_l2", "y", "<=", 0.05),
                   ("max_abs", "y", "<=", 0.2), ("mse_delta", None, "<=", 0.001), ("accuracy", None, ">=", 0.9),
                   ("streaming.max_abs", None, "<=", 1e-4)}
    assert all(g.source == "policy" for g in pol.gates)
    assert pol.baseline_tolerance == 0.2 and pol.baseline_floor == 1e-5


@pytest.mark.parametrize("data, needle", [
    ({"default": {"bogus": 0.1}}, "unknown metric 'bogus'"),
    ({"outputs": {"y": {"rel_l3": 0.1}}}, "unknown metric 'rel_l3'"),
    ({"task": {"rmse": 0.1}}, "unknown metric 'rmse'"),
    ({"streaming": {"acc": 0.1}}, "unknown metric 'acc'"),
    ({"gates": {}}, "unknown key 'gates'"),
    ({"baseline": {"tol": 0.1}}, "unknown key 'tol'"),
    ({"default": {"rel_l2": "lots"}}, "expected a number"),
    ({"default": {"accuracy": 0.9}}, "not a per-output metric"),
    ({"default": {"rmse": {"maximum": 1}}}, "got keys"),
])
def test_policy_errors_name_the_key(data, needle):
    with pytest.raises(BadInput, match=needle):
        parse_policy(data, name="p.toml")


def test_policy_bad_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[default\nrel_l2 = ")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_policy(p)
    with pytest.raises(BadInput, match="does not exist"):
        load_policy(tmp_path / "nope.toml")


def test_policy_and_baseline_files_that_are_not_text_are_one_line(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "latin1.toml").write_bytes(b"[default]\nrel_l2 = 0.01 # \xe9\xff\n")
    (tmp_path / "latin1.json").write_bytes(b'{"outputs": {"\xe9": 1}}')
    for load, name, needle in ((load_policy, "dir.toml", "is a directory"), (load_policy, "latin1.toml", "not UTF-8"),
                               (load_baseline, "latin1.json", "not UTF-8"), (load_baseline, "nope.json", "does not exist")):
        with pytest.raises(BadInput, match=needle) as exc:
            load(tmp_path / name)
        assert "\n" not in str(exc.value)


def test_one_drift_budget_parser_for_max_drift():
    """--max-drift (the quantize fallback's DriftBudget) is parsed and checked here, against one metric list."""
    from edgelstm.validation.budget import DriftBudget
    from edgelstm.validation.gates import ALL_METRICS, BUDGET_METRICS, parse_budget

    assert parse_budget("RMSE:1e-3") == ("rmse", 1e-3) and parse_budget("rel_l2 <= 0.01") == ("rel_l2", 0.01)
    assert set(BUDGET_METRICS) == {"max_abs", "mean_abs", "rmse", "rel_l2"} and set(BUDGET_METRICS) < set(ALL_METRICS)
    for metric in BUDGET_METRICS:
        assert DriftBudget.parse(f"{metric}=0.1") == DriftBudget(metric, 0.1)
    for bad in ("cosine=0.9", "rel_l2=-1", "rel_l2=nan", "rel_l2", "rel_l2=x"):
        with pytest.raises(BadInput) as ours:
            parse_budget(bad)
        with pytest.raises(BadInput) as theirs:
            DriftBudget.parse(bad)
        assert str(ours.value) == str(theirs.value) and str(ours.value).startswith("--max-drift")
    with pytest.raises(BadInput, match="unknown metric 'cosine'"):
        DriftBudget("cosine", 0.9)


def test_resolve_expands_and_most_specific_wins():
    pol = parse_policy({"default": {"rel_l2": 0.01, "max_abs": 1.0}, "outputs": {"y": {"rel_l2": 0.05}}})
    cli = [parse_gate("max_abs<=0.5")]
    gates = resolve_gates([*pol.gates, *cli], ["y", "z"])
    by_key = {(g.metric, g.output): g for g in gates}
    assert by_key[("rel_l2", "y")].limit == 0.05        # per-output policy beats the policy default
    assert by_key[("rel_l2", "z")].limit == 0.01
    assert by_key[("max_abs", "y")].limit == 0.5 and by_key[("max_abs", "y")].source == "cli"  # CLI beats policy
    assert len(gates) == 4


def test_resolve_unknown_output_and_missing_labels():
    with pytest.raises(BadInput, match="unknown output 'q'"):
        resolve_gates([parse_gate("rel_l2:q<=0.1")], ["y"])
    with pytest.raises(BadInput, match="need labels"):
        resolve_gates([parse_gate("accuracy>=0.9")], ["y"])
    with pytest.raises(BadInput, match="not a regression metric"):
        resolve_gates([parse_gate("accuracy>=0.9")], ["y"], task_kind="regression", task_output="y")
    with pytest.raises(BadInput, match="stateful candidate"):
        resolve_gates([parse_gate("streaming.rmse<=0.1")], ["y"])
    # a shared policy's gates that do not apply to this run are dropped, not errors
    pol = parse_policy({"task": {"accuracy": 0.9}, "streaming": {"rmse": 0.1}})
    assert resolve_gates(pol.gates, ["y"]) == []
    g = resolve_gates([parse_gate("mse<=0.1")], ["y"], task_kind="regression", task_output="y")
    assert g[0].output == "y"


RESULT = {
    "outputs": {"y": {"max_abs": 0.2, "rel_l2": 0.01, "cosine": 0.998, "per_step_rmse": [0.1, 0.3]}},
    "task": {"output": "y", "kind": "regression", "mse": 0.5},
    "streaming": {"outputs": {"y": {"max_abs": 1e-7}}},
}


def test_evaluate_collects_every_failure():
    gates = [Gate("max_abs", 0.1, "<=", "y"), Gate("rel_l2", 0.02, "<=", "y"), Gate("cosine", 0.999, ">=", "y"),
             Gate("max_step_rmse", 0.25, "<=", "y"), Gate("mse", 1.0, "<=", "y"),
             Gate("streaming.max_abs", 1e-6, "<=", "y"), Gate("mae", 1.0, "<=", "y")]
    res = evaluate_gates(gates, RESULT)
    passed = {r.metric: r.passed for r in res}
    assert passed == {"max_abs": False, "rel_l2": True, "cosine": False, "max_step_rmse": False, "mse": True,
                      "streaming.max_abs": True, "mae": False}
    assert res[0].value == 0.2 and "budget <= 0.1" in res[0].message
    assert res[3].value == 0.3
    assert res[-1].value is None and "not computed" in res[-1].message
    assert res[2].to_dict() == {"metric": "cosine", "output": "y", "limit": 0.999, "value": 0.998,
                                "passed": False, "op": ">=", "source": "cli",
                                "message": "cosine:y = 0.998, budget >= 0.999"}


def test_baseline_growth_tolerance_and_floor():
    old = {"outputs": {"y": {"max_abs": 0.1, "rel_l2": 0.0, "cosine": 0.99, "rmse": 0.05}}}
    new = {"outputs": {"y": {"max_abs": 0.109, "rel_l2": 5e-7, "cosine": 0.9895, "rmse": 0.06}}}
    res = {r.metric: r for r in baseline_gates(old, new, tolerance=0.10, floor=1e-6)}
    assert res["max_abs"].passed and res["max_abs"].limit == pytest.approx(0.110001)
    assert res["rel_l2"].passed                         # zero-drift baseline: the floor absorbs noise
    assert res["cosine"].passed and res["cosine"].op == ">=" and res["cosine"].limit == pytest.approx(1 - 0.011001)
    assert not res["rmse"].passed and res["rmse"].baseline == 0.05 and "drifted beyond the baseline" in res["rmse"].message
    assert all(r.source == "baseline" for r in res.values())
    worse = {"outputs": {"y": {"max_abs": 0.2, "rel_l2": 1e-3, "cosine": 0.9, "rmse": 0.05}}}
    res = {r.metric: r.passed for r in baseline_gates(old, worse)}
    assert res == {"max_abs": False, "rel_l2": False, "cosine": False, "rmse": True}


def test_load_baseline_rejects_other_json(tmp_path):
    p = tmp_path / "b.json"
    p.write_text('{"results": []}')
    with pytest.raises(BadInput, match="not an `edgelstm validate --report`"):
        load_baseline(p)
    p.write_text("{nope")
    with pytest.raises(BadInput, match="not valid JSON"):
        load_baseline(p)
