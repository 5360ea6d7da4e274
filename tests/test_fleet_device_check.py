"""The check bundle and `edgelstm device-check` on this CPU (the device is this machine, named by its ISA class):
what the bundle carries, one results JSON with an exit code per gate, numbers equal to `edgelstm validate` run
here on the same data, no torch needed on the device, the starter script's refusals, and engines built, validated
and benched against the TensorRT stand-in (tests/fakes)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

try:
    from fakes.fixtures import trt  # noqa: F401 - pytest fixture
except ImportError:  # tests/ is a package in some layouts
    from tests.fakes.fixtures import trt  # type: ignore[no-redef] # noqa: F401

QUICK = ["--synthetic", "24", "--check-samples", "16", "--bench-iters", "3", "--bench-seq", "12"]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory, tiny_lstm):
    """A pipeline-like output: model.pt (the reference), model.onnx, model.stateful.onnx, model.int8-dynamic.onnx."""
    from edgelstm import stages
    from edgelstm.options import PrecisionSpec

    d = tmp_path_factory.mktemp("out")
    shutil.copy(tiny_lstm.pt, d / "model.pt")
    for src, dst in ((tiny_lstm.onnx, "model.onnx"), (tiny_lstm.stateful, "model.stateful.onnx")):
        shutil.copy(src, d / dst)
        shutil.copy(Path(str(src) + ".json"), d / f"{dst}.json")
    spec = PrecisionSpec.parse("int8-dynamic")
    stages.quantize(d / "model.onnx", d / "model.int8-dynamic.onnx", spec, stages.default_options(spec))
    return d


@pytest.fixture(scope="module")
def bundle(outdir, tmp_path_factory):
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    out = tmp_path_factory.mktemp("b") / "check.tar.gz"
    res = CliRunner().invoke(app, ["bundle", str(outdir), "-o", str(out), "--check", "--gate", "rel_l2<=0.05", *QUICK])
    assert res.exit_code == 0, res.stderr
    return out


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def test_the_bundle_carries_the_verdicts_inputs(bundle, outdir):
    m = members(bundle)
    plan = json.loads(m["check/check.json"])
    index = json.loads(m["bundle.json"])
    assert plan["data"]["samples"] == 16 and plan["data"]["of"] == 24 and "first 16 of 24" in plan["data"]["which"]
    assert plan["data"]["member_sha256"] == hashlib.sha256(m["check/data.npz"]).hexdigest()
    assert plan["reference"]["model"] == "model.pt" and plan["reference"]["backend"] == "torch"
    assert plan["bench"]["iters"] == 3 and plan["bench"]["seq"] == [12]
    assert {a["name"] for a in plan["artifacts"]} == {"model.onnx", "model.stateful.onnx", "model.int8-dynamic.onnx"}
    assert all(a["gates"] == ["rel_l2<=0.05"] for a in plan["artifacts"])
    # the recorded outputs are the torch model's on exactly that sample
    import io

    from edgelstm.runners import open_runner

    data = np.load(io.BytesIO(m["check/data.npz"]))
    ref = np.load(io.BytesIO(m["check/reference.npz"]))
    torch_out = open_runner(outdir / "model.pt").run({"x": data["x"]})
    np.testing.assert_allclose(ref["y"], next(iter(torch_out.values())), rtol=1e-6, atol=1e-7)
    # edgelstm travels as wheels; the compiled requirements are named for the device
    wheels = [n for n in m if n.startswith("wheels/")]
    assert any(n.startswith("wheels/edgelstm-") for n in wheels) and any("typer" in n for n in wheels)
    assert {r["name"] for r in index["check"]["device_requires"]} >= {"numpy", "onnx", "onnxruntime"}
    assert "device_check.py" in m and "python3 device_check.py" in m["README.txt"].decode()


def test_check_bundles_are_reproducible_and_still_safe_to_unpack(outdir, tmp_path):
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle, unpack_bundle, verify_bundle

    opts = BundleOptions(created="2026-01-01T00:00:00+00:00", check=CheckOptions(synthetic=8, samples=8, iters=2))
    a = make_bundle(outdir, tmp_path / "1" / "c.tar.gz", opts)
    b = make_bundle(outdir, tmp_path / "2" / "c.tar.gz", opts)  # same name: the README names the file
    assert a.sha256 == b.sha256
    assert verify_bundle(a.path).ok
    check = unpack_bundle(a.path, tmp_path / "unpacked")
    assert check.ok and (tmp_path / "unpacked" / "check" / "data.npz").is_file()


def test_size_limit_and_reserved_names(outdir, tmp_path, cli):
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle
    from edgelstm.errors import BadInput

    with pytest.raises(BadInput, match=r"over the limit of .*lower --check-samples"):
        make_bundle(outdir, tmp_path / "x.tar.gz", BundleOptions(check=CheckOptions(synthetic=8, max_size=100)))
    assert not (tmp_path / "x.tar.gz").exists()
    code, _, err = cli("bundle", outdir, "-o", tmp_path / "y.tar.gz", "--gate", "rel_l2<=0.1")
    assert code == 2 and "belong to --check" in err
    code, _, err = cli("bundle", outdir, "-o", tmp_path / "y.tar.gz", "--check", "--bench-batch", "1,x")
    assert code == 2 and "--bench-batch" in err and "Traceback" not in err


def run_check(cli, bundle: Path, out: Path, *args: str):
    code, stdout, stderr = cli("device-check", bundle, "-o", out, "--name", "here", "--label", "x86-test", *args)
    return code, (json.loads(out.read_text()) if out.exists() else None), stderr


def test_device_check_writes_one_results_file_with_an_exit_code_per_gate(bundle, tmp_path, cli):
    code, r, err = run_check(cli, bundle, tmp_path / "r.json")
    assert code == 0, err
    assert r["schema"] == "edgelstm.device-check/1" and r["exit_code"] == 0 and r["passed"]
    assert r["device"]["name"] == "here" and r["device"]["labels"] == ["x86-test"] and r["device"]["isa"]
    assert r["data"]["samples"] == 16 and r["edgelstm"]["from"] == "installed"
    names = {a["name"]: a for a in r["artifacts"]}
    assert names["model.fp32.plan"]["status"] == "skipped" and "TensorRT" in names["model.fp32.plan"]["reason"] \
        if "model.fp32.plan" in names else True
    for a in ("model.onnx", "model.stateful.onnx", "model.int8-dynamic.onnx"):
        e = names[a]
        assert e["status"] == "ok" and e["backend"] == "onnxruntime" and e["validate"]["passed"]
        assert e["bench"][0]["latency_ms"]["p50"] > 0 and e["bench"][0]["iters"] == 3
    assert {(g["artifact"], g["gate"], g["exit_code"]) for g in r["gates"]} == {
        (a, "rel_l2:y<=0.05", 0) for a in ("model.onnx", "model.stateful.onnx", "model.int8-dynamic.onnx")}
    assert [s["step"] for s in r["steps"]] == ["open bundle", "describe device", "build engines"]
    assert "streaming" in names["model.stateful.onnx"]["validate"]  # the stateful export also streamed


def test_numbers_match_validate_run_here_on_the_same_data(bundle, outdir, tmp_path, cli):
    """The device's drift (against the outputs recorded at bundle time) equals `edgelstm validate` against the torch
    model itself, run here on the bundle's data sample."""
    code, r, _ = run_check(cli, bundle, tmp_path / "r.json", "--only", "model.int8-dynamic.onnx")
    assert code == 0
    (tmp_path / "data.npz").write_bytes(members(bundle)["check/data.npz"])
    code, _, err = cli("validate", "--reference", outdir / "model.pt", "--candidate", outdir / "model.int8-dynamic.onnx",
                       "--data", tmp_path / "data.npz", "--report", tmp_path / "v.json")
    assert code == 0, err
    here = json.loads((tmp_path / "v.json").read_text())
    device = r["artifacts"][0]["validate"]
    assert device["outputs"]["y"]["rel_l2"] == pytest.approx(here["outputs"]["y"]["rel_l2"], rel=1e-5)
    assert device["outputs"]["y"]["max_abs"] == pytest.approx(here["outputs"]["y"]["max_abs"], rel=1e-5)


