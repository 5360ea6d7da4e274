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


#: how doctor names the facts (a key not listed is shown with its underscores as spaces)
LABELS = {"cpu": "CPU", "os": "OS", "python": "Python", "machine": "architecture", "isa": "INT8 ISA class",
          "int8_flags": "INT8 instructions", "int8_kernel": "onnxruntime INT8 kernel", "pinned": "process pinned", "installed": "TensorRT", "gpu": "GPU", "jetson": "Jetson",
          "dla_cores": "DLA cores", "cuda_buffer_backends": "CUDA buffers via", "install_hint": "to install",
          "error": "why not", "capabilities": "supports", "l4t": "L4T", "jetpack": "JetPack",
          "compute_capability": "compute", "source": "from", "name": "", "model": ""}


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def words(value) -> str:
    """A fact in words: yes/no, none, lists joined, a table as `name value` pairs (a true flag by its name)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == [] or value == {}:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(words(v) for v in value)
    if isinstance(value, dict):
        parts = [label(k) if v is True else f"{label(k)} {words(v)}".strip() for k, v in value.items()
                 if v is not False and v not in (None, "", [], {})]
        return ", ".join(parts) or "none"
    return str(value)


def host_rows(host: dict) -> list[list[str]]:
    """The host table: the architecture once (isa_facts repeats it as `arch`)."""
    return [[label(k), words(v)] for k, v in host.items() if not (k == "arch" and v == host.get("machine"))]


def tensorrt_rows(facts: dict) -> list[list[str]]:
    """TensorRT / GPU / Jetson in words: `TensorRT 10.3.0` or `not installed`, then what is known."""
    rows = [["TensorRT", facts.get("version") or ("installed" if facts.get("installed") else "not installed")]]
    shown = {"gpu": "none found", "jetson": "not a Jetson"}
    for key, value in facts.items():
        if key in ("installed", "version") or (value in (None, {}, [], "") and key not in shown):
            continue
        rows.append([label(key), shown[key] if value in (None, {}) and key in shown else words(value)])
    return rows


def doctor(json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    from edgelstm.machine.environment import doctor_report
    from edgelstm.runners import cuda_buffers

    report = doctor_report(cuda_buffers)
    console.table("host", ["", ""], host_rows(report["host"]))
    console.table("packages", ["package", "version"],
                  [[k, v or "[dim]not installed[/]"] for k, v in report["versions"].items()])
    console.table("backends", ["backend", "works", "detail"],
                  [[k, "[green]yes[/]" if v["ok"] else "[red]no[/]", v["detail"]] for k, v in report["backends"].items()])
    trt = report.get("tensorrt")
    if trt and trt["ok"] and isinstance(trt["detail"], dict):
        console.table("TensorRT / GPU / Jetson", ["", ""], tensorrt_rows(trt["detail"]))
    finish(report, json_out)


def register(app: typer.Typer) -> None:
    app.command("doctor", help=HELP)(command(doctor))
