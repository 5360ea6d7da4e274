"""`edgelstm`: the Typer app. Each command lives in its own module and registers itself."""

from __future__ import annotations

import sys

import importlib
import inspect
import re

import typer
from typer.core import HAS_RICH
from typer.models import ParameterInfo

from edgelstm.cli.vocabulary import use_vocabulary

app = typer.Typer(
    name="edgelstm",
    help="Take trained recurrent models (LSTM, GRU, hand-written cells) to the edge: verified ONNX export, "
         "FP16/INT8 quantization, TensorRT engines, drift validation and latency benchmarks.\n\n"
         "Exit codes: 0 ok, 1 a gate failed, 2 bad usage or input, 3 backend missing, 4 internal error, "
         "130/143 interrupted (Ctrl-C / SIGTERM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# In flow order; each module defines register(app).
COMMAND_MODULES = ["convert", "quantize", "build", "validate", "bench", "inspect_cmd", "doctor", "run",
                   "bundle", "device_check", "remote", "compare", "demo"]

# A command module that fails to import is a bug: let the ImportError surface (command modules import only
# typer and edgelstm's light modules at the top; torch, onnx and TensorRT are imported inside the commands).
for _name in COMMAND_MODULES:
    importlib.import_module(f"edgelstm.cli.{_name}").register(app)
use_vocabulary(app)  # old option spellings keep working (with a note); flags show no <bool>


# What Rich would take for a markup tag: "[" then a lowercase letter, "#", "/" or "@" (rich.markup.RE_TAGS);
# one already escaped by its author ("\\[default]") is left alone.
_TAG_START = re.compile(r"(?<!\\)\[(?=[a-z#/@])")


def _literal(text: str | None) -> str | None:
    """Help text is prose, not Rich markup: escape `[model]`, `[default: ...]` so that Rich shows them, and
    join the hard-wrapped lines of prose paragraphs (indented example lines are kept as they are)."""
    if not text:
        return text
    paragraphs = []
    for para in inspect.cleandoc(text).split("\n\n"):
        lines = para.split("\n")
        if not any(line.startswith((" ", "\b")) for line in lines):
            para = " ".join(line.strip() for line in lines)
        paragraphs.append(_TAG_START.sub(r"\\[", para))
    return "\n\n".join(paragraphs)


def _escape_help(typer_app: typer.Typer) -> None:
    """Escape every command's and parameter's help text once (shared OptionInfo objects included)."""
    for info in typer_app.registered_commands:  # one clean line per command in `edgelstm --help`
        if info.help and not info.short_help:
            first = " ".join(info.help.strip().split("\n\n")[0].split())
            info.short_help = first.split(". ")[0].rstrip(".") + "."
    if typer_app.rich_markup_mode != "rich" or not HAS_RICH:
        return
    typer_app.info.help = _literal(typer_app.info.help)
    seen: set[int] = set()
    for info in typer_app.registered_commands:
        info.help, info.short_help = _literal(info.help), _literal(info.short_help)
        if info.callback is None:
            continue
        for param in inspect.signature(info.callback).parameters.values():
            default = param.default
            if isinstance(default, ParameterInfo) and id(default) not in seen:
                seen.add(id(default))
                default.help = _literal(default.help)


_escape_help(app)


def _version(value: bool) -> None:
    if value:
        from edgelstm import __version__

        typer.echo(f"edgelstm {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                       callback=_version, expose_value=True)) -> None:
    pass  # the commands are registered above; this only adds --version


def main() -> None:
    import os
    import warnings

    if not os.environ.get("EDGELSTM_DEBUG"):
        warnings.filterwarnings("ignore")  # library warnings are noise on a CLI; EDGELSTM_DEBUG=1 shows them
    from edgelstm import signals

    signals.install()  # SIGTERM/SIGHUP clean up like Ctrl-C and exit 128 + the signal
    sys.exit(signals.run_interruptible(run_cli, sys.argv[1:]))


def run_cli(argv: list[str]) -> int:
    """Run the app; a usage error (an unknown option, a value of the wrong type) is one line and exit 2."""
    try:  # typer >= 0.22 vendors click as typer._click; older typer uses click itself
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - depends on the typer release
        from click import exceptions as click_exc

    from edgelstm import console

    try:
        code = app(args=argv, prog_name="edgelstm", standalone_mode=False)
    except getattr(click_exc, "NoArgsIsHelpError", ()) as exc:  # `edgelstm` alone: the help, as typer shows it
        exc.show()
        return 2
    except click_exc.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        return _refused(f"{where}{exc.format_message()}{hint}".replace("\n", " "), 2, argv)
    except click_exc.ClickException as exc:
        return _refused(exc.format_message().replace("\n", " "), exc.exit_code, argv)
    return code if isinstance(code, int) else 0


def _refused(message: str, exit_code: int, argv: list[str]) -> int:
    """A command line refused before any command ran: one error line, and with ``--json`` its JSON outcome."""
    from edgelstm import console

    console.configure(json_mode=wants_json(argv))
    console.error(message)
    console.close_json(exit_code)
    return exit_code


def wants_json(argv: list[str]) -> bool:
    """Whether a command line asks for JSON output (``--json`` before any ``--``), even one the parser refused."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


if __name__ == "__main__":
    main()
