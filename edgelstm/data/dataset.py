"""The data layer's core: a ``Dataset`` (model feeds plus optional labels) and the one calibration contract.

A *calibration source* is a re-iterable ``Iterable[dict[str, np.ndarray]]``: every ``iter()`` starts over
and yields the same batches in the same order (TensorRT iterates a calibrator twice; onnxruntime's
``CalibrationDataReader`` is a thin adapter over one pass). Each batch is a feed dict named like the
model's inputs. ``BatchSource`` is the reference implementation over in-memory arrays.

Sample axes: axis 0 for data inputs (``x`` is ``[batch, seq, features]``), axis 1 for state inputs
(``h0``/``c0`` are ``[layers*dirs, batch, hidden]``), axis 0 for labels. Stateful models (inputs
``h0``/``c0``) need only their data input(s): state inputs the data does not provide start as zeros.

Arrays are checked against the model's I/O spec (names, rank, fixed dims, dtype kind, NaN/inf) with
``edgelstm.artifacts.iospec.check_feeds`` in ``dataset_from_arrays`` before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, TensorSpec, check_feeds, is_state, numpy_dtype
from edgelstm.errors import BadInput

#: The contract: iterate as often as you like, get the same feed dicts each time.
CalibrationSource = Iterable[dict[str, np.ndarray]]

DATA_SUFFIXES = (".npz", ".npy", ".csv")
LABEL_KEYS = ("y", "labels", "label")
DEFAULT_BATCH_SIZE = 32


def sample_axis(spec_or_name: TensorSpec | str) -> int:
    """The axis that indexes samples: the spec's ``batch`` axis (1 in a seq-first [seq, batch, F]); else 1 for state
    inputs (h0/c0), 0 for everything else."""
    if isinstance(spec_or_name, TensorSpec):
        return spec_or_name.batch_axis
    return 1 if spec_or_name in STATE_INPUTS else 0


def with_default_state(spec: IOSpec, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add zero state inputs (h0/c0) that ``feeds`` lacks, sized from the batch of the data input.

    Feeds the spec does not name are dropped (e.g. ``h0`` when running a stateless model)."""
    out: dict[str, np.ndarray] = {}
    batch = None
    for t in spec.inputs:
        if t.name in feeds and not is_state(t, STATE_INPUTS):
            shape = np.shape(feeds[t.name])
            if not shape:
                raise BadInput(f"{t.name!r} is a scalar; it needs a batch axis to size the zero state")
            batch = int(shape[t.batch_axis]) if len(shape) > t.batch_axis else int(shape[0])
            break
    for t in spec.inputs:
        if t.name in feeds:
            out[t.name] = np.asarray(feeds[t.name])
        elif is_state(t, STATE_INPUTS):
            if batch is None:
                raise BadInput(f"cannot size the zero state {t.name!r}: no data input in the feeds")
            dims = [batch if d == "batch" else d for d in t.shape]
            if len(dims) == 3:
                dims[1] = batch  # state is [layers*dirs, batch, hidden]; a fixed batch is fed in batches of it
            if not all(isinstance(d, int) and d > 0 for d in dims):
                raise BadInput(f"cannot size the zero state {t.name!r} from its shape {list(t.shape)}; "
                               f"provide {t.name!r} in the data")
            out[t.name] = np.zeros(dims, dtype=numpy_dtype(t.dtype))
    return out


class BatchSource:
    """A re-iterable calibration source over fixed in-memory arrays (the contract's reference implementation).

    ``iter()`` always starts from the first sample, so two passes give identical batches."""

    def __init__(self, inputs: Mapping[str, np.ndarray], axes: Mapping[str, int], n: int, batch_size: int,
                 *, drop_last: bool = False, source: str = ""):
        if batch_size < 1:
            raise BadInput(f"batch size must be >= 1, got {batch_size}")
        self.source = source  # where the samples come from (a file name, "synthetic(...)"): manifests record it
        self._inputs = dict(inputs)
        self._axes = dict(axes)
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            lo, hi = i * self.batch_size, min(self.n, (i + 1) * self.batch_size)
            yield {name: np.ascontiguousarray(np.take(a, np.arange(lo, hi), axis=self._axes.get(name, 0)))
                   for name, a in self._inputs.items()}

    def __repr__(self) -> str:
        return f"BatchSource(n={self.n}, batch_size={self.batch_size}, batches={len(self)}, inputs={sorted(self._inputs)})"


