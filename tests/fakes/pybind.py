"""What a pybind11 binding does that a plain Python class does not, for the TensorRT stand-in.

- Enums (`PybindEnum`) are not `IntEnum`: `int(flag)` and `flag.value` work, `BuilderFlag.FP16 == 0` is False
  (a scoped C++ enum compares equal only to a member of the same type), members have no ordering, the enum class
  cannot be iterated or indexed by name (`__members__` can), `BuilderFlag(6)` makes a member from its value.
- Objects (`PybindObject`) reject attributes they do not have (`config.DLA_cor = 0` raises AttributeError), a
  read-only property cannot be set, a class without a bound constructor cannot be called ("No constructor
  defined!"), and a Python subclass that overrides `__init__` must call the base `__init__` (pybind11 raises
  "TypeError: X.__init__() must be called when overriding __init__" when the instance is made).
- Arguments are converted by type casters (`@pybind(...)`): an `int` parameter takes an int (or an object with
  `__index__`/`__int__`) but not a float or a numpy array; a `Dims` parameter takes a Dims or any sequence of
  integers (a tuple, a list, a 1-D numpy integer array, as TensorRT's implicit std::vector<int> -> Dims conversion
  does) but not floats; an enum parameter takes a member of that enum, not its integer; a `buffer` parameter takes
  bytes/bytearray/memoryview (anything with the buffer protocol) but not a str. A mismatch raises pybind11's
  "TypeError: f(): incompatible function arguments".

Where the stand-in is stricter than pybind11 it says so: a size-1 numpy array or a numpy float32 scalar passes
pybind11's int caster (through `__int__`); the stand-in refuses them (no correct caller passes one).
"""

from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Callable

import numpy as np

PYBIND_MODULE = "tensorrt.tensorrt"     # the extension's module name in pybind11's messages


# --------------------------------------------------------------------------------------------------- enums


class PybindEnum:
    """A member of a pybind11 enum (scoped C++ enum: not arithmetic, not convertible)."""

    __slots__ = ("_value", "_name")
    __members__: dict[str, "PybindEnum"] = {}

    def __init__(self, value):  # pybind11: Enum(value: int)
        value = cast_int(value)
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_name", next((k for k, m in type(self).__members__.items() if m._value == value),
                                               "???"))

    def __setattr__(self, name, value):
        raise AttributeError(f"'{PYBIND_MODULE}.{type(self).__qualname__}' object attribute '{name}' is read-only")

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> int:
        return self._value

    def __int__(self) -> int:
        return self._value

    def __index__(self) -> int:
        return self._value

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._value == self._value

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__.split('.')[-1]}.{self._name}: {self._value}>"

    def __str__(self) -> str:
        return f"{type(self).__qualname__.split('.')[-1]}.{self._name}"

    def __reduce__(self):
        return (type(self), (self._value,))


def make_enum(qualname: str, members: dict[str, int]) -> type:
    """A pybind11-like enum class `qualname` (e.g. 'ILogger.Severity') with these members and values."""
    name = qualname.split(".")[-1]
    cls = type(name, (PybindEnum,), {"__slots__": (), "__module__": "tensorrt", "__qualname__": qualname})
    cls.__members__ = {}
    for key, value in members.items():
        member = object.__new__(cls)
        object.__setattr__(member, "_value", int(value))
        object.__setattr__(member, "_name", key)
        cls.__members__[key] = member
        setattr(cls, key, member)
    return cls


# ------------------------------------------------------------------------------------------------- objects


class PybindMeta(type):
    """Construction as pybind11 does it: no constructor -> TypeError; base __init__ skipped -> TypeError."""

    def __call__(cls, *args, **kwargs):
        native = native_class(cls)
        if native is None or not native.__dict__.get("_constructible", False):
            raise TypeError(f"{PYBIND_MODULE}.{(native or cls).__name__}: No constructor defined!")
        obj = cls.__new__(cls)
        obj.__init__(*args, **kwargs)
        if not obj.__dict__.get("_pybind_ready"):
            raise TypeError(f"{PYBIND_MODULE}.{native.__name__}.__init__() must be called when overriding __init__")
        return obj


