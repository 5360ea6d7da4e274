"""`[devices]` in a pipeline file: `edgelstm run` ends with the fleet check (a real sshd on 127.0.0.1 as the
device), its verdict joins the run's exit code, and a misnamed device fails before any stage runs."""

from __future__ import annotations

import json
import sys

import pytest

try:
    import fleet_testbed as testbed
except ImportError:  # tests/ is a package in some layouts
    from tests import fleet_testbed as testbed  # type: ignore[no-redef]



def test_bad_devices_fail_before_any_stage(tmp_path, cli):
    for devices, needle in (('inventory = "missing.toml"', "devices: [devices].inventory file"),
                            ('hosts = ["a"]\nlabels = ["x"]', "pick devices from [devices].inventory"),
                            ('hosts = ["-oProxyCommand=x"]', "is not a host name"),
                            ('hostz = ["a"]', "unknown key [devices].hostz")):
        p = tmp_path / "p.toml"
        p.write_text(testbed.tiny_pipeline(samples=16, stateful=False, extra=f"\n[devices]\n{devices}\n"))
        code, _, err = cli("run", p)
        assert code == 2 and needle in err and "Traceback" not in err, err
        assert not (tmp_path / "out").exists()


@pytest.mark.skipif(testbed.SSHD_MISSING is not None, reason=testbed.SSHD_MISSING or "")
@pytest.mark.slow
def test_run_ends_with_the_fleet_check(tmp_path, cli):
    lb = testbed.Loopback(tmp_path / "ssh", 1)
    try:
        devices = (f'hosts = ["dev1"]\nssh_config = "{lb.config}"\npython = "{sys.executable}"\n'
                   f'workdir = "{tmp_path / "device-runs"}"\nretries = 0')
        p = tmp_path / "p.toml"
        p.write_text(testbed.tiny_pipeline(samples=16, stateful=False, extra=f"\n[devices]\n{devices}\n"))
        code, out, err = cli("run", p, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["devices"]["passed"] and result["devices"]["devices"] == ["dev1"]
        fleet = json.loads((tmp_path / "out" / "devices" / "fleet.json").read_text())
        assert fleet["cells"]["model.int8-dynamic.onnx"]["dev1"]["passed"]
        # the device judged with the run's own data and gate: the same drift the run measured here
        here = json.loads((tmp_path / "out" / "validate" / "int8-dynamic.json").read_text())
        assert fleet["cells"]["model.int8-dynamic.onnx"]["dev1"]["rel_l2"] == pytest.approx(
            here["outputs"]["y"]["rel_l2"], rel=1e-6)
        assert "devices: all gates passed on 1 device(s)" in err
        assert list((tmp_path / "device-runs").iterdir()) == []
    finally:
        lb.stop()
