"""What an INT8 ONNX file needs to compute what edgelstm measured, written into the file itself
(``ModelProto.metadata_props``) as well as its manifest, so that a file copied without its ``.json`` still says it.

Keys (strings, as ONNX requires):

- ``edgelstm.int8.target``: ``portable``, ``tensorrt`` or an ISA class (``x86-vnni``, ``x86-amx``, ``x86-avx2``,
  ``arm64``)
- ``edgelstm.onnxruntime.levels``: the onnxruntime graph optimization levels allowed to run it, best first
  (``all,extended,basic`` or ``basic``)
- ``edgelstm.int8.weights``: ``s8 7-bit`` / ``s8 8-bit`` / ``u8 8-bit``
- ``edgelstm.int8.note``: the same in one sentence for a person reading the file in Netron

edgelstm's onnxruntime runner runs a file at the first allowed level; ``plain_session_warning`` says what a plain
``onnxruntime.InferenceSession`` (level ``all`` by default) would compute instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

KEY_TARGET = "edgelstm.int8.target"
KEY_LEVELS = "edgelstm.onnxruntime.levels"
KEY_WEIGHTS = "edgelstm.int8.weights"
KEY_NOTE = "edgelstm.int8.note"
KEYS = (KEY_TARGET, KEY_LEVELS, KEY_WEIGHTS, KEY_NOTE)
LEVEL_NAMES = ("all", "extended", "basic", "disable")
#: targets whose 8-bit weights saturate onnxruntime's u8×s8 kernel on x86 CPUs without VNNI
EIGHT_BIT_TARGETS = ("x86-vnni", "x86-amx", "arm64")


def int8_entries(target: str, levels: tuple[str, ...] | list[str], weight_type: str, reduce_range: bool,
                 *, saturating_pairs: int = 0) -> dict[str, str]:
    """The metadata entries for an INT8 file (pure)."""
    weights = f"{weight_type} {'7-bit' if reduce_range else '8-bit'}"
    level_text = ",".join(levels)
    if tuple(levels)[:1] == ("all",):
        where = "any onnxruntime optimization level"
    else:
        where = f"onnxruntime graph optimization level {' or '.join(levels)} only (SessionOptions.graph_optimization_level)"
    if saturating_pairs and target not in ("portable", "tensorrt", "x86-avx2"):
        cpus = f"x86 CPUs with VNNI or AMX and arm64 (on x86 without VNNI {saturating_pairs} weight pairs saturate)"
    else:
        cpus = "every x86 and arm64 CPU"
    note = f"edgelstm INT8 for {target}: {weights} weights; exact on {cpus} at {where}"
    return {KEY_TARGET: target, KEY_LEVELS: level_text, KEY_WEIGHTS: weights, KEY_NOTE: note}


def set_entries(model: Any, entries: Mapping[str, str]) -> None:
    """Write ``entries`` into ``model.metadata_props``, replacing earlier values of the same keys."""
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    for key, value in [*keep, *entries.items()]:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)


def read_entries(model: Any) -> dict[str, str]:
    """edgelstm's metadata entries of a model (a ModelProto or a path; only the header is needed)."""
    if isinstance(model, (str, Path)):
        import onnx

        model = onnx.load(str(model), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props if p.key.startswith("edgelstm.")}


def allowed_levels(entries: Mapping[str, str]) -> tuple[str, ...] | None:
    """The levels a file allows (best first), or None when it says nothing."""
    text = entries.get(KEY_LEVELS, "")
    levels = tuple(v.strip() for v in text.split(",") if v.strip() in LEVEL_NAMES)
    return levels or None


def plain_session_warning(name: str, entries: Mapping[str, str], *, saturating_pairs: int | None = None,
                          level: str = "all") -> str | None:
    """What a plain onnxruntime session at ``level`` (``all``, its default) computes differently from what edgelstm
    measured, or None when it computes the same on every CPU."""
    target = entries.get(KEY_TARGET)
    if not target:
        return None
    levels = allowed_levels(entries) or ("all", "extended", "basic")
    if level not in levels:
        return (f"{name} must run at onnxruntime level {' or '.join(levels)}: a plain onnxruntime session "
                f"(level {level}{', its default' if level == 'all' else ''}) fuses its Q/DQ into kernels that "
                "saturate on x86 CPUs without VNNI; set SessionOptions.graph_optimization_level = "
                f"ORT_ENABLE_{levels[0].upper()} (edgelstm's runners do; the file's metadata says so)")
    if target in EIGHT_BIT_TARGETS and (saturating_pairs is None or saturating_pairs > 0):
        return (f"{name} has 8-bit weights for {target}: onnxruntime on an x86 CPU without VNNI (AVX2-only, "
                "AVX-512 without VNNI) saturates them in any session; quantize with --target-cpu portable (the "
                "default) for a file that computes the same on every CPU")
    return None


__all__ = ["KEYS", "KEY_TARGET", "KEY_LEVELS", "KEY_WEIGHTS", "KEY_NOTE", "int8_entries", "set_entries",
           "read_entries", "allowed_levels", "plain_session_warning"]
