"""Synthetic data: seeded standard-normal sequences shaped from a model's I/O spec (zero state)."""

from __future__ import annotations

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, is_state
from edgelstm.artifacts.feeds import concrete_shape, tensor_values
from edgelstm.data.dataset import Dataset, dataset_from_arrays
from edgelstm.errors import BadInput, opt
from edgelstm.options import check_alloc, check_int


def synthetic_dataset(spec: IOSpec, n: int, *, seq: int = 16, seed: int = 0, scale: float = 1.0) -> Dataset:
    """``n`` seeded standard-normal samples shaped from ``spec`` (``batch``=n, ``seq``=seq); zero state."""
    if n < 1:
        raise BadInput(f"{opt('synthetic')} needs at least 1 sample, got {n}")
    if seq < 1:
        raise BadInput(f"{opt('seq')} must be >= 1, got {seq}")
    check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        if is_state(t, STATE_INPUTS):
            continue
        for axis, d in enumerate(t.shape):  # axes by role: a seq-first input is [seq, batch, F]
            if not (isinstance(d, int) and d > 0) and not isinstance(d, str):
                raise BadInput(f"cannot make synthetic data for {t.name!r}: its axis {axis} is {d!r} "
                               f"(shape {list(t.shape)}); pass {opt('data')} or {opt('input_size')}")
        dims = list(concrete_shape(t, n, seq))
        if dims:
            dims[t.batch_axis] = n  # n samples even for a model with a fixed batch (fed in batches of that size)
        check_alloc(dims, 8, what=f"synthetic data for {t.name!r} ({opt('synthetic')} {n}, {opt('seq')} {seq})",
                    hint=f"use fewer samples or a shorter {opt('seq')}")  # standard_normal makes float64 first
        arrays[t.name] = tensor_values(t, tuple(dims), rng, seq=seq, scale=scale)  # ints within their value range
    return dataset_from_arrays(arrays, spec, source=f"synthetic(n={n}, seq={seq}, seed={seed})")
