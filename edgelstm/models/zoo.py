"""The model zoo: the recurrent models this field actually ships, each built from a small config and
saved as an edgelstm checkpoint (architecture name + config + state_dict, loads with weights_only=True).

torch is imported lazily: `import edgelstm.models.zoo` works without it; building a model needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import BadInput, require_torch

CHECKPOINT_FORMAT = "edgelstm-checkpoint/1"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    summary: str
    defaults: dict[str, Any]
    builder: Callable[..., Any]
    task: str  # "regression" | "classification"

    @property
    def input_size(self) -> int:
        return int(self.defaults["input_size"])


def _classes():
    """The nn.Module classes, imported on first use (torch imported lazily)."""
    require_torch()
    from edgelstm.models import zoo_models

    return {n: getattr(zoo_models, n) for n in ("LSTMRegressor", "GRURegressor", "BiLSTMAttentionClassifier",
                                                  "HandLSTMCell", "HandLSTMRegressor")}


def _builder(cls_name: str) -> Callable[..., Any]:
    return lambda **cfg: _classes()[cls_name](**cfg)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("lstm_regressor", "1-layer LSTM (input 1, hidden 64), linear head on the last step: sine forecaster",
                 {"input_size": 1, "hidden_size": 64, "num_layers": 1, "output_size": 1}, _builder("LSTMRegressor"),
                 "regression"),
        ZooEntry("stacked_lstm", "stacked 2-layer LSTM regressor (hidden 50)",
                 {"input_size": 1, "hidden_size": 50, "num_layers": 2, "output_size": 1}, _builder("LSTMRegressor"),
                 "regression"),
        ZooEntry("bilstm_attention", "bidirectional LSTM (20 features, hidden 128), additive attention, 2 classes",
                 {"input_size": 20, "hidden_size": 128, "num_layers": 1, "num_classes": 2, "attention_size": 64},
                 _builder("BiLSTMAttentionClassifier"), "classification"),
        ZooEntry("gru", "2-layer GRU regressor (4 features, hidden 64)",
                 {"input_size": 4, "hidden_size": 64, "num_layers": 2, "output_size": 1}, _builder("GRURegressor"),
                 "regression"),
        ZooEntry("hand_lstm", "hand-written LSTM cell (one Linear on cat[x,h], gates f,i,o,g) unrolled in Python",
                 {"input_size": 1, "hidden_size": 32, "output_size": 1}, _builder("HandLSTMRegressor"), "regression"),
    ]
}


def zoo_entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise BadInput(f"unknown zoo architecture {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name]


def build(name: str, config: dict[str, Any] | None = None, *, seed: int | None = 0):
    """Build a zoo model (eval mode) from its name and an optional partial config."""
    torch = require_torch()
    entry = zoo_entry(name)
    cfg = {**entry.defaults, **(config or {})}
    unknown = set(cfg) - set(entry.defaults)
    if unknown:
        raise BadInput(f"unknown config key(s) {sorted(unknown)} for {name}; known: {sorted(entry.defaults)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = entry.builder(**cfg)
    model.eval()
    model._edgelstm_arch = (name, cfg)  # noqa: SLF001 - remembered for checkpoints and manifests
    return model


def save_checkpoint(model, path: str | Path, *, arch: str | None = None, config: dict | None = None) -> Path:
    """Save an edgelstm checkpoint: plain containers and tensors only, loadable with weights_only=True."""
    import io

    from edgelstm.fileio import write_bytes_atomic

    torch = require_torch()
    if arch is None or config is None:
        remembered = getattr(model, "_edgelstm_arch", None)
        if remembered is None:
            raise BadInput("this model was not built from the zoo; pass arch= and config=")
        arch, config = remembered
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "arch": arch, "config": dict(config),
                "state_dict": model.state_dict()}, buf)
    return write_bytes_atomic(path, buf.getvalue())


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT and "arch" in obj


def from_checkpoint(obj: dict):
    model = build(obj["arch"], obj.get("config"), seed=None)
    missing, unexpected = model.load_state_dict(obj["state_dict"], strict=False)
    if missing or unexpected:
        raise BadInput(f"checkpoint for {obj['arch']} does not fit its architecture: "
                       f"missing {list(missing)[:4]}, unexpected {list(unexpected)[:4]}")
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------
# Synthetic tasks: each zoo model is trained briefly on one so that drift is measured on a model
# that has learned something, not on random weights.


def synthetic_task(name: str, n: int, seq: int, *, seed: int = 0):
    """(x, y) numpy arrays for the architecture's own synthetic task. Regression y: [n, 1] float32;
    classification y: [n] int64 labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    entry = zoo_entry(name)
    f = entry.input_size
    t = np.arange(seq + 1, dtype=np.float64)
    if name in ("lstm_regressor", "hand_lstm", "stacked_lstm"):
        freq = rng.uniform(0.05, 0.3, size=(n, 1))
        phase = rng.uniform(0, 2 * math.pi, size=(n, 1))
        amp = 1.0 if name != "stacked_lstm" else rng.uniform(0.5, 1.5, size=(n, 1))
        wave = amp * np.sin(freq * t[None, :] + phase)
        if name == "stacked_lstm":
            wave = wave + 0.3 * np.sin(3 * freq * t[None, :] + phase)
        x = wave[:, :seq, None].repeat(f, axis=2)
        y = wave[:, seq:seq + 1]
        return x.astype(np.float32), y.astype(np.float32)
    if name == "gru":
        x = rng.normal(0, 1, size=(n, seq, f))
        decay = 0.9 ** np.arange(seq)[::-1]
        y = (x[:, :, 0] * decay).sum(axis=1, keepdims=True) * 0.3 + 0.5 * x[:, -1, 1:2]
        return x.astype(np.float32), y.astype(np.float32)
    if name == "bilstm_attention":
        labels = rng.integers(0, 2, size=n)
        x = rng.normal(0, 1, size=(n, seq, f))
        # class 1: a short burst somewhere in features 0..2; class 0: none
        for k in np.nonzero(labels)[0]:
            start = rng.integers(0, max(1, seq - 5))
            x[k, start:start + 5, :3] += 2.5
        return x.astype(np.float32), labels.astype(np.int64)
    raise BadInput(f"no synthetic task for {name}")  # pragma: no cover


def train(model, name: str, *, steps: int = 200, seq: int = 40, batch: int = 64, lr: float = 1e-2, seed: int = 0,
          on_step: Callable[[int, float], None] | None = None) -> float:
    """Train briefly (seeded, CPU) on the architecture's synthetic task; returns the final loss."""
    torch = require_torch()
    torch.manual_seed(seed)
    task = zoo_entry(name).task
    x_np, y_np = synthetic_task(name, batch * 8, seq, seed=seed)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
    model.train()
    loss_value = float("nan")
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = float(loss.detach())
        if on_step:
            on_step(step, loss_value)
    model.eval()
    return loss_value
