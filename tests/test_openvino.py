"""OpenVINO IR artifacts: `edgelstm build MODEL.onnx -o MODEL.xml`, verified against the ONNX at several lengths,
with a manifest, a drift gate, a runner that always sets the inference precision, and bench/validate/bundle/doctor
support. Skipped where openvino is not installed (it is an optional extra: edgelstm[openvino])."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import quant_models as qm

ov = pytest.importorskip("openvino")

from edgelstm.stages import OpenVinoOptions, build_openvino  # noqa: E402
from edgelstm.artifacts.manifest import read_manifest  # noqa: E402
from edgelstm.artifacts.openvino import compute_layers, openvino_facts  # noqa: E402
from edgelstm.errors import BackendMissing, BadInput, GateFailed  # noqa: E402


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    """The tiny lstm_regressor's ONNX (exported at seq 6) and its FP32 IR."""
    d = tmp_path_factory.mktemp("ov")
    src = qm.exported("lstm_regressor", d)
    res = build_openvino(src, d / "m.xml", OpenVinoOptions())
    return src, d / "m.xml", res


def test_fp32_ir_is_verified_far_from_the_export_length(ir):
    src, xml, res = ir
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    man = read_manifest(xml)
    d = man.details["openvino"]
    assert man.kind == "openvino" and man.precision == "fp32" and d["inference_precision"] == "f32"
    assert man.io.input_names == ["x"] and d["source"] == src.name
    seqs = {p["seq"] for p in d["verification"]}
    assert {1, 200} <= seqs and max(p["rel_l2"] for p in d["verification"]) < 1e-4
    assert any(k.startswith("RNNSeq") for k in compute_layers(d["layer_precision"]))
    assert res.drift["against"] == src.name


def test_runner_sets_fp32_whatever_openvino_defaults_to(ir):
    from edgelstm.runners.base import open_runner

    src, xml, _ = ir
    x = qm.x_for("lstm_regressor", n=3, seq=50)
    runner = open_runner(xml, threads=1)
    assert runner.backend == "openvino" and runner.precision == "fp32"
    assert "32" in str(runner.compiled.get_property("INFERENCE_PRECISION_HINT"))  # not the CPU's bf16 default
    got = runner.run({"x": x})["y"]
    assert qm.rel_l2(got, qm.run(src, {"x": x})[0]) < 1e-5
    call = runner.bind({"x": x})
    call()
    runner.close()


def test_bench_and_validate_take_the_ir(ir):
    from edgelstm.latency import BenchGrid, BenchOptions, TimingPolicy, bench_artifacts
    from edgelstm.validation.validate import DataRequest, ValidateOptions, validate_artifacts

    src, xml, _ = ir
    rep = bench_artifacts([src, xml], BenchGrid((1, 2), (5,)), BenchOptions(policy=TimingPolicy(warmup=0, iters=2),
                                                                            measure_memory=False)).to_dict()
    rows = [r for r in rep["results"] if r["backend"] == "openvino"]
    assert len(rows) == 2 and rows[0]["model_size_bytes"] > xml.stat().st_size  # the .bin counts
    assert {f["batch"] for f in rep["fastest"]} == {1, 2}
    res = validate_artifacts(src, xml, DataRequest(synthetic=16), ValidateOptions())
    assert res.passed and res.to_dict()["outputs"]["y"]["rel_l2"] < 1e-5


def test_int8_ir_from_calibration_data_runs_int8_layers(tmp_path):
    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.data import as_calibration_source, dataset_from_arrays
    import onnx

    src = qm.exported("lstm_regressor", tmp_path)
    io = iospec_from_onnx(onnx.load(str(src)))
    x = np.random.default_rng(0).standard_normal((32, 6, 1)).astype(np.float32)
    calib = as_calibration_source(dataset_from_arrays({"x": x}, io), 8, spec=io)
    res = build_openvino(src, tmp_path / "q.xml", OpenVinoOptions(precision="int8",
                                                                   keep_intermediate=tmp_path / "q.qdq.onnx"),
                         calib=calib)
    man = read_manifest(tmp_path / "q.xml")
    assert man.precision == "int8" and res.drift["passed"] and res.drift["against"] == src.name
    assert (tmp_path / "q.qdq.onnx").is_file()
    layers = compute_layers(man.details["openvino"]["layer_precision"])
    assert any(k.endswith(" i8") or k.endswith(" u8") for k in layers) or res.warnings
    # a Q/DQ ONNX builds directly; a dynamic INT8 one is refused with the way out
    build_openvino(tmp_path / "q.qdq.onnx", tmp_path / "q2.xml", OpenVinoOptions(precision="int8"))
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8

    quantize_int8(src, tmp_path / "d.onnx", Int8Options())
    with pytest.raises(BadInput, match="Q/DQ"):
        build_openvino(tmp_path / "d.onnx", tmp_path / "d.xml", OpenVinoOptions(precision="int8"))
    with pytest.raises(BadInput, match="calib"):
        build_openvino(src, tmp_path / "n.xml", OpenVinoOptions(precision="int8"))


