"""The one console module: all terminal output (messages, tables, progress) goes through here.

Human output goes to stderr so that `--json` output on stdout stays machine-readable.

Text is literal: paths, names, TOML sections (`[model]`) and values (`1:b:8`) are shown as they are (no emoji
codes, no markup taken from them). `info`/`step`/`success` messages and table cells may style parts with plain
Rich style tags (`[dim]…[/]`, `[bold red]FAIL[/]`); any other bracket is printed as text. `warn` and `error` take
plain text only.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any, Iterator

_state = {"quiet": False, "json": False}

# What Rich would parse as a markup tag (rich.markup.RE_TAGS), not already escaped with a backslash.
_TAG = re.compile(r"(?<!\\)\[([a-z#/@][^\[]*?)\]")
_ATTRIBUTES = {"bold", "dim", "italic", "underline", "reverse", "strike", "blink", "not", "on"}


def _is_style_tag(tag: str) -> bool:
    """`bold red`, `dim`, `/`, `/bold`: a style tag; `model`, `default: 1:1:8`, `/tmp/x`: text."""
    from rich.color import ANSI_COLOR_NAMES

    words = tag[1:].split() if tag.startswith("/") else tag.split()
    if tag.startswith("/") and not words:
        return True
    return bool(words) and all(w in _ATTRIBUTES or w in ANSI_COLOR_NAMES for w in words)


def markup(text: str) -> str:
    """Keep the style tags in `text`, escape every other bracket Rich would take for markup."""
    return _TAG.sub(lambda m: m.group(0) if _is_style_tag(m.group(1)) else "\\" + m.group(0), text)


def literal(text: Any) -> str:
    """`text` shown exactly as it is (for user text inside a styled message)."""
    from rich.markup import escape

    return escape(str(text))


def _err_console():
    from rich.console import Console

    if "err" not in _state:
        import os
        import sys as _sys

        width = None if _sys.stderr.isatty() else int(os.environ.get("COLUMNS", "140"))
        _state["err"] = Console(stderr=True, highlight=False, soft_wrap=True, width=width, emoji=False)
    return _state["err"]


def configure(*, quiet: bool = False, json_mode: bool = False) -> None:
    _state["quiet"] = quiet
    _state["json"] = json_mode


def info(message: str) -> None:
    if not _state["quiet"]:
        _err_console().print(markup(message))


def step(message: str) -> None:
    info(f"[bold cyan]•[/] {message}")


def success(message: str) -> None:
    info(f"[bold green]✓[/] {message}")


def warn(message: str) -> None:
    _err_console().print(f"[bold yellow]warning:[/] {literal(message)}")


def error(message: str) -> None:
    _err_console().print(f"[bold red]error:[/] {literal(message)}")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A table on stderr. Cells wrap (long names fold onto a second line) instead of being cut to `model.…`;
    the first column, the name, keeps its longest value on one line where the terminal is wide enough."""
    if _state["quiet"]:
        return
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in rows]
    console = _err_console()
    t = Table(title=literal(title), title_justify="left")
    # The name column gets what the others leave at their narrowest (their longest word): names stay whole
    # when that is enough and fold onto more lines when it is not, never cut.
    plain = [[_plain(c) for c in row] for row in cells]
    others = sum(_longest_word([columns[i], *(r[i] for r in plain if i < len(r))]) for i in range(1, len(columns)))
    room = console.width - (3 * len(columns) + 1) - others
    widest = max((_cells(r[0]) for r in plain if r), default=0)
    for i, col in enumerate(columns):
        t.add_column(literal(col), overflow="fold", no_wrap=False,
                     min_width=max(1, min(widest, room)) if i == 0 and room > 0 else None)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def _plain(cell: str) -> str:
    from rich.text import Text

    return Text.from_markup(cell).plain


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _longest_word(texts: list[str]) -> int:
    return max((_cells(w) for text in texts for w in text.split()), default=1)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else markup(v) if isinstance(v, str) else literal(v)


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
        task = bar.add_task(markup(description), total=total)
        yield lambda n=1: bar.advance(task, n)
