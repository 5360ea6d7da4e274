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

#: the release that stops accepting the old option spellings and pipeline keys (README.md, "One vocabulary")
OLD_SPELLINGS_UNTIL = "0.2.0"

# What Rich would parse as a markup tag (rich.markup.RE_TAGS), not already escaped with a backslash.
_TAG = re.compile(r"(?<!\\)\[([a-z#/@][^\[]*?)\]")
_ATTRIBUTES = {"bold", "dim", "italic", "underline", "reverse", "strike", "blink", "not", "on"}


def _is_style_tag(tag: str) -> bool:
    """`bold red`, `dim`, `/`, `/bold`: a style tag; `model`, `default: 1:1:8`, `/tmp/x`: text."""
    from rich.color import ANSI_COLOR_NAMES

    words = tag[1:].split() if tag.startswith("/") else tag.split()
    if tag.startswith("/") and not words:
        return True
    return (bool(words) and all(w in _ATTRIBUTES or w in ANSI_COLOR_NAMES for w in words)
            and not set(words) <= {"not", "on"})


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


def deprecated(message: str) -> None:
    """One line for an old spelling that still works: ``--seq-len is now --seq`` (even with --quiet, like warn)."""
    _err_console().print(f"[yellow]deprecated:[/] {literal(message)} (the old spelling works until edgelstm "
                         f"{OLD_SPELLINGS_UNTIL})")


def error(message: str) -> None:
    _err_console().print(f"[bold red]error:[/] {literal(message)}")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A table on stderr that fits the terminal without cutting anything (no `model.…`).

    When it is too wide for the terminal, cells wrap at spaces and every value keeps its longest word whole:
    the borders go (columns two spaces apart) and then long header words fold if that is what it takes, the
    spare room going to the columns closest to fitting on one line. Where no table fits (many columns in a
    narrow terminal), each row is printed as one line of `column value` pairs, wrapped at words."""
    if _state["quiet"]:
        return
    from rich import box
    from rich.table import Table

    cells = [[_fmt(v) for v in row] for row in rows]
    console = _err_console()
    n = len(columns)
    texts = [[_plain(literal(c)) for c in columns], *([_plain(c) for c in row] for row in cells)]
    natural = [max((_cells(line) for r in texts if i < len(r) for line in r[i].splitlines() or [""]), default=1)
               for i in range(n)]

    def words(rows: list[list[str]]) -> list[int]:
        return [max((_cells(w) for r in rows if i < len(r) for w in r[i].split()), default=1) for i in range(n)]

    cell_words, header_words = words(texts[1:]), words(texts[:1])
    widths: list[Any] = [None] * n  # None: rich's own layout (the table fits)
    kwargs: dict[str, Any] = {}
    boxed, compact = 3 * n + 1, 2 * (n - 1)  # borders and padding: boxed, or columns two spaces apart
    if sum(natural) + boxed > console.width:  # too wide: plan the widths instead of rich's even squeeze
        # keep every word whole if some layout allows: boxed, then without borders, then headers folded
        layouts = [(header_words, boxed), (header_words, compact), ([min(h, 5) for h in header_words], compact)]
        header, overhead = next(((h, o) for h, o in layouts
                                 if sum(max(c, w) for c, w in zip(cell_words, h)) + o <= console.width),
                                (None, 0))
        if header is None:  # no table layout keeps the values whole: one line (wrapped at words) per row
            _records(console, title, columns, cells)
            return
        if overhead == compact:
            kwargs = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True}
        widths = _plan_widths(natural, [max(c, h) for c, h in zip(cell_words, header)],
                              max(n, console.width - overhead))
    t = Table(title=literal(title), title_justify="left", **kwargs)
    for col, width in zip(columns, widths):
        t.add_column(literal(col), overflow="fold", no_wrap=False, width=width)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def _records(console: Any, title: str, columns: list[str], cells: list[list[str]]) -> None:
    """`title`, then per row its first cell, and under it the `column value` pairs (tables too wide to draw)."""
    from rich.padding import Padding
    from rich.text import Text

    console.print(f"[bold]{literal(title)}[/]", soft_wrap=False)
    for row in cells:
        pairs = [f"[dim]{literal(col)}[/] {cell}" if col else cell
                 for col, cell in zip(columns[1:], row[1:]) if _plain(cell).strip()]
        console.print(Padding(Text.from_markup(row[0] if row else "", style="bold", overflow="fold"), (0, 0, 0, 2),
                              expand=False), soft_wrap=False)
        console.print(Padding(Text.from_markup(" · ".join(pairs), overflow="fold"), (0, 0, 0, 6), expand=False),
                      soft_wrap=False)


def _plan_widths(natural: list[int], words: list[int], room: int) -> list[int]:
    """Column widths that sum to at most `room`. Every column gets its longest word when they all fit, then
    the spare room goes to the columns closest to fitting on one line."""
    n = len(natural)
    widths = [min(w, nat) for w, nat in zip(words, natural)]
    spare = room - sum(widths)
    for i in sorted(range(n), key=lambda j: natural[j] - widths[j]):
        grow = min(spare, natural[i] - widths[i])
        widths[i] += grow
        spare -= grow
    return widths


def _plain(cell: str) -> str:
    from rich.text import Text

    return Text.from_markup(cell).plain


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def fmt_value(value: float | None, limit: float | None = None) -> str:
    """A measured value for a human message: 3 significant digits, more only where the rounded value would
    compare with `limit` differently from the real one (0.010004 against 0.01). Reports keep the full values."""
    if value is None:
        return "n/a"
    for digits in range(3, 17):
        text = f"{value:.{digits}g}"
        shown = float(text)
        if (limit is None or value != value  # NaN
                or ((shown > limit) == (value > limit) and (shown < limit) == (value < limit))):
            return text
    return repr(value)


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
