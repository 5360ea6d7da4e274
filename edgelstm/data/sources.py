"""Data sets and calibration sources: one re-iterable contract.

A *calibration source* is a re-iterable ``Iterable[dict[str, np.ndarray]]``: every ``iter()`` starts over
and yields the same batches in the same order (TensorRT iterates a calibrator twice; onnxruntime's
``CalibrationDataReader`` is a thin adapter over one pass). Each batch is a feed dict named like the
model's inputs.

Data comes from

- ``.npz``: arrays named like the model's inputs, or a single array (any name, usually ``x``) for a model
  with one data input; optional labels under ``y`` (or ``labels``);
- ``.npy``: the one data input;
- ``.csv``: a table windowed into sequences of ``window`` rows (``features`` picks the columns by name or
  index, ``target`` the label column; the label of a window is the target at its last row);
- synthetic data: seeded standard-normal sequences shaped from an ``IOSpec``.

Everything is checked against the model's I/O spec (names, rank, fixed dims, dtype kind, NaN/inf) with
``edgelstm.artifacts.iospec.check_feeds`` before anything runs. Stateful models (inputs ``h0``/``c0``) need only
their data input(s): state inputs the data does not provide start as zeros.

Sample axes: axis 0 for data inputs (``x`` is ``[batch, seq, features]``), axis 1 for state inputs
(``h0``/``c0`` are ``[layers*dirs, batch, hidden]``), axis 0 for labels.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, TensorSpec, check_feeds

__all__ = [
    "CalibrationSource",
    "BatchSource",
    "Dataset",
    "DATA_SUFFIXES",
    "LABEL_KEYS",
    "DEFAULT_BATCH_SIZE",
    "as_calibration_source",
    "calibration_source",
    "dataset_from_arrays",
    "load_dataset",
    "parse_features",
    "require_min_samples",
    "sample_axis",
    "synthetic_dataset",
    "with_default_state",
]

#: The contract: iterate as often as you like, get the same feed dicts each time.
CalibrationSource = Iterable[dict[str, np.ndarray]]

DATA_SUFFIXES = (".npz", ".npy", ".csv")
LABEL_KEYS = ("y", "labels", "label")
DEFAULT_BATCH_SIZE = 32


def _is_state(t: TensorSpec) -> bool:
    return bool(t.state) or t.name in STATE_INPUTS


def sample_axis(spec_or_name: TensorSpec | str) -> int:
    """The axis that indexes samples: 1 for state inputs (h0/c0), 0 for everything else."""
    if isinstance(spec_or_name, TensorSpec):
        return 1 if _is_state(spec_or_name) else 0
    return 1 if spec_or_name in STATE_INPUTS else 0


def _np_dtype(name: str):
    return {"float16": np.float16, "float64": np.float64, "int64": np.int64, "int32": np.int32}.get(name, np.float32)


def with_default_state(spec: IOSpec, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add zero state inputs (h0/c0) that ``feeds`` lacks, sized from the batch of the data input.

    Feeds the spec does not name are dropped (e.g. ``h0`` when running a stateless model)."""
    out: dict[str, np.ndarray] = {}
    batch = None
    for t in spec.inputs:
        if t.name in feeds and not _is_state(t):
            batch = int(np.shape(feeds[t.name])[0])
            break
    for t in spec.inputs:
        if t.name in feeds:
            out[t.name] = np.asarray(feeds[t.name])
        elif _is_state(t):
            if batch is None:
                raise BadInput(f"cannot size the zero state {t.name!r}: no data input in the feeds")
            dims = [batch if d == "batch" else d for d in t.shape]
            if len(dims) == 3 and not isinstance(dims[1], int):
                dims[1] = batch  # state is [layers*dirs, batch, hidden]
            if not all(isinstance(d, int) and d > 0 for d in dims):
                raise BadInput(f"cannot size the zero state {t.name!r} from its shape {list(t.shape)}; "
                               f"provide {t.name!r} in the data")
            out[t.name] = np.zeros(dims, dtype=_np_dtype(t.dtype))
    return out


