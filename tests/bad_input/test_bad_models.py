"""Bad input to the commands that read and write models: convert, quantize, build, inspect.

Every case: its exit code, one ``error:`` line, no traceback, nothing left behind, earlier artifacts intact
(see ``conftest.run_case``). ``{ws}`` holds the shared inputs, ``{w}`` is the case's own directory (and cwd)
holding ``good.onnx`` (+ manifest), ``good.plan`` and ``gooddir/``."""

from __future__ import annotations

import pytest

from .conftest import case, ids, run_case

# ------------------------------------------------------------------------------------------ convert

CONVERT = [
    case("missing-model", "convert", "{ws}/nope.pt", "-o", "{w}/out/m.onnx", needles="does not exist"),
    case("model-is-a-directory", "convert", "{ws}/dir.pt", "-o", "{w}/m.onnx", needles="directory"),
    case("empty-pt", "convert", "{ws}/zero.pt", "-o", "{w}/m.onnx"),
    case("random-bytes-pt", "convert", "{ws}/junk.pt", "-o", "{w}/m.onnx"),
    case("text-pt", "convert", "{ws}/text.pt", "-o", "{w}/m.onnx"),
    case("truncated-checkpoint", "convert", "{ws}/trunc.pt", "-o", "{w}/m.onnx"),
    case("pickle-named-pt2", "convert", "{ws}/pickle.pt2", "-o", "{w}/m.onnx"),
    case("not-zip-named-pt2", "convert", "{ws}/notzip.pt2", "-o", "{w}/m.onnx"),
    case("empty-pt2", "convert", "{ws}/zero.pt2", "-o", "{w}/m.onnx"),
    case("torch-save-of-a-list", "convert", "{ws}/list.pt", "-o", "{w}/m.onnx", needles="list"),
    case("state-dict-without-factory", "convert", "{ws}/state_dict.pt", "-o", "{w}/m.onnx", needles="--factory"),
    case("factory-without-colon", "convert", "{ws}/state_dict.pt", "-o", "{w}/m.onnx", "--factory", "nocolon",
         needles="--factory"),
    case("factory-module-missing", "convert", "{ws}/state_dict.pt", "-o", "{w}/m.onnx", "--factory",
         "no_such_module_xyz:make", needles="cannot import"),
    case("factory-file-missing", "convert", "{ws}/state_dict.pt", "-o", "{w}/m.onnx", "--factory", "{w}/nope.py:make",
         needles="does not exist"),
    case("onnx-given-as-torch-model", "convert", "{ws}/m.onnx", "-o", "{w}/m2.onnx"),
    case("out-is-existing-directory", "convert", "{ws}/m.pt", "-o", "{w}/gooddir", needles="gooddir"),
    case("out-is-directory-named-onnx", "convert", "{ws}/m.pt", "-o", "{w}/dir.onnx",
         setup=lambda w, ws, mp: (w / "dir.onnx").mkdir(), needles="directory"),
    case("out-wrong-suffix", "convert", "{ws}/m.pt", "-o", "{w}/m.txt", needles=".onnx"),
    case("bad-model-keeps-earlier-output", "convert", "{ws}/junk.pt", "-o", "{w}/good.onnx"),
    case("bad-model-leaves-no-parent-dir", "convert", "{ws}/junk.pt", "-o", "{w}/a/b/c/m.onnx"),
    case("input-size-0", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--input-size", "0", needles="--input-size"),
    case("input-size-negative", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--input-size", "-3",
         needles="--input-size"),
    case("input-size-2^40", "convert", "{ws}/m.pt", "-o", "{w}/good.onnx", "--input-size", "{huge}",
         needles="--input-size"),
    case("seq-len-0", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--seq", "0", needles="--seq"),
    case("seq-len-negative", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--seq", "-1", needles="--seq"),
    case("seq-len-above-max", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--seq-len", "100000",
         needles="maximum sequence length"),
    case("max-seq-len-0", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--max-seq-len", "0"),
    case("batch-0", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--batch", "0", needles="--batch"),
    case("batch-negative", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--batch", "-2", needles="--batch"),
    case("batch-huge", "convert", "{ws}/m.pt", "-o", "{w}/good.onnx", "--batch", "1000000000000",
         needles="would take"),
    case("opset-5", "convert", "{ws}/m.pt", "-o", "{w}/good.onnx", "--opset", "5", needles="opset"),
    case("opset-99", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--opset", "99", needles="opset"),
    case("static-and-stateful", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--static", "--stateful"),
    case("route-unknown", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--route", "bogus", usage=True),
    case("seq-len-not-a-number", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--seq-len", "ten", usage=True),
]


@pytest.mark.parametrize("c", CONVERT, ids=ids(CONVERT))
def test_convert(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ quantize

Q = ("-p", "fp16")
I8 = ("-p", "int8")
STATIC = ("-p", "int8", "--mode", "static")

QUANTIZE = [
    case("missing-model", "quantize", "{ws}/nope.onnx", *Q, "-o", "{w}/q.onnx", needles="does not exist"),
    case("empty-onnx", "quantize", "{ws}/zero.onnx", *Q, "-o", "{w}/q.onnx"),
    case("random-bytes-onnx", "quantize", "{ws}/junk.onnx", *I8, "-o", "{w}/q.onnx"),
    case("truncated-onnx", "quantize", "{ws}/trunc.onnx", *Q, "-o", "{w}/good.onnx"),
    case("text-onnx", "quantize", "{ws}/text.onnx", *I8, "-o", "{w}/q.onnx"),
    case("png-named-onnx", "quantize", "{ws}/png.onnx", *Q, "-o", "{w}/q.onnx"),
    case("model-is-a-directory", "quantize", "{ws}/dir.onnx", *Q, "-o", "{w}/q.onnx", needles="directory"),
    case("torch-file-as-onnx", "quantize", "{ws}/m.pt", *Q, "-o", "{w}/q.onnx"),
    case("manifest-not-json", "quantize", "{ws}/badman.onnx", *Q, "-o", "{w}/q.onnx"),
    case("manifest-wrong-sha", "quantize", "{ws}/wrongman.onnx", *Q, "-o", "{w}/q.onnx"),
    case("manifest-is-a-list", "quantize", "{ws}/listman.onnx", *Q, "-o", "{w}/q.onnx"),
    case("custom-domain-op-fp16", "quantize", "{ws}/custom.onnx", *Q, "-o", "{w}/good.onnx", needles="com.example"),
    case("custom-domain-op-int8", "quantize", "{ws}/custom.onnx", *I8, "-o", "{w}/q.onnx", needles="com.example"),
    case("custom-domain-op-no-manifest-int8", "quantize", "{ws}/custom_nomanifest.onnx", *I8, "-o", "{w}/q.onnx",
         needles="com.example"),
    case("out-is-existing-directory", "quantize", "{ws}/m.onnx", *Q, "-o", "{w}/gooddir"),
    case("out-wrong-suffix", "quantize", "{ws}/m.onnx", *Q, "-o", "{w}/q.plan", needles=".onnx"),
    case("out-is-the-input", "quantize", "{w}/good.onnx", *Q, "-o", "{w}/good.onnx", needles="input"),
    case("precision-fp32", "quantize", "{ws}/m.onnx", "-p", "fp32", "-o", "{w}/q.onnx", usage=True),  # not a choice
    case("precision-unknown", "quantize", "{ws}/m.onnx", "-p", "int4", "-o", "{w}/q.onnx", usage=True),
    case("static-without-calib", "quantize", "{ws}/m.onnx", *STATIC, "-o", "{w}/q.onnx", needles="--calib"),
    case("calib-missing", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/nope.npz", "-o", "{w}/q.onnx",
         needles="does not exist"),
    case("calib-nan", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/nan.npz", "-o", "{w}/good.onnx",
         needles="nan"),
    case("calib-inf", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/inf.npz", "-o", "{w}/q.onnx"),
    case("calib-wrong-shape", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/shape.npz", "-o", "{w}/q.onnx"),
    case("calib-strings", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/strings.npz", "-o", "{w}/q.onnx"),
    case("calib-empty", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/empty.npz", "-o", "{w}/q.onnx"),
    case("calib-object-npy", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/object.npy", "-o", "{w}/q.onnx"),
    case("calib-random-bytes", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/junk.npz", "-o", "{w}/q.onnx"),
    case("calib-directory", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/dir.npz", "-o", "{w}/q.onnx"),
    case("calib-unknown-format", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/data.txt", "-o", "{w}/q.onnx"),
    case("calib-csv-word", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/word.csv", "--window", "4",
         "--features", "f", "-o", "{w}/q.onnx", needles="not a number"),
    case("calib-with-dynamic", "quantize", "{ws}/m.onnx", *I8, "--calib", "{ws}/good.npz", "-o", "{w}/q.onnx"),
    case("percentile-200", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/good.npz", "--calib-method",
         "percentile", "--percentile", "200", "-o", "{w}/q.onnx", needles="--percentile"),
    case("percentile-nan", "quantize", "{ws}/m.onnx", *STATIC, "--calib", "{ws}/good.npz", "--calib-method",
         "percentile", "--percentile", "nan", "-o", "{w}/q.onnx", needles="--percentile"),
    case("batch-size-0", "quantize", "{ws}/m.onnx", *I8, "--batch-size", "0", "-o", "{w}/q.onnx"),
    case("max-drift-without-data", "quantize", "{ws}/m.onnx", *I8, "--max-drift", "rel_l2=0.01", "-o", "{w}/q.onnx"),
    case("max-drift-unknown-metric", "quantize", "{ws}/m.onnx", *I8, "--data", "{ws}/good.npz", "--max-drift",
         "bogus=1", "-o", "{w}/q.onnx"),
    case("max-drift-not-a-number", "quantize", "{ws}/m.onnx", *I8, "--data", "{ws}/good.npz", "--max-drift",
         "rel_l2=abc", "-o", "{w}/q.onnx"),
    case("max-drift-negative", "quantize", "{ws}/m.onnx", *I8, "--data", "{ws}/good.npz", "--max-drift",
         "rel_l2=-1", "-o", "{w}/q.onnx"),
    case("max-drift-data-nan", "quantize", "{ws}/m.onnx", *I8, "--data", "{ws}/nan.npz", "--max-drift",
         "rel_l2=0.01", "-o", "{w}/q.onnx"),
    case("data-without-max-drift", "quantize", "{ws}/m.onnx", *I8, "--data", "{ws}/good.npz", "-o", "{w}/q.onnx"),
    case("exclude-matches-nothing", "quantize", "{ws}/m.onnx", *I8, "--exclude", "NoSuchOp", "-o", "{w}/q.onnx"),
    case("weight-type-unknown", "quantize", "{ws}/m.onnx", *I8, "--weight-type", "s4", "-o", "{w}/q.onnx"),
    case("fp16-with-int8-options", "quantize", "{ws}/m.onnx", *Q, "--per-channel", "-o", "{w}/q.onnx"),
]


@pytest.mark.parametrize("c", QUANTIZE, ids=ids(QUANTIZE))
def test_quantize(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ build
# Input that is bad whatever is installed is exit 2 before TensorRT is looked for (exit 3 on this machine).

BUILD = [
    case("missing-model", "build", "{ws}/nope.onnx", "-o", "{w}/m.plan", needles="does not exist"),
    case("empty-onnx", "build", "{ws}/zero.onnx", "-o", "{w}/good.plan"),
    case("random-bytes-onnx", "build", "{ws}/junk.onnx", "-o", "{w}/m.plan"),
    case("model-is-a-directory", "build", "{ws}/dir.onnx", "-o", "{w}/m.plan"),
    case("torch-file", "build", "{ws}/m.pt", "-o", "{w}/m.plan"),
    case("out-is-existing-directory", "build", "{ws}/id.onnx", "-o", "{w}/gooddir"),
    case("out-is-the-input", "build", "{w}/good.onnx", "-o", "{w}/good.onnx"),
    case("batch-range-zero", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--batch", "0:1:2", needles="--batch"),
    case("batch-range-descending", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--batch", "8:4:1", needles="--batch"),
    case("batch-range-words", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--batch", "a:b:c", needles="--batch"),
    case("seq-range-two-parts", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--seq", "1:2", needles="--seq"),
    case("workspace-words", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--workspace", "lots"),
    case("workspace-negative", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--workspace", "-1"),
    case("dla-core-negative", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--dla-core", "-1", usage=True),
    case("calib-batch-size-0", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--calib-batch-size", "0", usage=True),
    case("calib-missing", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "-p", "int8", "--calib", "{ws}/nope.npz"),
    case("timing-cache-is-a-directory", "build", "{ws}/id.onnx", "-o", "{w}/m.plan", "--timing-cache", "{w}/gooddir"),
]


@pytest.mark.parametrize("c", BUILD, ids=ids(BUILD))
def test_build(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ inspect

INSPECT = [
    case("missing", "inspect", "{ws}/nope.onnx", needles="does not exist"),
    case("empty-onnx", "inspect", "{ws}/zero.onnx"),
    case("random-bytes-onnx", "inspect", "{ws}/junk.onnx"),
    case("truncated-onnx", "inspect", "{ws}/trunc.onnx"),
    case("text-onnx", "inspect", "{ws}/text.onnx"),
    case("png-named-onnx", "inspect", "{ws}/png.onnx"),
    case("directory", "inspect", "{ws}/dir.onnx"),
    case("pickle-named-pt2", "inspect", "{ws}/pickle.pt2"),
    case("not-zip-named-pt2", "inspect", "{ws}/notzip.pt2"),
    case("empty-pt", "inspect", "{ws}/zero.pt"),
    case("random-bytes-pt", "inspect", "{ws}/junk.pt"),
    case("unknown-suffix", "inspect", "{ws}/data.txt"),
    case("empty-engine", "inspect", "{ws}/zero.plan"),
]


@pytest.mark.parametrize("c", INSPECT, ids=ids(INSPECT))
def test_inspect(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)
