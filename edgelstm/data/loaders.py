"""Loading data files for a model: ``.npz`` / ``.npy`` / ``.csv``, checked against the model's I/O spec.

- ``.npz``: arrays named like the model's inputs, or a single array (any name, usually ``x``) for a model
  with one data input; optional labels under ``y`` (or ``labels``);
- ``.npy``: the one data input;
- ``.csv``: a table windowed into sequences of ``window`` rows, a window starting every ``stride`` rows
  (``features`` picks the columns by name or index, ``target`` the label column; the label of a window is the
  target at its last row, or ``horizon`` rows later). The file is one sequence unless ``group`` names a column
  that says which sequence a row belongs to: then no window crosses a change of its value.

``calibration_source`` is the one call for a calibration source: a data file, or synthetic samples.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, TensorSpec, is_state
from edgelstm.data.dataset import (DEFAULT_BATCH_SIZE, LABEL_KEYS, BatchSource, Dataset, as_calibration_source,
                                   dataset_from_arrays)
from edgelstm.data.synthetic import synthetic_dataset
from edgelstm.errors import BadInput, opt


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
        raise BadInput(f"{opt('features')} is empty; name the columns (a,b) or give their indices (0,2)")
    return out


def _data_input(spec: IOSpec) -> TensorSpec:
    data = [t for t in spec.inputs if not is_state(t, STATE_INPUTS)]
    if len(data) != 1:
        raise BadInput(f"this data format gives one input, but the model has data inputs "
                       f"{[t.name for t in data]}; use an .npz with one array per input")
    return data[0]


def _numpy_problem(exc: Exception) -> str:
    """What numpy's loader said, in words: object arrays (refused: they need pickle), a truncated array, a bad
    header (a negative or impossible shape), or else its own first line."""
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if "allow_pickle" in text or "Object arrays" in text:
        return "it holds object arrays, which need pickle (refused); save numeric arrays"
    if "negative dimensions" in text or re.search(r"\(-\d", text) or "header" in text.lower():
        return f"an array header is damaged ({text})"
    if "EOF" in text or "could only read" in text or "not fully written" in text:
        return f"an array is truncated ({text})"
    return f"{type(exc).__name__}: {text}"


def _load_npz(path: Path, spec: IOSpec) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and numpy's header parser raise assorted errors
        raise BadInput(f"{path.name} is not a readable .npz file: {_numpy_problem(exc)}") from None
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
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a readable .npy file: {_numpy_problem(exc)}") from None
    return {_data_input(spec).name: arr}


def _read_csv(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """The header (None when the first row is all numbers) and the rows, as text; every row as wide as the first."""
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
    for i, r in enumerate(rows):
        if len(r) != width:
            raise BadInput(f"{path.name}: line {i + 1 + (header is not None)} has {len(r)} columns, expected {width}")
    return header, rows


def _numbers(rows: list[list[str]], j: int, name: str, path: Path, first_line: int) -> np.ndarray:
    """Column ``j`` as float64 (an empty cell is NaN, reported by the finiteness checks with the column's name)."""
    out = np.full(len(rows), np.nan, dtype=np.float64)
    for i, r in enumerate(rows):
        c = r[j].strip()
        if c:
            try:
                out[i] = float(c)
            except ValueError:
                raise BadInput(f"{path.name}: column {name!r} on line {i + first_line} is not a number: {c!r}") from None
    return out


def _column(ref: str | int, header: list[str] | None, width: int, path: Path, what: str) -> int:
    if isinstance(ref, int):
        if not -width <= ref < width:
            raise BadInput(f"{path.name}: {what} column index {ref} is out of range (the file has {width} columns)")
        return ref % width
    if header and ref in header:
        return header.index(ref)
    have = header if header else f"no header, columns 0..{width - 1}"
    raise BadInput(f"{path.name}: no {what} column named {ref!r} (columns: {have})")


def _sequences(rows: list[list[str]], gcol: int | None, gname: str, path: Path, first_line: int) -> list[range]:
    """The row ranges of the file's sequences: the whole file, or one per run of equal ``gcol`` values (a value
    that comes back after another is refused: the rows of a sequence must be together)."""
    if gcol is None:
        return [range(len(rows))]
    runs: list[range] = []
    where: dict[str, int] = {}
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][gcol].strip() != rows[start][gcol].strip():
            gid = rows[start][gcol].strip()
            if gid in where:
                raise BadInput(f"{path.name}: {opt('group')} {gname!r} value {gid!r} comes back on line "
                               f"{start + first_line} after other values (first run from line {where[gid]}); sort the "
                               "file so that each sequence's rows are together")
            where[gid] = start + first_line
            runs.append(range(start, i))
            start = i
    return runs