class BatchSource:
    """A re-iterable calibration source over fixed in-memory arrays (the contract's reference implementation).

    ``iter()`` always starts from the first sample, so two passes give identical batches."""

    def __init__(self, inputs: Mapping[str, np.ndarray], axes: Mapping[str, int], n: int, batch_size: int,
                 *, drop_last: bool = False):
        if batch_size < 1:
            raise BadInput(f"batch size must be >= 1, got {batch_size}")
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
        """Sequence length of the first data input (axis 1 of x), if it has one."""
        for name, a in self.inputs.items():
            if self.axes.get(name, 0) == 0 and np.ndim(a) >= 3:
                return int(np.shape(a)[1])
        return None

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, *, drop_last: bool = False) -> BatchSource:
        """A re-iterable source of feed dicts (labels not included; see ``label_batches``)."""
        return BatchSource(self.inputs, self.axes, self.n, batch_size, drop_last=drop_last)

    def label_batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
        if self.labels is None:
            return []
        return [self.labels[i:i + batch_size] for i in range(0, self.n, batch_size)]

    def head(self, n: int) -> "Dataset":
        """The first ``n`` samples."""
        n = max(0, min(int(n), self.n))
        ins = {k: np.take(a, np.arange(n), axis=self.axes[k]) for k, a in self.inputs.items()}
        return Dataset(ins, None if self.labels is None else self.labels[:n], self.source, dict(self.axes))

    def for_spec(self, spec: IOSpec) -> "Dataset":
        """This data as feeds for another model's spec: zero state added where missing, unknown inputs dropped."""
        full = with_default_state(spec, self.inputs)
        return Dataset(full, self.labels, self.source, {k: self.axes.get(k, sample_axis(k)) for k in full})

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


# ----------------------------------------------------------------------------------------------- loading


