"""The options every command that loads a torch model shares (convert, validate, bench, inspect; the pipeline's
[model] has the same keys): how to load it (--factory, --trust-pickle) and how to call it (--input, --input-size,
--state-arg, --static)."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import typer

INPUT_HELP = ("A forward argument as NAME:DTYPE[DIMS], repeatable, in forward order (state argument excluded). "
              "DTYPE: float32, float16, int64, int32, bool; DIMS: symbolic names (batch, seq, others) or integers, "
              "e.g. tokens:int64[seq,batch] or lengths:int64[batch]; an integer input may end with @LOW:HIGH (its "
              "half-open value range, used for synthetic data and verification; default: the nn.Embedding it "
              "feeds). Default: inferred from the model's first layer.")

InputOpt: Any = typer.Option(None, "--input", metavar="NAME:DTYPE[DIMS]", show_default=False, help=INPUT_HELP)
StateArgOpt: Any = typer.Option(None, "--state-arg", metavar="NAME", show_default=False,
                                help="The forward argument that takes the recurrent state ((h, c) or h): exported "
                                     "as inputs h0/c0 (GRU: h0) and outputs hn/cn. Default: detected (an argument "
                                     "named like hidden/state/hx, or with a None default).")
InputSizeOpt: Any = typer.Option(None, "--input-size", metavar="N", show_default=False,
                                 help="Features per time step, where the model's first layer does not say.")
FactoryOpt: Any = typer.Option(None, "--factory", metavar="MODULE:FUNCTION", show_default=False,
                               help="pkg.module:function (or file.py:function) that builds the model for a "
                                    "state_dict.")
KerasReferenceOpt: Any = typer.Option(None, "--keras-reference", show_default=False, metavar="PRED.npz",
                                      help="A Keras model's own predictions, to verify its import against when "
                                           "keras>=3 is not installed: a .npz made with np.savez('pred.npz', x=x, "
                                           "y=model.predict(x)).")
TrustPickleOpt: Any = typer.Option(False, "--trust-pickle",
                                   help="Allow loading a whole pickled torch module (runs code from the file).")


def input_options(inputs: Optional[List[str]] = None, input_size: Optional[int] = None,
                  state_arg: Optional[str] = None, static: tuple[int, int] | None = None,
                  fallback_points: Sequence[tuple[int, int]] = ()):
    """The InputOptions of a command's torch-model options (parsed here: a bad --input exits 2 before loading)."""
    from edgelstm.models.inputs import InputOptions

    return InputOptions.from_cli(inputs, input_size, state_arg, static, fallback_points)
