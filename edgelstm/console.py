"""The one console module: all terminal output (messages, tables, progress) goes through here.

Human output goes to stderr so that `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator

_state = {"quiet": False, "json": False}


def _err_console():
    from rich.console import Console

    if "err" not in _state:
        import os
        import sys as _sys

        width = None if _sys.stderr.isatty() else int(os.environ.get("COLUMNS", "140"))
        _state["err"] = Console(stderr=True, highlight=False, soft_wrap=True, width=width)
    return _state["err"]


def configure(*, quiet: bool = False, json_mode: bool = False) -> None:
    _state["quiet"] = quiet
    _state["json"] = json_mode


def info(message: str) -> None:
    if not _state["quiet"]:
        _err_console().print(message)


def step(message: str) -> None:
    info(f"[bold cyan]•[/] {message}")


def success(message: str) -> None:
    info(f"[bold green]✓[/] {message}")


def warn(message: str) -> None:
    _err_console().print(f"[bold yellow]warning:[/] {message}")


def error(message: str) -> None:
    from rich.markup import escape

    _err_console().print(f"[bold red]error:[/] {escape(message)}")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    if _state["quiet"]:
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*[_fmt(v) for v in row])
    _err_console().print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def emit_json(payload: Any) -> None:
    """Machine-readable result on stdout (for `--json`)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A progress bar; yields `advance(n=1)`. Silent when quiet or not a terminal-worthy total."""
    if _state["quiet"]:
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=_err_console(), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
