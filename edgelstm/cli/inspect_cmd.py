"""`edgelstm inspect`: what an artifact is."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.fileio import human_size
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.model_options import (FactoryOpt, InputOpt, InputSizeOpt, KerasReferenceOpt, StateArgOpt,
                                        TrustPickleOpt, input_options)

HELP = """Describe an artifact: inputs/outputs with symbolic dims, recurrent layers (hidden size, directions,
layers), op histogram, parameter count, file size, precision and its manifest.

Works on ONNX and torch files without TensorRT or a GPU; engines are described from their manifest.

  edgelstm inspect model.onnx

  edgelstm inspect model.pt --json

  edgelstm inspect lm.pt --trust-pickle --input tokens:int64[seq,batch]    # the I/O edgelstm will call it with

  edgelstm inspect ae.pt --static --batch 1 --seq 100                      # a model that takes one shape

  edgelstm inspect model.keras      # its Keras layers, their torch and ONNX form, and the check against Keras

An ONNX whose external data points outside its folder is refused (exit 2); --describe-only describes it
anyway, with a loud warning, and still reads nothing outside the folder.
"""




def inspect(
    artifact: Path = typer.Argument(..., metavar="ARTIFACT", help="An .onnx, torch (.pt/.pt2/checkpoint), engine (.plan) or OpenVINO IR (.xml) file.", show_default=False),
    factory: Optional[str] = FactoryOpt,
    trust_pickle: bool = TrustPickleOpt,
    input: Optional[List[str]] = InputOpt,
    input_size: Optional[int] = InputSizeOpt,
    state_arg: Optional[str] = StateArgOpt,
    static: bool = typer.Option(False, "--static", help="A torch model that takes one fixed shape: --batch x --seq."),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N", min=1, show_default=False,
                                        help="Batch size to call a torch model with (with --static: the one it takes)."),
    seq: Optional[int] = typer.Option(None, "--seq", metavar="N", min=1, show_default=False,
                                      help="Sequence length to call a torch model with (with --static: the one it "
                                           "takes)."),
    describe_only: bool = typer.Option(False, "--describe-only",
                                       help="Describe an ONNX file even when its external data points outside its "
                                            "folder (an absolute path, '..', a symbolic link out); nothing there is "
                                            "read. Without it such a file is refused (exit 2)."),
    keras_reference: Optional[Path] = KerasReferenceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.inspection import inspect_artifact

    extra = {"keras_reference": keras_reference} if keras_reference else {}
    info = inspect_artifact(artifact, describe_only=describe_only, factory=factory,  # torch files only use these
                            trust_pickle=trust_pickle, inputs=_inputs(input, input_size, state_arg, static, batch, seq),
                            **extra)
    outside = info.get("external_data_outside")
    if outside:
        console.warn(f"{artifact.name} POINTS OUTSIDE ITS FOLDER for its external data "
                     f"({', '.join(repr(o) for o in outside[:3])}): not read; do not trust this file "
                     "(every other command refuses it)")
    rows = [["kind", info["kind"]], ["size", human_size(info["size_bytes"])], ["precision", info.get("precision", "?")]]
    if "parameters" in info:
        rows.append(["parameters", f"{info['parameters']:,}"])
    if info.get("source"):
        rows.append(["source", info["source"] + (f" ({info['arch']})" if info.get("arch") else "")])
    if info.get("opset"):
        rows.append(["opset", ", ".join(f"{k} {v}" for k, v in info["opset"].items())])
    man = info.get("manifest")
    if man:
        d = man.get("details", {})
        rows.append(["manifest", "matches the file" if info.get("manifest_matches") else "DOES NOT MATCH the file"])
        if d.get("route"):
            rows.append(["export route", d["route"]])
    if info.get("int8_needs"):  # an INT8 file's own metadata_props (edgelstm.artifacts.int8_metadata)
        rows.append(["INT8 needs", info["int8_needs"].get("edgelstm.int8.note", "")])
    if info.get("inference_precision"):
        rows.append(["OpenVINO runs it in", info["inference_precision"]])
        rows.append(["made with", ", ".join(f"{k} {v}" for k, v in man.get("versions", {}).items() if v)])
    console.table(f"{artifact.name}", ["", ""], rows)
    io = info.get("io")
    if io:
        console.table("inputs / outputs", ["", "tensor", "dtype", "shape"],
                      [[role, t["name"] + (" (state)" if t.get("state") else "") + (f" ({t['role']})" if t.get("role") else ""),
                        t["dtype"], str(t["shape"]) + (f" values in [{t['range'][0]}, {t['range'][1]})" if t.get("range") else "")]
                       for role in ("inputs", "outputs") for t in io[role]])
    keras = info.get("keras")
    if keras:
        from edgelstm.cli.convert import import_summary

        console.table("Keras layers", ["Keras", "torch", "ONNX"],
                      [[r["keras"], r["torch"], r["onnx"]] for r in keras.get("layers", [])])
        console.info(import_summary(keras))
    layers = info.get("recurrent_layers") or []
    if layers:
        cols = sorted({k for layer in layers for k in layer if layer[k] is not None}, key=list(layers[0]).index)
        console.table("recurrent layers", cols, [[layer.get(c) for c in cols] for layer in layers])
    layer_precision = ((man or {}).get("details") or {}).get("layer_precision")
    if info["kind"] == "engine" and layer_precision:
        from edgelstm.stages import summary_rows

        rows_lp = summary_rows(layer_precision)
        if rows_lp:
            console.table("engine layers by precision", ["group", "layers", "precisions"], rows_lp)
    if info.get("op_histogram"):
        console.table("ops", ["op", "count"], [[k, v] for k, v in info["op_histogram"].items()])
    if info.get("note"):
        console.info(info["note"])
    if info.get("int8_note"):  # what a plain onnxruntime session would compute instead
        console.warn(info["int8_note"])
    finish(info, json_out)


def _inputs(inputs, input_size, state_arg, static: bool, batch: Optional[int], seq: Optional[int]):
    """--static fixes the shape at --batch x --seq (as in convert, validate and bench); without it they are a shape to
    probe a torch model at."""
    from edgelstm.errors import BadInput, opt

    if (static or batch is not None or seq is not None) and (batch is None or seq is None):
        raise BadInput(f"give {opt('batch')} and {opt('seq')} together: the shape to call a torch model with "
                       f"({opt('static')}: the one shape it takes; e.g. --static --batch 1 --seq 100)")
    point = (batch, seq) if batch is not None and seq is not None else None
    return input_options(inputs, input_size, state_arg, point if static else None, [point] if point else [])


def register(app: typer.Typer) -> None:
    app.command("inspect", help=HELP)(command(inspect))
