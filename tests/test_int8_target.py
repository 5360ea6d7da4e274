"""INT8 for a target CPU class: the ISA detection, the recipe per target, that the target changes the file as
documented (7-bit weights / the unfused level where u8×s8 saturates), and that validate and bench warn when an
INT8 artifact is measured on another class than it targets. Nothing here depends on this machine's CPU: the
detected class is monkeypatched wherever it matters."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import quant_models as qm
from edgelstm.data import as_calibration_source, dataset_from_arrays
from edgelstm.converters.quantize.int8_target import choose_int8_recipe
from edgelstm.artifacts.onnx_graph import walk
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.machine import isa as cpu_isa
from edgelstm.machine.isa import IsaClass, TargetCpu, classify, cpu_flags
from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import iospec_from_onnx
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import QuantMode

ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
ICELAKE = "flags\t\t: avx2 avx512f avx512bw avx512_vnni\n"
SKYLAKE_X = "flags\t\t: avx2 avx512f avx512bw avx512dq\n"  # AVX-512 without VNNI: saturates like AVX2
ALDERLAKE = "flags\t\t: avx2 avx_vnni\n"
GRAVITON = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 avx_vnni amx_tile amx_int8\n"


@pytest.mark.parametrize("machine,text,expected", [
    ("x86_64", ZEN3, IsaClass.x86_avx2),
    ("x86_64", ICELAKE, IsaClass.x86_vnni),
    ("x86_64", SKYLAKE_X, IsaClass.x86_avx2),
    ("x86_64", ALDERLAKE, IsaClass.x86_vnni),
    ("x86_64", SAPPHIRE_RAPIDS, IsaClass.x86_amx),
    ("x86_64", "flags\t: avx2 avx512_vnni amx_tile\n", IsaClass.x86_vnni),  # tiles without AMX-INT8
    ("x86_64", "", IsaClass.x86_avx2),  # unknown flags: the safe class
    ("aarch64", GRAVITON, IsaClass.arm64),
    ("riscv64", "", IsaClass.other),
])
def test_isa_class_from_machine_and_flags(machine, text, expected):
    assert classify(machine, cpu_flags(text)) == expected


@pytest.mark.parametrize("target,mode,rr,levels", [
    ("portable", "dynamic", True, ("all", "extended", "basic")),
    ("portable", "static", True, ("all", "extended", "basic")),   # 7-bit weights: fused Q/DQ exact everywhere
    ("x86-vnni", "dynamic", False, ("all", "extended", "basic")),
    ("x86-amx", "dynamic", False, ("all", "extended", "basic")),
    ("x86-avx2", "dynamic", True, ("all", "extended", "basic")),
    ("arm64", "dynamic", False, ("all", "extended", "basic")),
    ("x86-vnni", "static", False, ("all", "extended", "basic")),
    ("x86-amx", "static", False, ("all", "extended", "basic")),
    ("x86-avx2", "static", False, ("basic",)),  # Q/DQ stay unfused: no saturating QGemm
    ("arm64", "static", False, ("all", "extended", "basic")),
    ("tensorrt", "static", False, ("basic",)),  # TensorRT's 8-bit recipe; unfused on a CPU: exact everywhere
])
def test_recipe_per_target(target, mode, rr, levels):
    r = choose_int8_recipe(target, mode)
    assert (str(r.target), r.reduce_range, r.ort_levels, r.weight_type, r.safe) == (target, rr, levels, "s8", True)
    assert r.why.startswith(target)


def test_recipe_explicit_choices_win_and_say_when_unsafe():
    r = choose_int8_recipe("x86-avx2", "dynamic", reduce_range=False)
    assert not r.reduce_range and not r.safe and "CAN saturate" in r.why
    # a portable file the user forces to 8 bits is not portable any more, and says so
    assert not choose_int8_recipe("portable", "dynamic", reduce_range=False).safe
    # u8 weights do not make an LSTM safe: onnxruntime's DynamicQuantizeLSTM keeps s8 weights
    assert not choose_int8_recipe("x86-avx2", "dynamic", reduce_range=False, weight_type="u8").safe
    r = choose_int8_recipe("x86-avx2", "static", reduce_range=True)
    assert r.ort_levels[0] == "all" and r.reduce_range  # 7-bit weights: fused kernels are exact
    r = choose_int8_recipe("portable", "static", reduce_range=False)  # 8-bit Q/DQ portable only unfused
    assert r.ort_levels == ("basic",) and r.safe
    with pytest.raises(BadInput):
        choose_int8_recipe("x86-vnni", "static", weight_type="u8")
    with pytest.raises(BadInput):
        choose_int8_recipe("x86-vnni", "dynamic", weight_type="s4")
    with pytest.raises(BadInput, match="static"):
        choose_int8_recipe("tensorrt", "dynamic")


def test_auto_is_portable_and_native_follows_the_detected_class(monkeypatch):
    for isa in IsaClass:
        monkeypatch.setattr(cpu_isa, "detect_isa", lambda isa=isa: isa)
        assert str(choose_int8_recipe(TargetCpu.auto, "dynamic").target) == "portable"
        assert choose_int8_recipe(None, "dynamic").reduce_range
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_avx2)
    assert choose_int8_recipe(TargetCpu.native, "dynamic").reduce_range
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_vnni)
    assert not choose_int8_recipe(TargetCpu.native, "dynamic").reduce_range
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_amx)
    assert choose_int8_recipe("native", "dynamic").target == "x86-amx"
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.other)
    assert choose_int8_recipe("native", "dynamic").reduce_range  # unknown CPU: the safe recipe


def _int8_weights(path) -> list[np.ndarray]:
    """The int8 weight initializers that feed integer kernels (MatMulInteger B, DynamicQuantizeLSTM W/R)."""
    model = onnx.load(str(path))
    inits = {i.name: i for _, g, _ in walk(model.graph) for i in g.initializer}
    inits.update({i.name: i for i in model.graph.initializer})
    out = []
    for _, _, n in walk(model.graph):
        names = {"MatMulInteger": n.input[1:2], "DynamicQuantizeLSTM": n.input[1:3]}.get(n.op_type, [])
        out += [numpy_helper.to_array(inits[w]) for w in names if w in inits]
    return out


def test_target_changes_the_dynamic_file_as_documented(tmp_path):
    """x86-avx2: every int8 weight within ±64, so no VPMADDUBSW pair sum (255·(|a|+|b|)) can pass 32767;
    x86-vnni: the full 8-bit range is used. The manifest records the target and why."""
    src = qm.exported("lstm_regressor", tmp_path)
    x = qm.x_for("lstm_regressor", n=8, seq=12)
    ref = qm.run(src, {"x": x})[0]
    peaks = {}
    for target in ("x86-vnni", "x86-avx2"):
        out = tmp_path / f"{target}.onnx"
        quantize_int8(src, out, Int8Options(target=target))
        weights = _int8_weights(out)
        assert len(weights) == 3 and all(w.dtype == np.int8 for w in weights)
        peaks[target] = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
        man = read_manifest(out)
        t = man.details["quantization"]["target"]
        assert man.details["target_isa"] == target and t["isa"] == target and t["requested"] == target
        assert t["reduce_range"] == (target == "x86-avx2") and t["why"]
        sat = man.details["quantization"]["saturation"]
        assert sat["can_saturate_on_target"] is False and sat["pairs"] > 0
        if target == "x86-avx2" or cpu_isa.detect_isa() == IsaClass.x86_vnni:  # exact kernels on this CPU
            assert qm.rel_l2(qm.run(out, {"x": x})[0], ref) < 0.05
    assert peaks["x86-vnni"] == 127
    assert peaks["x86-avx2"] <= 64
    pairs = [np.abs(w.astype(np.int32)) for w in _int8_weights(tmp_path / "x86-avx2.onnx")]
    assert all(255 * 2 * int(p.max()) <= 32767 for p in pairs)


def test_static_for_avx2_records_the_unfused_level(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    io = iospec_from_onnx(onnx.load(str(src)))
    x = np.random.default_rng(0).standard_normal((32, 6, 1)).astype(np.float32)
    calib = as_calibration_source(dataset_from_arrays({"x": x}, io), 8, spec=io)
    levels = {}
    for target in ("x86-vnni", "x86-avx2"):
        out = tmp_path / f"s.{target}.onnx"
        res = quantize_int8(src, out, Int8Options(mode=QuantMode.static, target=target), calib)
        levels[target] = res.ort_opt_level
        assert read_manifest(out).details["ort_opt_level"] == res.ort_opt_level
    assert levels == {"x86-vnni": "all", "x86-avx2": "basic"}


def test_cli_says_what_it_chose_and_warns_off_target(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_vnni)
    src = qm.exported("lstm_regressor", tmp_path)
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "--target-cpu", "x86-avx2", "-o",
                               tmp_path / "a.onnx", "--json")
    assert code == 0, stderr
    flat = " ".join(stderr.split())
    assert "INT8 for x86-avx2" in flat and "7-bit" in flat and "this machine is x86-vnni" in flat
    q = json.loads(stdout)["quantization"]
    assert q["target"]["isa"] == "x86-avx2" and q["reduce_range"] is True
    code, _, stderr = cli("quantize", src, "-p", "fp16", "--target-cpu", "x86-avx2", "-o", tmp_path / "h.onnx")
    assert code == 2 and "--target-cpu" in stderr


def _validate(ref, cand, data):
    from edgelstm.validation.validate import ValidateOptions, validate_artifacts

    return validate_artifacts(ref, cand, data, ValidateOptions())


def test_validate_warns_when_measured_on_another_class(tmp_path, monkeypatch):
    from edgelstm.validation.reports.junit import junit_xml
    from edgelstm.validation.reports.markdown import markdown_summary

    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "m.int8.onnx"
    quantize_int8(src, out, Int8Options(target="x86-avx2"))
    x = qm.x_for("lstm_regressor", n=8, seq=10)
    np.save(tmp_path / "x.npy", x)
    from edgelstm.validation.validate import DataRequest

    data = DataRequest(path=tmp_path / "x.npy")
    # a file of 7-bit weights computes the same on every x86 class: measuring it on VNNI is representative
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_vnni)
    res = _validate(src, out, data)
    assert "warnings" not in res.info and res.to_dict()["machine"]["isa"] == "x86-vnni"
    # a full 8-bit file for VNNI measured on an AVX2-only CPU saturates here, not on the device: warn
    vnni = tmp_path / "v.int8.onnx"
    quantize_int8(src, vnni, Int8Options(target="x86-vnni"))
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_avx2)
    res = _validate(src, vnni, data)
    (warning,) = res.info["warnings"]
    assert "validated on x86-avx2; v.int8.onnx targets x86-vnni" in warning
    assert res.to_dict()["machine"]["isa"] == "x86-avx2"
    assert "machine_isa" in junit_xml(res) and "targets x86-vnni" in junit_xml(res)
    assert "targets x86-vnni" in markdown_summary(res) and "measured on x86-avx2" in markdown_summary(res)
    # the same file measured on arm64 (32-bit accumulation there too): representative, no warning
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.arm64)
    assert "warnings" not in _validate(src, vnni, data).info


def test_bench_names_the_isa_and_warns_off_target(tmp_path, monkeypatch):
    from edgelstm.latency import BenchGrid, BenchOptions, bench_artifacts
    from edgelstm.latency import TimingPolicy
    from edgelstm.machine.device import machine_slug

    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "m.int8.onnx"
    quantize_int8(src, out, Int8Options(target="x86-avx2"))
    monkeypatch.setattr(cpu_isa, "detect_isa", lambda: IsaClass.x86_vnni)
    opts = BenchOptions(policy=TimingPolicy(warmup=0, iters=2), measure_memory=False)
    rep = bench_artifacts([src, out], BenchGrid((1,), (4,)), opts)
    assert rep.device["cpu"]["isa"] == "x86-vnni" and rep.device["machine"].endswith("x86-vnni")
    (warning,) = rep.to_dict()["warnings"]
    assert "m.int8.onnx targets x86-avx2" in warning
    # two CPUs with one model name but another int8 class never share a machine name
    dev = {"cpu": {"model": "AMD EPYC", "usable_cores": 2}}
    assert machine_slug({"cpu": {**dev["cpu"], "isa": "x86-avx2"}}) != machine_slug({"cpu": {**dev["cpu"], "isa": "x86-vnni"}})