@dataclass
class Dataset:
    """Model feeds (full arrays, samples on axis 0, or axis 1 for state inputs) plus optional labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""
    axes: dict[str, int] = field(default_factory=dict)
    seq_axes: dict[str, int] = field(default_factory=dict)   # the time axis of inputs that have one (from the spec)

    def __post_init__(self) -> None:
        for name in self.inputs:
            self.axes.setdefault(name, sample_axis(name))
        counts = {name: int(np.shape(a)[self.axes[name]]) if np.ndim(a) > self.axes[name] else -1
                  for name, a in self.inputs.items()}
        if self.labels is not None:
            counts["labels"] = int(np.shape(self.labels)[0]) if np.ndim(self.labels) else -1
        if len(set(counts.values())) > 1:
            raise BadInput(f"{self.source or 'data'}: arrays disagree on the number of samples: {counts}")

    @property
    def n(self) -> int:
        for name, a in self.inputs.items():
            return int(np.shape(a)[self.axes[name]])
        return 0

    @property
    def seq(self) -> int | None:
        """Sequence length of the first data input (its ``seq`` axis; else axis 1 of a 3-d x), if it has one."""
        for name, axis in self.seq_axes.items():
            if name in self.inputs and np.ndim(self.inputs[name]) > axis:
                return int(np.shape(self.inputs[name])[axis])
        for name, a in self.inputs.items():
            if self.axes.get(name, 0) == 0 and np.ndim(a) >= 3:
                return int(np.shape(a)[1])
        return None

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, *, drop_last: bool = False) -> BatchSource:
        """A re-iterable source of feed dicts (labels not included: ``labels`` holds them)."""
        return BatchSource(self.inputs, self.axes, self.n, batch_size, drop_last=drop_last, source=self.source)

    def head(self, n: int) -> "Dataset":
        """The first ``n`` samples."""
        n = max(0, min(int(n), self.n))
        ins = {k: np.take(a, np.arange(n), axis=self.axes[k]) for k, a in self.inputs.items()}
        return Dataset(ins, None if self.labels is None else self.labels[:n], self.source, dict(self.axes),
                       dict(self.seq_axes))

    def for_spec(self, spec: IOSpec) -> "Dataset":
        """This data as feeds for another model's spec: zero state added where missing, unknown inputs dropped."""
        full = with_default_state(spec, self.inputs)
        specs = {t.name: t for t in spec.inputs}
        return Dataset(full, self.labels, self.source,
                       {k: self.axes.get(k, sample_axis(specs[k]) if k in specs else sample_axis(k)) for k in full},
                       dict(self.seq_axes))

    def describe(self) -> str:
        shapes = ", ".join(f"{k}{list(np.shape(a))}" for k, a in self.inputs.items())
        lab = f", labels{list(np.shape(self.labels))}" if self.labels is not None else ""
        return f"{self.n} samples from {self.source or 'memory'}: {shapes}{lab}"


def require_min_samples(data: Dataset | int, minimum: int = 1, *, what: str = "calibration set") -> int:
    """Raise BadInput when a data set is empty or smaller than ``minimum`` samples; return its size."""
    n = data.n if isinstance(data, Dataset) else int(data)
    if n < max(1, minimum):
        src = f" ({data.source})" if isinstance(data, Dataset) and data.source else ""
        if n == 0:
            raise BadInput(f"the {what}{src} is empty; it needs at least {max(1, minimum)} sample(s)")
        raise BadInput(f"the {what}{src} has {n} sample(s); it needs at least {minimum}")
    return n


def as_calibration_source(dataset: Dataset, batch_size: int = DEFAULT_BATCH_SIZE, *, spec: IOSpec | None = None,
                          drop_last: bool = False, min_samples: int = 1) -> BatchSource:
    """A re-iterable calibration source over ``dataset``; with ``spec``, zero state is added where missing."""
    require_min_samples(dataset, min_samples)
    ds = dataset.for_spec(spec) if spec is not None else dataset
    src = ds.batches(batch_size, drop_last=drop_last)
    if len(src) == 0:
        raise BadInput(f"the calibration set has {ds.n} sample(s), fewer than one batch of {batch_size}")
    return src


