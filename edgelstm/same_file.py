"""The one same-file check of every command that writes (SECURITY.md: an output is never one of the command's
inputs): an output that is the same file as an input or an input's manifest (same device and inode, so a
symbolic or hard link to the input counts, and ``./m.onnx`` is ``m.onnx``) is refused before any work; two
outputs naming one file are refused too. The CLI runs it on every command's options (``cli.common``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping



def identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, through symbolic links; None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _with_manifest(path: Path) -> tuple[Path, ...]:
    """``path`` and its manifest ``<path>.json`` (a path without a file name, like ``.``, has none)."""
    return (path, path.with_name(path.name + ".json")) if path.name else (path,)


def refuse_overwriting_inputs(outputs: Mapping[str, str | os.PathLike | None],
                              inputs: "Iterable[str | os.PathLike | None]", *, artifacts: Iterable[str] = ()) -> None:
    """BadInput (one line, before any work) when an output (keyed by its option: ``report``, ``out``...) is the
    same file as an input or an input's manifest: same device and inode, so a symbolic or hard link to the input
    counts, and ``./m.onnx`` is ``m.onnx``. Outputs named in ``artifacts`` get a manifest ``<out>.json`` that
    may not be an input either. Two outputs naming the same file are refused too."""
    from edgelstm.errors import BadInput, opt

    protected: dict[Any, Path] = {}  # (device, inode) of what exists, and the real path of every name
    for i in inputs:
        if i is None or not str(i):
            continue
        for p in _with_manifest(Path(i)):
            for key in (identity(p), os.path.realpath(p)):
                if key is not None:
                    protected.setdefault(key, p)
    artifacts = set(artifacts)
    seen: dict[str, str] = {}
    for key, out in outputs.items():
        if out is None or not str(out):
            continue
        out = Path(out)
        for target in _with_manifest(out) if key in artifacts else (out,):
            hit = next((k for k in (identity(target), os.path.realpath(target)) if k is not None and k in protected),
                       None)
            if hit is not None:
                shown = protected[hit]
                how = "" if os.path.realpath(target) == os.path.realpath(shown) and not os.path.islink(target) \
                    else ", the same file through a link"
                raise BadInput(f"{opt(key)} {out} would overwrite the input {shown}{how}; pass another path "
                               "(nothing was written)")
        entry = _entry(out)  # what a rename replaces: the name in its real folder (links at two names are two)
        if entry in seen and seen[entry] != key:
            raise BadInput(f"{opt(seen[entry])} and {opt(key)} name the same file {out}; pass two paths")
        seen[entry] = key


def _entry(path: Path) -> str:
    return os.path.join(os.path.realpath(path.parent), path.name) if path.name else os.path.realpath(path)


def refuse_outputs_over_inputs(params: Mapping[str, Any], outputs: Iterable[str],
                               artifacts: Iterable[str] = ("out", "keep_onnx")) -> None:
    """The check above for a command's parameters: every path-valued parameter that is not an output is an
    input (lists included)."""
    outputs = tuple(outputs)
    outs = {k: v for k in outputs if isinstance(v := params.get(k), (str, os.PathLike)) and str(v)}
    ins: list[os.PathLike] = []
    for key, value in params.items():
        if key in outputs:
            continue
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, os.PathLike):
                ins.append(v)
    if outs:
        refuse_overwriting_inputs(outs, ins, artifacts=artifacts)