def native_class(cls: type) -> type | None:
    """The first class of `cls`'s MRO that belongs to a stand-in module (it carries `_api`)."""
    return next((c for c in cls.__mro__ if "_api" in c.__dict__), None)


def is_native(obj: Any) -> bool:
    """Whether `obj` is an instance of a bound class itself (not of a user's Python subclass)."""
    return "_api" in type(obj).__dict__


class PybindObject(metaclass=PybindMeta):
    """Base of every stand-in class. `_constructible` (set on the bound class) says whether Python may call it;
    the stand-in makes the others with `cls._make(...)`, which runs `_init`."""

    _constructible = False

    def _ready(self) -> None:
        """Called by a bound constructor: the C++ object exists now."""
        object.__setattr__(self, "_pybind_ready", True)

    @classmethod
    def _make(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, "_pybind_ready", True)
        obj._init(*args, **kwargs)
        return obj

    def _init(self, *args, **kwargs) -> None:
        pass

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or not is_native(self):   # stand-in state, or a user subclass (it has a __dict__)
            object.__setattr__(self, name, value)
            return
        attr = inspect.getattr_static(type(self), name, None)
        if isinstance(attr, property):
            if attr.fset is None:
                raise AttributeError(f"property '{name}' of '{type(self).__name__}' object has no setter")
            attr.fset(self, value)
            return
        raise AttributeError(f"'{PYBIND_MODULE}.{type(self).__name__}' object has no attribute '{name}'")


# ------------------------------------------------------------------------------------------------- casters


class Mismatch(Exception):
    """An argument its caster does not take."""


def cast_int(v: Any, api: Any = None) -> int:
    if isinstance(v, (float, np.floating, np.ndarray, str, bytes, bytearray)) or v is None:
        raise Mismatch
    try:
        return operator.index(v)
    except TypeError:
        pass
    if hasattr(type(v), "__int__"):
        return int(v)
    raise Mismatch


cast_int.label = "int"  # type: ignore[attr-defined]


def cast_float(v: Any, api: Any = None) -> float:
    if isinstance(v, (bool, str, bytes, np.ndarray)) or v is None:
        raise Mismatch
    try:
        return float(v)
    except (TypeError, ValueError):
        raise Mismatch from None


cast_float.label = "float"  # type: ignore[attr-defined]


def cast_bool(v: Any, api: Any = None) -> bool:
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, int) and v in (0, 1)):
        return bool(v)
    raise Mismatch


cast_bool.label = "bool"  # type: ignore[attr-defined]


def cast_str(v: Any, api: Any = None) -> str:
    if not isinstance(v, str):
        raise Mismatch
    return v


cast_str.label = "str"  # type: ignore[attr-defined]


def cast_opt_str(v: Any, api: Any = None) -> str | None:
    return None if v is None else cast_str(v)


cast_opt_str.label = "str = None"  # type: ignore[attr-defined]


def _dim(d: Any) -> int:
    """One dimension as pybind11's int caster takes it without conversion (the implicit conversion to Dims loads
    its std::vector<int> with convert=false): an int or anything with __index__ (numpy integers); not a float."""
    if isinstance(d, (bool, float, np.floating, np.ndarray)) or not hasattr(type(d), "__index__"):
        raise Mismatch
    return operator.index(d)


