"""The one schema of a sidecar manifest (``<artifact>.json``), checked when a manifest is read.

A manifest is a user's file like any other: it can be edited by hand, truncated or copied next to another
artifact. ``manifest_problem`` checks every field edgelstm reads (types, enums, ranges, the rules between
fields); ``io_mismatch`` checks what it says about the I/O against the model file itself. The fields of
``details`` not listed in ``DETAILS`` are for people (reports, ``inspect``): kept, never acted on.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Check = Callable[[Any], "str | None"]


# ------------------------------------------------------------------------------------------ field checkers


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type(*types: type, none: bool = False) -> Check:
    names = " or ".join({"str": "a string", "dict": "an object", "list": "a list", "bool": "true or false",
                         "int": "an integer"}[t.__name__] for t in types) + (" or null" if none else "")

    def check(v: Any) -> str | None:
        if v is None and none:
            return None
        ok = any(_is_int(v) if t is int else (type(v) is bool if t is bool else isinstance(v, t)) for t in types)
        return None if ok else f"must be {names}"
    return check


def _one_of(values: Callable[[], list[str]], *, none: bool = True) -> Check:
    def check(v: Any) -> str | None:
        allowed = values()
        if (v is None and none) or (isinstance(v, str) and v in allowed):
            return None
        return f"must be one of {', '.join(allowed)}{' or null' if none else ''} (got {_show(v)})"
    return check


def _int_range(lo: int, hi: int, *, none: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if v is None and none:
            return None
        return None if _is_int(v) and lo <= v <= hi else f"must be an integer in [{lo}, {hi}] (got {_show(v)})"
    return check


def _fields(spec: dict[str, Check], *, none: bool = False) -> Check:
    """An object whose listed keys (when present) pass their checks; other keys are free."""
    def check(v: Any) -> str | None:
        if v is None and none:
            return None
        if not isinstance(v, dict):
            return "must be an object" + (" or null" if none else "")
        for key, sub in spec.items():
            if key in v and (problem := sub(v[key])) is not None:
                return f".{key}{problem}" if problem.startswith(".") else f".{key} {problem}"
        return None
    return check


def _table_of_counts(v: Any) -> str | None:
    """``{"recurrent": {"fp16": 2}}``: layer groups, each a table of precision -> number of layers."""
    if not isinstance(v, dict) or not all(isinstance(g, dict) and all(_is_int(n) and n >= 0 for n in g.values())
                                          for g in v.values()):
        return "must be an object of {precision: number of layers} tables"
    return None


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _isa_classes() -> list[str]:
    """What an INT8 file can target: an ISA class, or a target that is not one (portable, tensorrt)."""
    from edgelstm.options import PORTABLE_TARGETS, IsaClass

    return [c.value for c in IsaClass] + list(PORTABLE_TARGETS)


def _opt_levels() -> list[str]:
    from edgelstm.artifacts.ort import OPT_LEVELS

    return list(OPT_LEVELS)


def _kinds() -> list[str]:
    from edgelstm.options import ArtifactKind

    return [k.value for k in ArtifactKind]


def _precisions() -> list[str]:
    from edgelstm.options import BuildPrecision, Precision

    return list(dict.fromkeys([p.value for p in Precision] + [p.value for p in BuildPrecision]))  # bf16: OpenVINO


def _dtypes() -> list[str]:
    from edgelstm.artifacts.iospec import DTYPES

    return list(DTYPES)


# ------------------------------------------------------------------------------------------ the schema

#: the ``details`` edgelstm acts on (the ONNX runner, bench, validate, the engine runner, bundles, inspect)
DETAILS: dict[str, Check] = {
    "target_isa": _one_of(_isa_classes),
    "ort_opt_level": _one_of(_opt_levels),
    "route": _type(str, none=True),
    "opset": _int_range(1, 1000, none=True),
    "static": _type(bool, none=True),
    "stateful": _type(bool, none=True),
    "state": _fields({"layers": _int_range(1, 1 << 20), "hidden_size": _int_range(1, 1 << 30)}, none=True),
    "quantization": _fields({"target": _fields({"isa": _one_of(_isa_classes)}, none=True)}, none=True),
    "ort_probe": _type(dict, none=True),
    "tensorrt": _fields({"version": _type(str, none=True)}, none=True),
    "gpu": _fields({"name": _type(str, none=True), "compute_capability": _type(str, none=True)}, none=True),
    "dla": _fields({"core": _int_range(0, 64, none=True), "num_layers": _int_range(0, 1 << 20, none=True)},
                   none=True),
    "rebuild": _type(str, none=True),
    "version_compatible": _type(bool, none=True),
    "hardware_compatibility": _type(str, none=True),
    "layer_precision": _fields({"groups": _table_of_counts}, none=True),
    "profiles": _type(list, none=True),
    "warnings": _type(list, none=True),
}

TOP: dict[str, Check] = {
    "manifest_version": _int_range(1, 1),
    "kind": _one_of(_kinds, none=False),
    "file": _type(str),
    "sha256": _type(str),                # compared with the file's; any other string simply does not match
    "parent_sha256": _type(str, none=True),
    "precision": _one_of(_precisions, none=False),
    "versions": _type(dict),
    "created": _type(str),
    "details": _fields(DETAILS),
}
REQUIRED = ("kind", "file", "sha256")


def manifest_problem(d: Any) -> str | None:
    """What makes parsed JSON not a valid manifest (the first problem, naming the field), or None."""
    if not isinstance(d, dict):
        return f"a JSON {type(d).__name__}, not an object"
    for key in REQUIRED:
        if key not in d:
            return f"{key!r} is missing"
    for key, check in TOP.items():
        if key in d and (problem := check(d[key])) is not None:
            path, msg = problem.partition(" ")[::2] if problem.startswith(".") else ("", problem)
            return f"'{key}{path}' {msg}"
    for key, v in (d.get("versions") or {}).items():
        if v is not None and not isinstance(v, str):
            return f"'versions.{key}' must be a string or null"
    if d.get("io") is not None:
        return _io_problem(d["io"], engine=d["kind"] == "engine")
    return None


def _io_problem(io: Any, *, engine: bool = False) -> str | None:
    if not isinstance(io, dict):
        return "'io' must be an object"
    for role in ("inputs", "outputs"):
        tensors = io.get(role, [])
        if not isinstance(tensors, list):
            return f"io.{role} must be a list"
        names = set()
        for i, t in enumerate(tensors):
            where = f"io.{role}[{i}]"
            if (problem := _tensor_problem(t, role, engine)) is not None:
                return f"{where}{problem}"
            if t["name"] in names:
                return f"{where}: the name {t['name']!r} appears twice"
            names.add(t["name"])
    return _state_problem(io)


def _state_problem(io: dict) -> str | None:
    """Recurrent state is edgelstm's h0/c0 in and hn/cn out, in pairs: a tensor marked ``state`` by another name,
    or a state input whose output is not listed, would be fed zeros or never carried."""
    from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, STATE_PAIRS

    for role, allowed in (("inputs", STATE_INPUTS), ("outputs", STATE_OUTPUTS)):
        for t in io.get(role, []):
            if t.get("state") and t["name"] not in allowed:
                return f"io.{role}: {t['name']!r} is marked state, but state {role} are named {', '.join(allowed)}"
    outs = {t["name"] for t in io.get("outputs", [])}
    for t in io.get("inputs", []):
        if t.get("state") and outs and STATE_PAIRS[t["name"]] not in outs:
            return f"io.inputs: state {t['name']!r} has no {STATE_PAIRS[t['name']]!r} among the outputs to carry it"
    return None


def _tensor_problem(t: Any, role: str, engine: bool) -> str | None:
    if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
        return " must be an object with a non-empty 'name'"
    dtype = t.get("dtype", "float32")
    # an ONNX type edgelstm has no name for is "onnx:N"; an engine's tensors may be any of TensorRT's types, named
    # in lower case (bfloat16, int4...): the engine runner refuses those numpy cannot hold, naming them
    if not isinstance(dtype, str) or not (dtype in _dtypes() or re.fullmatch(r"onnx:\d+", dtype)
                                          or (engine and re.fullmatch(r"[a-z][a-z0-9_]{0,31}", dtype))):
        return f".dtype must be one of {', '.join(_dtypes())} (got {_show(dtype)})"
    if type(t.get("state", False)) is not bool:
        return ".state must be true or false"
    shape = t.get("shape", [])
    if not isinstance(shape, list) or len(shape) > 16 or not all(
            (_is_int(x) and 0 <= x < 1 << 62) or (isinstance(x, str) and x) for x in shape):
        return ".shape must be a list of at most 16 sizes >= 0 and axis names"
    if t.get("role") not in (None, "lengths") or (t.get("role") and role != "inputs"):
        return f".role must be 'lengths' (an input) or absent (got {_show(t.get('role'))})"
    if t.get("role") == "lengths" and dtype not in ("int64", "int32"):
        return ".role 'lengths' needs an integer dtype (int64 or int32)"
    rng = t.get("range")
    if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and all(_is_int(x) for x in rng)
                                and rng[0] < rng[1] and abs(rng[0]) < 1 << 63 and abs(rng[1]) <= 1 << 63):
        return ".range must be [low, high] integers with low < high"
    return None


def io_mismatch(claimed: Any, actual: Any) -> str | None:
    """What a manifest's I/O spec (``claimed``) says that the model file (``actual``) does not: other input or
    output names, dtypes or ranks. Symbolic and fixed sizes may differ (a manifest names the axes)."""
    for role in ("inputs", "outputs"):
        have = {t.name: t for t in getattr(actual, role)}
        said = {t.name: t for t in getattr(claimed, role)}
        if set(have) != set(said):
            extra, missing = sorted(set(said) - set(have)), sorted(set(have) - set(said))
            return (f"its manifest lists {role} {sorted(said)}, the model has {sorted(have)}"
                    + (f" (no {extra} in the model)" if extra else "") + (f" (no {missing} in the manifest)"
                                                                          if missing else ""))
        for name, t in said.items():
            real = have[name]
            if not real.dtype.startswith("onnx:") and t.dtype != real.dtype:
                return f"its manifest says {role[:-1]} {name!r} is {t.dtype}, the model has {real.dtype}"
            if real.shape and t.shape and len(real.shape) != len(t.shape):
                return (f"its manifest says {role[:-1]} {name!r} has rank {len(t.shape)}, the model has "
                        f"{len(real.shape)}")
    return None


__all__ = ["manifest_problem", "io_mismatch", "DETAILS", "TOP"]
