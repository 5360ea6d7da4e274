"""Bad input to the commands that run models: validate and bench (data files, numeric options, huge shapes,
reports and baselines). Same checks as every case (``conftest.run_case``)."""

from __future__ import annotations

import pytest

from .conftest import case, ids, run_case

V = ("validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx")
SYN = ("--synthetic", "4", "--seq", "4")


def data(name: str, *extra: str, needles=(), code: int = 2):
    return case(f"data-{name.replace('.', '-')}" + ("-" + "-".join(e.strip("-") for e in extra) if extra else ""),
                *V, "--data", f"{{ws}}/{name}", *extra, "--report", "{w}/good.json", needles=needles, code=code)


VALIDATE = [
    case("reference-missing", "validate", "-r", "{ws}/nope.onnx", "-c", "{ws}/m.onnx", *SYN, needles="does not exist"),
    case("candidate-missing", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/nope.onnx", *SYN, needles="does not exist"),
    case("reference-empty", "validate", "-r", "{ws}/zero.onnx", "-c", "{ws}/m.onnx", *SYN),
    case("candidate-random-bytes", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/junk.onnx", *SYN),
    case("candidate-truncated", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/trunc.onnx", *SYN),
    case("candidate-directory", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/dir.onnx", *SYN),
    case("candidate-pickle-pt2", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/pickle.pt2", *SYN),
    case("candidate-custom-op", "validate", "-r", "{ws}/id.onnx", "-c", "{ws}/custom.onnx", *SYN),
    case("candidate-other-inputs", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/three.onnx", *SYN),
    case("candidate-manifest-mismatch", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/wrongman.onnx", *SYN),
    case("no-data-no-synthetic", *V, needles="--synthetic"),
    case("data-and-synthetic", *V, *SYN, "--data", "{ws}/good.npz"),
    case("synthetic-0", *V, "--synthetic", "0"),
    case("synthetic-negative", *V, "--synthetic", "-5"),
    case("synthetic-10^12", *V, "--synthetic", "1000000000000", "--report", "{w}/good.json", needles="would take"),
    case("huge-feature-dim", "validate", "-r", "{ws}/huge.onnx", "-c", "{ws}/huge.onnx", *SYN, needles="would take"),
    case("huge-feature-dim-manifest", "validate", "-r", "{ws}/huge_m.onnx", "-c", "{ws}/huge_m.onnx", *SYN),
    case("seq-0", *V, "--synthetic", "4", "--seq", "0", needles="--seq"),
    case("seq-negative", *V, "--synthetic", "4", "--seq", "-1", needles="--seq"),
    case("seq-huge", *V, "--synthetic", "4", "--seq", "1000000000000", needles="would take"),
    case("batch-size-0", *V, *SYN, "--batch", "0", needles="--batch"),
    case("batch-size-negative", *V, *SYN, "--batch", "-4", needles="--batch"),
    case("seed-negative", *V, *SYN, "--seed", "-1", needles="--seed"),
    case("threads-0", *V, *SYN, "--threads", "0", needles="--threads"),
    case("threads-negative", *V, *SYN, "--threads", "-1", needles="--threads"),
    case("min-samples-above-data", *V, "--data", "{ws}/good.npz", "--min-samples", "100"),
    case("min-samples-negative", *V, *SYN, "--min-samples", "-1"),
    case("task-unknown", *V, *SYN, "--task", "ranking", needles="--task"),
    case("chunks-0", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.stateful.onnx", *SYN, "--chunks", "0"),
    case("chunks-words", *V, *SYN, "--chunks", "a,b"),
    case("input-size-0", "validate", "-r", "{ws}/m.pt", "-c", "{ws}/m.onnx", *SYN, "--input-size", "0"),
    case("gate-garbage", *V, *SYN, "--gate", "bogus"),
    case("gate-unknown-metric", *V, *SYN, "--gate", "nosuch<=1"),
    case("gate-not-a-number", *V, *SYN, "--gate", "rel_l2<=abc"),
    case("gate-nan", *V, *SYN, "--gate", "rel_l2<=nan"),
    case("gate-unknown-output", *V, *SYN, "--gate", "rel_l2:nosuch<=0.1"),
    case("policy-missing", *V, *SYN, "--policy", "{ws}/nope.toml", needles="does not exist"),
    case("policy-directory", *V, *SYN, "--policy", "{ws}/emptydir"),
    case("policy-syntax", *V, *SYN, "--policy", "{ws}/syntax.toml", needles="TOML"),
    case("policy-unknown-metric", *V, *SYN, "--policy", "{ws}/unknown_metric.toml"),
    case("policy-string-value", *V, *SYN, "--policy", "{ws}/string_value.toml"),
    case("policy-nan", *V, *SYN, "--policy", "{ws}/nan_policy.toml"),
    case("policy-not-utf8", *V, *SYN, "--policy", "{ws}/latin1.toml"),
    case("baseline-missing", *V, *SYN, "--baseline", "{ws}/nope.json"),
    case("baseline-empty", *V, *SYN, "--baseline", "{ws}/empty.json"),
    case("baseline-not-json", *V, *SYN, "--baseline", "{ws}/notjson.json"),
    case("baseline-a-list", *V, *SYN, "--baseline", "{ws}/list.json"),
    case("baseline-no-keys", *V, *SYN, "--baseline", "{ws}/nokeys.json"),
    case("baseline-wrong-types", *V, *SYN, "--baseline", "{ws}/badoutputs.json"),
    case("baseline-binary", *V, *SYN, "--baseline", "{ws}/binary.json"),
    case("baseline-tolerance-negative", *V, *SYN, "--baseline-tolerance", "-1"),
    case("baseline-floor-nan", *V, *SYN, "--baseline-floor", "nan"),
    case("report-equals-junit", *V, *SYN, "--report", "{w}/r.json", "--junit", "{w}/r.json"),
    case("report-overwrites-reference", "validate", "-r", "{w}/good.onnx", "-c", "{ws}/m.onnx", *SYN, "--report",
         "{w}/good.onnx", needles="would overwrite"),
    case("junit-overwrites-candidate-manifest", "validate", "-r", "{ws}/m.onnx", "-c", "{w}/good.onnx", *SYN,
         "--junit", "{w}/good.onnx.json", needles="would overwrite"),
    case("markdown-overwrites-policy", *V, *SYN, "--policy", "{w}/good.md", "--markdown", "{w}/good.md",
         needles="would overwrite"),
    case("report-is-a-directory", *V, *SYN, "--report", "{w}/gooddir"),
    case("markdown-is-a-directory", *V, *SYN, "--markdown", "{w}/gooddir"),
    case("report-nested-bad-data", *V, "--data", "{ws}/nan.npz", "--report", "{w}/a/b/r.json"),
    data("nan.npz", needles="nan"),
    data("inf.npz"),
    data("nan.npy"),
    data("shape.npz"),
    data("rank.npz"),
    data("rank1.npy"),
    data("scalar.npy"),
    data("strings.npz"),
    data("complex.npz"),
    case("data-bool-npz-is-accepted", *V, "--data", "{ws}/bool.npz", code=0),  # 0/1 features: a lossless cast
    data("object.npy", needles="pickle"),
    data("empty.npz"),
    data("seq0.npz"),
    data("nox.npz"),
    data("onlylabels.npz"),
    data("twoarrays.npz"),
    data("labels_mismatch.npz"),
    data("labels_nan.npz"),
    data("labels_str.npz"),
    data("trunc.npz"),
    data("junk.npz"),
    data("zero.npz"),
    data("trunc.npy"),
    data("junk.npy"),
    data("dir.npz", needles="directory"),
    data("nope.npz", needles="does not exist"),
    data("data.txt"),
    data("good.npz", "--window", "4"),
    data("good.csv", needles="--window"),
    data("good.csv", "--window", "0"),
    data("good.csv", "--window", "1000"),
    data("good.csv", "--window", "4", "--features", "nosuch"),
    data("good.csv", "--window", "4", "--features", "99"),
    data("good.csv", "--window", "4", "--target", "nosuch"),
    data("good.csv", "--window", "4", "--features", ","),
    data("nan.csv", "--window", "4", "--features", "f"),
    data("word.csv", "--window", "4", "--features", "f"),
    data("ragged.csv", "--window", "4", "--features", "f"),
    data("header.csv", "--window", "4"),
    data("empty.csv", "--window", "4"),
    data("latin1.csv", "--window", "4"),
    data("binary.csv", "--window", "4"),
    data("short.csv", "--window", "4"),
]


@pytest.mark.parametrize("c", VALIDATE, ids=ids(VALIDATE))
def test_validate(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ bench

B = ("bench", "{ws}/m.onnx", "--batch", "1", "--seq", "4", "--warmup", "0", "--iters", "2")


def b(id: str, *extra: str, needles=(), code: int = 2, usage: bool = False, setup=None):
    return case(id, *B, *extra, needles=needles, code=code, usage=usage, setup=setup)


BENCH = [
    case("missing-artifact", "bench", "{ws}/nope.onnx", needles="does not exist"),
    case("empty-onnx", "bench", "{ws}/zero.onnx", "--iters", "2"),
    case("random-bytes-onnx", "bench", "{ws}/junk.onnx", "--iters", "2"),
    case("directory", "bench", "{ws}/dir.onnx", "--iters", "2"),
    case("pickle-pt2", "bench", "{ws}/pickle.pt2", "--iters", "2"),
    case("three-inputs", "bench", "{ws}/three.onnx", "--batch", "1", "--seq", "4", "--iters", "2", "--warmup", "0",
         code=0),
    case("three-inputs-no-manifest", "bench", "{ws}/three_nomanifest.onnx", "--batch", "1", "--seq", "4", "--iters",
         "2", "--warmup", "0", code=0),
    case("custom-op", "bench", "{ws}/custom.onnx", "--batch", "1", "--seq", "4", "--iters", "2"),
    case("huge-feature-dim", "bench", "{ws}/huge.onnx", "--batch", "1", "--seq", "4", "--iters", "2",
         needles="would take"),
    case("huge-feature-dim-manifest", "bench", "{ws}/huge_m.onnx", "--batch", "1", "--seq", "4", "--iters", "2"),
    b("threads-0", "--threads", "0", needles="--threads"),
    b("threads-negative", "--threads", "-1", needles="--threads"),
    b("threads-words", "--threads", "many", needles="--threads"),
    case("batch-0", "bench", "{ws}/m.onnx", "--batch", "0", needles="--batch"),
    case("batch-negative", "bench", "{ws}/m.onnx", "--batch", "-1", needles="--batch"),
    case("batch-empty", "bench", "{ws}/m.onnx", "--batch", "", needles="--batch"),
    case("batch-10^12", "bench", "{ws}/m.onnx", "--batch", "1000000000000", "--seq", "4", "--iters", "2",
         "--report", "{w}/good.json", needles="would take"),
    case("seq-0", "bench", "{ws}/m.onnx", "--seq", "0", needles="--seq"),
    case("seq-10^10", "bench", "{ws}/m.onnx", "--batch", "1", "--seq", "10000000000", "--iters", "2",
         needles="above the maximum 4096"),  # the length its export states (issue 20)
    b("warmup-negative", "--warmup", "-1", needles="--warmup"),
    case("iters-0", "bench", "{ws}/m.onnx", "--iters", "0", needles="--iters"),
    case("iters-negative", "bench", "{ws}/m.onnx", "--iters", "-5", needles="--iters"),
    case("min-time-0", "bench", "{ws}/m.onnx", "--min-time", "0", needles="--min-time"),
    case("min-time-nan", "bench", "{ws}/m.onnx", "--min-time", "nan", needles="--min-time"),
    case("min-time-inf", "bench", "{ws}/m.onnx", "--min-time", "inf", needles="--min-time"),
    case("iters-and-min-time", "bench", "{ws}/m.onnx", "--iters", "2", "--min-time", "1"),
    b("backend-unknown", "--backend", "tvm", needles="tvm"),
    b("device-unknown", "--device", "tpu", needles="--device"),
    b("opt-level-unknown", "--opt-level", "max", needles="--opt-level"),
    b("report-wrong-suffix", "--report", "{w}/r.txt", needles="--report"),
    b("csv-wrong-suffix", "--csv", "{w}/r.json", needles="--csv"),
    b("plot-wrong-suffix", "--plot", "{w}/r.jpg", needles="--plot"),
    b("report-is-a-directory", "--report", "{w}/dir.json", setup=lambda w, ws, mp: (w / "dir.json").mkdir()),
    case("report-overwrites-manifest", "bench", "{w}/good.onnx", "--batch", "1", "--seq", "4", "--iters", "2",
         "--report", "{w}/good.onnx.json", needles="would overwrite"),
    case("csv-overwrites-baseline", "bench", "{ws}/m.onnx", "--baseline", "{w}/good.json", "--csv", "{w}/good.json",
         needles="would overwrite"),
    b("baseline-missing", "--baseline", "{ws}/nope.json", needles="does not exist"),
    b("baseline-not-json", "--baseline", "{ws}/notjson.json"),
    b("baseline-a-list", "--baseline", "{ws}/list.json"),
    b("baseline-wrong-rows", "--baseline", "{ws}/badrows.json"),
    b("baseline-binary", "--baseline", "{ws}/binary.json"),
    b("baseline-directory", "--baseline", "{ws}/emptydir"),
    b("max-slowdown-0", "--baseline", "{w}/good.json", "--max-slowdown", "0", needles="--max-slowdown"),
    b("max-slowdown-nan", "--baseline", "{w}/good.json", "--max-slowdown", "nan", needles="--max-slowdown"),
    b("repeats-0", "--baseline", "{w}/good.json", "--repeats", "0", needles="--repeats"),
    b("retry-noisy-negative", "--retry-noisy", "-1", needles="--retry-noisy"),
    b("stream-stateless", "--stream"),
    case("input-size-0", "bench", "{ws}/m.pt", "--input-size", "0", "--batch", "1", "--seq", "4", "--iters", "2"),
    case("artifact-twice-one-missing", "bench", "{ws}/m.onnx", "{ws}/nope.onnx", "--report", "{w}/good.json"),
]


@pytest.mark.parametrize("c", BENCH, ids=ids(BENCH))
def test_bench(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)
