"""One vocabulary for every command (README.md, "One vocabulary"): the shared option declarations (``-o/--output``,
the ``--batch``/``--seq`` placeholders) and the one mechanism that keeps the old spellings working for a release.

An old spelling is rewritten before click parses the command line, with a one-line note on stderr
(``console.deprecated``): ``--seq-len 100`` runs as ``--seq 100``. Every command's class is
``VocabularyCommand`` (set once in ``cli/app.py``), so a rule here applies wherever its command is listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import typer
from typer.core import TyperCommand

from edgelstm import console

#: commands that write one thing (a file, or a directory): they all take -o/--output
WRITERS = ("convert", "quantize", "build", "bundle", "unbundle", "demo")


@dataclass(frozen=True)
class Renamed:
    """An option's old spelling: ``old`` (taking a value) is now ``new`` in ``commands``; ``value`` turns an old value
    into the new convention (``--baseline-tolerance 0.10`` -> ``--max-growth 1.1``)."""

    old: str
    new: str
    commands: tuple[str, ...]
    value: Callable[[str], str] | None = None


def _fraction_to_ratio(text: str) -> str:
    """``0.10`` (10 % growth allowed) -> ``1.1`` (new/old at most 1.1); a non-number is passed on for the new
    option to refuse in its own words."""
    try:
        return f"{1.0 + float(text):g}"
    except ValueError:
        return text


RENAMED: tuple[Renamed, ...] = (
    Renamed("--seq-len", "--seq", ("convert",)),
    Renamed("--max-seq-len", "--max-seq", ("convert",)),
    Renamed("--batch-size", "--batch", ("quantize", "validate")),
    Renamed("--calib-batch-size", "--calib-batch", ("build",)),
    Renamed("--out", "--output", WRITERS),
    Renamed("--baseline-tolerance", "--max-growth", ("validate",), value=_fraction_to_ratio),
)

#: inspect's old ``--static BATCHxSEQ`` (now the flag ``--static`` with ``--batch``/``--seq``, as everywhere)
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


def modernize(command: str, args: Sequence[str], value_options: frozenset[str],
              note: Callable[[str], None] = console.deprecated) -> list[str]:
    """``args`` with every old spelling of ``command``'s options rewritten, one ``note`` per old spelling used.
    ``value_options``: the command's option names that take a value (their values are never rewritten)."""
    rules = {r.old: r for r in RENAMED if command in r.commands}
    out: list[str] = []
    seen: set[str] = set()

    def tell(message: str) -> None:
        if message not in seen:
            seen.add(message)
            note(message)

    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            out.extend(args[i:])
            break
        name, eq, inline = token.partition("=")
        rule = rules.get(name) if token.startswith("--") else None
        if rule is not None:
            value: str | None = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
            new_value = rule.value(value) if rule.value and value is not None else value
            tell(f"{rule.old} {value} is now {rule.new} {new_value}" if rule.value and value is not None
                 else f"{rule.old} is now {rule.new}")
            out.append(rule.new)
            if new_value is not None:
                out.append(new_value)
            i += 1 if eq or value is None else 2
            continue
        shape = _SHAPE.match(args[i + 1]) if command == "inspect" and token == "--static" and i + 1 < len(args) \
            else None
        if shape is not None:
            tell(f"--static {args[i + 1].strip()} is now --static --batch {shape[1]} --seq {shape[2]}")
            out.extend(["--static", "--batch", shape[1], "--seq", shape[2]])
            i += 2
            continue
        out.append(token)
        if token in value_options and i + 1 < len(args):  # its value is passed on as it is
            out.append(args[i + 1])
            i += 2
        else:
            i += 1
    return out


class VocabularyCommand(TyperCommand):
    """A Typer command that (1) accepts the old spellings in ``RENAMED`` with a deprecation note and (2) shows no
    type placeholder for a flag (``--stateful``, not ``--stateful <bool>``) or an argument (``MODEL``, not
    ``MODEL <path>``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, modernize(self.name or "", args, self._value_options()))

    def _value_options(self) -> frozenset[str]:
        names: set[str] = set()
        for p in self.params:
            if getattr(p, "param_type_name", "") == "option" and not getattr(p, "is_flag", False) \
                    and not getattr(p, "count", False):
                names.update(p.opts)
        return frozenset(names)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""  # a flag takes no value: no `<bool>`
            elif p.param_type_name == "argument":
                p.display_type_rich = _no_type  # MODEL says what to give; a `<path>` beside it says nothing more
        return params


def _no_type(ctx: Any) -> None:
    return None


def use_vocabulary(app: typer.Typer) -> None:
    """Every registered command parses with ``VocabularyCommand`` (a class of its own, if it sets one, is kept)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = VocabularyCommand


# ------------------------------------------------------------------------------------------ shared declarations


def output_option(metavar: str, help: str, *, required: bool = True, default: Any = None) -> Any:
    """``-o/--output``: where a command that writes one thing writes it."""
    return typer.Option(... if required else default, "-o", "--output", metavar=metavar, help=help,
                        show_default=not required and default is not None)
