"""The pipeline file is checked as a whole before anything runs, and every error speaks the file's words
(``[bench].iters``, not ``--iters``): bad values, unknown keys and gates, a bad model config, a file that is
a directory or not UTF-8 all exit 2 in one line with nothing written."""

from __future__ import annotations

import pytest

from edgelstm.errors import BadInput, GateFailed, opt
from edgelstm.pipeline.config import load_pipeline, parse_pipeline
from edgelstm.pipeline.schema import in_pipeline_words, option_name

GOOD = '[model]\nzoo = "lstm_regressor"\ntrain_steps = 3\n[output]\ndir = "out"\n'


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("extra,culprit", [
    ("[bench]\niters = 0\n", "[bench].iters must be >= 1, got 0"),
    ("[bench]\nwarmup = -1\n", "[bench].warmup must be a non-negative integer"),
    ("[bench]\nbatch = []\n", "[bench].batch must be a positive integer or a non-empty list"),
    ("[export]\nbatch = 0\n", "[export].batch must be an integer >= 1, got 0"),
    ("[export]\nseq = 0\n", "[export].seq must be an integer >= 1"),
    ("[export]\nopset = 3\n", "[export].opset must be an integer >= 7"),
    ("[model.config]\nhidden_size = -5\n", "[model].config.hidden_size must be a positive integer, got -5"),
    ("[model.config]\nhiden_size = 5\n", "unknown key 'hiden_size' for lstm_regressor (did you mean 'hidden_size'?)"),
    ("[data]\nseq = 0\n", "[data].seq must be an integer >= 1"),
    ("[data]\nwindow = 5\n", "[data].window applies to a .csv"),
    ("[quantize]\nmax_drift = \"cosine=0.9\"\n", "[quantize].max_drift: unknown metric 'cosine'"),
    ("[quantize]\nmax_drift = \"rel_l2\"\n", "[quantize].max_drift must look like METRIC<=VALUE"),
    ("[quantize]\ntarget_cpu = \"x86\"\n", "[quantize].target_cpu must be one of"),
    ("[quantize]\ncalib_method = \"mean\"\n", "[quantize].calib_method must be one of"),
    ("[validate]\ngates = [\"rel_l2<=abc\"]\n", "[validate].gates 'rel_l2<=abc': expected a number"),
    ("[validate.precision_gates]\nint9 = [\"rel_l2<=1\"]\n", "unknown precision 'int9'"),
    ("[output]\ndir = \"\"\n", "[output].dir must be a non-empty string"),
    ("[bench]\nitres = 3\n", "unknown key [bench].itres (did you mean 'iters'?)"),
])
def test_bad_value_is_named_by_its_key_and_nothing_runs(cli, tmp_path, extra, culprit):
    text = GOOD.replace('[output]\ndir = "out"\n', "") + extra
    if "[output]" not in extra:
        text += '[output]\ndir = "out"\n'
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as exc:
        load_pipeline(path)
    assert culprit in str(exc.value) and "--" not in str(exc.value)
    code, _, stderr = cli("run", path)
    assert code == 2 and culprit in _one_error_line(stderr)
    assert not (tmp_path / "out").exists()  # nothing ran, out/pipeline.toml was not written


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[model]\nzoo = "lstm_regressor"\nconfig = {hidden_size = -5}\n[export]\nbatch = 0\n'
                    '[bench]\niters = 0\n[validate]\ngates = ["bogus<=1"]\n')
    with pytest.raises(BadInput) as exc:
        load_pipeline(path)
    msg = str(exc.value)
    assert msg.startswith("p.toml: ") and "\n" not in msg
    for needle in ("[model].config.hidden_size", "[export].batch", "[bench].iters", "'bogus<=1'"):
        assert needle in msg, needle


def test_the_file_itself_is_bad_input(cli, tmp_path):
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "latin1.toml").write_bytes(b'[model]\nzoo = "lstm_regressor" # \xe9\xff\n')
    for name, needle in (("dir.toml", "is a directory"), ("latin1.toml", "is not UTF-8"),
                         ("missing.toml", "does not exist")):
        with pytest.raises(BadInput, match=needle):
            load_pipeline(tmp_path / name)
        code, _, stderr = cli("run", tmp_path / name)
        assert code == 2 and needle in _one_error_line(stderr)


def test_examples_and_demo_pipeline_are_valid(tmp_path):
    from pathlib import Path

    from edgelstm.demo import DEMO_PIPELINE

    examples = Path(__file__).resolve().parents[1] / "examples" / "pipelines"
    for path in sorted(examples.glob("*.toml")):
        assert load_pipeline(path).model.zoo == path.stem
    (tmp_path / "pipeline.toml").write_text(DEMO_PIPELINE.format(out=tmp_path, steps=3, seed=0))
    assert load_pipeline(tmp_path / "pipeline.toml").quantize.max_drift == "rel_l2<=0.009"


def test_option_names_in_the_files_words():
    assert option_name("iters") == "[bench].iters"
    assert option_name("batch", "export") == "[export].batch" and option_name("batch", "bench") == "[bench].batch"
    assert option_name("batch") == "[export].batch or [bench].batch"   # no stage to decide: both named
    assert option_name("window", "quantize") == "[data].window"         # the key's own section otherwise
    assert option_name("precision") == "[quantize].precisions" and option_name("calib") == "[data].calibration"
    assert option_name("workspace") == "workspace"                      # not a pipeline key: left as it is


def test_library_errors_are_reworded_keeping_class_and_exit_code():
    err = GateFailed(f"{opt('max_drift')} not met", hint=f"raise {opt('max_drift')} or change {opt('calib_method')}")
    assert str(err) == "--max-drift not met (raise --max-drift or change --calib-method)"
    worded = in_pipeline_words(err, "quantize", prefix="quantize int8-static: ")
    assert isinstance(worded, GateFailed) and worded.exit_code == 1
    assert str(worded) == ("quantize int8-static: [quantize].max_drift not met "
                           "(raise [quantize].max_drift or change [quantize].calib_method)")
    assert in_pipeline_words(worded, "bench") is worded                 # reworded once, at the innermost stage


def test_parse_pipeline_needs_a_model_section():
    with pytest.raises(BadInput, match=r"missing \[model\] section"):
        parse_pipeline({"bench": {"iters": 3}})


def test_a_stage_error_is_in_the_files_words(cli, tmp_path):
    """A library call inside a stage raises with `--features`; the run reports `[data].features`."""
    import numpy as np

    np.savetxt(tmp_path / "val.csv", np.random.default_rng(0).standard_normal((40, 1)), delimiter=",", header="v",
               comments="")
    path = tmp_path / "p.toml"
    path.write_text(GOOD + '[data]\nvalidation = "val.csv"\nwindow = 6\nfeatures = [" "]\n[export]\nseq_len = 6\n'
                           'stateful = false\n[quantize]\nprecisions = []\n[bench]\nenabled = false\n')
    code, _, stderr = cli("run", path)
    line = _one_error_line(stderr)
    assert code == 2 and "data: [data].features is empty" in line and "--features" not in line
    assert not (tmp_path / "out" / "model.onnx").exists()  # the data is checked before the export
