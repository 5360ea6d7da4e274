"""The remote path against REAL OpenSSH servers on 127.0.0.1 (tests/testbed.py): two sshd instances are two
devices; the device's Python is this interpreter, which runs the check from the wheels inside the bundle.

From a pipeline's output one command checks two devices and writes one report whose numbers equal the same check
run here; a failing gate makes exit 1 and the report names device and artifact; killing the connection mid-run
(the client here, or sshd's session on the device) leaves both sides clean and the report says where it stopped;
run directories a lost connection left are swept by the next connection; an unreachable device is retried and
reported; a device past its deadline is stopped. Skipped only when sshd is not installed (.ci/run installs it)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

try:
    import fleet_testbed as testbed
except ImportError:  # tests/ is a package in some layouts
    from tests import fleet_testbed as testbed  # type: ignore[no-redef]

pytestmark = pytest.mark.skipif(testbed.SSHD_MISSING is not None, reason=testbed.SSHD_MISSING or "")

README = Path(__file__).resolve().parents[1] / "README.md"
PIPELINE = testbed.tiny_pipeline()


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    lb = testbed.Loopback(tmp_path_factory.mktemp("ssh"), 2)
    yield lb
    lb.stop()


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory):
    """A real pipeline output: `edgelstm run` on a tiny LSTM (FP32, streaming FP32, INT8 dynamic)."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    d = tmp_path_factory.mktemp("pipe")
    (d / "pipeline.toml").write_text(PIPELINE)
    res = CliRunner().invoke(app, ["run", str(d / "pipeline.toml"), "--quiet"])
    assert res.exit_code == 0, res.stderr
    return d / "out"


def device_args(lb, work: Path) -> list[str]:
    return ["--ssh-config", str(lb.config), "--python", sys.executable, "--workdir", str(work)]


def clean(work: Path, timeout: float = 30.0) -> list[str]:
    """What is left in the device's run area once the device side has had time to notice (polled, no assertion
    on time)."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(os.listdir(work)) if work.exists() else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def gone(pid: int | None, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return pid is None


def readme_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Check on your devices", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("edgelstm ")]


@pytest.mark.slow
def test_readme_commands_check_two_devices_from_a_pipeline_output(loopback, pipeline_out, tmp_path, monkeypatch, cli):
    """README "Check on your devices", run as written with the hosts and ssh config of this test: one command ships
    the pipeline's output to two devices and writes the cross-device report; compare merges the same files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edgelstm-out").mkdir()
    (tmp_path / "edgelstm-out" / "lstm_regressor").symlink_to(pipeline_out, target_is_directory=True)
    remote_cmd, compare_cmd = readme_commands()
    work = tmp_path / "device-runs"
    args = shlex.split(remote_cmd)[1:]
    args = [a for a in args if not a.startswith("nvidia@")]
    args[2:2] = ["dev1", "dev2"]  # remote BUNDLE HOST...
    code, _, err = cli(*args, *device_args(loopback, work), "--iters", "3", "--report", "fleet.json")
    assert code == 0, err
    report = json.loads(Path("fleet.json").read_text())
    assert [d["name"] for d in report["devices"]] == ["dev1", "dev2"] and report["passed"]
    assert Path("fleet.md").is_file() and "all gates passed on 2 device(s)" in Path("fleet.md").read_text()
    for dev in ("dev1", "dev2"):
        r = json.loads(Path(f"results/{dev}.json").read_text())
        assert r["edgelstm"]["from"] == "bundle wheel"  # no package index on the device: the bundle's wheels ran
        assert [s["status"] for s in r["transport"]["steps"]] == ["ok"] * 5
        assert {a["name"] for a in r["artifacts"] if a["status"] == "ok"} == {
            "model.onnx", "model.stateful.onnx", "model.int8-dynamic.onnx"}
    assert clean(work) == []
    # the same numbers as the same check run here
    bundle = Path("results/bundle/lstm_regressor.check.tar.gz")
    code, _, err = cli("device-check", bundle, "-o", "local.json", "--iters", "3")
    assert code == 0, err
    local = {a["name"]: a for a in json.loads(Path("local.json").read_text())["artifacts"]}
    for dev in ("dev1", "dev2"):
        for name, cell in report["cells"].items():
            if cell[dev]["rel_l2"] is not None:
                assert cell[dev]["rel_l2"] == pytest.approx(local[name]["validate"]["outputs"]["y"]["rel_l2"],
                                                            rel=1e-6), (dev, name)
    import glob

    compare_args = [x for a in shlex.split(compare_cmd)[1:] for x in (sorted(glob.glob(a)) if "*" in a else [a])]
    code, out, err = cli(*compare_args, "--json")
    assert code == 0, err
    assert json.loads(out)["cells"] == report["cells"] and Path("fleet.html").is_file()


