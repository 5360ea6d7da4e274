"""TensorRT INT8 calibrators (TensorRT 10.x weakly typed builds; IBuilderConfig.int8_calibrator is deprecated since
10.1, removed in 11) over the calibration contract.

The contract (edgelstm.data): a re-iterable ``Iterable[dict[str, ndarray]]`` of feed dicts named like the
model's inputs. TensorRT may call ``get_batch`` through the data more than once; every pass restarts the
source, so both passes see the same batches in the same order.

TensorRT calls four methods on a Python calibrator (checked against the bindings in TensorRT's
python/src/infer/pyInt8.cpp and the IInt8Calibrator docs):

- ``get_batch_size() -> int`` (deprecated since 10.1: explicit-batch networks carry the batch in the shapes);
- ``get_batch(names: list[str]) -> list[int] | None``: one device pointer per name, in that order; None (or [])
  when the data is exhausted. TensorRT reads each buffer with its input's dtype: the host batch of every input is
  converted to that dtype (``input_dtypes``: float32 for ``x``, int64 for ``lengths`` or token ids), never to
  float32 for all;
- ``read_calibration_cache() -> bytes | None``: a cache to reuse instead of calibrating;
- ``write_calibration_cache(cache: memoryview)``: the cache TensorRT computed.

The class must subclass ``trt.IInt8EntropyCalibrator2`` (or ``IInt8MinMaxCalibrator``) and call the base
``__init__``; as ``tensorrt`` is imported lazily, the class is created on first use by
``calibrator_class(trt, method)``. All the logic lives in ``CalibrationFeeder``, a plain class that works
(and is tested) without TensorRT. TensorRT 11 removed calibrators: INT8 there comes from Q/DQ ONNX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from edgelstm.errors import BadInput, InternalError, opt
from edgelstm.fileio import write_bytes_atomic

METHODS = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


class CalibrationFeeder:
    """Turns a calibration source into device pointers for ``get_batch`` and handles the cache file.

    Only batches with the shape of the first batch are fed (TensorRT calibrates at one fixed shape, the
    calibration profile); a shorter last batch is skipped and counted in ``skipped``."""

    def __init__(self, source: Iterable[Mapping[str, np.ndarray]] | None, *, cache_file: str | Path | None = None,
                 cuda: Any = None, input_dtypes: Mapping[str, Any] | None = None):
        self.source = source
        self.cache_file = Path(cache_file) if cache_file else None
        self._cuda = cuda
        self.input_dtypes = dict(input_dtypes or {})
        self._iter = None
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._buffers: dict[str, Any] = {}
        self._stream = None
        self.batches_fed = 0       # over all passes
        self.passes = 0            # completed passes over the data
        self.skipped = 0           # batches of another shape, skipped
        self.cache_read = False    # a cache file was handed to TensorRT
        self.cache_written = False

    # -------------------------------------------------------------------------------- data
    def first_batch_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the first batch (the calibration profile). Iterates one batch of the source."""
        if self._shapes is None:
            if self.source is None:
                raise BadInput(f"INT8 calibration needs calibration data ({opt('calib')}) or an existing "
                               f"{opt('calib_cache')}")
            first = next(iter(self.source), None)
            if first is None:
                raise BadInput("the calibration data is empty")
            self._shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in first.items()}
        return self._shapes

    def batch_size(self) -> int:
        shapes = self._shapes
        if not shapes:
            return 1  # ignored for explicit-batch networks (TensorRT >= 10)
        for name, shape in shapes.items():
            if name not in ("h0", "c0") and shape:
                return int(shape[0])
        return 1

    def next_host_batch(self) -> dict[str, np.ndarray] | None:
        """The next full batch of this pass, or None at the end (the next call starts a new pass)."""
        shapes = self.first_batch_shapes()
        if self._iter is None:
            self._iter = iter(self.source)  # type: ignore[arg-type]
        for batch in self._iter:
            if {k: tuple(np.shape(v)) for k, v in batch.items()} != shapes:
                self.skipped += 1
                continue
            return {k: self._host(k, v) for k, v in batch.items()}
        self._iter = None
        self.passes += 1
        return None

    def _host(self, name: str, value: Any) -> np.ndarray:
        """One input of a batch in the dtype TensorRT reads it with (integers stay integers when it is unknown)."""
        a = np.asarray(value)
        want = self.input_dtypes.get(name)
        want = np.dtype(want if want is not None else (np.float32 if a.dtype.kind == "f" else a.dtype))
        if want.kind in "iub" and a.dtype.kind in "fc" and not np.array_equal(a, np.round(a)):
            raise BadInput(f"calibration input {name!r} is {want.name} in the model, but the data holds non-integer "
                           "values")
        return np.ascontiguousarray(a, dtype=want)

    def _backend(self):
        if self._cuda is None:
            from edgelstm.runners.cuda_buffers import get_backend

            self._cuda = get_backend()
        return self._cuda

    def next_pointers(self, names: list[str]) -> list[int] | None:
        batch = self.next_host_batch()
        if batch is None:
            return None
        missing = [n for n in names if n not in batch]
        if missing:
            raise BadInput(f"calibration batches lack input(s) {missing}; they have {sorted(batch)}")
        cuda = self._backend()
        if self._stream is None:
            self._stream = cuda.stream()
        ptrs = []
        for name in names:
            host = batch[name]
            buf = self._buffers.get(name)
            if buf is None or buf.nbytes < host.nbytes:
                if buf is not None:
                    cuda.free(buf)
                buf = self._buffers[name] = cuda.malloc(host.nbytes)
            cuda.htod(buf, host, self._stream)
            ptrs.append(int(buf.ptr))
        cuda.synchronize(self._stream)
        self.batches_fed += 1
        return ptrs

    # ------------------------------------------------------------------------------- cache
    def read_cache(self) -> bytes | None:
        if self.cache_file is not None and self.cache_file.is_file():
            data = self.cache_file.read_bytes()
            if data:
                self.cache_read = True
                return data
        return None

    def write_cache(self, cache: Any) -> None:
        if self.cache_file is None:
            return
        write_bytes_atomic(self.cache_file, bytes(cache))
        self.cache_written = True

    def close(self) -> None:
        """Free the device buffers and destroy the stream (safe to call twice)."""
        if self._cuda is not None:
            for buf in self._buffers.values():
                self._cuda.free(buf)
            if self._stream is not None:
                self._cuda.destroy_stream(self._stream)
        self._buffers.clear()
        self._stream = None

    def stats(self) -> dict[str, Any]:
        return {"batches_fed": self.batches_fed, "passes": self.passes, "skipped_batches": self.skipped,
                "cache_file": str(self.cache_file) if self.cache_file else None, "cache_read": self.cache_read,
                "cache_written": self.cache_written,
                "batch_shapes": {k: list(v) for k, v in (self._shapes or {}).items()}}


