"""Deployment bundles: round trip, tamper detection, unsafe archives refused before anything is written,
the build recipe, and the example pipelines/workflow parse."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from edgelstm.models import zoo
from edgelstm.bundle import (BundleOptions, BundleRefused, extract_bundle, make_bundle, member_problem,
                             verify_bundle)
from edgelstm.artifacts.manifest import read_manifest, write_manifest
from edgelstm.fileio import toml_module
from edgelstm.pipeline.config import load_pipeline

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory) -> Path:
    """A pipeline-like output dir: a tiny exported ONNX (+ streaming variant), manifests, report, an engine
    and a timing cache that must stay out."""
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx

    d = tmp_path_factory.mktemp("art")
    model = zoo.build("lstm_regressor", {"hidden_size": 8})
    export_onnx(model, d / "model.onnx")
    export_onnx(model, d / "model.stateful.onnx", ExportOptions(stateful=True))
    (d / "report.md").write_text("# drift report\nall gates passed\n")
    (d / "model.fp16.plan").write_bytes(b"not portable engine bytes")
    write_manifest(d / "model.fp16.plan", kind="engine", precision="fp16", parent=d / "model.onnx",
                   details={"gpu": {"name": "Orin", "compute_capability": "8.7"}, "tensorrt": {"version": "10.3.0"}})
    (d / "timing.cache").write_bytes(b"timing")
    (d / ".edgelstm-cache.json").write_text("{}")
    (d / "validate").mkdir()
    (d / "validate" / "fp16.json").write_text('{"passed": true}')
    return d


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("pipe") / "my-pipeline.toml"
    p.write_text('[model]\nzoo = "lstm_regressor"\n[export]\nseq_len = 20\n')
    return p


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory, artifact_dir, pipeline_file) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "lstm.tar.gz"
    make_bundle(artifact_dir, out, BundleOptions(pipeline=pipeline_file))
    return out


def _members(bundle: Path) -> dict[str, tuple[bytes, int]]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: (tar.extractfile(m).read(), m.mode) for m in tar.getmembers() if m.isreg()}


def _write_tar(path: Path, files: dict[str, tuple[bytes, int]], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def _nothing_extracted(parent: Path, dest: Path) -> None:
    assert not dest.exists()
    leftovers = [p.name for p in parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    assert leftovers == []


# --------------------------------------------------------------------------------------------- round trip


def test_bundle_contents_index_and_checksums(good_bundle, artifact_dir):
    files = _members(good_bundle)
    names = set(files)
    assert {"model.onnx", "model.onnx.json", "model.stateful.onnx", "model.stateful.onnx.json", "report.md",
            "pipeline.toml", "build_engine.sh", "README.txt", "bundle.json", "CHECKSUMS.sha256"} == names
    # engines, timing caches, hidden cache files and unlisted json reports stay out
    assert files["model.onnx"][0] == (artifact_dir / "model.onnx").read_bytes()
    assert files["build_engine.sh"][1] & 0o111
    sums = dict(reversed(line.split("  ", 1)) for line in files["CHECKSUMS.sha256"][0].decode().splitlines())
    assert set(sums) == names - {"CHECKSUMS.sha256"}
    for name, digest in sums.items():
        assert hashlib.sha256(files[name][0]).hexdigest() == digest
    index = json.loads(files["bundle.json"][0])
    assert index["format"] == "edgelstm-bundle/1" and index["edgelstm_version"] and index["created"]
    listed = {m["name"]: m for m in index["members"]}
    assert set(listed) == names - {"CHECKSUMS.sha256", "bundle.json"}
    assert listed["model.onnx"]["size"] == len(files["model.onnx"][0]) and listed["model.onnx"]["role"] == "onnx"
    assert {s["file"] for s in index["skipped"]} == {"model.fp16.plan", "timing.cache"}
    assert [s["onnx"] for s in index["build"]["steps"]] == ["model.onnx", "model.stateful.onnx"]
    # the bundle itself has a manifest
    m = read_manifest(good_bundle)
    assert m is not None and m.kind == "bundle"


def test_unbundle_in_another_dir_verifies(cli, good_bundle, artifact_dir, tmp_path):
    dest = tmp_path / "device" / "model-bundle"
    code, stdout, stderr = cli("unbundle", good_bundle, "-o", dest, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["ok"] and report["verified"] and len(report["members"]) == 10
    assert all(m["status"] == "ok" for m in report["members"])
    assert (dest / "model.onnx").read_bytes() == (artifact_dir / "model.onnx").read_bytes()
    assert read_manifest(dest / "model.stateful.onnx") is not None  # sha256 verified
    assert os.access(dest / "build_engine.sh", os.X_OK)
    assert [p.name for p in dest.parent.iterdir()] == ["model-bundle"]  # no temp dirs left
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--quiet", "CHECKSUMS.sha256"], cwd=dest, check=True)
    # library API
    assert extract_bundle(good_bundle, tmp_path / "again") == tmp_path / "again"
    check = verify_bundle(good_bundle)
    assert check.ok and {b["engine"] for b in check.builds} == {"model.fp16.plan", "model.stateful.fp16.plan"}


def test_unbundle_refuses_non_empty_dest_unless_force(cli, good_bundle, tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "old.txt").write_text("keep me")
    code, _, stderr = cli("unbundle", good_bundle, "-o", dest)
    assert code == 2 and "not empty" in stderr and (dest / "old.txt").exists()
    code, _, _ = cli("unbundle", good_bundle, "-o", dest, "--force")
    assert code == 0 and not (dest / "old.txt").exists() and (dest / "model.onnx").exists()


def test_verify_only_extracts_nothing(cli, good_bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = cli("unbundle", "--verify-only", good_bundle, "--json")
    assert code == 0 and json.loads(stdout)["ok"] is True
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- tampering


def _tamper(files: dict[str, tuple[bytes, int]], how: str) -> tuple[dict[str, tuple[bytes, int]], str]:
    files = dict(files)
    if how == "member-bytes":
        data, mode = files["model.onnx"]
        files["model.onnx"] = (data[:-1] + bytes([data[-1] ^ 1]), mode)
        return files, "model.onnx"
    if how == "checksum-line":
        text = files["CHECKSUMS.sha256"][0].decode()
        lines = [("0" * 64 + "  report.md") if line.endswith("  report.md") else line for line in text.splitlines()]
        files["CHECKSUMS.sha256"] = (("\n".join(lines) + "\n").encode(), 0o644)
        return files, "report.md"
    if how == "extra-member":
        files["evil.sh"] = (b"#!/bin/sh\nrm -rf ~\n", 0o755)
        return files, "evil.sh"
    if how == "missing-member":
        del files["report.md"]
        return files, "report.md"
    if how == "consistent-but-not-manifest":
        # an attacker who rewrites the model AND its checksum lines is still caught by the manifest + index
        data, mode = files["model.onnx"]
        new = data + b"\x00"
        files["model.onnx"] = (new, mode)
        digest = hashlib.sha256(new).hexdigest()
        text = files["CHECKSUMS.sha256"][0].decode()
        lines = [f"{digest}  model.onnx" if line.endswith("  model.onnx") else line for line in text.splitlines()]
        files["CHECKSUMS.sha256"] = (("\n".join(lines) + "\n").encode(), 0o644)
        return files, "model.onnx"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["member-bytes", "checksum-line", "extra-member", "missing-member",
                                 "consistent-but-not-manifest"])
def test_tampered_bundle_is_refused(cli, good_bundle, tmp_path, how):
    files, culprit = _tamper(_members(good_bundle), how)
    bad = _write_tar(tmp_path / "bad.tar.gz", files)
    dest = tmp_path / "out"
    code, _, stderr = cli("unbundle", bad, "-o", dest)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and culprit in errors[0], stderr
    assert "Traceback" not in stderr
    _nothing_extracted(tmp_path, dest)
    code, _, stderr = cli("unbundle", "--verify-only", bad)
    assert code == 2 and culprit in stderr
    assert not verify_bundle(bad).ok


# --------------------------------------------------------------------------------------------- unsafe archives


def _info(name: str, kind: bytes, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, size, 0o644
    return info


UNSAFE = {
    "absolute": (_info("/tmp/edgelstm-evil-abs", tarfile.REGTYPE, size=4), "absolute path"),
    "dotdot": (_info("../evil", tarfile.REGTYPE, size=4), "'..'"),
    "nested-dotdot": (_info("sub/../../evil", tarfile.REGTYPE, size=4), "'..'"),
    "symlink": (_info("evil-link", tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link"),
    "hardlink": (_info("evil-hard", tarfile.LNKTYPE, linkname="model.onnx"), "hard link"),
    "device": (_info("evil-dev", tarfile.CHRTYPE), "device file"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
@pytest.mark.parametrize("mode", ["verify", "no-verify", "verify-only"])
def test_unsafe_members_refused_before_extracting(cli, good_bundle, tmp_path, case, mode):
    info, why = UNSAFE[case]
    # the unsafe member comes LAST: safe members before it must not be written either
    bad = _write_tar(tmp_path / "evil.tar.gz", _members(good_bundle), extra=[info])
    dest = tmp_path / "out"
    args = {"verify": ["-o", dest], "no-verify": ["-o", dest, "--no-verify"], "verify-only": ["--verify-only"]}[mode]
    code, _, stderr = cli("unbundle", bad, *args)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, stderr
    assert why in errors[0] and info.name.split("/")[-1] in errors[0]
    _nothing_extracted(tmp_path, dest)
    assert not (tmp_path / "evil").exists() and not Path("/tmp/edgelstm-evil-abs").exists()
    assert member_problem(info) is not None


def test_library_refusal_carries_every_problem(good_bundle, tmp_path):
    bad = _write_tar(tmp_path / "evil.tar.gz", _members(good_bundle),
                     extra=[UNSAFE["dotdot"][0], UNSAFE["symlink"][0]])
    with pytest.raises(BundleRefused) as err:
        extract_bundle(bad, tmp_path / "out")
    assert err.value.exit_code == 2 and len(err.value.problems) == 2 and "+1 more" in str(err.value)
    _nothing_extracted(tmp_path, tmp_path / "out")


def test_not_a_tarball(cli, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b\x08garbage" * 10)
    code, _, stderr = cli("unbundle", junk, "-o", tmp_path / "out")
    assert code == 2 and "junk.tar.gz" in stderr and "Traceback" not in stderr
    _nothing_extracted(tmp_path, tmp_path / "out")


# --------------------------------------------------------------------------------------------- the recipe


def test_build_script_is_valid_bash_with_the_right_build_call(good_bundle, tmp_path):
    dest = extract_bundle(good_bundle, tmp_path / "b")
    script = (dest / "build_engine.sh").read_text()
    subprocess.run(["bash", "-n", str(dest / "build_engine.sh")], check=True)
    # seq opt comes from the bundled pipeline's export.seq_len (20)
    assert ('edgelstm build model.onnx -o "$ENGINE_DIR"/model.fp16.plan --precision fp16 --batch 1:1:8 '
            '--seq 1:20:512 --timing-cache "$ENGINE_DIR"/timing.cache "$@"') in script
    assert 'edgelstm build model.stateful.onnx -o "$ENGINE_DIR"/model.stateful.fp16.plan' in script
    assert "sha256sum --check" in script and "set -euo pipefail" in script


@pytest.mark.skipif(not shutil.which("sha256sum"), reason="needs coreutils sha256sum")
def test_build_script_runs_edgelstm_build_and_stops_on_a_bad_checksum(good_bundle, tmp_path):
    dest = extract_bundle(good_bundle, tmp_path / "b")
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls.log"
    (fake / "edgelstm").write_text(f'#!/usr/bin/env bash\necho "$@" >> {log}\n')
    (fake / "edgelstm").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "ENGINE_DIR": "eng"}
    r = subprocess.run(["bash", str(dest / "build_engine.sh"), "--workspace", "512"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == ("build model.onnx -o eng/model.fp16.plan --precision fp16 --batch 1:1:8 --seq 1:20:512 "
                        "--timing-cache eng/timing.cache --workspace 512")
    assert calls[1].startswith("validate -r model.onnx -c eng/model.fp16.plan --synthetic 64 --seq 20")
    assert calls[2].startswith("build model.stateful.onnx -o eng/model.stateful.fp16.plan") and len(calls) == 4
    assert (dest / "eng").is_dir()
    # a file changed after unpacking: the recipe refuses to build
    log.unlink()
    with open(dest / "model.onnx", "ab") as f:
        f.write(b"\x00")
    r = subprocess.run(["bash", str(dest / "build_engine.sh")], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and not log.exists()


def _tiny_graph(path: Path, ops: list[tuple[str, str]]) -> Path:
    """A small ONNX graph x -> y through the given (op, domain) chain (contents only matter to the planner)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, ["x"], ["y"], domain=dom or None) for op, dom in ops[:1]]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])])
    for op, dom in ops[1:]:
        graph.node.append(helper.make_node(op, ["x"], ["z" + op], domain=dom or None))
    model = helper.make_model(graph)
    onnx.save(model, str(path))
    return path