def inventory(tmp_path: Path, lb, *devices: str, **defaults) -> Path:
    lines = ["[defaults]", f'ssh_config = "{lb.config}"', f'python = "{sys.executable}"',
             f'workdir = "{tmp_path / "device-runs"}"', 'args = ["--only", "model.int8-dynamic.onnx", "--iters", "2"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in defaults.items()]
    p = tmp_path / "fleet.toml"
    p.write_text("\n".join(lines) + "\n" + "\n".join(devices))
    return p


def test_a_failing_gate_is_exit_1_and_the_report_names_device_and_artifact(loopback, pipeline_out, tmp_path, cli):
    strict = tmp_path / "strict.tar.gz"
    code, _, err = cli("bundle", pipeline_out, "-o", strict, "--check", "--gate", "rel_l2<=1e-3")
    assert code == 0, err
    inv = inventory(tmp_path, loopback, '[[device]]\nname = "xavier-sim"\nhost = "dev2"\nlabels = ["xavier-nx"]',
                    '[[device]]\nname = "orin-sim"\nhost = "dev1"\nlabels = ["orin-nano"]')
    code, _, err = cli("remote", strict, "--inventory", inv, "--label", "xavier-nx", "--results-dir", tmp_path / "r",
                       "--markdown", tmp_path / "f.md")
    assert code == 1, err
    text = (tmp_path / "f.md").read_text()
    assert "gate failed on xavier-sim: model.int8-dynamic.onnx" in text
    # the drift itself depends on the INT8 recipe (edgelstm quantize --target-cpu), not on the fleet code
    assert re.search(r"\| model\.int8-dynamic\.onnx \| FAIL rel_l2:y<=0\.001 \(0\.\d+\) \|", text), text
    assert not (tmp_path / "r" / "orin-sim.json").exists()  # not selected
    assert clean(tmp_path / "device-runs") == []


def temp_leftovers() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith(("edgelstm-push-", "edgelstm-pull-"))}


def ssh_children() -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(os.getpid())], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.split()[-1] in ("ssh", "scp")]


@pytest.mark.parametrize("side", ["client", "server"])
def test_killing_the_connection_mid_run_leaves_both_sides_clean(loopback, pipeline_out, tmp_path, side):
    """Mid-run (the device has started checking the second artifact) the connection is killed: here (the ssh
    client) or on the device (sshd's session process). The device stops its check and removes the run directory;
    nothing is left here; the results say the run stopped and after which progress line."""
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle
    from edgelstm.fleet.remote import RemoteOptions, run_remote
    from edgelstm.fleet.ssh import SshTarget

    bundle = make_bundle(pipeline_out, tmp_path / "b.tar.gz", BundleOptions(check=CheckOptions(iters=2))).path
    server = loopback.servers[0 if side == "client" else 1]
    work = tmp_path / "device-runs"
    target = SshTarget(name=f"dev-{side}", host=server.alias, python=sys.executable, workdir=str(work),
                       ssh_config=loopback.config)
    before = temp_leftovers()
    options = RemoteOptions()
    seen: dict = {}

    def progress(_name: str, line: str) -> None:
        if "[2/" in line and "check" in line and "killed" not in seen:
            run = options.keep["run"]
            seen.update(killed=line, worker=run.worker_pid, run_dir=run.run_dir,
                        owner=int(Path(run.run_dir, "owner").read_text()))
            if side == "client":
                options.keep["client"].cancel()
            else:
                for pid in server.session_pids():
                    os.kill(pid, signal.SIGKILL)

    options.progress = progress
    r = run_remote(bundle, target, tmp_path / "r.json", options)
    t = r["transport"]
    assert seen.get("killed"), "the test never reached the kill point"
    assert r["exit_code"] == 3 and t["failed_step"] == "run" and "connection was lost" in t["error"]
    assert "[2/" in t["last_progress"]
    assert [s["step"] for s in t["steps"]] == ["connect", "push", "run"]
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["transport"]["failed_step"] == "run"
    # the device: its check stopped, its run directory gone
    assert gone(seen["worker"]) and gone(seen["owner"])
    assert clean(work) == []
    # here: no temp dir, no ssh process left
    assert temp_leftovers() == before and ssh_children() == []


