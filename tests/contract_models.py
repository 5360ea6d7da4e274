"""Shared inputs for the input-contract cases (tests/bad_input/test_bad_contracts.py) and fuzzer
(tests/fuzz/test_fuzz_contracts.py), built once per test process in a private temp folder; a case copies what it
needs into its own directory with ``copy`` (so ``conftest.run_case`` checks them like any other earlier file):

- ``models.py``: factories for a packed-sequence classifier (``forward(x, lengths)``) and a model that takes its
  state (``forward(x, hidden)``); ``packed_sd.pt`` / ``hidden_sd.pt``: their state_dicts;
- ``packed.onnx`` (+ manifest): the packed classifier exported (inputs ``x`` [batch, seq, 4], ``lengths``);
- ``len_*.npz``: data for it, 4 samples of seq 6, with good and bad lengths.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

MODELS = '''
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x, lengths):
        _, h = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return self.fc(h[-1])


class Hidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x, hidden):
        out, hidden = self.lstm(x, hidden)
        return self.fc(out), hidden


def packed():
    torch.manual_seed(0)
    return Packed()


def hidden():
    torch.manual_seed(0)
    return Hidden()
'''

#: lengths for 4 samples of seq 6: the name says what is wrong
LENGTHS = {"good": [6, 5, 2, 1], "zero": [6, 0, 2, 1], "negative": [6, -1, 2, 1], "longer": [6, 7, 2, 1],
           "huge": [6, 2 ** 62, 2, 1], "float": [6.0, 5.5, 2.0, 1.0]}

_DIR: list[Path] = []


def shared() -> Path:
    """The folder with the inputs above (built on the first call)."""
    if _DIR:
        return _DIR[0]
    import importlib.util

    import torch

    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models.loading import load_model

    d = Path(tempfile.mkdtemp(prefix="edgelstm-contracts-"))
    atexit.register(shutil.rmtree, d, True)
    (d / "models.py").write_text(MODELS)
    spec = importlib.util.spec_from_file_location("bad_input_contract_models", d / "models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    for name in ("packed", "hidden"):
        torch.save(getattr(mod, name)().state_dict(), d / f"{name}_sd.pt")
    loaded = load_model(d / "packed_sd.pt", factory=f"{d / 'models.py'}:packed")
    export_onnx(loaded, d / "packed.onnx", ExportOptions(seq_len=6, verify_seqs=(6,), verify_batches=(2,)))
    x = np.random.default_rng(0).standard_normal((4, 6, 4)).astype(np.float32)
    for name, values in LENGTHS.items():
        np.savez(d / f"len_{name}.npz", x=x, lengths=np.array(values))
    np.savez(d / "hidden_x.npz", x=np.random.default_rng(1).standard_normal((4, 6, 3)).astype(np.float32))
    _DIR.append(d)
    return d


def copy(*names: str):
    """A case ``setup`` that copies shared inputs (and their manifests) into the case's directory."""
    def setup(w: Path, ws: Path, mp) -> None:
        src = shared()
        for n in names:
            shutil.copy2(src / n, w / n)
            if (src / (n + ".json")).exists():
                shutil.copy2(src / (n + ".json"), w / (n + ".json"))
    return setup
