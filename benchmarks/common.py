"""What the benchmark scripts share: where results go (never over a committed result unless --replace) and
a trained, exported zoo model with its held-out and calibration data."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEQ = 40          # task sequence length for drift measurements
N_CALIB = 256     # calibration sequences (disjoint from the held-out set)


def result_stem(out_dir: Path, stem: str, suffixes: tuple[str, ...], replace: bool) -> Path:
    """out_dir/stem, or with --replace not given and a result there, out_dir/stem-N: the first N that is free."""
    def taken(name: str) -> bool:
        return any((out_dir / f"{name}{s}").exists() for s in suffixes)

    if replace or not taken(stem):
        return out_dir / stem
    n = 2
    while taken(f"{stem}-{n}"):
        n += 1
    return out_dir / f"{stem}-{n}"


@dataclass
class TrainedModel:
    name: str
    model: Any              # the trained torch module
    loss: float
    train_s: float
    onnx_path: Path
    export: Any             # edgelstm.converters.export.torch_to_onnx.ExportResult
    x: Any                  # held-out inputs
    labels: Any
    y_torch: Any            # the torch model's outputs on x
    calib: Any              # a calibration source over N_CALIB task sequences


def trained_zoo_model(name: str, steps: int, n_held_out: int, workdir: Path) -> TrainedModel:
    """Train zoo model ``name`` for ``steps`` on its synthetic task, export it (verified), and draw the held-out
    and calibration data (fixed seeds: every script measures the same model)."""
    import torch

    from edgelstm import stages
    from edgelstm.data import as_calibration_source, dataset_from_arrays
    from edgelstm.models import zoo

    model = zoo.build(name, seed=0)
    t0 = time.perf_counter()
    loss = zoo.train(model, name, steps=steps, seq=SEQ, seed=0)
    train_s = time.perf_counter() - t0
    onnx_path = Path(workdir) / f"{name}.onnx"
    exp = stages.export(model, onnx_path, stages.ExportOptions(seq_len=16))
    x, labels = zoo.synthetic_task(name, n_held_out, SEQ, seed=1234)
    xc, _ = zoo.synthetic_task(name, N_CALIB, SEQ, seed=99)
    with torch.no_grad():
        y_torch = model(torch.from_numpy(x)).numpy()
    calib = as_calibration_source(dataset_from_arrays({"x": xc}, exp.io, source="calib"), 32, spec=exp.io)
    return TrainedModel(name, model, loss, train_s, onnx_path, exp, x, labels, y_torch, calib)
