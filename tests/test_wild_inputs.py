"""The input contract: --input parsing, inference from the first layer, real axis roles (seq-first), token ids
drawn within their range, state arguments streamed, packed sequences with a lengths input, fixed-shape models
as references, and token models end to end through the CLI. Tiny models built in the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelstm.artifacts.feeds import lengths_values, random_feeds
from edgelstm.artifacts.iospec import LENGTHS, IOSpec, TensorSpec, check_feeds
from edgelstm.errors import BadInput
from edgelstm.models.inputs import parse_input, parse_inputs

sys.path.insert(0, str(Path(__file__).parent))
WILD = Path(__file__).parent / "wild_models_inputs.py"


# ------------------------------------------------------------------------------------------- parsing (numpy only)


def test_parse_input_forms():
    t = parse_input("tokens:int64[seq,batch]@0:10000")
    assert (t.name, t.dtype, t.shape, t.value_range, t.role) == ("tokens", "int64", ("seq", "batch"), (0, 10000), None)
    assert parse_input("x:float32[batch, seq, 8]").shape == ("batch", "seq", 8)
    assert parse_input("lengths:int64[batch]").role == LENGTHS
    assert parse_input("mask:bool[batch,seq]").dtype == "bool"
    assert parse_input("enc:float16[batch,src,16]").shape == ("batch", "src", 16)


@pytest.mark.parametrize("text, needle", [
    ("tokens", "NAME:DTYPE[DIMS]"),
    ("x:complex64[batch]", "dtype 'complex64'"),  # float64 is accepted (exported in float32, issue 20)
    ("x:float32[batch]@0:5", "applies to int64/int32"),
    ("t:int64[batch]@5:5", "empty"),
    ("t:int64[batch,-1]", "neither a positive integer nor a name"),
    ("h0:float32[1,batch,8]", "--state-arg"),
])
def test_parse_input_refusals_name_the_option(text, needle):
    with pytest.raises(BadInput) as e:
        parse_input(text)
    assert "--input" in str(e.value) and needle in str(e.value)


def test_duplicate_inputs_are_refused():
    with pytest.raises(BadInput, match="more than once"):
        parse_inputs(["x:float32[batch,seq,2]", "x:int64[batch]"])


def test_tensor_spec_dict_stays_backward_compatible():
    old = {"name": "x", "dtype": "float32", "shape": ["batch", "seq", 3], "state": False}
    assert TensorSpec.from_dict(old).to_dict() == old  # no new keys for a plain input
    t = TensorSpec("tokens", "int64", ("seq", "batch"), value_range=(0, 40))
    assert TensorSpec.from_dict(t.to_dict()) == t and t.to_dict()["range"] == [0, 40]
    lens = TensorSpec("lengths", "int64", ("batch",), role=LENGTHS)
    assert TensorSpec.from_dict(lens.to_dict()) == lens
    assert t.batch_axis == 1 and t.seq_axis == 0 and "@0:40" in t.describe()


def test_feeds_respect_ranges_roles_and_axes():
    spec = IOSpec((TensorSpec("tokens", "int64", ("seq", "batch"), value_range=(3, 9)),
                   TensorSpec("lengths", "int64", ("batch",), role=LENGTHS),
                   TensorSpec("h0", "float32", (2, "batch", 4), True)))
    feeds = random_feeds(spec, 5, 7, np.random.default_rng(0))
    assert feeds["tokens"].shape == (7, 5) and feeds["tokens"].min() >= 3 and feeds["tokens"].max() < 9
    assert feeds["h0"].shape == (2, 5, 4) and not feeds["h0"].any()
    lens = feeds["lengths"]
    assert lens[0] == 7 and (np.diff(lens) <= 0).all() and lens.min() >= 1
    assert lengths_values(np.random.default_rng(1), 1, 4).tolist() == [4]


def test_check_feeds_refuses_token_ids_out_of_range_and_fractions():
    spec = IOSpec((TensorSpec("tokens", "int64", ("batch", "seq"), value_range=(0, 10)),))
    with pytest.raises(BadInput, match=r"outside \[0, 10\)"):
        check_feeds(spec, {"tokens": np.array([[1, 10]])})
    with pytest.raises(BadInput, match="fractional"):
        check_feeds(spec, {"tokens": np.array([[1.5, 2.0]])})
    assert check_feeds(spec, {"tokens": np.array([[1.0, 2.0]])})["tokens"].dtype == np.int64


def test_synthetic_data_uses_axis_roles_and_token_ranges():
    from edgelstm.data import synthetic_dataset

    spec = IOSpec((TensorSpec("x", "float32", ("seq", "batch", 3)),))
    ds = synthetic_dataset(spec, 10, seq=6)
    assert ds.inputs["x"].shape == (6, 10, 3) and ds.n == 10 and ds.seq == 6
    first = next(iter(ds.batches(4)))
    assert first["x"].shape == (6, 4, 3)  # batches cut along the batch axis (1), not the time axis
    tok = synthetic_dataset(IOSpec((TensorSpec("t", "int64", ("batch", "seq"), value_range=(0, 50)),)), 64, seq=9)
    assert tok.inputs["t"].max() >= 10 and tok.inputs["t"].max() < 50  # drawn over the whole range, not {0, 1}


def test_tensorrt_profile_follows_symbolic_axes_of_a_seq_first_input():
    from edgelstm.converters.tensorrt.profile import plan_profile

    spec = IOSpec((TensorSpec("x", "float32", ("seq", "batch", 5)),))
    shapes = plan_profile([("x", (-1, -1, 5))], spec, "1:2:4", "8:16:32")
    assert shapes["x"] == ((8, 1, 5), (16, 2, 5), (32, 4, 5))


# ------------------------------------------------------------------------------------- inference from the model


def _wild(name):
    from wild_models_inputs import WILD_INPUT_MODELS

    return WILD_INPUT_MODELS[name]


def test_inputs_are_inferred_from_the_first_layer():
    from edgelstm.models.calling import resolve_call

    lm = resolve_call(_wild("word_lm").build()).io
    assert [t.describe() for t in lm.inputs] == ["input: int64[seq, batch]@0:40", "h0: float32[2, batch, 16] (state)",
                                                 "c0: float32[2, batch, 16] (state)"]
    assert lm.output_names == ["y", "hn", "cn"] and lm.outputs[0].shape == ("seq", "batch", 40)
    crnn = resolve_call(_wild("crnn_head").build()).io
    assert crnn.inputs[0].shape == ("batch", 6, "seq") and crnn.outputs[0].shape == ("seq", "batch", 7)
    auto = resolve_call(_wild("seqfirst_autoencoder").build()).io
    assert auto.inputs[0].shape == ("seq", "batch", 5) and auto.outputs[0].shape == ("seq", "batch", 5)
    packed = resolve_call(_wild("packed_classifier").build()).io
    assert [(t.name, t.role) for t in packed.inputs] == [("x", None), ("lengths", LENGTHS)]


def test_an_argument_edgelstm_cannot_infer_is_refused_in_one_line():
    from edgelstm.models.calling import resolve_call
    from edgelstm.models.inputs import InputOptions

    with pytest.raises(BadInput) as e:
        resolve_call(_wild("attn_decoder").build())
    assert "encoder_outputs" in str(e.value) and "--input" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BadInput, match="--state-arg 'nope' is not an argument"):
        resolve_call(_wild("word_lm").build(), InputOptions(state_arg="nope"))


def test_a_fixed_shape_model_is_probed_at_its_own_shape():
    from edgelstm.models.calling import resolve_call
    from edgelstm.models.inputs import InputOptions

    model = _wild("fixed_autoencoder").build()
    with pytest.raises(BadInput, match="--static"):
        resolve_call(model)
    call = resolve_call(model, InputOptions(fallback_points=((32, 16), (1, 100))))
    assert call.fixed and call.io.inputs[0].shape == (1, 100, 3) and call.io.outputs[0].shape == (1, 100, 3)


# ------------------------------------------------------------------------------------------------ export


def _ort(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _independent_check(model, path, io, rng, batches=(1, 3), seqs=(1, 9, 40)):
    """onnxruntime against torch at lengths and batches the exporter did not choose, relative tolerance."""
    import torch

    from edgelstm.models.calling import ModelCall, resolve_call
    from edgelstm.models.inputs import InputOptions

    call: ModelCall = resolve_call(model, InputOptions(inputs=tuple(t for t in io.data_inputs if not t.state)))
    sess = _ort(path)
    for b in batches:
        for t in seqs:
            feeds = random_feeds(io, b, t, rng, random_state=True)
            with torch.no_grad():
                ref = [o.numpy() for o in call(call.tensors(feeds))]
            got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
            for r, g in zip(ref, got):
                assert r.shape == g.shape
                assert np.linalg.norm(g - r) <= 1e-4 * max(np.linalg.norm(r), 1e-6) + 1e-6


@pytest.mark.parametrize("name", ["word_lm", "crnn_head", "bilstm_tagger", "attn_decoder", "packed_classifier",
                                  "packed_tagger", "seqfirst_autoencoder"])
def test_wild_input_models_convert_and_reproduce_torch(tmp_path, name):
    from edgelstm.converters.export.torch_to_onnx import export_onnx
    from edgelstm.artifacts.manifest import read_manifest
    from wild_models_inputs import export_options

    wm = _wild(name)
    model = wm.build()
    out = tmp_path / f"{name}.onnx"
    result = export_onnx(model, out, export_options(wm, seq_len=6))
    assert result.verification.passed
    manifest = read_manifest(out)
    assert manifest.io == result.io and manifest.details["inputs"]["inputs"]
    _independent_check(model, out, result.io, np.random.default_rng(3))
    if result.io.stateful:  # a forward(input, hidden) model is verified by streaming
        assert any(c.name.startswith("stream") and c.passed for c in result.verification.checks)


def test_packed_model_maps_lengths_to_sequence_lens_and_matches_ragged_batches(tmp_path):
    import onnx
    import torch

    from edgelstm.converters.export.torch_to_onnx import export_onnx

    model = _wild("packed_classifier").build()
    out = tmp_path / "p.onnx"
    export_onnx(model, out)
    gru = [n for n in onnx.load(str(out)).graph.node if n.op_type == "GRU"]
    assert gru and all(len(n.input) > 4 and n.input[4] for n in gru)  # sequence_lens is wired
    x = np.random.default_rng(0).standard_normal((4, 12, 4)).astype(np.float32)
    lengths = np.array([3, 12, 1, 7], dtype=np.int64)  # unsorted, ragged
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    got = _ort(out).run(None, {"x": x, "lengths": lengths})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_fixed_shape_model_exports_static_and_is_a_validate_and_bench_reference(tmp_path, cli):
    import torch

    from edgelstm.converters.export.torch_to_onnx import export_onnx
    from wild_models_inputs import export_options

    wm = _wild("fixed_autoencoder")
    model = wm.build()
    r = export_onnx(model, tmp_path / "f.onnx", export_options(wm))
    assert r.io.inputs[0].shape == (1, 100, 3)
    torch.save(model.state_dict(), tmp_path / "f.pt")
    code, out, err = cli("validate", "-r", tmp_path / "f.pt", "--factory", f"{WILD}:fixed_autoencoder",
                         "-c", tmp_path / "f.onnx", "--synthetic", "4", "--gate", "rel_l2<=1e-4", "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == 4
    code, out, err = cli("bench", tmp_path / "f.pt", "--factory", f"{WILD}:fixed_autoencoder", "--batch", "1",
                         "--seq", "100", "--iters", "3", "--warmup", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["seq"] == 100


def test_seq_first_axes_in_manifest_inspect_validate_and_bench(tmp_path, cli):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.latency.bencher import Bencher
    from edgelstm.latency.schema import BenchGrid
    from edgelstm.validation.validate import DataRequest, validate_artifacts

    model = _wild("seqfirst_autoencoder").build()
    out = tmp_path / "s.onnx"
    export_onnx(model, out, ExportOptions(seq_len=5))
    code, stdout, _ = cli("inspect", out, "--json")
    assert code == 0 and json.loads(stdout)["io"]["inputs"][0]["shape"] == ["seq", "batch", 5]
    result = validate_artifacts(model, out, DataRequest(synthetic=6, seq=11))
    assert len(result.outputs["y"]["per_step_rmse"]) == 11  # per step, not per sample
    bencher = Bencher(grid=BenchGrid((1,), (26,)))
    res = bencher.add(out)
    assert bencher.feeds(res, 1, 26)["x"].shape == (26, 1, 5)  # --batch 1 --seq 26 times 26 steps of batch 1


# ------------------------------------------------------------------------------------- token models, end to end


@pytest.fixture(scope="module")
def token_models(tmp_path_factory):
    import torch

    from wild_models_inputs import WILD_INPUT_MODELS

    d = tmp_path_factory.mktemp("tokens")
    torch.save(WILD_INPUT_MODELS["word_lm"].build().state_dict(), d / "lm.pt")
    torch.save(WILD_INPUT_MODELS["bilstm_tagger"].build().state_dict(), d / "tagger.pt")
    return d


def test_token_tagger_convert_quantize_validate_bench(cli, token_models, tmp_path):
    pt, f = token_models / "tagger.pt", ("--factory", f"{WILD}:bilstm_tagger")
    code, out, err = cli("convert", pt, *f, "-o", tmp_path / "t.onnx", "--seq-len", "6", "--json")
    assert code == 0, err
    io = json.loads(out)["io"]
    assert io["inputs"] == [{"name": "sentence", "dtype": "int64", "shape": ["batch", "seq"], "state": False,
                             "range": [0, 30]}]
    code, _, err = cli("quantize", tmp_path / "t.onnx", "--precision", "int8", "-o", tmp_path / "t.int8.onnx")
    assert code == 0, err
    q_io = json.loads((tmp_path / "t.int8.onnx.json").read_text())["io"]
    assert q_io["inputs"][0]["range"] == [0, 30]  # the token range carries over to quantized files
    code, out, err = cli("validate", "-r", pt, *f, "-c", tmp_path / "t.int8.onnx", "--synthetic", "64",
                         "--gate", "rel_l2<=0.25", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["samples"] == 64 and report["outputs"]["y"]["rel_l2"] > 0  # int8 drifted, within the gate
    code, out, err = cli("bench", pt, *f, tmp_path / "t.onnx", tmp_path / "t.int8.onnx", "--batch", "2", "--seq", "8",
                         "--iters", "3", "--warmup", "1", "--json")
    assert code == 0, err
    assert {r["backend"] for r in json.loads(out)["results"]} == {"torch", "onnxruntime"}


def test_language_model_with_hidden_argument_streams_end_to_end(cli, token_models, tmp_path):
    pt, f = token_models / "lm.pt", ("--factory", f"{WILD}:word_lm")
    code, out, err = cli("convert", pt, *f, "-o", tmp_path / "lm.onnx", "--seq-len", "5", "--state-arg", "hidden",
                         "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert [t["name"] for t in payload["io"]["inputs"]] == ["input", "h0", "c0"]
    assert [t["name"] for t in payload["io"]["outputs"]] == ["y", "hn", "cn"]
    assert any(c["name"].startswith("stream") for c in payload["verification"])
    code, _, err = cli("quantize", tmp_path / "lm.onnx", "--precision", "int8", "-o", tmp_path / "lm.int8.onnx")
    assert code == 0, err
    code, out, err = cli("validate", "-r", pt, *f, "-c", tmp_path / "lm.int8.onnx", "--synthetic", "64", "--seq", "8",
                         "--gate", "rel_l2:y<=0.25", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["streaming"]["chunk_sizes"] == [1, 2]  # fed step by step (state carried) and in chunks
    assert report["streaming"]["outputs"]["y"]["rel_l2"] < 0.25
    code, out, err = cli("bench", pt, *f, tmp_path / "lm.onnx", "--batch", "1", "--seq", "8", "--stream",
                         "--iters", "3", "--warmup", "1", "--json")
    assert code == 0, err
    modes = {(r["backend"], r["mode"]) for r in json.loads(out)["results"]}
    assert ("onnxruntime", "step") in modes and ("torch", "step") in modes


def test_tensorrt_profile_sizes_other_named_axes_like_seq():
    from edgelstm.converters.tensorrt.profile import plan_profile

    spec = IOSpec((TensorSpec("token", "int64", ("batch",), value_range=(0, 20)),
                   TensorSpec("encoder_outputs", "float32", ("batch", "src", 16)),
                   TensorSpec("h0", "float32", (1, "batch", 16), True)))
    shapes = plan_profile([("token", (-1,)), ("encoder_outputs", (-1, -1, 16)), ("h0", (1, -1, 16))], spec, "1:2:4",
                          "8:16:32")
    assert shapes["token"] == ((1,), (2,), (4,)) and shapes["encoder_outputs"][2] == (4, 32, 16)
    assert shapes["h0"] == ((1, 1, 16), (1, 2, 16), (1, 4, 16))


def test_pipeline_model_section_takes_the_same_input_options(cli, token_models, tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text(f"""[model]
source = "{token_models / 'lm.pt'}"
factory = "{WILD}:word_lm"
input = ["input:int64[seq,batch]"]
state_arg = "hidden"
[export]
seq_len = 6
stateful = false
[quantize]
precisions = ["int8-dynamic"]
[data]
synthetic = 16
seq = 6
[validate]
gates = ["rel_l2<=0.25"]
[bench]
enabled = false
[output]
dir = "{tmp_path / 'out'}"
""")
    code, _, err = cli("run", toml)
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "model.onnx.json").read_text())
    assert [t["name"] for t in manifest["io"]["inputs"]] == ["input", "h0", "c0"]
    assert manifest["io"]["inputs"][0]["range"] == [0, 40]
    toml.write_text(toml.read_text().replace('input = ["input:int64[seq,batch]"]', 'input = ["input:int64[seq"]'))
    code, _, err = cli("run", toml)
    assert code == 2 and "[model].input" in err
