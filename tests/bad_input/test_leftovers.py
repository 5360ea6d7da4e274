"""A pipeline that fails before its first artifact leaves nothing: no output folder, no lock, no copy of the
pipeline file (``conftest.run_case`` checks the case's directory is exactly as it was). What can be checked
before any stage is checked first: a bad ``[model].state_arg`` of a zoo model fails before training, not after.
A run that fails after an artifact exists keeps what it made (a re-run resumes from the cache)."""

from __future__ import annotations

import pytest

from .conftest import case, ids, run_case
from .tiny_pipeline import ZOO, tiny_pipeline



def _pipeline(model: str, out: str = "out", earlier: bool = False):
    def setup(w, ws, mp):
        (w / "p.toml").write_text(tiny_pipeline(model.format(ws=ws), out), encoding="utf-8")
        if earlier:  # an output folder from before, with a file of the user's and an earlier lock
            (w / "out").mkdir()
            (w / "out" / "notes.txt").write_text("mine\n")
            (w / "out" / ".edgelstm.lock").write_text("")
    return setup


RUNS = [
    case("run-bad-pickle", "run", "{w}/p.toml",
         setup=_pipeline('source = "{ws}/junk.pt"\ntrust_pickle = true\ninput_size = 1')),
    case("run-torch-file-that-is-text", "run", "{w}/p.toml", setup=_pipeline('source = "{ws}/text.pt"')),
    case("run-state-arg-not-an-argument", "run", "{w}/p.toml",
         setup=_pipeline(ZOO + '\nstate_arg = "nope"'), needles=("[model].state_arg", "nope")),
    case("run-state-arg-not-an-argument-nested-out", "run", "{w}/p.toml",
         setup=_pipeline(ZOO + '\nstate_arg = "nope"', out="a/b/out"), needles="state_arg"),
    case("run-more-inputs-than-arguments", "run", "{w}/p.toml",
         setup=_pipeline(ZOO + '\ninput = ["x:float32[batch,seq,1]", "y:float32[batch,seq,1]"]'), needles="input"),
    case("run-bad-pickle-into-an-earlier-folder", "run", "{w}/p.toml",
         setup=_pipeline('source = "{ws}/junk.pt"\ntrust_pickle = true\ninput_size = 1', earlier=True)),
]


@pytest.mark.parametrize("c", RUNS, ids=ids(RUNS))
def test_a_run_that_fails_before_its_first_artifact_leaves_nothing(c, cli, w, ws, monkeypatch):
    from edgelstm.pipeline import steps

    def no_training(*a, **k):
        raise AssertionError("trained although the failure could be found before any stage")

    monkeypatch.setattr(steps, "train_model", no_training)
    run_case(c, cli, w, ws, monkeypatch)


def test_a_run_that_fails_after_an_artifact_keeps_it(cli, w, ws, monkeypatch):
    from edgelstm.errors import BadInput
    from edgelstm.pipeline import steps

    _pipeline(ZOO)(w, ws, monkeypatch)

    def broken_export(*a, **k):
        raise BadInput("export failed (simulated)")

    monkeypatch.setattr(steps, "export", broken_export)
    code, _, stderr = cli("run", str(w / "p.toml"))
    assert code == 2, stderr
    kept = sorted(p.name for p in (w / "out").iterdir())
    assert {"model.pt", "pipeline.toml", ".edgelstm-cache.json"} <= set(kept), kept
    assert not [n for n in kept if n.endswith((".tmp", ".bak"))], kept