def _check_labels(labels: np.ndarray | None, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "fiub":
        raise BadInput(f"{where}: labels 'y' have dtype {labels.dtype}, expected numbers")
    if labels.ndim == 0:
        raise BadInput(f"{where}: labels 'y' must have one entry per sample, got a scalar")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise BadInput(f"{where}: labels 'y' contain {int((~np.isfinite(labels)).sum())} NaN/inf value(s)")
    return labels


def _any_batch(spec: IOSpec) -> IOSpec:
    """``spec`` with the batch axis of every data input left open: a data set holds any number of samples."""
    from dataclasses import replace

    def free(t: TensorSpec) -> TensorSpec:  # (a state fixed at batch 1 too: [layers, 1, hidden] holds n samples)
        if not t.shape or isinstance(t.shape[t.batch_axis], str) or (is_state(t, STATE_INPUTS) and len(t.shape) != 3):
            return t
        return replace(t, shape=tuple("batch" if i == t.batch_axis else d for i, d in enumerate(t.shape)))

    return IOSpec(tuple(free(t) for t in spec.inputs), spec.outputs)


def check_lengths(spec: IOSpec, feeds: Mapping[str, np.ndarray], source: str = "data") -> None:
    """Per-sample ``lengths`` inputs (``pack_padded_sequence``) hold valid lengths: integers in [1, seq], ``seq``
    being the time axis of the data they describe. BadInput in one line naming the first bad sample; nothing
    reaches torch or onnxruntime (which fail deep inside, or pad silently) otherwise."""
    from edgelstm.artifacts.iospec import LENGTHS

    for t in spec.inputs:
        if t.role != LENGTHS or t.name not in feeds:
            continue
        values = np.asarray(feeds[t.name])
        seq, of = _data_seq(spec, feeds)
        if values.dtype.kind not in "iu" or not values.size:
            continue  # non-integers are reported by check_feeds
        bad = (values < 1) | (values > seq) if seq is not None else values < 1
        if bad.any():
            i = int(np.argmax(bad.reshape(-1)))
            rule = f"[1, {seq}] (the sequence length of {of!r})" if seq is not None else ">= 1"
            raise BadInput(f"{source}: {t.name!r} must hold valid lengths in {rule}; {int(bad.sum())} value(s) "
                           f"are not, the first {values.reshape(-1)[i]} (sample {i})")


def _data_seq(spec: IOSpec, feeds: Mapping[str, np.ndarray]) -> tuple[int | None, str | None]:
    """The longest sequence among the data inputs (their ``seq`` axis, else the axis after the batch axis)."""
    from edgelstm.artifacts.iospec import LENGTHS

    found: list[tuple[int, str]] = []
    for t in spec.inputs:
        a = feeds.get(t.name)
        if a is None or t.role == LENGTHS or is_state(t, STATE_INPUTS) or np.ndim(a) < 2:
            continue
        axis = t.seq_axis if t.seq_axis is not None else (1 if t.batch_axis == 0 else 0)
        found.append((int(np.shape(a)[axis]), t.name))
    return max(found) if found else (None, None)


def dataset_from_arrays(arrays: Mapping[str, np.ndarray], spec: IOSpec, *, labels: np.ndarray | None = None,
                        source: str = "arrays", min_samples: int = 1) -> Dataset:
    """Check in-memory arrays against ``spec`` (zero state added where missing) and wrap them as a Dataset."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    # Empty first: check_feeds would accept a zero-length batch axis.
    for t in spec.inputs:
        a = arrays.get(t.name)
        if a is not None and not is_state(t, STATE_INPUTS) and a.ndim >= 1 and a.shape[0] == 0:
            raise BadInput(f"{source}: {t.name!r} is empty (shape {list(a.shape)}); "
                           f"the data set needs at least {max(1, min_samples)} sample(s)")
    feeds = dict(arrays)
    missing_state = [t.name for t in spec.inputs if is_state(t, STATE_INPUTS) and t.name not in feeds]
    if missing_state and any(t.name in feeds for t in spec.inputs if not is_state(t, STATE_INPUTS)):
        try:
            zeros = with_default_state(spec, feeds)
            feeds.update({k: zeros[k] for k in missing_state})
        except BadInput:
            pass  # check_feeds reports what is missing
    checked = check_feeds(_any_batch(spec), feeds, what=source)  # a fixed batch is met batch by batch, not here
    for t in spec.inputs:
        a = checked[t.name]
        if not is_state(t, STATE_INPUTS) and a.ndim >= 2 and "seq" in t.shape and a.shape[t.shape.index("seq")] == 0:
            raise BadInput(f"{source}: {t.name!r} has sequence length 0 (shape {list(a.shape)})")
    check_lengths(spec, checked, source)
    ds = Dataset(checked, _check_labels(labels, source), source, {t.name: sample_axis(t) for t in spec.inputs},
                 {t.name: t.seq_axis for t in spec.inputs if t.seq_axis is not None and not is_state(t, STATE_INPUTS)})
    require_min_samples(ds, min_samples, what="data set")
    return ds
