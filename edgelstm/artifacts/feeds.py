"""Seeded feeds shaped from an I/O spec: one place that knows how to make a valid input for every tensor role.

Float inputs are standard normal; integer inputs (token ids) are drawn within their ``value_range`` (half-open);
``lengths`` inputs (``pack_padded_sequence``) hold valid lengths in [1, seq] (float lengths: the same as fractions of
``seq``, in (0, 1]), sorted in decreasing order with the longest equal to ``seq`` (so ``enforce_sorted=True`` models accept them and padded outputs keep ``seq`` steps);
state inputs (h0/c0) are zeros, or small random values when asked. Symbolic dims: ``batch`` and ``seq`` take the
given values, any other symbol takes ``dims[symbol]`` or else the ``seq`` value.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from edgelstm.artifacts.iospec import LENGTHS, STATE_INPUTS, IOSpec, TensorSpec, is_state, numpy_dtype
from edgelstm.errors import BadInput
from edgelstm.options import check_alloc

DEFAULT_INT_RANGE = (0, 2)


def concrete_shape(t: TensorSpec, batch: int, seq: int, dims: Mapping[str, int] | None = None) -> tuple[int, ...]:
    """``t``'s shape with every symbolic dim given a value (see the module doc). A data input that names neither
    ``batch`` nor ``seq`` (an ONNX file from elsewhere) is read positionally: axis 0 batch, axis 1 seq."""
    out = []
    state = is_state(t, STATE_INPUTS)
    positional = not state and "batch" not in t.shape and "seq" not in t.shape
    for axis, d in enumerate(t.shape):
        if isinstance(d, int) and d > 0:
            out.append(int(d))
        elif d == "batch" or (state and axis == 1) or (positional and axis == 0):
            out.append(int(batch))
        elif d == "seq" or (positional and axis == 1):
            out.append(int(seq))
        elif isinstance(d, str) and dims and d in dims:
            out.append(int(dims[d]))
        elif isinstance(d, str):
            out.append(int(seq))
        else:
            raise BadInput(f"cannot size axis {axis} of {t.name!r} (shape {list(t.shape)})")
    return tuple(out)


def lengths_values(rng: np.random.Generator, n: int, seq: int) -> np.ndarray:
    """``n`` valid lengths in [1, seq], decreasing, the first equal to ``seq``."""
    vals = rng.integers(1, seq + 1, size=n)
    if n:
        vals[0] = seq
    return np.sort(vals)[::-1].astype(np.int64)


def tensor_values(t: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator, *, seq: int,
                  scale: float = 1.0) -> np.ndarray:
    """Seeded values for one non-state input of ``shape``."""
    dtype = numpy_dtype(t.dtype)
    if t.role == LENGTHS:
        n = int(np.prod(shape)) if shape else 1
        steps = lengths_values(rng, n, seq).reshape(shape)
        if np.dtype(dtype).kind == "f":  # relative lengths (a fraction of seq, the longest 1.0)
            return (steps / float(seq)).astype(dtype)
        return steps.astype(dtype)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    if kind in "iu":
        lo, hi = t.value_range or DEFAULT_INT_RANGE
        return rng.integers(lo, hi, size=shape).astype(dtype)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def random_feeds(inputs: IOSpec | Iterable[TensorSpec], batch: int, seq: int, rng: np.random.Generator, *,
                 dims: Mapping[str, int] | None = None, random_state: bool = False, state_scale: float = 0.5,
                 scale: float = 1.0) -> dict[str, np.ndarray]:
    """One batch of feeds for every input (in the spec's order)."""
    specs = inputs.inputs if isinstance(inputs, IOSpec) else tuple(inputs)
    feeds: dict[str, np.ndarray] = {}
    for t in specs:
        shape = concrete_shape(t, batch, seq, dims)
        check_alloc(shape, 8, what=f"input {t.name!r} at batch {batch}, seq {seq}")  # before numpy tries
        if is_state(t, STATE_INPUTS):
            dtype = numpy_dtype(t.dtype)
            feeds[t.name] = ((rng.standard_normal(shape) * state_scale).astype(dtype) if random_state
                             else np.zeros(shape, dtype))
        else:
            feeds[t.name] = tensor_values(t, shape, rng, seq=seq, scale=scale)
    return feeds


def zero_feeds(inputs: IOSpec | Iterable[TensorSpec], batch: int, seq: int,
               dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Feeds of zeros (valid for any integer range that holds 0; ``lengths`` = ``seq``)."""
    specs = inputs.inputs if isinstance(inputs, IOSpec) else tuple(inputs)
    out = {}
    for t in specs:
        shape = concrete_shape(t, batch, seq, dims)
        check_alloc(shape, 8, what=f"input {t.name!r} at batch {batch}, seq {seq}")
        if t.role == LENGTHS:
            out[t.name] = np.full(shape, 1.0 if np.dtype(numpy_dtype(t.dtype)).kind == "f" else seq,
                                  numpy_dtype(t.dtype))
        else:
            lo = t.value_range[0] if t.value_range and not (t.value_range[0] <= 0 < t.value_range[1]) else 0
            out[t.name] = np.full(shape, lo, numpy_dtype(t.dtype))
    return out
