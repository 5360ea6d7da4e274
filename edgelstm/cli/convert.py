"""`edgelstm convert`: torch model -> verified ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.options import ExportRoute
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.model_options import (FactoryOpt, InputOpt, InputSizeOpt, KerasReferenceOpt, StateArgOpt,
                                        TrustPickleOpt)
from edgelstm.cli.vocabulary import output_option

HELP = """Export a trained PyTorch model to ONNX and prove it: onnxruntime must reproduce torch at several
sequence lengths (1, the example length, a longer one) and batch sizes, or nothing is written.

MODEL is a TorchScript file, a torch.export program (.pt2), an edgelstm checkpoint, a state_dict with
--factory, (only with --trust-pickle) a whole pickled module, or a Keras model (.keras or legacy .h5; read with
h5py, no TensorFlow; verified against Keras' own predictions when keras>=3 is installed, else against
--keras-reference pred.npz, else checked only structurally, and it says so).

Examples:

  edgelstm convert model.pt -o model.onnx

  edgelstm convert weights.pt --factory mypkg.models:build -o model.onnx --input-size 8

  edgelstm convert model.pt -o model.stateful.onnx --stateful   # h0/c0 in, hn/cn out, for streaming

  edgelstm convert lm.pt --trust-pickle -o lm.onnx --input tokens:int64[seq,batch]@0:10000 --state-arg hidden

  edgelstm convert clf.pt -o clf.onnx --input x:float32[batch,seq,4] --input lengths:int64[batch]

  edgelstm convert ae.pt -o ae.onnx --static --batch 1 --seq 100   # a model that takes one shape

  edgelstm convert model.keras -o model.onnx --keras-reference pred.npz

The inputs are inferred from the model's first layer when --input is not given (token ids for an nn.Embedding,
[seq, batch, F] for a model whose first LSTM/GRU is not batch_first); a forward(input, hidden) argument becomes
state inputs h0/c0 and outputs hn/cn, verified by streaming; a lengths argument (pack_padded_sequence) becomes
the LSTM/GRU op's sequence_lens, verified on ragged batches.
"""


def convert(
    model: Path = typer.Argument(..., metavar="MODEL", help="The trained model file.", show_default=False),
    out: Path = output_option("OUT.onnx", "Where to write the ONNX file (a <file>.json manifest goes beside it)."),
    input_size: Optional[int] = InputSizeOpt,
    input: Optional[List[str]] = InputOpt,
    state_arg: Optional[str] = StateArgOpt,
    seq_len: int = typer.Option(16, "--seq", metavar="N", help="Example sequence length used for export (verification also uses 1 and longer)."),
    batch: int = typer.Option(2, "--batch", metavar="N", help="Example batch size used for export."),
    opset: Optional[int] = typer.Option(None, metavar="N", help="ONNX opset (default: 17 on the TorchScript route, 18 on the dynamo route); an opset the route cannot write is an error.", show_default=False),
    max_seq_len: int = typer.Option(4096, "--max-seq", metavar="N", help="Refuse a --seq above this (verification runs sequences ~3x longer; a guard against exhausting memory)."),
    stateful: bool = typer.Option(False, "--stateful", help="Expose recurrent state: inputs h0/c0 (GRU: h0), outputs hn/cn; verified by streaming."),
    static: bool = typer.Option(False, "--static", help="Fix batch and sequence length at --batch x --seq (no dynamic axes)."),
    route: Optional[ExportRoute] = typer.Option(None, help="Force an export route instead of choosing one per model."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip graph simplification."),
    factory: Optional[str] = FactoryOpt,
    trust_pickle: bool = TrustPickleOpt,
    keras_reference: Optional[Path] = KerasReferenceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm import stages
    from edgelstm.models.loading import load_model

    if out.suffix.lower() != ".onnx":
        from edgelstm.errors import BadInput

        raise BadInput(f"-o must end in .onnx, got {out.name}")
    from edgelstm.models.inputs import parse_inputs

    options = stages.ExportOptions(input_size=input_size, inputs=parse_inputs(input), state_arg=state_arg or None,
                                   seq_len=seq_len, batch=batch, opset=opset, stateful=stateful,
                                   max_seq_len=max_seq_len, static=static, route=route, simplify=not no_simplify)
    loaded = load_model(model, factory=factory, trust_pickle=trust_pickle, keras_reference=keras_reference)
    console.step(f"loaded {model.name} ({loaded.source}{', ' + loaded.arch if loaded.arch else ''})")
    if loaded.origin:
        console.info(f"  {import_summary(loaded.origin)}")
    result = stages.export(loaded, out, options, on_step=console.step)
    for r, why in result.attempts:
        console.info(f"  [dim]route {r} rejected: {why}[/]")
    if result.lifted:
        lifted = result.lifted
        kind = lifted.get("kind", "LSTM")
        console.info(f"  lifted {kind} cell(s) {', '.join(lifted.get('cells', [lifted['cell']]))} to a native {kind} "
                     f"op (gate order {lifted['gate_order']}, {lifted['linears']}, concat {lifted['concat']})")
    console.success(f"wrote {out} via the {result.route.value} route in {result.seconds:.2f}s; "
                    f"{result.verification.summary()}")
    contract = (getattr(result.manifest, "details", None) or {}).get("inputs") or {}
    st = contract.get("state_argument")
    if st:
        console.info(f"  forward argument {st['argument']!r} carries the recurrent state: inputs "
                     f"{'/'.join(st['inputs'])}, outputs {'/'.join(st['outputs'])} (verified by streaming)")
    for note in contract.get("notes", []):
        console.info(f"  [dim]{note}[/]")
    console.table("ONNX I/O", ["tensor", "dtype", "shape"],
                  [[t.name + (" (state)" if t.state else "") + (f" ({t.role})" if t.role else ""), t.dtype,
                    str(list(t.shape)) + (f" values in [{t.value_range[0]}, {t.value_range[1]})" if t.value_range else "")]
                   for t in (*result.io.inputs, *result.io.outputs)])
    finish({"path": str(out), "route": result.route.value, "seconds": result.seconds,
            "simplified": result.simplified, "lifted": result.lifted,
            "rejected_routes": [{"route": r, "reason": w} for r, w in result.attempts],
            "io": result.io.to_dict(),
            "verification": [c.to_dict() for c in result.verification.checks]}, json_out)


def import_summary(origin: dict) -> str:
    """One line on how a Keras model came in and how its torch form was checked."""
    v = origin.get("verification") or {}
    head = (f"Keras {origin.get('keras_version') or '?'} model ({origin.get('format')}), {len(origin.get('layers', []))} "
            "layer group(s) mapped to torch")
    if v.get("method") == "keras":
        return (f"{head}; matches Keras {v['keras']} ({v.get('backend')} backend) to rel L2 {v['worst_rel_l2']:.1e} "
                f"at {len(v['points'])} points")
    if v.get("method") == "reference-file":
        return f"{head}; matches the predictions in {Path(v['file']).name} to rel L2 {v['worst_rel_l2']:.1e}"
    return f"{head}; [yellow]{v.get('note', 'not verified against Keras')}[/]"


def register(app: typer.Typer) -> None:
    app.command("convert", help=HELP)(command(convert))
