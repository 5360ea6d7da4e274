"""I/O specs: names, dtypes and shapes (with symbolic `batch`/`seq` axes) of a model's inputs and
outputs, and which of them are recurrent state. Feeds are checked against a spec before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from edgelstm.errors import BadInput

Dim = int | str

STATE_INPUTS = ("h0", "c0")
STATE_OUTPUTS = ("hn", "cn")
#: each state input and the output that carries it to the next call (h0 <- hn, c0 <- cn)
STATE_PAIRS = dict(zip(STATE_INPUTS, STATE_OUTPUTS))


def is_state(t: "TensorSpec", names: tuple[str, ...] = STATE_INPUTS + STATE_OUTPUTS) -> bool:
    """Whether a tensor is recurrent state: marked so in its spec, or named like edgelstm's state I/O."""
    return bool(t.state) or t.name in names


#: the dtypes an I/O spec names, and their numpy types
DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int64": np.int64,
          "int32": np.int32, "bool": np.bool_, "int8": np.int8, "uint8": np.uint8}
#: the roles an input can play besides data and state: ``lengths`` = per-sample valid lengths (pack_padded_sequence)
LENGTHS = "lengths"


#: onnxruntime's type strings of the same dtypes (``NodeArg.type``)
ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
             "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool", "tensor(int8)": "int8",
             "tensor(uint8)": "uint8"}


def numpy_dtype(name: str):
    """The numpy type of a spec dtype name (float32 for anything unknown)."""
    return DTYPES.get(name, np.float32)


def ort_numpy_dtype(type_str: str):
    """The numpy type onnxruntime wants for an input of type ``tensor(...)`` (float32 for anything unknown): token
    ids and lengths stay integers."""
    return numpy_dtype(ORT_TYPES.get(type_str, "float32"))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str = "float32"
    shape: tuple[Dim, ...] = ()
    state: bool = False  # a recurrent state tensor (h0/c0 in, hn/cn out)
    value_range: tuple[int, int] | None = None  # integer inputs: half-open [low, high) of valid values
    role: str | None = None  # None (data or state), or LENGTHS (valid steps per sample, values in [1, seq])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "state": self.state}
        if self.value_range is not None:
            d["range"] = list(self.value_range)
        if self.role:
            d["role"] = self.role
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorSpec":
        rng = d.get("range")
        return cls(d["name"], d.get("dtype", "float32"), tuple(d.get("shape", ())), bool(d.get("state", False)),
                   (int(rng[0]), int(rng[1])) if rng else None, d.get("role") or None)

    @property
    def is_integer(self) -> bool:
        return np.dtype(numpy_dtype(self.dtype)).kind in "iub"

    def axis(self, name: str) -> int | None:
        """The axis named ``name`` (``batch``, ``seq`` or another symbol), or None."""
        return self.shape.index(name) if name in self.shape else None

    @property
    def batch_axis(self) -> int:
        """The axis that indexes samples: the one named ``batch``; else 1 for state ([layers, batch, hidden]), 0."""
        axis = self.axis("batch")
        return axis if axis is not None else (1 if is_state(self, STATE_INPUTS + STATE_OUTPUTS) else 0)

    @property
    def seq_axis(self) -> int | None:
        """The time axis: the one named ``seq`` (None when the tensor has none)."""
        return self.axis("seq")

    def resolve(self, **dims: int) -> tuple[int, ...]:
        """Concrete shape with symbolic dims replaced (batch=..., seq=...); unknown symbols -> error."""
        out = []
        for d in self.shape:
            if isinstance(d, int) and d > 0:
                out.append(d)
            elif isinstance(d, str) and d in dims:
                out.append(int(dims[d]))
            else:
                raise BadInput(f"cannot resolve dimension {d!r} of {self.name!r}; pass it explicitly")
        return tuple(out)

    def describe(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        rng = f"@{self.value_range[0]}:{self.value_range[1]}" if self.value_range else ""
        return (f"{self.name}: {self.dtype}[{dims}]{rng}" + (" (state)" if self.state else "")
                + (f" ({self.role})" if self.role else ""))


@dataclass(frozen=True)
class IOSpec:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = field(default_factory=tuple)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def data_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in self.inputs if not t.state)

    @property
    def state_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in self.inputs if t.state)

    @property
    def stateful(self) -> bool:
        return bool(self.state_inputs)

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise BadInput(f"no input named {name!r}; the model's inputs are {self.input_names}")

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IOSpec":
        return cls(tuple(TensorSpec.from_dict(t) for t in d.get("inputs", [])),
                   tuple(TensorSpec.from_dict(t) for t in d.get("outputs", [])))

    def seq_axis(self, name: str) -> int | None:
        for t in (*self.inputs, *self.outputs):
            if t.name == name and "seq" in t.shape:
                return t.shape.index("seq")
        return None