def test_int8_recipe_prefers_qdq_then_calib_cache_and_never_builds_ort_only(artifact_dir, tmp_path):
    src = tmp_path / "art"
    src.mkdir()
    for name in ("model.onnx", "model.onnx.json"):
        shutil.copy(artifact_dir / name, src / name)
    _tiny_graph(src / "model.int8-static.onnx", [("Identity", ""), ("QuantizeLinear", ""), ("DequantizeLinear", "")])
    _tiny_graph(src / "model.int8-dynamic.onnx", [("Identity", ""), ("DynamicQuantizeLSTM", "com.microsoft")])
    res = make_bundle(src, tmp_path / "a.tar.gz", BundleOptions(precision="int8"))
    assert [(b.onnx, b.engine, b.calib_cache) for b in res.builds] == [("model.int8-static.onnx", "model.int8-static.plan", None)]
    assert any("has no manifest" in w for w in res.warnings)
    res = make_bundle(src, tmp_path / "b.tar.gz", BundleOptions(precision="fp16", seq=(1, 30, 90)))
    assert [b.onnx for b in res.builds] == ["model.onnx"] and res.builds[0].seq == (1, 30, 90)
    # int8 from the float model: the calibration cache travels with it and the recipe uses it
    (src / "model.int8-static.onnx").unlink()
    (src / "model.calib").write_text("TRT-10300-EntropyCalibration2\nx: 3c010a14\n")
    res = make_bundle(src, tmp_path / "c.tar.gz", BundleOptions(precision="int8"))
    assert [(b.onnx, b.calib_cache) for b in res.builds] == [("model.onnx", "model.calib")]
    assert "--calib-cache model.calib" in _members(tmp_path / "c.tar.gz")["build_engine.sh"][0].decode()
    # no cache: the operator must pass CALIB
    (src / "model.calib").unlink()
    res = make_bundle(src, tmp_path / "d.tar.gz", BundleOptions(precision="int8"))
    script = _members(tmp_path / "d.tar.gz")["build_engine.sh"][0].decode()
    assert res.builds[0].needs_calib_data and '--calib "${CALIB:?' in script
    subprocess.run(["bash", "-n", "-c", script], check=True)
    with pytest.raises(Exception, match="onnxruntime-only"):
        make_bundle(src, tmp_path / "e.tar.gz", BundleOptions(engine_from=("model.int8-dynamic.onnx",)))


