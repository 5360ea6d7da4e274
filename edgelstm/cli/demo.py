"""`edgelstm demo`: the whole pipeline on a built-in model, into ./edgelstm-demo/."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import console
from .common import JsonOpt, QuietOpt, command, finish

HELP = """Run the whole flow on a built-in model: train the sine-wave LSTM forecaster on CPU (seeded, seconds),
export it to ONNX (verified, plus a stateful variant), and report what was made and how it compares.

  edgelstm demo

  edgelstm demo --out /tmp/demo --steps 300
"""


def demo(
    out: Path = typer.Option(Path("edgelstm-demo"), "--out", "-o", help="Directory for the demo's artifacts."),
    steps: int = typer.Option(150, help="Training steps."),
    seed: int = typer.Option(0, help="Random seed."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from ..demo import DemoOptions, run_demo

    result = run_demo(DemoOptions(out_dir=out, train_steps=steps, seed=seed), on_step=console.step)
    console.table("demo", ["step", "seconds", "result"],
                  [[s["step"], s["seconds"], ", ".join(f"{k}={v}" for k, v in s.items()
                                                      if k not in ("step", "seconds"))] for s in result.steps])
    console.success(f"demo artifacts in {result.out_dir}/ (try: edgelstm inspect {result.out_dir}/model.onnx)")
    finish({"out_dir": str(result.out_dir), "final_loss": result.final_loss,
            "artifacts": {k: str(v) for k, v in result.artifacts.items()}, "steps": result.steps}, json_out)


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP)(command(demo))
