"""Same-run accuracy comparison (edgelstm.validation.compare): NEW and OLD validated against the same reference on
the same data; budgets gate NEW alone, change gates gate NEW against OLD; the JSON, JUnit and Markdown reports
carry the comparison."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgelstm.errors import BadInput
from edgelstm.validation.compare import AgainstOptions, compare_accuracy
from edgelstm.validation.gates import parse_gates
from edgelstm.validation.reports import junit_xml, markdown_summary, report_dict
from edgelstm.validation.validate import DataRequest, ValidateOptions
from slowdown_models import pr_versions

DATA = DataRequest(synthetic=48, seq=12)


@pytest.fixture
def versions(tiny_lstm, tmp_path):
    v = pr_versions(tiny_lstm, tmp_path)
    return v.ref, v.old, v.doubled, v.worse


def test_same_outputs_pass_every_change_gate(versions):
    ref, old, slower, _ = versions
    res = compare_accuracy(ref, slower, old, DATA, ValidateOptions(streaming=False))
    assert res.passed and res.changes and all(g.source == "against" for g in res.changes)
    assert res.new.samples == res.old.samples == 48
    rep = report_dict(res.new)
    section = rep["against"]
    assert section["passed"] and section["old"].endswith("m.onnx") and section["compared"] == len(res.changes)
    rel = next(c for c in section["changes"] if c["metric"] == "rel_l2")
    assert rel["new"] == pytest.approx(rel["old"]) and rel["delta"] == pytest.approx(0.0, abs=1e-12)


def test_drift_that_grew_fails_against_old_and_every_report_says_so(versions):
    ref, old, _, worse = versions
    gates = tuple(parse_gates(["rel_l2<=0.5"]))  # NEW's own budget: loose, passes
    res = compare_accuracy(ref, worse, old, DATA, ValidateOptions(gates=gates, streaming=False),
                           AgainstOptions(tolerance=0.10, floor=1e-6))
    assert not res.passed
    assert all(g.passed for g in res.new.gates if g.source != "against")
    failed = {g.metric for g in res.failed_changes}
    assert {"rel_l2", "max_abs", "rmse"} <= failed
    rel = next(g for g in res.failed_changes if g.metric == "rel_l2")
    assert rel.value > rel.baseline * 1.1 and "OLD" in rel.message and "vs OLD" in rel.name

    rep = report_dict(res.new)
    assert rep["passed"] is False and any(n.startswith("vs OLD rel_l2") for n in rep["failed_gates"])
    root = ET.fromstring(junit_xml(res.new).split("\n", 1)[1])
    failing = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert any(n.startswith("vs OLD rel_l2:y <=") for n in failing)
    assert "OLD value:" in next(c.find("failure").text for c in root.iter("testcase") if c.find("failure") is not None)
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["against"].endswith("m.onnx")
    md = markdown_summary(res.new)
    assert "#### NEW vs OLD (`m.onnx`, same reference and data)" in md and "❌ drift grew beyond" in md
    assert "| rel_l2:y |" in md and "vs OLD" not in md.split("#### NEW vs OLD")[0]  # budgets table: budgets only


def test_budgets_gate_new_alone_and_old_is_reported(versions):
    ref, old, _, worse = versions
    # swap the roles: the worse model is main's, the good one the PR's; a budget only the worse one misses
    gates = tuple(parse_gates(["rel_l2<=1e-4"]))
    res = compare_accuracy(ref, old, worse, DATA, ValidateOptions(gates=gates, streaming=False))
    assert res.passed  # NEW meets its budget and got better than OLD
    section = report_dict(res.new)["against"]
    assert section["old_passed"] is False and not section["old_gates"][0]["passed"]
    assert "OLD itself misses 1 budget(s)" in markdown_summary(res.new)
    assert all(c["delta"] <= 0 or c["metric"] == "cosine" for c in section["changes"])


def test_nothing_in_common_is_refused(versions, monkeypatch):
    ref, old, slower, _ = versions
    import edgelstm.validation.compare as cmp

    monkeypatch.setattr(cmp, "baseline_gates", lambda *a, **k: [])
    with pytest.raises(BadInput, match="no output or task metric in common"):
        compare_accuracy(ref, slower, old, DATA, ValidateOptions(streaming=False))


def test_progress_is_reported_per_phase(versions):
    ref, old, slower, _ = versions
    seen: list[str] = []
    compare_accuracy(ref, slower, old, DATA, ValidateOptions(streaming=False),
                     on_progress=lambda phase, done, total: seen.append(phase))
    assert seen[0] == "old" and seen[-1] == "new" and set(seen) == {"old", "new"}


def test_against_options_are_checked():
    with pytest.raises(BadInput, match="--max-growth must be >= 1"):
        AgainstOptions(tolerance=-0.1)
    assert np.isclose(AgainstOptions().max_growth, 1.10)