def test_a_failing_gate_exits_1_and_names_the_artifact(outdir, tmp_path, cli):
    b = tmp_path / "strict.tar.gz"
    code, _, err = cli("bundle", outdir, "-o", b, "--check", "--gate", "rel_l2<=1e-3", "--no-wheels", *QUICK)
    assert code == 0, err
    code, r, err = run_check(cli, b, tmp_path / "r.json")
    assert code == 1 and r["exit_code"] == 1 and not r["passed"]
    failed = [g for g in r["gates"] if not g["passed"]]
    assert [g["artifact"] for g in failed] == ["model.int8-dynamic.onnx"] and failed[0]["exit_code"] == 1
    assert "gate failed" in err and "model.int8-dynamic.onnx" in err


def test_the_device_needs_no_torch(bundle, tmp_path):
    """device-check in a process where torch cannot be imported (a Jetson image without it)."""
    out = tmp_path / "r.json"
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgelstm.cli.app import run_cli\n"
            f"sys.exit(run_cli(['device-check', {str(bundle)!r}, '-o', {str(out)!r}, '--only', 'model.onnx', "
            "'--quiet']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["artifacts"][0]["validate"]["passed"]


def test_starter_refuses_a_tampered_wheel_and_names_missing_compiled_packages(bundle, tmp_path):
    from edgelstm.bundle import unpack_bundle

    d = tmp_path / "b"
    unpack_bundle(bundle, d)
    index = json.loads((d / "bundle.json").read_text())
    index["check"]["device_requires"].append({"name": "edgelstm-no-such-package", "spec": ">=1", "marker": "",
                                              "module": "edgelstm_no_such_module"})
    (d / "bundle.json").write_text(json.dumps(index))
    p = subprocess.run([sys.executable, str(d / "device_check.py"), str(d), "-o", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 3 and "lacks edgelstm-no-such-package>=1" in p.stderr and "Traceback" not in p.stderr
    wheel = next((d / "wheels").glob("typer-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    p = subprocess.run([sys.executable, str(d / "device_check.py"), str(d)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and f"wheels/{wheel.name} does not match CHECKSUMS.sha256" in p.stderr
    assert not (tmp_path / "r.json").exists()


def test_engines_are_built_validated_and_benched_against_the_tensorrt_stand_in(trt, outdir, tmp_path):
    """Where TensorRT is installed the plan's engines are built on the device (one timing cache), validated with
    their gates and benched with TensorRT. The stand-in engine computes mean(x), not the LSTM: its gate fails, and
    the results name it."""
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle
    from edgelstm.fleet.device_check import DeviceCheckOptions, check_device

    trt()
    b = make_bundle(outdir, tmp_path / "e.tar.gz", BundleOptions(
        precision="fp32", engine_from=("model.onnx",), batch=(1, 1, 4), seq=(1, 12, 24),
        check=CheckOptions(synthetic=8, seq=12, samples=8, seqs=(12,), iters=2, wheels=False))).path
    work = tmp_path / "work"
    r = check_device(b, tmp_path / "r.json", DeviceCheckOptions(name="gpu-box", work=work, only=("model.fp32.plan",)))
    engine = next(a for a in r["artifacts"] if a["kind"] == "engine")
    assert engine["name"] == "model.fp32.plan" and engine["status"] == "ok" and engine["backend"] == "tensorrt"
    assert engine["build"]["precision"] == "fp32" and (work / "engines" / "timing.cache").is_file()
    assert engine["bench"][0]["backend"] == "tensorrt" and engine["bench"][0]["latency_ms"]["p50"] > 0
    assert engine["validate"]["passed"] is False and r["exit_code"] == 1
    assert [g["artifact"] for g in r["gates"] if not g["passed"]] == ["model.fp32.plan"]


def test_an_engine_profile_that_cannot_take_the_check_is_refused_at_bundle_time(outdir, tmp_path):
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle
    from edgelstm.errors import BadInput

    with pytest.raises(BadInput, match=r"model.fp32.plan is built for batch 1:4, seq 1:24, but the device check "
                                       r"uses sequence length\(s\) \[60\]"):
        make_bundle(outdir, tmp_path / "e.tar.gz", BundleOptions(
            precision="fp32", engine_from=("model.onnx",), batch=(1, 1, 4), seq=(1, 12, 24),
            check=CheckOptions(synthetic=8, samples=8, seqs=(12,), wheels=False)))
    assert not (tmp_path / "e.tar.gz").exists()
