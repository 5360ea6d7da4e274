"""Structural detection of a traced Python loop: tracing records one copy of a loop body per iteration it
ran, so the graph of a model that loops over time steps in Python grows with the example length. Exporting
the same route at two example lengths and comparing node counts (subgraphs included) tells a traced loop
from a real recurrent op without relying on numbers (a small output can hide a wrong export)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def node_count(model) -> int:
    """Nodes in the graph and every subgraph (Loop/If/Scan bodies)."""
    from edgelstm.artifacts.onnx_graph import walk

    return sum(1 for _ in walk(model.graph))


@dataclass(frozen=True)
class Unrolling:
    lengths: tuple[int, int]
    nodes: tuple[int, int]

    @property
    def unrolled(self) -> bool:
        return self.nodes[1] > self.nodes[0]

    def describe(self) -> str:
        (a, b), (na, nb) = self.lengths, self.nodes
        return (f"tracing unrolled a Python loop over time steps: the graph has {na} nodes at length {a} and "
                f"{nb} at length {b}")


def check_unrolling(first_model, export_at: Callable[[int], object], seq_len: int, step: int = 3) -> Unrolling:
    """``first_model`` is the export at ``seq_len``; ``export_at(n)`` exports the same route at length n."""
    other = export_at(seq_len + step)
    return Unrolling((seq_len, seq_len + step), (node_count(first_model), node_count(other)))
