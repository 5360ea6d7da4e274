"""`edgelstm doctor`: what is installed, which backends work, GPU and Jetson facts."""

from __future__ import annotations

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish

HELP = """Report what is installed (torch, onnx, onnxruntime, tensorrt, pycuda, cuda-python), which backends
actually work here, and GPU / TensorRT / Jetson facts. Never fails because something is missing: it tells
you what to install.

  edgelstm doctor

  edgelstm doctor --json
"""


def doctor(json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    from edgelstm.machine.environment import doctor_report

    report = doctor_report()
    host = report["host"]
    console.table("host", ["", ""], [[k, v] for k, v in host.items()])
    console.table("packages", ["package", "version"],
                  [[k, v or "[dim]not installed[/]"] for k, v in report["versions"].items()])
    console.table("backends", ["backend", "works", "detail"],
                  [[k, "[green]yes[/]" if v["ok"] else "[red]no[/]", v["detail"]] for k, v in report["backends"].items()])
    trt = report.get("tensorrt")
    if trt and trt["ok"] and isinstance(trt["detail"], dict):
        console.table("TensorRT / GPU / Jetson", ["", ""], [[k, v] for k, v in trt["detail"].items()])
    finish(report, json_out)


def register(app: typer.Typer) -> None:
    app.command("doctor", help=HELP)(command(doctor))
