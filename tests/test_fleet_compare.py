"""`edgelstm compare`: devices' results files merged into one report (artifacts x devices), its exit code (the worst
device's), its Markdown/HTML/JSON; the inventory file and the fleet's selection, retry and naming rules. Results
files are written here as device-check writes them (the real ones come from tests/test_fleet_device_check.py and
tests/test_remote_ssh.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgelstm.errors import BadInput


def results(name: str, *, rel=1e-3, passed=True, p50=0.5, energy=None, jetson=None, transport=None) -> dict:
    gate = {"artifact": "model.int8.onnx", "gate": "rel_l2:y<=0.01", "metric": "rel_l2", "output": "y", "limit": 0.01,
            "value": rel, "passed": passed, "exit_code": 0 if passed else 1}
    art = {"name": "model.int8.onnx", "kind": "onnx", "backend": "onnxruntime", "status": "ok",
           "validate": {"passed": passed, "outputs": {"y": {"rel_l2": rel}}, "gates": []},
           "bench": [{"mode": "window", "batch": 1, "seq": 60, "threads": 1,
                      "latency_ms": {"p50": p50, "p99": p50 * 2}}]}
    if energy is not None:
        art["energy"] = {"total": {"mj_per_inference": energy, "dynamic_mj_per_inference": energy / 2}}
    device = {"name": name, "kind": "jetson" if jetson else "cpu", "isa": "arm64" if jetson else "x86-vnni",
              "cpu": {"model": "cpu " + name}, "jetson": jetson}
    r = {"schema": "edgelstm.device-check/1", "device": device, "bundle": {"name": "b.tar.gz", "sha256": "ab" * 32},
         "artifacts": [art], "gates": [gate], "steps": [], "exit_code": 0 if passed else 1, "passed": passed}
    if transport:
        r.update(artifacts=[], gates=[], exit_code=3, passed=False, transport=transport)
    return r


def write(tmp_path: Path, r: dict) -> Path:
    p = tmp_path / f"{r['device']['name']}.json"
    p.write_text(json.dumps(r))
    return p


ORIN = {"model": "NVIDIA Jetson Orin Nano Developer Kit", "l4t": "36.4.3", "jetpack": {"version": "6.2"},
        "nvpmodel": {"mode": "15W"}, "jetson_clocks": True, "clocks": {"gpu_mhz": 1020, "emc_mhz": 3199}}


def test_compare_merges_devices_into_one_report(tmp_path, cli):
    files = [write(tmp_path, results("orin-1", rel=2e-3, p50=0.9, energy=1.25, jetson=ORIN)),
             write(tmp_path, results("x86-1", rel=1e-3, p50=0.25))]
    md, html, js = tmp_path / "fleet.md", tmp_path / "fleet.html", tmp_path / "fleet.json"
    code, out, err = cli("compare", *files, "--markdown", md, "--html", html, "--report", js, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report.pop("ok") is True  # --json adds how the command ended; the rest is the report file
    assert report == json.loads(js.read_text()) and report["passed"] and report["exit_code"] == 0
    cell = report["cells"]["model.int8.onnx"]
    assert cell["orin-1"]["rel_l2"] == 2e-3 and cell["x86-1"]["p50_ms"] == 0.25 and cell["orin-1"]["mj"] == 1.25
    assert report["drift_spread"]["model.int8.onnx"] == pytest.approx(1e-3)
    text = md.read_text()
    assert "| model.int8.onnx | pass | pass |" in text
    assert "| model.int8.onnx | 0.002 | 0.001 | 0.001 |" in text
    assert "| model.int8.onnx | 0.9 / 1.8 | 0.25 / 0.5 |" in text
    assert "| model.int8.onnx | 1.25 / 0.625 | – |" in text  # energy: Jetsons only
    assert "NVIDIA Jetson Orin Nano Developer Kit, JetPack 6.2 (L4T 36.4.3)" in text
    assert "nvpmodel 15W, jetson_clocks on, GPU 1020 MHz, EMC 3199 MHz" in text
    assert "<table>" in html.read_text() and "orin-1" in html.read_text()


def test_a_failed_gate_is_exit_1_and_named(tmp_path, cli):
    files = [write(tmp_path, results("ok-1")), write(tmp_path, results("bad-1", rel=0.02, passed=False))]
    code, _, err = cli("compare", *files, "--markdown", tmp_path / "f.md")
    assert code == 1 and "gate failed on bad-1: model.int8.onnx" in err
    assert "| model.int8.onnx | pass | FAIL rel_l2:y<=0.01 (0.02) |" in (tmp_path / "f.md").read_text()


def test_a_device_that_did_not_finish_is_exit_3_and_says_where(tmp_path, cli):
    lost = {"host": "nvidia@xavier-1", "failed_step": "run", "error": "the connection was lost (ssh exit 255)",
            "last_progress": "[2/5] check model.onnx", "steps": []}
    files = [write(tmp_path, results("ok-1")), write(tmp_path, results("xavier-1", transport=lost))]
    code, out, err = cli("compare", *files, "--json")
    report = json.loads(out)
    assert code == 3 and report["exit_code"] == 3
    row = next(d for d in report["devices"] if d["name"] == "xavier-1")
    assert row["status"] == "incomplete" and row["failed_step"] == "run"
    assert "did not finish: xavier-1" in err
    assert "stopped at run: the connection was lost (ssh exit 255) (last: [2/5] check model.onnx)" in err


def test_markdown_cells_cannot_be_broken_by_names(tmp_path):
    from edgelstm.fleet.compare import merge_results
    from edgelstm.fleet.report import render_html, render_markdown

    r = results("evil|name<script>")
    text = render_markdown(merge_results([r]))
    assert "evil\\|name" in text and "<script>" not in render_html(merge_results([r]))


@pytest.mark.parametrize("content, needle", [("{", "is not JSON"), ('{"schema": "x"}', "not an edgelstm device-check"),
                                             ('{"schema": "edgelstm.device-check/1"}', "needs a device block")])
def test_bad_results_files_are_one_line_exit_2(tmp_path, cli, content, needle):
    p = tmp_path / "r.json"
    p.write_text(content)
    code, _, err = cli("compare", p)
    assert code == 2 and needle in err and "Traceback" not in err
    code, _, err = cli("compare", tmp_path / "missing.json")
    assert code == 2 and "does not exist" in err


# ------------------------------------------------------------------------------------------- inventory

INVENTORY = """
[defaults]
python = "/usr/bin/python3"
retries = 2
concurrency = 3
ssh_config = "fleet_ssh_config"

