"""The reference on the device: the original model's outputs, recorded when the bundle was made, served as a runner.

validate_artifacts runs the reference and the candidate on the same batches. Here the reference is a lookup: each
sample of a batch is found by the bytes of its inputs, so any batching gives the outputs the original model gave
for exactly those inputs. A sample the bundle did not record is an internal error (the data and the recorded
outputs do not belong together), never a silent zero.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput, InternalError


def _key(arrays: Mapping[str, np.ndarray], axes: Mapping[str, int], i: int) -> bytes:
    h = hashlib.sha256()
    for name in sorted(arrays):
        row = np.ascontiguousarray(np.take(arrays[name], i, axis=axes[name]))
        h.update(name.encode() + str(row.dtype).encode() + str(row.shape).encode() + row.tobytes())
    return h.digest()


class RecordedReference:
    """A runner (io, run, close) whose outputs are the recorded ones for the recorded inputs."""

    backend = "recorded"
    precision = "fp32"
    manifest = None

    def __init__(self, io: IOSpec, data_npz: Path, reference_npz: Path, *, label: str = "reference"):
        self.io = io
        self.label = label
        names = {t.name for t in io.data_inputs}
        try:
            with np.load(data_npz, allow_pickle=False) as d:
                inputs = {k: d[k] for k in d.files if k in names}
            with np.load(reference_npz, allow_pickle=False) as r:
                self._outputs = {k: r[k] for k in r.files}
        except (OSError, ValueError) as exc:
            raise BadInput(f"the bundle's check data cannot be read: {exc}") from None
        if set(inputs) != names:
            raise BadInput(f"the bundle's check data holds {sorted(inputs)}, the reference takes {sorted(names)}")
        self._in_axes = {t.name: t.batch_axis for t in io.data_inputs}
        self._out_axes = {t.name: t.batch_axis for t in io.outputs}
        n = int(np.shape(next(iter(inputs.values())))[self._in_axes[next(iter(inputs))]])
        self._index: dict[bytes, int] = {}
        for i in range(n):
            self._index.setdefault(_key(inputs, self._in_axes, i), i)
        self.samples = n

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = {k: np.asarray(v) for k, v in feeds.items() if k in self._in_axes}
        first = next(iter(arrays))
        n = int(np.shape(arrays[first])[self._in_axes[first]])
        rows = []
        for i in range(n):
            idx = self._index.get(_key(arrays, self._in_axes, i))
            if idx is None:
                raise InternalError("a validation sample has no recorded reference output: the bundle's "
                                    "check/data.npz and check/reference.npz do not belong together")
            rows.append(idx)
        return {name: np.take(out, rows, axis=self._out_axes.get(name, 0)) for name, out in self._outputs.items()}

    def close(self) -> None:
        self._outputs = {}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "samples": self.samples, "outputs": sorted(self._outputs)}
