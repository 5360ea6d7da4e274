"""The stand-in's Python API surface, in the shape of tests/trt_api/tensorrt-<version>.json, and its comparison
with a real one. Used by tests/test_trt_stand_in_surface.py.

`stand_in_surface(module)` walks a fake `tensorrt` module like scripts/trt_api_surface.py walks the real binding:
classes (members along the stand-in's own class hierarchy: methods, properties and whether they are read-only,
class attributes, whether Python may construct it), enums (members and values, by qualified name such as
'ILogger.Severity') and module-level functions. Private names (`_x`) are the stand-in's machinery and are not part
of the surface; neither are the methods a stand-in class inherits from a builtin (IHostMemory is a bytearray so
that it has the buffer protocol).

`compare(stand_in, real)` lists what the stand-in exposes that the real version lacks (a class, member, enum
member; a writable property that is read-only in reality; a constructor where there is none), every method or
constructor whose parameter names (the keywords a caller may use) match no real overload, and every enum value
that differs."""

from __future__ import annotations

import inspect
import re
import types
from typing import Any

from .pybind import PybindEnum, PybindObject

KEPT_DUNDERS = {"__init__", "__len__", "__getitem__", "__setitem__", "__iter__", "__contains__", "__enter__",
                "__exit__", "__call__"}


def _public(name: str) -> bool:
    return not name.startswith("_") or name in KEPT_DUNDERS


def _own_classes(cls: type) -> list[type]:
    """The classes of `cls`'s MRO that the stand-in wrote (not object, builtins or the pybind machinery)."""
    return [c for c in cls.__mro__ if c not in (object, PybindObject) and c.__module__ != "builtins"]


def _constructible(cls: type) -> bool:
    for c in cls.__mro__:
        if "_constructible" in c.__dict__:
            return bool(c.__dict__["_constructible"])
    return False


def _param_names(fn: Any) -> list[str] | None:
    """A stand-in method's parameter names (self excluded), as the keywords Python callers may use."""
    fn = getattr(fn, "__wrapped__", fn)
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return [p.name for p in params]


def _class_surface(cls: type) -> dict[str, Any]:
    methods: dict[str, list[str] | None] = {}
    init: list[str] | None = None
    props: dict[str, dict[str, bool]] = {}
    attrs: dict[str, str] = {}
    for c in reversed(_own_classes(cls)):          # base first, so that a subclass's member wins
        for name, raw in c.__dict__.items():
            if not _public(name):
                continue
            if name == "__init__":
                init = _param_names(raw)           # existence recorded as "constructible"
                continue
            if isinstance(raw, property):
                props[name] = {"readonly": raw.fset is None}
                methods.pop(name, None)
            elif isinstance(raw, type):
                attrs[name] = "class " + raw.__qualname__
            elif isinstance(raw, PybindEnum):
                attrs[name] = f"{type(raw).__qualname__}.{raw.name}"
            elif callable(raw) or isinstance(raw, (staticmethod, classmethod)):
                methods[name] = _param_names(raw)
                props.pop(name, None)
            else:
                attrs[name] = type(raw).__name__
    return {"constructible": _constructible(cls), "init": init if _constructible(cls) else None, "methods": methods,
            "properties": props, "attributes": attrs}


def stand_in_surface(module: types.ModuleType, fake_only: tuple[str, ...] = ()) -> dict[str, Any]:
    classes: dict[str, Any] = {}
    enums: dict[str, Any] = {}
    functions: list[str] = []
    unknown: list[str] = []

    def add_enum(cls: type) -> None:
        enums[cls.__qualname__] = {"members": {k: int(m) for k, m in cls.__members__.items()}}

    for name in sorted(dir(module)):
        if name.startswith("_") or name in fake_only:
            continue
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, PybindEnum):
            add_enum(obj)
        elif isinstance(obj, type):
            classes[name] = _class_surface(obj)
            for value in obj.__dict__.values():
                if isinstance(value, type) and issubclass(value, PybindEnum):
                    add_enum(value)
        elif callable(obj):
            functions.append(name)
        else:
            unknown.append(name)
    return {"version": module.__version__, "classes": classes, "enums": enums, "functions": functions,
            "unknown": unknown}


# --------------------------------------------------------------------------------------------- real side


def real_members(real: dict[str, Any], cls: str) -> dict[str, tuple[str, Any]]:
    """Every member of a real class (own and inherited): name -> (kind, info)."""
    out: dict[str, tuple[str, Any]] = {}
    info = real["classes"][cls]
    for base in info.get("bases", []):
        out.update(real_members(real, base))
    for kind in ("methods", "staticmethods", "properties", "attributes"):
        for name, value in info.get(kind, {}).items():
            out[name] = (kind, value)
    return out