def test_engines_only_on_request_and_marked_gpu_tied(cli, artifact_dir, tmp_path):
    out = tmp_path / "e.tar.gz"
    code, _, stderr = cli("bundle", artifact_dir, "-o", out, "--include", "*.plan")
    assert code == 2 and "--include-engines" in stderr and not out.exists()
    code, stdout, stderr = cli("bundle", artifact_dir, "-o", out, "--include-engines", "--json")
    assert code == 0, stderr
    engine = next(m for m in json.loads(stdout)["members"] if m["name"] == "model.fp16.plan")
    assert engine["role"] == "engine" and engine["tied_to"]["gpu"] == "Orin"
    assert engine["tied_to"]["compute_capability"] == "8.7" and engine["tied_to"]["tensorrt"] == "10.3.0"
    files = _members(out)
    assert "model.fp16.plan.json" in files and "WARNING: ENGINES INCLUDED" in files["README.txt"][0].decode()
    assert "Orin" in files["README.txt"][0].decode()


@pytest.mark.parametrize("case", ["not-a-dir", "no-onnx", "suffix", "include-nothing", "stale-manifest", "bad-range"])
def test_bundle_bad_input_exit_2_nothing_written(cli, artifact_dir, tmp_path, case):
    src = tmp_path / "src"
    shutil.copytree(artifact_dir, src)
    out = tmp_path / "b.tar.gz"
    if case == "no-onnx":
        for p in src.glob("*.onnx*"):
            p.unlink()
    if case == "stale-manifest":
        with open(src / "model.onnx", "ab") as f:
            f.write(b"\x00")
    args = {"not-a-dir": [src / "report.md", "-o", out], "no-onnx": [src, "-o", out],
            "suffix": [src, "-o", tmp_path / "b.zip"], "include-nothing": [src, "-o", out, "--include", "*.npz"],
            "stale-manifest": [src, "-o", out], "bad-range": [src, "-o", out, "--seq", "8:4:2"]}[case]
    code, _, stderr = cli("bundle", *args)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert not out.exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".b.tar.gz")] == []