def parse_features(text: str | Sequence[str | int] | None) -> list[str | int] | None:
    """``"a,b"`` / ``"0,2"`` / ``["a", 1]`` -> a list of names or indices (digits become indices)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str | int] = []
    for it in items:
        if isinstance(it, str):
            it = it.strip()
            if not it:
                continue
            out.append(int(it) if it.lstrip("-").isdigit() else it)
        else:
            out.append(int(it))
    if not out:
        raise BadInput("--features is empty; name the columns (a,b) or give their indices (0,2)")
    return out


def _data_input(spec: IOSpec) -> TensorSpec:
    data = [t for t in spec.inputs if not _is_state(t)]
    if len(data) != 1:
        raise BadInput(f"this data format gives one input, but the model has data inputs "
                       f"{[t.name for t in data]}; use an .npz with one array per input")
    return data[0]


def _load_npz(path: Path, spec: IOSpec) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise BadInput(f"{path.name}: cannot read (object arrays need pickle, which is refused): "
                       f"{str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a readable .npz file: {type(exc).__name__}: {exc}") from None
    labels = None
    names = set(spec.input_names)
    for key in LABEL_KEYS:
        if key in arrays and key not in names:
            labels = arrays.pop(key)
            break
    if len(arrays) == 1 and not (set(arrays) & names):
        (key, arr), = arrays.items()
        arrays = {_data_input(spec).name: arr}  # a single array (usually `x`) feeds the one data input
    if not arrays:
        raise BadInput(f"{path.name} holds no input arrays (only labels); expected {spec.input_names}")
    return arrays, labels


def _load_npy(path: Path, spec: IOSpec) -> dict[str, np.ndarray]:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a readable .npy file: {str(exc).splitlines()[0][:200]}") from None
    return {_data_input(spec).name: arr}


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path.name}: cannot read as CSV: {exc}") from None
    if not rows:
        raise BadInput(f"{path.name} is empty")

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return cell.strip() == ""

    header = None
    if not all(numeric(c) for c in rows[0]):
        header = [c.strip() for c in rows[0]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0]) if rows else 0
    values = np.full((len(rows), width), np.nan, dtype=np.float64)
    for i, r in enumerate(rows):
        if len(r) != width:
            raise BadInput(f"{path.name}: line {i + 1 + (header is not None)} has {len(r)} columns, expected {width}")
        for j, c in enumerate(r):
            c = c.strip()
            if c == "":
                continue  # NaN; reported by the finiteness check with the column name
            try:
                values[i, j] = float(c)
            except ValueError:
                col = header[j] if header else j
                raise BadInput(f"{path.name}: column {col!r} on line {i + 1 + (header is not None)} is not a number: {c!r}") from None
    return header, values


def _column(ref: str | int, header: list[str] | None, width: int, path: Path, what: str) -> int:
    if isinstance(ref, int):
        if not -width <= ref < width:
            raise BadInput(f"{path.name}: {what} column index {ref} is out of range (the file has {width} columns)")
        return ref % width
    if header and ref in header:
        return header.index(ref)
    have = header if header else f"no header, columns 0..{width - 1}"
    raise BadInput(f"{path.name}: no {what} column named {ref!r} (columns: {have})")


def _load_csv(path: Path, spec: IOSpec, *, window: int | None, features, target, stride: int,
              horizon: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    header, table = _read_csv(path)
    first_line = 2 if header else 1
    width = table.shape[1]
    tcol = None if target is None else _column(parse_features([target])[0], header, width, path, "target")  # type: ignore[index]
    feats = parse_features(features)
    if feats is None:
        fcols = [j for j in range(width) if j != tcol]
    else:
        fcols = [_column(f, header, width, path, "feature") for f in feats]
    if not fcols:
        raise BadInput(f"{path.name}: no feature columns left (the only column is the target)")
    names = [header[j] if header else str(j) for j in fcols]
    for j, name in zip(fcols, names):
        bad = ~np.isfinite(table[:, j])
        if bad.any():
            raise BadInput(f"{path.name}: column {name!r} has {int(bad.sum())} empty/NaN/inf value(s) "
                           f"(first on line {int(np.argmax(bad)) + first_line})")
    x_spec = _data_input(spec)
    if window is None:
        if "seq" in x_spec.shape or len(x_spec.shape) != 3 or not isinstance(x_spec.shape[1], int):
            raise BadInput(f"{path.name}: a CSV needs --window T (rows per sequence) to become {x_spec.name!r} "
                           f"[batch, seq, features]")
        window = int(x_spec.shape[1])
    if window < 1 or stride < 1 or horizon < 0:
        raise BadInput(f"{path.name}: --window and stride must be >= 1 and horizon >= 0 "
                       f"(got window={window}, stride={stride}, horizon={horizon})")
    rows = table.shape[0]
    starts = list(range(0, rows - window - horizon + 1, stride))
    if not starts:
        raise BadInput(f"{path.name}: {rows} row(s) are too few for one window of {window}"
                       + (f" plus horizon {horizon}" if horizon else ""))
    feats_tab = table[:, fcols].astype(np.float32)
    x = np.stack([feats_tab[s:s + window] for s in starts])
    labels = None
    if tcol is not None:
        col = table[:, tcol]
        labels = np.array([col[s + window - 1 + horizon] for s in starts])
        if not np.isfinite(labels).all():
            tname = header[tcol] if header else str(tcol)
            raise BadInput(f"{path.name}: target column {tname!r} has empty/NaN/inf values inside the windows")
        if np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            labels = labels.astype(np.float32)
    return {x_spec.name: x}, labels


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


def load_dataset(path: str | Path, spec: IOSpec, *, window: int | None = None,
                 features: str | Sequence[str | int] | None = None, target: str | int | None = None,
                 stride: int = 1, horizon: int = 0, min_samples: int = 1) -> Dataset:
    """Load ``.npz`` / ``.npy`` / ``.csv`` data for a model with I/O ``spec`` and check it before anything runs.

    Zero state is added for stateful specs whose data lacks ``h0``/``c0``. Raises BadInput (one line,
    naming the array/column) on a missing file, wrong names, rank, fixed dims, dtype, NaN/inf, sample
    counts that disagree, or fewer than ``min_samples`` samples."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"data file {p} does not exist")
    if p.is_dir():
        raise BadInput(f"{p} is a directory; pass a .npz, .npy or .csv file")
    suffix = p.suffix.lower()
    if suffix != ".csv" and (window is not None or features is not None or target is not None):
        raise BadInput(f"--window/--features/--target apply to .csv data, not {suffix or 'this'} files ({p.name})")
    labels = None
    if suffix == ".npz":
        arrays, labels = _load_npz(p, spec)
    elif suffix == ".npy":
        arrays = _load_npy(p, spec)
    elif suffix == ".csv":
        arrays, labels = _load_csv(p, spec, window=window, features=features, target=target, stride=stride,
                                   horizon=horizon)
    else:
        raise BadInput(f"unknown data format {suffix or '(no suffix)'} for {p.name}; use .npz, .npy or .csv")
    return dataset_from_arrays(arrays, spec, labels=labels, source=p.name, min_samples=min_samples)