def real_param_names(signatures: list[str]) -> list[list[str]]:
    """Parameter names of each overload of a real method, from its pybind11 signatures '(a: T, b: U = 1) -> R'."""
    out = []
    for sig in signatures:
        inner = sig[1:sig.rindex(") ->")] if ") ->" in sig else sig.strip("()")
        out.append(re.findall(r"(?:^|,\s*)(\w+)\s*:", inner))
    return out


def compare(stand_in: dict[str, Any], real: dict[str, Any], *, exact_enums: tuple[str, ...] = ()) -> list[str]:
    """What the stand-in has that the real version lacks, and enum values that differ. For `exact_enums` the
    members must be the same set (the stand-in has no fewer members either)."""
    v = real["version"]
    problems = [f"{v}: module attribute {n!r} is neither a class, an enum nor a function" for n in stand_in["unknown"]]
    real_functions = set(real["module"]["functions"])
    problems += [f"{v}: module function {n} does not exist" for n in stand_in["functions"] if n not in real_functions]
    for cname, info in stand_in["classes"].items():
        if cname not in real["classes"]:
            problems.append(f"{v}: class {cname} does not exist")
            continue
        rinfo = real["classes"][cname]
        members = real_members(real, cname)
        if info["constructible"] and not rinfo.get("constructible", False):
            problems.append(f"{v}: {cname} has no constructor (pybind11: 'No constructor defined!'); the stand-in "
                            "lets Python call it")
        if info.get("init") is not None and rinfo.get("constructible") and "__init__" in members:
            overloads = real_param_names(members["__init__"][1])
            if info["init"] not in overloads:
                problems.append(f"{v}: {cname}({', '.join(info['init'])}): the real constructor takes {overloads}")
        for name, params in info["methods"].items():
            kind = members.get(name, (None,))[0]
            if kind is None:
                problems.append(f"{v}: {cname}.{name}() does not exist")
            elif kind not in ("methods", "staticmethods"):
                problems.append(f"{v}: {cname}.{name} is a {kind[:-1]}, not a method")
            elif params is not None and not name.startswith("__"):
                overloads = real_param_names(members[name][1])
                if params not in overloads:
                    problems.append(f"{v}: {cname}.{name}({', '.join(params)}): the real method takes {overloads}")
        for name, prop in info["properties"].items():
            kind, rprop = members.get(name, (None, None))
            if kind is None:
                problems.append(f"{v}: property {cname}.{name} does not exist")
            elif kind != "properties":
                problems.append(f"{v}: {cname}.{name} is a {kind[:-1]}, not a property")
            elif not prop["readonly"] and rprop["readonly"]:
                problems.append(f"{v}: {cname}.{name} is read-only; the stand-in lets it be set")
        for name in info["attributes"]:
            if members.get(name, (None,))[0] != "attributes":
                problems.append(f"{v}: class attribute {cname}.{name} does not exist")
    for qualname, info in stand_in["enums"].items():
        if qualname not in real["enums"]:
            problems.append(f"{v}: enum {qualname} does not exist")
            continue
        rmembers = real["enums"][qualname]["members"]
        for name, value in info["members"].items():
            if name not in rmembers:
                problems.append(f"{v}: {qualname}.{name} does not exist")
            elif rmembers[name] != value:
                problems.append(f"{v}: {qualname}.{name} is {rmembers[name]}, the stand-in says {value}")
        if qualname in exact_enums:
            problems += [f"{v}: {qualname}.{name} (= {value}) is missing from the stand-in"
                         for name, value in rmembers.items() if name not in info["members"]]
    for qualname in exact_enums:
        if qualname in real["enums"] and qualname not in stand_in["enums"]:
            problems.append(f"{v}: enum {qualname} is missing from the stand-in")
    return problems


def resolve_real(real: dict[str, Any], dotted: str) -> bool:
    """Whether 'Class', 'Class.member', 'Enum.MEMBER', 'ILogger.Severity.ERROR' or 'Class.__init__' (constructible)
    exists in a real surface."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        head, rest = ".".join(parts[:cut]), parts[cut:]
        if head in real["enums"]:
            return not rest or (len(rest) == 1 and rest[0] in real["enums"][head]["members"])
        if head in real["classes"]:
            if not rest:
                return True
            if rest == ["__init__"]:
                return bool(real["classes"][head].get("constructible"))
            return len(rest) == 1 and rest[0] in real_members(real, head)
    return False


def resolve_stand_in(module: types.ModuleType, dotted: str) -> bool:
    """The same question for a stand-in module."""
    obj: Any = module
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part == "__init__" and i == len(parts) - 1:
            return isinstance(obj, type) and _constructible(obj)
        if isinstance(obj, type) and issubclass(obj, PybindEnum) and i == len(parts) - 1:
            return part in obj.__members__
        found = inspect.getattr_static(obj, part, None) if isinstance(obj, type) else getattr(obj, part, None)
        if found is None:
            return False
        obj = found
    return True