def test_bundle_cli_json_and_include(cli, artifact_dir, tmp_path):
    out = tmp_path / "x.tgz"
    code, stdout, stderr = cli("bundle", artifact_dir, "-o", out, "--include", "validate/*.json", "--precision", "fp32",
                               "--batch", "1:2:4", "--json")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert {"validate/fp16.json"} <= {m["name"] for m in res["members"]}
    assert res["builds"][0]["command"].startswith("edgelstm build model.onnx -o engines/model.fp32.plan "
                                                  "--precision fp32 --batch 1:2:4 --seq 1:64:512")
    code, _, _ = cli("unbundle", out, "-o", tmp_path / "u", "-q")
    assert code == 0 and (tmp_path / "u" / "validate" / "fp16.json").exists()


# --------------------------------------------------------------------------------------------- examples


ZOO_NAMES = ["lstm_regressor", "stacked_lstm", "bilstm_attention", "gru", "hand_lstm"]


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_example_pipelines_parse(name):
    path = EXAMPLES / "pipelines" / f"{name}.toml"
    data = toml_module().loads(path.read_text())
    assert set(data) == {"model", "export", "quantize", "data", "validate", "bench", "targets", "output"}
    assert data["model"]["zoo"] == name and name in zoo.ZOO
    assert data["export"]["stateful"] is (name != "bilstm_attention")
    assert data["output"]["dir"] == f"edgelstm-out/{name}"
    assert set(data["quantize"]["precisions"]) <= {"fp16", "int8-dynamic", "int8-static"}
    p = load_pipeline(path)
    assert p.model.zoo == name


def test_bundle_is_reproducible_for_a_fixed_timestamp(artifact_dir, tmp_path):
    opts = BundleOptions(created="2026-01-01T00:00:00+00:00")
    a = make_bundle(artifact_dir, tmp_path / "1" / "m.tar.gz", opts)
    b = make_bundle(artifact_dir, tmp_path / "2" / "m.tar.gz", opts)
    assert a.sha256 == b.sha256 and a.created == "2026-01-01T00:00:00+00:00"
    c = make_bundle(artifact_dir, tmp_path / "3" / "m.tar.gz", BundleOptions(created="2026-01-02T00:00:00+00:00"))
    assert c.sha256 != a.sha256
