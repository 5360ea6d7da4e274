"""Synthetic data: seeded standard-normal sequences shaped from a model's I/O spec (zero state)."""

from __future__ import annotations

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, is_state
from edgelstm.data.dataset import Dataset, dataset_from_arrays, numpy_dtype
from edgelstm.errors import BadInput, opt


def synthetic_dataset(spec: IOSpec, n: int, *, seq: int = 16, seed: int = 0, scale: float = 1.0) -> Dataset:
    """``n`` seeded standard-normal samples shaped from ``spec`` (``batch``=n, ``seq``=seq); zero state."""
    if n < 1:
        raise BadInput(f"{opt('synthetic')} needs at least 1 sample, got {n}")
    if seq < 1:
        raise BadInput(f"{opt('seq')} must be >= 1, got {seq}")
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        if is_state(t, STATE_INPUTS):
            continue
        dims = []
        for axis, d in enumerate(t.shape):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif axis == 0 or d == "batch":
                dims.append(n)
            elif d == "seq" or axis == 1:
                dims.append(seq)
            else:
                raise BadInput(f"cannot make synthetic data for {t.name!r}: its axis {axis} is {d!r} "
                               f"(shape {list(t.shape)}); pass {opt('data')} or {opt('input_size')}")
        if np.dtype(numpy_dtype(t.dtype)).kind == "f":
            arrays[t.name] = (rng.standard_normal(dims) * scale).astype(numpy_dtype(t.dtype))
        else:
            arrays[t.name] = rng.integers(0, 2, size=dims).astype(numpy_dtype(t.dtype))
    return dataset_from_arrays(arrays, spec, source=f"synthetic(n={n}, seq={seq}, seed={seed})")
