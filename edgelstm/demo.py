"""The built-in demo: the whole flow on the sine-wave LSTM regressor, trained in seconds on CPU."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEMO_ARCH = "lstm_regressor"


@dataclass(frozen=True)
class DemoOptions:
    out_dir: Path = Path("edgelstm-demo")
    train_steps: int = 150
    seed: int = 0
    seq_len: int = 60


@dataclass
class DemoResult:
    out_dir: Path
    final_loss: float
    artifacts: dict[str, Path] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)


def run_demo(options: DemoOptions = DemoOptions(), on_step: Callable[[str], None] | None = None) -> DemoResult:
    """Train, save a checkpoint, export (plain and stateful), verified. Pure: writes only under out_dir."""
    from converters.torch_to_onnx import ExportOptions, export_onnx

    from . import zoo
    from .loading import from_module

    say = on_step or (lambda _m: None)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out, float("nan"))

    def record(name: str, started: float, **info: Any) -> None:
        result.steps.append({"step": name, "seconds": round(time.perf_counter() - started, 3), **info})

    t = time.perf_counter()
    say(f"training {DEMO_ARCH} on sine waves ({options.train_steps} steps, seed {options.seed})")
    model = zoo.build(DEMO_ARCH, seed=options.seed)
    result.final_loss = zoo.train(model, DEMO_ARCH, steps=options.train_steps, seed=options.seed)
    ckpt = zoo.save_checkpoint(model, out / "model.pt")
    result.artifacts["checkpoint"] = ckpt
    record("train", t, loss=result.final_loss, path=str(ckpt))

    loaded = from_module(model)
    loaded.path = ckpt
    for name, stateful in (("onnx", False), ("onnx_stateful", True)):
        t = time.perf_counter()
        path = out / ("model.stateful.onnx" if stateful else "model.onnx")
        say(f"exporting {path.name} (verified{', streaming' if stateful else ''})")
        r = export_onnx(loaded, path, ExportOptions(seq_len=options.seq_len, stateful=stateful))
        result.artifacts[name] = path
        record(f"convert{' --stateful' if stateful else ''}", t, route=r.route.value, path=str(path),
               max_abs=r.verification.max_abs, checks=len(r.verification.checks))
    return result