def _check_feature_count(x_spec: TensorSpec, names: list[str], features, path: Path) -> None:
    """A file whose feature columns do not match the model's feature axis, refused with what to pass."""
    want = x_spec.shape[-1] if len(x_spec.shape) == 3 else None
    if not isinstance(want, int) or want == len(names):
        return
    cols = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    hint = (f"{opt('features')} names {len(names)} column(s); name {want}" if features is not None else
            f"by default every column but {opt('target')} and {opt('group')} is a feature: pick the model's with "
            f"{opt('features')} a,b,... and name a label column with {opt('target')}")
    raise BadInput(f"{path.name}: {len(names)} feature column(s) ({cols}) but {x_spec.name!r} takes {want} features "
                   "per step", hint=hint)


def _load_csv(path: Path, spec: IOSpec, *, window: int | None, features, target, stride: int, horizon: int,
              group: str | int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    header, rows = _read_csv(path)
    first_line = 2 if header else 1
    width = len(header) if header else len(rows[0]) if rows else 0

    def col(ref, what: str) -> int | None:
        return None if ref is None else _column(parse_features([ref])[0], header, width, path, what)  # type: ignore[index]

    tcol, gcol = col(target, "target"), col(group, "group")
    feats = parse_features(features)
    fcols = [j for j in range(width) if j not in (tcol, gcol)] if feats is None else \
        [_column(f, header, width, path, "feature") for f in feats]
    if not fcols:
        raise BadInput(f"{path.name}: no feature columns left (the only columns are the target and the group)")
    names = [header[j] if header else str(j) for j in fcols]
    x_spec = _data_input(spec)
    if window is None:
        if "seq" in x_spec.shape or len(x_spec.shape) != 3 or not isinstance(x_spec.shape[1], int):
            raise BadInput(f"{path.name}: a CSV needs {opt('window')} T (rows per sequence) to become "
                           f"{x_spec.name!r} [batch, seq, features]")
        window = int(x_spec.shape[1])
    _check_feature_count(x_spec, names, features, path)
    columns = [_numbers(rows, j, name, path, first_line) for j, name in zip(fcols, names)]
    for name, values in zip(names, columns):
        bad = ~np.isfinite(values)
        if bad.any():
            raise BadInput(f"{path.name}: column {name!r} has {int(bad.sum())} empty/NaN/inf value(s) "
                           f"(first on line {int(np.argmax(bad)) + first_line})")
    if window < 1 or stride < 1 or horizon < 0:
        raise BadInput(f"{path.name}: {opt('window')} and {opt('stride')} must be >= 1 and {opt('horizon')} >= 0 "
                       f"(got {window}, {stride}, {horizon})")
    ahead = horizon if tcol is not None else 0  # the horizon shifts the label; without one it changes nothing
    sequences = _sequences(rows, gcol, str(group), path, first_line)
    starts = [s for seq in sequences for s in range(seq.start, seq.stop - window - ahead + 1, stride)]
    if not starts:
        longest = max(len(seq) for seq in sequences)
        raise BadInput(f"{path.name}: {longest} row(s) are too few for one window of {window}"
                       + (f" plus horizon {ahead}" if ahead else "")
                       + (f" (the longest of {len(sequences)} sequences by {opt('group')})" if gcol is not None else ""))
    feats_tab = np.stack(columns, axis=1).astype(np.float32)
    x = np.stack([feats_tab[s:s + window] for s in starts])
    if x_spec.axis("seq") == 0 and x_spec.axis("batch") == 1:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))  # a seq-first model takes [seq, batch, features]
    labels = None
    if tcol is not None:
        tname = header[tcol] if header else str(tcol)
        col_t = _numbers(rows, tcol, tname, path, first_line)
        labels = np.array([col_t[s + window - 1 + ahead] for s in starts])
        if not np.isfinite(labels).all():
            raise BadInput(f"{path.name}: target column {tname!r} has empty/NaN/inf values inside the windows")
        labels = labels.astype(np.int64) if np.all(labels == np.round(labels)) else labels.astype(np.float32)
    return {x_spec.name: x}, labels