def cast_dims(v: Any, api: Any = None) -> tuple[int, ...]:
    """Dims: a Dims, or any sequence of integers. TensorRT declares `py::implicitly_convertible<std::vector<int>,
    Dims>()` (python/src/infer/pyFoundationalTypes.cpp), and pybind11's list caster takes any sequence that is not
    str/bytes: a tuple, a list, and a 1-D numpy integer array (its items have __index__). A float or a float array
    is refused."""
    if hasattr(v, "_dims") and type(v).__name__.startswith("Dims"):
        return tuple(v._dims)
    if isinstance(v, (str, bytes, bytearray)) or not hasattr(v, "__len__") or not hasattr(v, "__getitem__"):
        raise Mismatch
    return tuple(_dim(d) for d in v)


cast_dims.label = "Dims"  # type: ignore[attr-defined]


def cast_buffer(v: Any, api: Any = None) -> bytes:
    if isinstance(v, str) or v is None:
        raise Mismatch
    try:
        return bytes(memoryview(v))
    except TypeError:
        raise Mismatch from None


cast_buffer.label = "buffer"  # type: ignore[attr-defined]


def cast_seq(item: Callable[[Any, Any], Any], label: str) -> Callable[[Any, Any], list]:
    def cast(v: Any, api: Any = None) -> list:
        if isinstance(v, (str, bytes, np.ndarray)) or not hasattr(v, "__len__"):
            raise Mismatch
        return [item(x, api) for x in v]

    cast.label = f"List[{label}]"  # type: ignore[attr-defined]
    return cast


def cast_enum(qualname: str) -> Callable[[Any, Any], Any]:
    """A member of the module's enum `qualname` (its integer value is not accepted)."""

    def cast(v: Any, api: Any) -> Any:
        if not isinstance(v, api.enum(qualname)):
            raise Mismatch
        return v

    cast.label = qualname  # type: ignore[attr-defined]
    return cast


def cast_instance(class_name: str, none_ok: bool = False) -> Callable[[Any, Any], Any]:
    """An instance of the module's class `class_name` (or of a Python subclass of it)."""

    def cast(v: Any, api: Any) -> Any:
        if v is None and none_ok:
            return None
        cls = getattr(api.trt, class_name, None)
        if cls is None or not isinstance(v, cls):
            raise Mismatch
        return v

    cast.label = class_name  # type: ignore[attr-defined]
    return cast


def _label(cast: Callable) -> str:
    return getattr(cast, "label", getattr(cast, "__name__", "object"))


def incompatible(where: str, owner: str, params: list[tuple[str, Callable]], args: tuple, kwargs: dict) -> TypeError:
    sig = ", ".join([f"self: {PYBIND_MODULE}.{owner}"] + [f"{n}: {_label(c)}" for n, c in params])
    shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return TypeError(f"{where}(): incompatible function arguments. The following argument types are supported:\n"
                     f"    1. ({sig})\n\nInvoked with: <{owner}>, {shown}")


def pybind(**casters: Callable[[Any, Any], Any]):
    """Check and convert a stand-in method's arguments with pybind11-like casters (by parameter name)."""

    def deco(fn):
        sig = inspect.signature(fn)
        order = [(n, casters[n]) for n in list(sig.parameters)[1:] if n in casters]

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            try:
                bound = sig.bind(self, *args, **kwargs)
                bound.apply_defaults()
                for name, cast in order:
                    value = bound.arguments[name]
                    if value is sig.parameters[name].default and value is None:
                        continue
                    bound.arguments[name] = cast(value, self._api)
            except (TypeError, Mismatch):
                raise incompatible(fn.__name__, native_class(type(self)).__name__, order, args, kwargs) from None
            return fn(*bound.args, **bound.kwargs)

        wrapper.__pybind_casters__ = dict(order)  # type: ignore[attr-defined]
        return wrapper

    return deco


def checked_set(obj: Any, name: str, value: Any, cast: Callable[[Any, Any], Any]) -> Any:
    """A property setter's argument, as pybind11 converts it."""
    try:
        return cast(value, obj._api)
    except Mismatch:
        raise incompatible(name, native_class(type(obj)).__name__, [("arg0", cast)], (value,), {}) from None
