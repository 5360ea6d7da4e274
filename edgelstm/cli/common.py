"""Shared CLI plumbing: error rendering with exit codes, --json handling, common option types."""

from __future__ import annotations

import functools
import os
import traceback
from typing import Any, Callable

import typer

from edgelstm import console
from edgelstm.errors import EdgeLSTMError

JsonOpt = typer.Option(False, "--json", help="Print a machine-readable JSON result on stdout.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Only errors on stderr.")


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: EdgeLSTMError -> one-line message + its exit code; anything else -> exit 4."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        console.configure(quiet=bool(kwargs.get("quiet")), json_mode=bool(kwargs.get("json_out")))
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except EdgeLSTMError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted; no partial artifact was written")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
            if os.environ.get("EDGELSTM_DEBUG"):
                traceback.print_exc()
            console.error(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                          "(set EDGELSTM_DEBUG=1 for the traceback and please report it)")
            raise typer.Exit(4) from None

    return wrapper


def finish(payload: dict[str, Any], json_out: bool, exit_code: int = 0) -> None:
    if json_out:
        console.emit_json(payload)
    if exit_code:
        raise typer.Exit(exit_code)