def load_dataset(path: str | Path, spec: IOSpec, *, window: int | None = None,
                 features: str | Sequence[str | int] | None = None, target: str | int | None = None,
                 stride: int = 1, horizon: int = 0, group: str | int | None = None,
                 min_samples: int = 1) -> Dataset:
    """Load ``.npz`` / ``.npy`` / ``.csv`` data for a model with I/O ``spec`` and check it before anything runs.

    Zero state is added for stateful specs whose data lacks ``h0``/``c0``. Raises BadInput (one line,
    naming the array/column) on a missing file, wrong names, rank, fixed dims, dtype, NaN/inf, sample
    counts that disagree, or fewer than ``min_samples`` samples."""
    p = Path(path)
    if not p.exists():
        from edgelstm.fileio import not_found

        raise BadInput(not_found("data file", p))
    if p.is_dir():
        raise BadInput(f"{p} is a directory; pass a .npz, .npy or .csv file")
    suffix = p.suffix.lower()
    if suffix != ".csv" and (window is not None or features is not None or target is not None or group is not None):
        raise BadInput(f"{opt('window')}/{opt('features')}/{opt('target')}/{opt('group')} apply to .csv data, "
                       f"not {suffix or 'this'} files ({p.name})")
    labels = None
    if suffix == ".npz":
        arrays, labels = _load_npz(p, spec)
    elif suffix == ".npy":
        arrays = _load_npy(p, spec)
    elif suffix == ".csv":
        arrays, labels = _load_csv(p, spec, window=window, features=features, target=target, stride=stride,
                                   horizon=horizon, group=group)
    else:
        raise BadInput(f"unknown data format {suffix or '(no suffix)'} for {p.name}; use .npz, .npy or .csv")
    return dataset_from_arrays(arrays, spec, labels=labels, source=p.name, min_samples=min_samples)


def calibration_source(spec: IOSpec, *, data: str | Path | None = None, synthetic: int | None = None,
                       batch_size: int = DEFAULT_BATCH_SIZE, seq: int = 16, seed: int = 0,
                       window: int | None = None, features: str | Sequence[str | int] | None = None,
                       min_samples: int = 1, drop_last: bool = False) -> BatchSource:
    """One call for a calibration source: from a data file, or ``synthetic`` seeded samples."""
    if data is not None and synthetic is not None:
        raise BadInput(f"give either calibration data (a file) or {opt('synthetic')} N, not both")
    if data is not None:
        ds = load_dataset(data, spec, window=window, features=features, min_samples=min_samples)
    elif synthetic is not None:
        ds = synthetic_dataset(spec, synthetic, seq=seq, seed=seed)
    else:
        raise BadInput("no calibration data: pass a data file (.npz/.npy/.csv) or a synthetic sample count")
    return as_calibration_source(ds, batch_size, spec=spec, drop_last=drop_last, min_samples=min_samples)
