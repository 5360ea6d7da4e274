"""`edgelstm demo`: the whole pipeline on a built-in model, into ./edgelstm-demo/."""

from __future__ import annotations

from pathlib import Path

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.vocabulary import output_option

HELP = """Run the whole pipeline on a built-in model: train the sine-wave LSTM forecaster on CPU (seeded,
seconds), export it to ONNX (verified, plus a streaming variant), quantize it (fp16, int8 dynamic, int8
static), validate every artifact against torch, benchmark them, and write report.md / report.html. OUT also gets
val.npz (256 labelled sequences of the model's task) and calib.npz (128 sequences): the README's commands run
as written inside OUT.

The demo is an ordinary pipeline: OUT/pipeline.toml is written first, and a second run is served from cache.

  edgelstm demo

  edgelstm demo -o /tmp/demo --steps 300
"""


def demo(
    out: Path = output_option("DIR", "Directory for the demo's artifacts.", required=False,
                              default=Path("edgelstm-demo")),
    steps: int = typer.Option(150, metavar="N", help="Training steps."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    wait: bool = typer.Option(False, "--wait", help="If another pipeline is writing into OUT, wait for it instead "
                                                     "of failing."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.demo import run_demo
    from edgelstm.cli.run import payload, render_summary

    result = run_demo(out, steps=steps, seed=seed, on_step=console.step, on_stage=console.activity, wait=wait)
    render_summary(result)
    console.success(f"demo artifacts in {out}/ (model.pt, val.npz, calib.npz, the ONNX files) — open "
                    f"{out}/report.html, or try: cd {out} && edgelstm inspect model.onnx")
    finish(payload(result), json_out, 0 if result.passed else 1)


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP)(command(demo))
