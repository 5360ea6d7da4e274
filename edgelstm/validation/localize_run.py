"""Running a reference and a candidate with their intermediate tensors exposed, and summing the error of every
matched pair over the batches (used by validate --localize and by the accuracy fallback's ranking)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from edgelstm.errors import BadInput


class OnnxTensors:
    """An ONNX model with extra graph outputs, run in onnxruntime: run(feeds) -> every output by name."""

    backend = "onnxruntime"

    def __init__(self, model, folder: Path, name: str, *, opt_level: str = "all", threads: int | None = None):
        from edgelstm.artifacts.ort import make_session

        from edgelstm.fileio import write_bytes_atomic

        self.path = write_bytes_atomic(folder / name, model.SerializeToString())   # in a private temp folder
        self.session = make_session(self.path, threads=threads, opt_level=opt_level)
        self.types = {i.name: i.type for i in self.session.get_inputs()}
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from edgelstm.runners.onnxruntime_runner import ort_feed_dtype

        cast = {k: np.ascontiguousarray(v, dtype=ort_feed_dtype(self.types[k])) for k, v in feeds.items()
                if k in self.types}
        try:
            outs = self.session.run(None, cast)
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"onnxruntime failed on {self.path.name}: {str(exc).splitlines()[0][:300]}") from None
        return {n: np.asarray(o) for n, o in zip(self.names, outs)}

    def close(self) -> None:
        self.session = None


def collect_errors(ref: Any, cand: Any, batches: Iterable[Mapping[str, np.ndarray]], matching: Any, *,
                   plain: Any = None, outputs: Iterable[str] = (), isolated: Any = None,
                   exact_feeds: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """Run both on every batch. Returns the error of each matched pair (TensorError by candidate tensor); with
    ``plain`` (the unchanged candidate), how far exposing the tensors moved the model outputs (rel_l2 per output);
    with ``isolated`` (localize_match.decoupled's model, fed the reference's tensors as ``exact_feeds`` says), each
    pair's isolated error."""
    from edgelstm.validation.localize_errors import TensorError

    errors = {p.candidate: TensorError(p.site.time_axis) for p in matching.pairs}
    alone = {p.candidate: TensorError(p.site.time_axis) for p in matching.pairs} if isolated is not None else {}
    effect: dict[str, float] = {}
    outputs = list(outputs)
    for batch in batches:
        r = {**batch, **ref.run(batch)}
        c = cand.run(batch)
        i = isolated.run({**batch, **{k: r[v] for k, v in (exact_feeds or {}).items() if v in r}}) if alone else {}
        for p in matching.pairs:
            if p.reference in r and p.candidate in c:
                errors[p.candidate].update(r[p.reference], c[p.candidate])
            if p.reference in r and p.candidate in i:
                alone[p.candidate].update(r[p.reference], i[p.candidate])
        if plain is not None:
            _marking_effect(effect, outputs, c, plain.run(batch))
    return errors, effect, alone


def _marking_effect(effect: dict[str, float], outputs: list[str], marked: Mapping[str, np.ndarray],
                    plain: Mapping[str, np.ndarray]) -> None:
    for name in outputs:
        if name in marked and name in plain:
            a = np.asarray(plain[name], np.float64)
            b = np.asarray(marked[name], np.float64).reshape(a.shape)
            rel = float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30)) if np.any(a != b) else 0.0
            effect[name] = max(effect.get(name, 0.0), rel)


def close_all(runners: Iterable[Any]) -> None:
    """Close every runner; closing never hides the real result."""
    for runner in runners:
        try:
            runner.close()
        except Exception:  # noqa: BLE001
            pass


__all__ = ["OnnxTensors", "collect_errors", "close_all"]