def dataset_from_arrays(arrays: Mapping[str, np.ndarray], spec: IOSpec, *, labels: np.ndarray | None = None,
                        source: str = "arrays", min_samples: int = 1) -> Dataset:
    """Check in-memory arrays against ``spec`` (zero state added where missing) and wrap them as a Dataset."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    # Empty first: check_feeds would accept a zero-length batch axis.
    for t in spec.inputs:
        if t.name in arrays and not _is_state(t) and arrays[t.name].ndim >= 1 and arrays[t.name].shape[0] == 0:
            raise BadInput(f"{source}: {t.name!r} is empty (shape {list(arrays[t.name].shape)}); "
                           f"the data set needs at least {max(1, min_samples)} sample(s)")
    feeds = dict(arrays)
    missing_state = [t.name for t in spec.inputs if _is_state(t) and t.name not in feeds]
    if missing_state and any(t.name in feeds for t in spec.inputs if not _is_state(t)):
        try:
            zeros = with_default_state(spec, feeds)
            feeds.update({k: zeros[k] for k in missing_state})
        except BadInput:
            pass  # check_feeds reports what is missing
    checked = check_feeds(spec, feeds, what=source)
    for t in spec.inputs:
        a = checked[t.name]
        if not _is_state(t) and a.ndim >= 2 and "seq" in t.shape and a.shape[t.shape.index("seq")] == 0:
            raise BadInput(f"{source}: {t.name!r} has sequence length 0 (shape {list(a.shape)})")
    ds = Dataset(checked, _check_labels(labels, source), source)
    require_min_samples(ds, min_samples, what="data set")
    return ds


def synthetic_dataset(spec: IOSpec, n: int, *, seq: int = 16, seed: int = 0, scale: float = 1.0) -> Dataset:
    """``n`` seeded standard-normal samples shaped from ``spec`` (``batch``=n, ``seq``=seq); zero state."""
    if n < 1:
        raise BadInput(f"--synthetic needs at least 1 sample, got {n}")
    if seq < 1:
        raise BadInput(f"--seq must be >= 1, got {seq}")
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        if _is_state(t):
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
                               f"(shape {list(t.shape)}); pass --data or --input-size")
        if np.dtype(_np_dtype(t.dtype)).kind == "f":
            arrays[t.name] = (rng.standard_normal(dims) * scale).astype(_np_dtype(t.dtype))
        else:
            arrays[t.name] = rng.integers(0, 2, size=dims).astype(_np_dtype(t.dtype))
    return dataset_from_arrays(arrays, spec, source=f"synthetic(n={n}, seq={seq}, seed={seed})")


def calibration_source(spec: IOSpec, *, data: str | Path | None = None, synthetic: int | None = None,
                       batch_size: int = DEFAULT_BATCH_SIZE, seq: int = 16, seed: int = 0,
                       window: int | None = None, features: str | Sequence[str | int] | None = None,
                       min_samples: int = 1, drop_last: bool = False) -> BatchSource:
    """One call for a calibration source: from a data file, or ``synthetic`` seeded samples."""
    if data is not None and synthetic is not None:
        raise BadInput("give either calibration data (a file) or --synthetic N, not both")
    if data is not None:
        ds = load_dataset(data, spec, window=window, features=features, min_samples=min_samples)
    elif synthetic is not None:
        ds = synthetic_dataset(spec, synthetic, seq=seq, seed=seed)
    else:
        raise BadInput("no calibration data: pass a data file (.npz/.npy/.csv) or a synthetic sample count")
    return as_calibration_source(ds, batch_size, spec=spec, drop_last=drop_last, min_samples=min_samples)
