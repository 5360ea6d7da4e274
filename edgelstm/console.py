"""The one console module: all terminal output (messages, tables, progress) goes through here.

Human output goes to stderr so that `--json` output on stdout stays machine-readable.

Text is literal: paths, names, TOML sections (`[model]`) and values (`1:b:8`) are shown as they are (no emoji
codes, no markup taken from them). `info`/`step`/`success` messages and table cells may be styled the way the
code styles them: one Rich style around the whole text (`  [dim]…[/]`) or fixed snippets closed by `[/]` whose text
has no bracket (`[bold red]FAIL[/]`); any other bracket, a file named `[red]x[/red]` included, is printed as text.
`warn` and `error` take plain text only.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any, Iterator

_state: dict[str, Any] = {"quiet": False, "json": False, "result": None, "errors": [], "emitted": False}

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


# How code styles a message: the whole message wrapped in one style (`  [dim]…[/]`), or short fixed snippets
# (`[green]pass[/]`, `[yellow](GPU-tied)[/]`) whose text holds no bracket. Nothing else is taken for a style.
_WRAPPED = re.compile(r"(\s*)\[([a-z][a-z ]*)\](.*)\[/\](\s*)", re.S)
_SNIPPET = re.compile(r"(?<!\\)\[([a-z][a-z ]*)\]([^\[\]]*)\[/\]")


def _escape_tags(text: str) -> str:
    return _TAG.sub(lambda m: "\\" + m.group(0), text)


def markup(text: str) -> str:
    """`text` with the code's own styling kept (a style wrapping the whole message, or a fixed snippet closed by
    `[/]`) and every other bracket escaped: user text inside a message (a file named `[red]x[/red].onnx`, a
    tensor name, a TOML section) is shown exactly as it is."""
    whole = _WRAPPED.fullmatch(text)
    if whole and _is_style_tag(whole.group(2)):
        lead, style, inner, tail = whole.groups()
        return f"{lead}[{style}]{_escape_tags(inner)}[/]{tail}"
    out, pos = [], 0
    for m in _SNIPPET.finditer(text):
        if _is_style_tag(m.group(1)):
            out += [_escape_tags(text[pos:m.start()]), m.group(0)]
            pos = m.end()
    out.append(_escape_tags(text[pos:]))
    return "".join(out)


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
    """Start a command: its output mode, and a clean slate for its one JSON result (see ``close_json``)."""
    _state.update(quiet=quiet, json=json_mode, result=None, errors=[], emitted=False)


def info(message: str) -> None:
    _show(markup(message))


def step(message: str) -> None:
    _show(f"[bold cyan]•[/] {markup(message)}")


def success(message: str) -> None:
    _show(f"[bold green]✓[/] {markup(message)}")


def _show(marked: str) -> None:
    if not _state["quiet"]:
        _err_console().print(marked)


def warn(message: str) -> None:
    _err_console().print(f"[bold yellow]warning:[/] {literal(message)}")


def deprecated(message: str) -> None:
    """One line for an old spelling that still works: ``--seq-len is now --seq`` (even with --quiet, like warn)."""
    _err_console().print(f"[yellow]deprecated:[/] {literal(message)} (the old spelling works until edgelstm "
                         f"{OLD_SPELLINGS_UNTIL})")


def error(message: str) -> None:
    _state["errors"].append(message)
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
    """Machine-readable output on stdout, now (``result`` is the one a command hands back)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()
    _state["emitted"] = True


def result(payload: dict[str, Any]) -> None:
    """A command's machine-readable result (``--json``): printed once when the command ends, by ``close_json``,
    with the outcome added (``ok``, ``exit_code`` and, when it failed, ``error`` and ``kind``)."""
    _state["result"] = payload


#: the ``kind`` of a failed command in its JSON result, by exit code (the exit codes of ARCHITECTURE.md; 130/143: a signal)
ERROR_KINDS = {1: "gate_failed", 2: "bad_input", 3: "backend_missing", 4: "internal", 130: "interrupted",
               143: "interrupted"}


def error_kind(exit_code: int) -> str:
    return ERROR_KINDS.get(exit_code, "interrupted" if exit_code > 128 else "internal")


def outcome(exit_code: int, error: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object a command prints in ``--json`` mode: its result (if any) plus how it ended."""
    out: dict[str, Any] = dict(payload or {})
    out.update(ok=exit_code == 0, exit_code=exit_code)
    if exit_code != 0:
        out.update(error=error or out.get("error") or f"failed with exit code {exit_code}", kind=error_kind(exit_code))
    return out


def close_json(exit_code: int) -> None:
    """End a command in ``--json`` mode: print exactly one JSON object on stdout whatever happened (its result with
    the outcome added, or only the outcome when it failed before it had one). Nothing when not in JSON mode or
    when something was already printed."""
    if not _state["json"] or _state["emitted"]:
        return
    errors = _state["errors"]
    emit_json(json_safe(outcome(exit_code, "; ".join(errors) if errors else None, _state["result"])))


def json_safe(value: Any) -> Any:
    """Strict JSON: NaN/inf -> null, numpy scalars -> numbers, paths -> strings, keys -> strings."""
    import math
    import os

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return os.fspath(value) if isinstance(value, os.PathLike) else value


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


@contextlib.contextmanager
def activity(description: str) -> Iterator[None]:
    """While a long step runs: a spinner with the elapsed time in a terminal; elsewhere (a CI log) one line as it
    starts, so that a silent minute is never a mystery. Silent when quiet."""
    if _state["quiet"]:
        yield
        return
    console = _err_console()
    if not console.is_terminal:
        step(f"{description} …")
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        bar.add_task(markup(description), total=None)
        yield
