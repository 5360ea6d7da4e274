"""Which tensor of the candidate holds the value of each tensor of the FP32 reference.

The converters keep names, and the matching relies on what each of them keeps (checked on their real outputs in
tests/test_localize.py):

- edgelstm's FP16 converter keeps every node and tensor name; it inserts ``Cast`` nodes (``X`` -> ``X_to_fp16``)
  where float32 meets float16, and a model output ``y`` is computed as ``y_fp16`` and cast back to ``y``.
- onnxruntime's dynamic INT8 keeps tensor names and renames the nodes it replaces (``LSTM`` ``/rnn/LSTM`` becomes
  ``DynamicQuantizeLSTM`` ``/rnn/LSTM_quant`` with the same outputs; a Gemm becomes ``<name>_MatMul`` + ``<name>_Add``
  whose last output keeps the Gemm's output name); its ``DynamicQuantizeLinear`` outputs are uint8.
- onnxruntime's static Q/DQ keeps every node and tensor; it inserts ``X -> QuantizeLinear -> DequantizeLinear ->
  X_DequantizeLinear_Output`` in front of the quantized nodes (onnxruntime's ``qdq_loss_debug`` pairs the same way).
- TensorRT's ONNX parser names each ITensor after the ONNX tensor it computes and each layer after its node
  (``[ONNX Layer: <node>]`` in ``ILayer.metadata``); the tensors a debug engine could mark are the candidate's.

So a reference tensor is matched (1) by its own name in the candidate, else (2) by its producing node's name
(also ``<name>_quant``) and output position; converter-made float copies of a reference tensor (a ``Cast`` to
FP16, a Q/DQ pair) become sites of their own, "X (after Cast)" / "X (after Q/DQ)", placed right after X and counted
as inputs of the nodes that read them: that is where rounding an activation adds error. What cannot be matched is
listed with the reason (reference tensors the candidate fused away, candidate tensors the converter made).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from edgelstm.validation.localize_graph import Site, float_values, producers

COPY_OPS = {"Cast": "after Cast", "DequantizeLinear": "after Q/DQ"}


@dataclass
class Pair:
    site: Site
    reference: str      # the tensor (or graph input) whose reference value it is compared with
    candidate: str      # the candidate tensor holding it
    how: str            # "same name" | "same node, output k" | "after Cast" | "after Q/DQ"
    order: float = 0.0  # position along the graph


@dataclass
class Matching:
    pairs: list[Pair]
    unmatched: list[dict[str, str]] = field(default_factory=list)      # reference tensors without a candidate tensor
    candidate_only: list[str] = field(default_factory=list)           # candidate tensors the converter made

    @property
    def sites(self) -> list[Site]:
        return [p.site for p in self.pairs]

    def to_dict(self) -> dict[str, Any]:
        return {"matched": [{"tensor": p.site.tensor, "candidate": p.candidate, "how": p.how} for p in self.pairs],
                "unmatched": self.unmatched, "candidate_only": self.candidate_only[:50],
                "candidate_only_count": len(self.candidate_only)}


def _copy_source(node, cand_prod: dict[str, tuple[Any, int]]) -> str | None:
    """The tensor a converter-made copy node reads: a Cast's input, or the input of the QuantizeLinear in front
    of a DequantizeLinear."""
    if node.op_type == "Cast":
        return node.input[0]
    if node.op_type == "DequantizeLinear" and node.input and node.input[0] in cand_prod:
        q, _ = cand_prod[node.input[0]]
        return q.input[0] if q.op_type == "QuantizeLinear" and q.input else None
    return None


def match_sites(sites: list[Site], reference, candidate, *, available: Iterable[str] | None = None,
                reference_inputs: Iterable[str] = ()) -> Matching:
    """Pair every reference site with a candidate tensor (see the module doc). ``available``: the candidate
    tensors that can be read at all (a TensorRT debug engine's outputs; None: every float tensor)."""
    cand_prod = producers(candidate)
    cand_float = float_values(candidate)
    readable = cand_float if available is None else set(available)
    cand_nodes = {n.name: n for n in candidate.graph.node}
    ref_nodes = {n.name for n in reference.graph.node}
    ref_inputs = set(reference_inputs) | {i.name for i in reference.graph.input}
    pairs: list[Pair] = []
    unmatched: list[dict[str, str]] = []
    used: set[str] = set()
    for s in sites:
        got = _direct(s, cand_prod, cand_nodes, readable)
        if got is None:
            why = ("TensorRT cannot expose it (inside a loop, fused, or not an execution tensor)"
                   if available is not None and (s.tensor in cand_prod) else
                   "the candidate has no such tensor (the converter fused or renamed it)")
            unmatched.append({"tensor": s.tensor, "node": s.node, "op": s.op, "why": why})
            continue
        name, how = got
        pairs.append(Pair(s, s.tensor, name, how, float(s.index)))
        used.add(name)
    _add_copies(pairs, used, sites, candidate, cand_prod, readable, ref_nodes, ref_inputs)
    pairs.sort(key=lambda p: p.order)
    only = sorted(t for t in cand_float & readable if t not in used and t in cand_prod
                  and cand_prod[t][0].op_type not in ("QuantizeLinear", "DynamicQuantizeLinear"))
    return Matching(pairs, unmatched, only)


def _direct(s: Site, cand_prod, cand_nodes, readable) -> tuple[str, str] | None:
    if s.tensor in readable and s.tensor in cand_prod:
        return s.tensor, "same name"
    for name in (s.node, f"{s.node}_quant"):
        node = cand_nodes.get(name)
        if node is not None and s.slot < len(node.output) and node.output[s.slot] in readable:
            return node.output[s.slot], f"same node ({name}), output {s.slot}"
    return None


def _add_copies(pairs: list[Pair], used: set[str], sites: list[Site], candidate, cand_prod, readable,
                ref_nodes: set[str], ref_inputs: set[str]) -> None:
    """Converter-made float copies (Cast to FP16, Q/DQ) of reference tensors become sites after their source."""
    order = {s.tensor: s.index for s in sites}
    by_tensor = {s.tensor: s for s in sites}
    consumers: dict[str, list[str]] = {}
    for n in candidate.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.name)
    for node in candidate.graph.node:
        if node.name in ref_nodes or node.op_type not in COPY_OPS or not node.output:
            continue
        out = node.output[0]
        src = _copy_source(node, cand_prod)
        if out in used or out not in readable or src is None or (src not in order and src not in ref_inputs):
            continue
        readers = tuple(consumers.get(out, ()))
        pos = order.get(src, -1) + 0.5
        site = Site(out, readers[0] if readers else "", "Q/DQ" if node.op_type == "DequantizeLinear" else "Cast",
                    -1, (src,) if src in order else (), None, by_tensor[src].time_axis if src in by_tensor else None,
                    False, quantized_copy_of=src, consumers=readers)
        pairs.append(Pair(site, src, out, COPY_OPS[node.op_type], pos))
        used.add(out)
        # the nodes that read the copy inherit its error
        reader_nodes = set(readers) | {r[:-len("_quant")] for r in readers if r.endswith("_quant")}
        for p in pairs:
            if p.site.node in reader_nodes and not p.site.quantized_copy_of and out not in p.site.inputs:
                p.site = replace(p.site, inputs=(*p.site.inputs, out))


__all__ = ["Pair", "Matching", "match_sites"]


def decoupled(candidate, matching: Matching) -> tuple[Any, dict[str, str]]:
    """A copy of the candidate in which every node reads the *reference's* value of each matched tensor (a new graph
    input per tensor) instead of the candidate's own: one run then gives each node's error on exact inputs, its
    *isolated* error (its own rounding, plus the Cast or Q/DQ in front of it, which stays inside). Returns the model
    and {new input: reference tensor}."""
    import onnx
    from onnx import helper

    from edgelstm.validation.localize_graph import _inferred

    types, _ = _inferred(candidate)
    model = onnx.ModelProto()
    model.CopyFrom(candidate)
    graph_inputs = {i.name for i in model.graph.input}
    cut = {p.candidate: p.reference for p in matching.pairs
           if not p.site.quantized_copy_of and p.candidate not in graph_inputs}
    feeds: dict[str, str] = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in cut:
                exact = f"{name}__exact"
                node.input[k] = exact
                feeds[exact] = cut[name]
    for exact, ref in feeds.items():
        model.graph.input.append(helper.make_tensor_value_info(exact, types.get(exact[:-len("__exact")], 1), None))
    return model, feeds
