"""The sequence lengths an artifact is good for, recorded by ``convert`` in its manifest (``details.lengths``) and
inherited by the files made from it (quantized models, engines):

    {"verified": [1, 49], "maximum": 4096, "memory_per_step_bytes": 5632, "memory_note": "..."}

``verified`` is the range the export was checked at against torch; ``maximum`` the longest sequence the export
states it is meant for (``convert --max-seq``, a guard against running out of memory on long inputs). Runners,
``validate`` and ``bench`` warn on a length outside the verified range and refuse one above the maximum, pointing to
streaming: a ``--stateful`` export runs any length in chunks, carrying its state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from edgelstm.errors import BadInput


@dataclass(frozen=True)
class LengthLimits:
    verified: tuple[int, int]
    maximum: int
    memory_per_step_bytes: int | None = None

    def memory_text(self, seq: int) -> str:
        if not self.memory_per_step_bytes:
            return ""
        mib = self.memory_per_step_bytes * seq / (1 << 20)
        return f"; about {mib:.3g} MiB of activations per sequence at that length"

    def check(self, seq: int, artifact: str) -> str | None:
        """A warning when ``seq`` is outside the verified range; BadInput when it is above the maximum."""
        if seq > self.maximum:
            raise BadInput(f"{artifact}: sequence length {seq} is above the maximum {self.maximum} its export states"
                           f"{self.memory_text(seq)}",
                           hint="stream it in chunks with a stateful export (`edgelstm convert --stateful`: each call "
                                "takes some steps, the state carries on), or convert again with a larger "
                                "`edgelstm convert --max-seq`")
        lo, hi = self.verified
        if not lo <= seq <= hi:
            return (f"{artifact}: sequence length {seq} is outside the lengths its export was verified at ({lo}..{hi})"
                    f"{self.memory_text(seq)}; results there are not verified (convert with a larger "
                    "`edgelstm convert --seq`, or stream in chunks with `edgelstm convert --stateful`)")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"verified": list(self.verified), "maximum": self.maximum,
                "memory_per_step_bytes": self.memory_per_step_bytes}


def limits_from(details: Mapping[str, Any] | None) -> LengthLimits | None:
    """The limits a manifest's details record, or None (an artifact from elsewhere, or before they were recorded)."""
    d = (details or {}).get("lengths")
    if not isinstance(d, Mapping):
        return None
    try:
        lo, hi = (int(v) for v in d["verified"])
        mem = d.get("memory_per_step_bytes")
        return LengthLimits((lo, hi), int(d["maximum"]), int(mem) if mem else None)
    except (KeyError, TypeError, ValueError):
        return None


def seq_length(io: Any, feeds: Mapping[str, Any]) -> int | None:
    """The sequence length of a batch of feeds: the ``seq`` axis of the first data input that has one."""
    for t in getattr(io, "inputs", ()):
        if not t.state and "seq" in t.shape and t.name in feeds:
            shape = getattr(feeds[t.name], "shape", ())
            axis = list(t.shape).index("seq")
            if len(shape) > axis:
                return int(shape[axis])
    return None


class LengthGuard:
    """What a runner keeps: the limits of its artifact and the warnings its runs raised (each once)."""

    def __init__(self, details: Mapping[str, Any] | None, artifact: str):
        self.limits = limits_from(details)
        self.artifact = artifact
        self.warnings: list[str] = []

    def check(self, io: Any, feeds: Mapping[str, Any]) -> None:
        if self.limits is None:
            return
        seq = seq_length(io, feeds)
        if seq is None:
            return
        warning = self.limits.check(seq, self.artifact)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)


def inherited(parent_details: Mapping[str, Any] | None, parent_name: str) -> dict[str, Any] | None:
    """The ``lengths`` entry a file made from a parent carries (its parent's, naming where it came from)."""
    d = (parent_details or {}).get("lengths")
    if not isinstance(d, Mapping):
        return None
    return {**d, "from": d.get("from") or parent_name}


__all__ = ["LengthGuard", "LengthLimits", "inherited", "limits_from", "seq_length"]