def test_bf16_is_gated_or_refused_on_a_cpu_without_it(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    if not openvino_facts()["bf16"]:
        with pytest.raises(BackendMissing, match="BF16"):
            build_openvino(src, tmp_path / "b.xml", OpenVinoOptions(precision="bf16"))
        return
    res = build_openvino(src, tmp_path / "b.xml", OpenVinoOptions(precision="bf16"))
    assert res.inference_precision == "bf16" and 0 < res.drift["value"] <= 0.05
    with pytest.raises(GateFailed, match="nothing was written"):
        build_openvino(src, tmp_path / "t.xml", OpenVinoOptions(precision="bf16", max_drift="rel_l2<=1e-9"))
    assert not (tmp_path / "t.xml").exists() and not (tmp_path / "t.bin").exists()


def test_a_changed_or_missing_bin_is_refused(ir, tmp_path):
    from edgelstm.runners.base import open_runner

    _, xml, _ = ir
    for name in ("m.xml", "m.xml.json", "m.bin"):
        shutil.copyfile(xml.with_name(name), tmp_path / name)
    data = bytearray((tmp_path / "m.bin").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "m.bin").write_bytes(bytes(data))
    with pytest.raises(BadInput, match="sha256"):
        open_runner(tmp_path / "m.xml")
    (tmp_path / "m.bin").unlink()
    with pytest.raises(BadInput, match="m.bin"):
        open_runner(tmp_path / "m.xml")


def test_cli_build_xml_and_its_refusals(ir, tmp_path, cli):
    src, _, _ = ir
    code, stdout, stderr = cli("build", src, "-o", tmp_path / "c.xml", "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert out["precision"] == "fp32" and out["inference_precision"] == "f32" and out["drift"]["value"] < 1e-4
    for args, needle in ((["-o", tmp_path / "a.xml", "--dla-core", "0"], "--dla-core"),
                         (["-o", tmp_path / "a.xml", "-p", "fp16"], "fp32, bf16 or int8"),
                         (["-o", tmp_path / "a.plan", "-p", "bf16"], "OpenVINO"),
                         (["-o", tmp_path / "a.xml", "--max-drift", "rel_l2<=0.1"], "bf16/int8")):
        code, _, stderr = cli("build", src, *args)
        assert code == 2 and needle in stderr, stderr
    assert not (tmp_path / "a.xml").exists()


def test_missing_openvino_is_exit_3(tmp_path, cli, monkeypatch):
    import sys

    src = qm.exported("lstm_regressor", tmp_path)
    monkeypatch.setitem(sys.modules, "openvino", None)
    code, _, stderr = cli("build", src, "-o", tmp_path / "m.xml")
    assert code == 3 and "openvino" in stderr


def test_doctor_lists_openvino(cli):
    code, stdout, _ = cli("doctor", "--json")
    backends = json.loads(stdout)["backends"]
    assert backends["openvino (CPU)"]["ok"] and "openvino" in backends["openvino (CPU)"]["detail"]


def test_bundle_ships_the_ir_with_its_weights_and_it_runs_after_unbundling(ir, tmp_path):
    from edgelstm.bundle import BundleOptions, extract_bundle, make_bundle
    from edgelstm.runners.base import open_runner

    src, xml, _ = ir
    d = tmp_path / "art"
    d.mkdir()
    for f in (src, src.with_name(src.name + ".json"), xml, xml.with_suffix(".bin"), xml.with_name(xml.name + ".json")):
        shutil.copyfile(f, d / f.name)
    make_bundle(d, tmp_path / "b.tar.gz", BundleOptions())
    dest = tmp_path / "out"
    extract_bundle(tmp_path / "b.tar.gz", dest)
    index = json.loads((dest / "bundle.json").read_text())
    roles = {m["name"]: m["role"] for m in index["members"]}
    assert roles["m.xml"] == "openvino" and roles["m.bin"] == "openvino-bin" and roles["m.xml.json"] == "manifest"
    x = qm.x_for("lstm_regressor", n=2, seq=9)
    runner = open_runner(dest / "m.xml")
    assert qm.rel_l2(runner.run({"x": x})["y"], qm.run(src, {"x": x})[0]) < 1e-5


PIPELINE = """
[model]
zoo = "lstm_regressor"
train_steps = 3
config = { hidden_size = 8 }
[export]
seq = 12
stateful = false
[quantize]
precisions = ["int8-dynamic"]
[data]
synthetic = 16
seq = 12
[validate]
gates = ["rel_l2<=0.1"]
[bench]
batch = [1, 2]
seq = [12]
iters = 3
warmup = 1
stream = false
pick = "2x12"
threads = [1, 2]
batch_parallel = true
[targets]
openvino = ["fp32"]
[output]
dir = "out"
"""


def test_pipeline_builds_validates_benches_the_ir_and_picks_the_fastest(cli, tmp_path):
    (tmp_path / "pipeline.toml").write_text(PIPELINE)
    code, stdout, stderr = cli("run", tmp_path / "pipeline.toml", "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert (tmp_path / "out" / "model.fp32.xml").is_file() and (tmp_path / "out" / "model.fp32.bin").is_file()
    assert (tmp_path / "out" / "validate" / "openvino-fp32.json").is_file()
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert any(r["backend"] == "openvino" for r in bench["results"])
    parallel = {(r["backend"], r["threads"]) for r in bench["results"] if r.get("variant") == "batch-parallel"}
    assert ("openvino", 2) in parallel and ("onnxruntime", 2) in parallel and all(t == 2 for _, t in parallel)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| openvino (batch-parallel) |" in report and "| onnxruntime (batch-parallel) |" in report
    assert "<td>openvino (batch-parallel)</td>" in (tmp_path / "out" / "report.html").read_text()
    assert any(n.startswith("fastest within rel_l2 <= 0.01 at batch 2 x seq 12: ") for n in out["notes"]), out["notes"]
    bad = PIPELINE.replace('pick = "2x12"', 'pick = "64x12"').replace('openvino = ["fp32"]', 'openvino = ["fp16"]')
    (tmp_path / "bad.toml").write_text(bad)
    code, _, stderr = cli("run", tmp_path / "bad.toml")
    assert code == 2 and "[targets].openvino" in stderr and "[bench].pick" in stderr


def test_fastest_per_shape_keeps_to_the_budget():
    from edgelstm.latency.winners import fastest_per_shape, parse_shape, pick_fastest

    def row(name, backend, p50, drift=None, batch=1):
        extras = {"drift": {"rel_l2": drift}} if drift is not None else {}
        return {"artifact": name, "backend": backend, "precision": "x", "batch": batch, "seq": 60, "threads": 1,
                "latency_ms": {"p50": p50}, "extras": extras}

    rows = [row("torch", "torch", 3.0), row("a.onnx", "onnxruntime", 1.0, 0.02), row("b.xml", "openvino", 2.0, 1e-7),
            row("c.onnx", "onnxruntime", 0.5), row("a.onnx", "onnxruntime", 9.0, 0.02, batch=32)]
    (free, big) = fastest_per_shape(rows)
    assert free["artifact"] == "c.onnx" and free["runner_up"]["artifact"] == "a.onnx" and free["margin"] == 2.0
    assert big["artifact"] == "a.onnx" and "runner_up" not in big
    best = pick_fastest(rows, (1, 60), max_drift=0.01)
    assert best["artifact"] == "b.xml" and {e["artifact"] for e in best["excluded"]} == {"a.onnx", "c.onnx"}
    assert parse_shape("32x256") == (32, 256) and parse_shape("8×60") == (8, 60)
    with pytest.raises(BadInput):
        parse_shape("32")
    with pytest.raises(BadInput, match="no bench row"):
        pick_fastest(rows, (8, 60))


def test_inspect_names_the_ir_and_an_int8_files_needs(ir, tmp_path, cli):
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8

    src, xml, _ = ir
    code, stdout, stderr = cli("inspect", xml, "--json")
    assert code == 0, stderr
    info = json.loads(stdout)
    assert info["kind"] == "openvino" and info["inference_precision"] == "f32" and info["bin_present"]
    quantize_int8(src, tmp_path / "v.onnx", Int8Options(target="x86-vnni"))
    code, stdout, stderr = cli("inspect", tmp_path / "v.onnx", "--json")
    info = json.loads(stdout)
    assert info["int8_needs"]["edgelstm.int8.target"] == "x86-vnni" and "saturates" in info["int8_note"]
    assert "INT8 needs" in stderr
