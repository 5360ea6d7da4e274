"""Every model source loads (or is refused with a reason): TorchScript, .pt2, checkpoints, state_dict +
factory, pickles only with trust."""

from __future__ import annotations

import textwrap

import pytest
import torch

from edgelstm.models import zoo
from edgelstm.errors import BadInput, UntrustedFile
from edgelstm.models.loading import load_model


def _same(a, b, n=1):
    x = torch.randn(2, 7, n)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_checkpoint_roundtrip_with_weights_only(tmp_path, tiny_model):
    m = tiny_model("stacked_lstm")
    zoo.save_checkpoint(m, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)  # the format needs no unpickling of code
    assert raw["arch"] == "stacked_lstm" and raw["config"]["hidden_size"] == 8
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.source == "checkpoint" and loaded.arch == "stacked_lstm"
    _same(loaded.module, m)


def test_torchscript_and_exported_program(tmp_path, tiny_model):
    m = tiny_model("lstm_regressor")
    torch.jit.trace(m, torch.randn(1, 5, 1)).save(str(tmp_path / "m.ts.pt"))
    ts = load_model(tmp_path / "m.ts.pt")
    assert ts.source == "torchscript"
    x = torch.randn(1, 5, 1)
    torch.testing.assert_close(ts.module(x), m(x))
    ep = torch.export.export(m, (torch.randn(2, 5, 1),))
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    loaded = load_model(tmp_path / "m.pt2")
    assert loaded.source == "exported-program"
    x = torch.randn(2, 5, 1)
    torch.testing.assert_close(loaded.module(x), m(x))


def test_state_dict_needs_a_factory(tmp_path, tiny_model, monkeypatch):
    m = tiny_model("gru")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(BadInput, match="--factory"):
        load_model(tmp_path / "sd.pt")
    (tmp_path / "factory_mod.py").write_text(textwrap.dedent("""
        from edgelstm.models import zoo
        def build():
            return zoo.build("gru", {"hidden_size": 8})
        def wrong():
            return zoo.build("gru", {"hidden_size": 9})
    """))
    loaded = load_model(tmp_path / "sd.pt", factory=f"{tmp_path / 'factory_mod.py'}:build")
    _same(loaded.module, m, n=4)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_model(tmp_path / "sd.pt", factory="factory_mod:build").source == "state-dict"
    with pytest.raises(BadInput, match="does not fit"):
        load_model(tmp_path / "sd.pt", factory="factory_mod:wrong")
    with pytest.raises(BadInput, match="no callable"):
        load_model(tmp_path / "sd.pt", factory="factory_mod:nope")


def test_pickled_module_refused_without_trust(tmp_path, tiny_model):
    m = tiny_model("lstm_regressor")
    torch.save(m, tmp_path / "whole.pt")
    with pytest.raises(UntrustedFile, match="arbitrary code") as exc:
        load_model(tmp_path / "whole.pt")
    assert "--factory" in str(exc.value) and "--trust-pickle" in str(exc.value)
    assert load_model(tmp_path / "whole.pt", trust_pickle=True).source == "pickle"


def test_missing_and_non_model_files(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BadInput, match="not a PyTorch model"):
        load_model(tmp_path / "notes.txt")
    torch.save({"lr": 0.1}, tmp_path / "cfg.pt")
    with pytest.raises(BadInput, match="not a model"):
        load_model(tmp_path / "cfg.pt")
