"""`edgelstm`: the Typer app. Each command lives in its own module and registers itself."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="edgelstm",
    help="Take trained recurrent models (LSTM, GRU, hand-written cells) to the edge: verified ONNX export, "
         "FP16/INT8 quantization, TensorRT engines, drift validation and latency benchmarks.\n\n"
         "Exit codes: 0 ok, 1 a gate failed, 2 bad usage or input, 3 backend missing, 4 internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# In flow order; each module defines register(app).
COMMAND_MODULES = ["convert", "quantize", "build", "validate", "bench", "inspect_cmd", "doctor", "run",
                   "bundle", "demo"]

for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"edgelstm.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command whose module has not landed yet
        if _exc.name != f"edgelstm.cli.{_name}":
            raise
        continue
    _mod.register(app)

for _info in app.registered_commands:  # one clean line per command in `edgelstm --help`
    if _info.help and not _info.short_help:
        _first = " ".join(_info.help.strip().split("\n\n")[0].split())
        _info.short_help = _first.split(". ")[0].rstrip(".") + "."


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True)):
    if version:
        from .. import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


def main() -> None:
    import os
    import warnings

    if not os.environ.get("EDGELSTM_DEBUG"):
        warnings.filterwarnings("ignore")  # library warnings are noise on a CLI; EDGELSTM_DEBUG=1 shows them
    app()


if __name__ == "__main__":
    main()
