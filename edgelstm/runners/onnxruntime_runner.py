"""onnxruntime runner (CPU; CUDA provider when installed); sessions come from ``edgelstm.artifacts.ort``."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from edgelstm.artifacts.artifact import Artifact
from edgelstm.artifacts.iospec import ort_numpy_dtype as ort_feed_dtype  # the one dtype table
from edgelstm.artifacts.lengths import LengthGuard
from edgelstm.artifacts.ort import make_session, recorded_level
from edgelstm.errors import BadInput
from edgelstm.runners.contract import RunnerBase, typed_precision


class OrtRunner(RunnerBase):
    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None, opt_level: str | None = None,
                 providers: list[str] | None = None, amx: str | None = None):
        # manifest (sha256 checked), graph, external data kept inside the folder, I/O manifest-first, precision
        artifact = Artifact.open(path)
        self.path = artifact.path
        model = artifact.graph
        self.manifest = artifact.manifest
        self.io = artifact.io
        self.precision = typed_precision(artifact.precision)
        # `edgelstm quantize` records the level its crash-safe probe found safe for the file's target, in the manifest
        # and (allowed levels) in the file's metadata_props, which a file copied without its manifest still carries
        from edgelstm.artifacts.int8_metadata import allowed_levels, plain_session_warning, read_entries

        self.metadata = read_entries(model)
        allowed = allowed_levels(self.metadata)
        self.opt_level = opt_level or recorded_level(self.manifest) or (allowed[0] if allowed else "all")
        #: what this session computes differently from what edgelstm measured (a level the file does not allow)
        self.level_warnings = [w for w in [plain_session_warning(self.path.name, self.metadata, level=self.opt_level)]
                               if w and allowed and self.opt_level not in allowed]
        if amx == "block":  # INT8 without AMX (edgelstm.machine.noamx): process-wide, before the first session asks
            from edgelstm.machine.noamx import install_amx_block

            block = install_amx_block()
            if not block.effective and block.installed:
                self.level_warnings.append(f"AMX block came too late: {block.reason}")
        self.session = make_session(self.path, threads=threads, opt_level=self.opt_level, providers=providers)
        self._in_types = {i.name: i.type for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.label = self.path.name
        self.length_guard = LengthGuard(self.manifest.details if self.manifest else None, self.label)

    @property
    def warnings(self) -> list[str]:
        """Lengths run outside the range the export was verified at (edgelstm.artifacts.lengths), and an onnxruntime
        level the INT8 file does not allow (edgelstm.artifacts.int8_metadata) or an AMX block that came too late."""
        return self.level_warnings + self.length_guard.warnings

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.length_guard.check(self.io, feeds)  # above the stated maximum: BadInput before anything runs
        cast = {}
        for name, arr in feeds.items():
            t = self._in_types.get(name, "tensor(float)")
            cast[name] = np.ascontiguousarray(arr, dtype=ort_feed_dtype(t))
        try:
            outs = self.session.run(None, cast)
        except Exception as exc:  # noqa: BLE001
            shapes = {k: list(v.shape) for k, v in cast.items()}
            raise BadInput(f"onnxruntime failed on {self.path.name} with inputs {shapes}: "
                           f"{str(exc).splitlines()[0][:300]}") from None
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs)}

    def close(self) -> None:
        self.session = None
