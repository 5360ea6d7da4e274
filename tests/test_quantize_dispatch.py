"""The quantize stage dispatches on its config's type (the precision), and a precision name decides the INT8 mode
(issue 19: ``stages.quantize(src, out, "int8-static", Int8Options())`` used to quantize dynamically)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import quant_models as qm
from edgelstm import stages
from edgelstm.artifacts.iospec import iospec_from_onnx
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.data import as_calibration_source, dataset_from_arrays
from edgelstm.errors import BadInput
from edgelstm.options import Precision, PrecisionSpec, QuantMode, TargetCpu


def _calib(src, n=32, seq=6):
    io = iospec_from_onnx(onnx.load(str(src)))
    x = np.random.default_rng(3).standard_normal((n, seq, io.inputs[0].shape[-1])).astype(np.float32)
    return as_calibration_source(dataset_from_arrays({"x": x}, io), 8, spec=io)


def test_a_static_precision_name_with_default_int8_options_quantizes_statically(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "s.onnx"
    stages.quantize(src, out, "int8-static", stages.Int8Options(), calib=_calib(src))
    q = read_manifest(out).details["quantization"]
    assert q["mode"] == "static" and q["calibration"]["samples"] == 32
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out)).graph.node)


def test_the_config_type_is_the_precision():
    assert stages.Fp16Options().precision == Precision.fp16 and stages.Int8Options().precision == Precision.int8
    assert stages.config_for("int8-static", stages.Int8Options(per_channel=True)) == \
        stages.Int8Options(mode=QuantMode.static, per_channel=True)
    assert stages.config_for(PrecisionSpec.parse("fp16")) == stages.Fp16Options()
    with pytest.raises(BadInput, match="int8-dynamic needs Int8Options, got Fp16Options"):
        stages.config_for("int8-dynamic", stages.Fp16Options())
    with pytest.raises(BadInput, match="the precision is int8-dynamic but the INT8 options ask for static"):
        stages.config_for("int8-dynamic", stages.Int8Options(mode=QuantMode.static))
    with pytest.raises(BadInput, match="fp32 is what the input already is"):
        stages.config_for("fp32", stages.Fp16Options())


def test_the_compatibility_rules_live_in_the_config_construction():
    cfg = stages.quantize_config(Precision.int8, QuantMode.static, calib=True, target=TargetCpu.tensorrt)
    assert isinstance(cfg, stages.Int8Options) and cfg.mode == QuantMode.static and cfg.target == TargetCpu.tensorrt
    assert stages.quantize_config(Precision.fp16, fp16_io=True) == stages.Fp16Options(keep_io_types=False)
    with pytest.raises(BadInput, match="--mode, --per-channel apply to --precision int8, not fp16"):
        stages.quantize_config(Precision.fp16, QuantMode.static, per_channel=True)
    with pytest.raises(BadInput, match="--fp16-io applies to --precision fp16"):
        stages.quantize_config(Precision.int8, fp16_io=True)
    with pytest.raises(BadInput, match="--mode static needs calibration data"):
        stages.quantize_config(Precision.int8, QuantMode.static)
    with pytest.raises(BadInput, match="apply to --mode static; dynamic INT8 needs no calibration"):
        stages.quantize_config(Precision.int8, calib=True)