_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 6: "int32", 7: "int64", 9: "bool", 3: "int8", 2: "uint8"}


def iospec_from_onnx(model) -> IOSpec:
    """Read the I/O spec of an onnx.ModelProto (initializers are not inputs)."""
    inits = {i.name for i in model.graph.initializer}

    def conv(v, *, is_input: bool) -> TensorSpec:
        tt = v.type.tensor_type
        dims: list[Dim] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or "?")
        names = STATE_INPUTS if is_input else STATE_OUTPUTS
        dtype = _ONNX_DTYPES.get(tt.elem_type, f"onnx:{tt.elem_type}")
        role = LENGTHS if is_input and v.name == LENGTHS and dtype in ("int64", "int32") else None
        return TensorSpec(v.name, dtype, tuple(dims), v.name in names, role=role)

    ins = tuple(conv(v, is_input=True) for v in model.graph.input if v.name not in inits)
    outs = tuple(conv(v, is_input=False) for v in model.graph.output)
    return IOSpec(ins, outs)


def check_feeds(spec: IOSpec, feeds: Mapping[str, np.ndarray], *, what: str = "data") -> dict[str, np.ndarray]:
    """Check names, rank, fixed dims, dtype kind and finiteness; return feeds cast to the spec's dtypes.

    Collects every problem before raising, so the user fixes them in one go."""
    problems: list[str] = []
    wanted = {t.name for t in spec.inputs}
    missing = [n for n in spec.input_names if n not in feeds]
    extra = [n for n in feeds if n not in wanted]
    if missing:
        problems.append(f"missing input(s) {missing} (have {sorted(feeds)})")
    if extra:
        problems.append(f"unknown input(s) {extra}; the model's inputs are {spec.input_names}")
    out: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        if t.name not in feeds:
            continue
        a = np.asarray(feeds[t.name])
        if a.dtype.kind not in "fiub":
            problems.append(f"{t.name!r} has dtype {a.dtype}, expected {t.dtype}")
            continue
        if t.shape and a.ndim != len(t.shape):
            problems.append(f"{t.name!r} has shape {list(a.shape)} (rank {a.ndim}), expected rank {len(t.shape)} {list(t.shape)}")
            continue
        for axis, (got, want) in enumerate(zip(a.shape, t.shape)):
            if isinstance(want, int) and want > 0 and got != want:
                problems.append(f"{t.name!r} has {got} on axis {axis}, the model needs {want} (shape {list(t.shape)})")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int((~np.isfinite(a)).sum())
            problems.append(f"{t.name!r} contains {bad} NaN/inf value(s)")
        if t.is_integer and a.dtype.kind == "f":
            if a.size and not np.array_equal(a, np.round(a)):
                problems.append(f"{t.name!r} holds fractional values, but the model takes {t.dtype} (e.g. token ids)")
                continue
        if t.value_range is not None and a.size and a.dtype.kind in "iufb":
            lo, hi = t.value_range
            below, above = int((a < lo).sum()), int((a >= hi).sum())
            if below or above:
                problems.append(f"{t.name!r} has {below + above} value(s) outside [{lo}, {hi}) "
                                f"(min {a.min()}, max {a.max()}); the model takes {t.describe()}")
        with np.errstate(over="ignore", invalid="ignore"):
            cast = np.ascontiguousarray(a.astype(numpy_dtype(t.dtype), copy=False))
        if a.size and a.dtype.kind in "fiu" and np.isfinite(a).all() and (
                (cast.dtype.kind == "f" and not np.isfinite(cast).all())
                or (cast.dtype.kind in "iu" and a.dtype.kind in "iu" and not np.array_equal(cast, a))):
            problems.append(f"{t.name!r} has values beyond the range of {t.dtype} (min {a.min()}, max {a.max()})")
        out[t.name] = cast
    if problems:
        raise BadInput(f"{what}: " + "; ".join(problems))
    return out