def test_the_next_connection_sweeps_what_a_lost_one_left(loopback, tmp_path):
    from edgelstm.fleet.remote import RemoteOptions, RemoteRun
    from edgelstm.fleet.ssh import SshTarget

    work = tmp_path / "device-runs"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lost = work / "run.lostconn"
    lost.mkdir(parents=True)
    (lost / "owner").write_text(f"{dead.pid}\n")
    (lost / "bundle.tar.gz").write_bytes(b"x" * 100)
    waiting = work / "run.justdone"  # a finished run whose results are not pulled yet: kept (for an hour)
    waiting.mkdir()
    (waiting / "done").touch()
    starting = work / "run.starting"  # made a moment ago by another connection, not running yet: kept
    starting.mkdir()
    target = SshTarget(name="dev1", host="dev1", python=sys.executable, workdir=str(work), ssh_config=loopback.config)
    run = RemoteRun(tmp_path / "unused.tar.gz", target, RemoteOptions())
    run.connect()
    assert run.facts["swept"] == [str(lost)]
    assert sorted(os.listdir(work)) == sorted(["run.justdone", "run.starting", Path(run.run_dir).name])
    assert run.facts["device_python"] == ".".join(map(str, sys.version_info[:3]))


def test_an_unreachable_device_is_retried_and_reported(loopback, pipeline_out, tmp_path, cli):
    closed = testbed.free_port()
    (tmp_path / "cfg").write_text(loopback.config.read_text() + f"Host gone\n  HostName 127.0.0.1\n  Port {closed}\n")
    inv = inventory(tmp_path, loopback, '[[device]]\nname = "gone-1"\nhost = "gone"\nlabels = ["edge"]',
                    '[[device]]\nname = "dev1"\nhost = "dev1"\nlabels = ["edge"]', retries=1, concurrency=2)
    inv.write_text(inv.read_text().replace(f'ssh_config = "{loopback.config}"', f'ssh_config = "{tmp_path / "cfg"}"'))
    b = tmp_path / "b.tar.gz"
    assert cli("bundle", pipeline_out, "-o", b, "--check")[0] == 0
    code, out, err = cli("remote", b, "--inventory", inv, "--label", "edge", "--results-dir", tmp_path / "r", "--json")
    assert code == 3, err
    report = json.loads(out)
    row = {d["name"]: d for d in report["devices"]}
    assert row["dev1"]["status"] == "passed" and row["gone-1"]["status"] == "incomplete"
    assert row["gone-1"]["failed_step"] == "connect" and "refused" in row["gone-1"]["error"].lower()
    assert json.loads((tmp_path / "r" / "gone-1.json").read_text())["transport"]["attempt"] == 2  # retried once
    assert "stopped at connect" in err


def test_a_device_past_its_deadline_is_stopped_and_cleaned(loopback, pipeline_out, tmp_path, cli):
    """A device whose check hangs (its Python sleeps before starting the check) is cut off at --timeout."""
    slow = tmp_path / "slowpython"
    slow.write_text(f'#!/bin/sh\ncase "$1" in\n  *device_check.py) exec {sys.executable} -c '
                    f'"import time; time.sleep(120)" ;;\n  *) exec {sys.executable} "$@" ;;\nesac\n')
    slow.chmod(0o755)
    b = tmp_path / "b.tar.gz"
    assert cli("bundle", pipeline_out, "-o", b, "--check", "--no-wheels")[0] == 0
    work = tmp_path / "device-runs"
    code, out, err = cli("remote", b, "dev2", "--ssh-config", loopback.config, "--python", slow, "--workdir", work,
                         "--timeout", "6", "--retries", "0", "--results-dir", tmp_path / "r", "--json")
    assert code == 3, err
    t = json.loads((tmp_path / "r" / "dev2.json").read_text())["transport"]
    assert t["failed_step"] == "run" and t["error"].startswith("timed out after 6 s during run")
    assert clean(work) == []