[[device]]
name = "orin-nano-1"
host = "orin-nano-1.lab"
user = "nvidia"
labels = ["orin-nano", "jetson"]

[[device]]
name = "xavier-nx-1"
host = "xavier-nx-1.lab"
labels = ["xavier-nx", "jetson"]
python = "/opt/py/bin/python3"

[[device]]
host = "edge-x86"
port = 2222
labels = ["x86-avx2"]
args = ["--no-energy"]
"""


def test_inventory_and_selection(tmp_path):
    from edgelstm.fleet.inventory import load_inventory, select, target_of

    p = tmp_path / "fleet.toml"
    p.write_text(INVENTORY)
    inv = load_inventory(p)
    assert [t.name for t in inv.devices] == ["orin-nano-1", "xavier-nx-1", "edge-x86"]
    assert (inv.retries, inv.concurrency, inv.timeout) == (2, 3, 1800.0)
    orin, xavier, x86 = inv.devices
    assert orin.destination == "nvidia@orin-nano-1.lab" and orin.python == "/usr/bin/python3"
    assert xavier.python == "/opt/py/bin/python3" and x86.port == 2222 and x86.extra_args == ("--no-energy",)
    assert orin.ssh_config == tmp_path / "fleet_ssh_config"
    assert [t.name for t in select(inv, labels=("jetson",))] == ["orin-nano-1", "xavier-nx-1"]
    assert [t.name for t in select(inv, hosts=("edge-x86",))] == ["edge-x86"]
    assert [t.name for t in select(inv, hosts=("xavier-nx-1", "edge-x86"), labels=("jetson",))] == ["xavier-nx-1"]
    with pytest.raises(BadInput, match="not in the inventory"):
        select(inv, hosts=("nano-9",))
    with pytest.raises(BadInput, match="no device carries the label"):
        select(inv, labels=("thor",))
    t = target_of("nvidia@10.0.0.7:2200", python="python3")
    assert (t.name, t.user, t.host, t.port) == ("nvidia@10.0.0.7", "nvidia", "10.0.0.7", 2200)


@pytest.mark.parametrize("text, needle", [
    ("[[device]]\nhost = 'a'\ncolour = 'red'\n", "unknown key(s) ['colour']"),
    ("[defaults]\nthreads = 2\n[[device]]\nhost = 'a'\n", "[defaults]: unknown key(s) ['threads']"),
    ("[[device]]\nname = 'a'\n", "host must be a str"),
    ("[[device]]\nhost = 'a'\n[[device]]\nhost = 'a'\n", "appear twice"),
    ("[[device]]\nhost = '-oProxyCommand=x'\n", "is not a host name"),
    ("[[device]]\nhost = 'a'\nworkdir = '/tmp/$(x)'\n", "workdir"),
    ("[defaults]\n", "no [[device]] entries")])
def test_bad_inventories(tmp_path, text, needle):
    from edgelstm.fleet.inventory import load_inventory

    p = tmp_path / "fleet.toml"
    p.write_text(text)
    with pytest.raises(BadInput) as e:
        load_inventory(p)
    assert needle in str(e.value)


def test_remote_usage_errors_are_one_line(tmp_path, cli):
    p = tmp_path / "fleet.toml"
    p.write_text(INVENTORY)
    b = tmp_path / "b.tar.gz"
    b.write_bytes(b"")
    for args, needle in ((["--label", "jetson"], "pick devices from --inventory"),
                         ([], "name the devices"),
                         (["host1", "--inventory", p], "not both")):
        code, _, err = cli("remote", b, *args)
        assert code == 2 and needle in err and "Traceback" not in err, err


def test_retry_rules_and_result_names():
    from edgelstm.fleet.fleet import results_name, retryable

    assert retryable({"transport": {"failed_step": "connect"}})
    assert retryable({"transport": {"failed_step": "run", "steps": [{"step": "run", "status": "failed", "rc": 255}]}})
    assert not retryable({"transport": {"failed_step": "run", "steps": [{"step": "run", "status": "failed", "rc": 3}]}})
    assert not retryable({"transport": {"steps": []}, "exit_code": 1})  # a failed gate is an answer, not a glitch
    assert results_name("nvidia@orin/1") == "nvidia@orin_1"
