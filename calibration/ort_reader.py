"""onnxruntime side of calibration, over the one calibration contract (a re-iterable
``Iterable[dict[str, ndarray]]``, see ``edgelstm.data``):

- ``OrtCalibrationReader``: onnxruntime's ``CalibrationDataReader`` protocol (``get_next`` until None,
  ``rewind``, ``set_range``) as a thin adapter; every batch is checked against the model's I/O spec;
- ``check_calibration``: one pass over a source that counts samples and rejects empty or too-small sets,
  NaN/inf and wrong shapes with a one-line BadInput;
- ``collect_activation_ranges``: runs the model in onnxruntime with every float tensor of the main graph
  exposed as an output and feeds ``edgelstm.calibration.ranges`` (min/max, percentile, entropy).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import IOSpec, check_feeds
from edgelstm.options import CalibMethod

from edgelstm.calibration.ranges import DEFAULT_BINS, DEFAULT_PERCENTILE, RangeCollector, TensorRange

Batch = Mapping[str, np.ndarray]


def _batch_size(batch: Batch, io: IOSpec | None) -> int:
    """Samples (sequences) in a batch: the length of the input's batch axis (axis 1 of a seq-first input)."""
    tensors = [(t.name, t.batch_axis) for t in io.data_inputs] if io is not None else [(n, 0) for n in batch]
    for name, axis in tensors:
        if name in batch and np.ndim(batch[name]) > axis:
            return int(np.shape(batch[name])[axis])
    return 0


def _checked(batch: Batch, io: IOSpec | None, index: int) -> dict[str, np.ndarray]:
    if not isinstance(batch, Mapping):
        raise BadInput(f"calibration batch {index} is a {type(batch).__name__}, not a dict of input arrays")
    if io is None:
        return {k: np.ascontiguousarray(v) for k, v in batch.items()}
    return check_feeds(io, batch, what=f"calibration batch {index}")


class OrtCalibrationReader:
    """onnxruntime ``CalibrationDataReader`` over a re-iterable source (duck-typed: onnxruntime only calls
    ``get_next``; ``isinstance(reader, CalibrationDataReader)`` holds through its subclass hook)."""

    def __init__(self, source: Iterable[Batch], *, io: IOSpec | None = None):
        self.source = source
        self.io = io
        self._start, self._end = 0, None
        self._it: Iterator[Batch] | None = None
        self._index = 0

    def _open(self) -> None:
        self._it = iter(itertools.islice(iter(self.source), self._start, self._end))
        self._index = self._start

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            self._open()
        try:
            batch = next(self._it)  # type: ignore[arg-type]
        except StopIteration:
            return None
        self._index += 1
        return _checked(batch, self.io, self._index - 1)

    def rewind(self) -> None:
        self._it = None

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._end = int(start_index), int(end_index)
        self._it = None

    def __len__(self) -> int:
        if hasattr(self.source, "__len__"):
            return len(self.source)  # type: ignore[arg-type]
        return sum(1 for _ in self.source)

    def __iter__(self):
        self.rewind()
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        b = self.get_next()
        if b is None:
            raise StopIteration
        return b


def check_calibration(source: Iterable[Batch], io: IOSpec | None, *, min_samples: int = 1,
                      what: str = "calibration set") -> tuple[int, int]:
    """One pass: every batch checked against ``io``; returns (samples, batches). Empty or smaller than
    ``min_samples`` is BadInput. A one-shot iterator (not re-iterable) is refused: calibration reads twice."""
    if iter(source) is source:
        raise BadInput(f"the {what} is a one-shot iterator; pass a re-iterable source "
                       "(a list of batches or edgelstm.data.as_calibration_source(...))")
    samples = batches = 0
    for i, b in enumerate(source):
        checked = _checked(b, io, i)
        samples += _batch_size(checked, io)
        batches += 1
    if samples == 0:
        raise BadInput(f"the {what} is empty; static INT8 needs at least {max(1, min_samples)} sample(s)")
    if samples < min_samples:
        raise BadInput(f"the {what} has {samples} sample(s); static INT8 calibration needs at least {min_samples}")
    return samples, batches


def augmented_model(model, names: Iterable[str] | None = None):
    """A copy of ``model`` whose outputs also expose every float tensor of the main graph (or ``names``)."""
    import onnx
    from onnx import helper

    from edgelstm.artifacts.onnx_graph import FLOAT, value_types

    types = value_types(model)
    aug = onnx.ModelProto()
    aug.CopyFrom(model)
    g = aug.graph
    existing = {o.name for o in g.output}
    inits = {i.name for i in g.initializer}
    if names is None:
        cand = [i.name for i in g.input if i.name not in inits]
        cand += [o for n in g.node for o in n.output if o]
        names = [n for n in cand if types.get(n) == FLOAT]
    for n in names:
        if n not in existing:
            g.output.append(helper.make_tensor_value_info(n, FLOAT, None))
            existing.add(n)
    return aug


def collect_activation_ranges(model_or_path, source: Iterable[Batch], *, io: IOSpec | None = None,
                              method: CalibMethod = CalibMethod.minmax, percentile: float = DEFAULT_PERCENTILE,
                              bins: int = DEFAULT_BINS, threads: int | None = None,
                              names: Iterable[str] | None = None) -> dict[str, TensorRange]:
    """Ranges of every float tensor of the main graph (or just ``names``) over ``source`` (run in
    onnxruntime without graph optimizations, so every tensor exists as in the file)."""
    import onnx

    from edgelstm.artifacts.ort import make_session

    model = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    aug = augmented_model(model, names)
    try:
        sess = make_session(aug.SerializeToString(), threads=threads, opt_level="disable")
    except BadInput as exc:
        raise BadInput(f"onnxruntime cannot run the model for calibration: "
                       f"{str(exc).removeprefix('onnxruntime cannot load the model: ')}") from None
    out_names = [o.name for o in sess.get_outputs()]
    if names is not None:
        wanted = set(names)
        out_names = [n for n in out_names if n in wanted]
    in_names = [i.name for i in sess.get_inputs()]
    collector = RangeCollector(method, percentile=percentile, bins=bins)

    def run_all() -> Iterator[dict[str, np.ndarray]]:
        for i, b in enumerate(source):
            feeds = _checked(b, io, i)
            feeds = {k: np.ascontiguousarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" else v
                     for k, v in feeds.items() if k in in_names}
            try:
                outs = sess.run(out_names, feeds)
            except Exception as exc:  # noqa: BLE001
                shapes = {k: list(np.shape(v)) for k, v in feeds.items()}
                raise BadInput(f"calibration batch {i} does not run in the model (inputs {shapes}): "
                               f"{str(exc).splitlines()[0][:240]}") from None
            yield dict(zip(out_names, outs))

    n = 0
    for tensors in run_all():
        collector.observe(tensors)
        n += 1
    if n == 0:
        raise BadInput("the calibration set is empty")
    if collector.needs_histograms:
        for tensors in run_all():
            collector.observe_histogram(tensors)
    return collector.ranges()