_CLASSES: dict[tuple[int, str], type] = {}


def calibrator_class(trt, method: str = "entropy") -> type:
    """The calibrator class for this ``tensorrt`` module: a subclass of IInt8EntropyCalibrator2 (``entropy``)
    or IInt8MinMaxCalibrator (``minmax``), created once per module and method."""
    if method not in METHODS:
        raise BadInput(f"TensorRT calibrators support {sorted(METHODS)}, not {method!r} "
                       "(percentile calibration exists only for the Q/DQ route: edgelstm quantize)")
    base = getattr(trt, METHODS[method], None)
    if base is None:
        raise InternalError(f"tensorrt {getattr(trt, '__version__', '?')} has no {METHODS[method]} "
                            "(TensorRT 11 removed calibrators; build INT8 from a Q/DQ ONNX)")
    key = (id(trt), method)
    if key in _CLASSES:
        return _CLASSES[key]

    class EdgeLSTMCalibrator(base):  # type: ignore[misc, valid-type]
        """TensorRT calibrator over an edgelstm calibration source, with a calibration cache file."""

        def __init__(self, feeder: CalibrationFeeder):
            base.__init__(self)  # required by the pybind11 trampoline (TensorRT docs)
            self.feeder = feeder

        def get_batch_size(self) -> int:
            return self.feeder.batch_size()

        def get_batch(self, names, *args):  # some old bindings also passed `bindings`; names is first
            try:
                return self.feeder.next_pointers(list(names))
            except Exception as exc:  # noqa: BLE001 - an exception inside a TensorRT callback is swallowed
                self.feeder.error = exc  # type: ignore[attr-defined]
                return None

        def read_calibration_cache(self):
            return self.feeder.read_cache()

        def write_calibration_cache(self, cache) -> None:
            self.feeder.write_cache(cache)

    EdgeLSTMCalibrator.__name__ = f"EdgeLSTM{METHODS[method][1:]}"
    _CLASSES[key] = EdgeLSTMCalibrator
    return EdgeLSTMCalibrator


def make_calibrator(trt, source: Iterable[Mapping[str, np.ndarray]] | None, *, cache_file: str | Path | None = None,
                    method: str = "entropy", cuda: Any = None, input_dtypes: Mapping[str, Any] | None = None):
    """A TensorRT calibrator over ``source`` (may be None when ``cache_file`` exists). ``calibrator.feeder``
    holds the statistics (batches fed, passes, cache read/written)."""
    feeder = CalibrationFeeder(source, cache_file=cache_file, cuda=cuda, input_dtypes=input_dtypes)
    return calibrator_class(trt, method)(feeder)
