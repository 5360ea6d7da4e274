"""The tensors drift localisation can look at in an ONNX graph, and the copy of a graph that returns them.

A *site* is one float tensor of the FP32 reference graph: the output of a node of the main graph (the outputs of
a Loop/Scan node count, not the tensors inside its body, which no runtime exposes), in topological order, with the
node that makes it, the producing node's float inputs (where its error comes from) and, when the tensor has one,
its time axis. The time axis is read from ONNX shape inference (the axis that carries the input's symbolic ``seq``
dimension); an LSTM/GRU/RNN's ``Y`` ([seq, directions, batch, hidden], or batch first with ``layout=1``) has it by
definition, its ``Y_h``/``Y_c`` (the last hidden and cell state) have none.

``--mark`` chooses the sites: ``all`` (every node output, Polygraphy's ``--mark all``), ``recurrent`` (the outputs
of LSTM/GRU/RNN/Loop/Scan nodes) or a comma-separated list of node names, globs or op types (as ``--exclude``) and
tensor names. The model's outputs are always included. ``with_outputs`` is onnxruntime's
``qdq_loss_debug.modify_model_output_intermediate_tensors`` in spirit: the chosen tensors become graph outputs (with
their element type and no shape, which onnxruntime accepts), so one run returns them all.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Iterable

from edgelstm.artifacts.facts import LOOP_OPS, RECURRENT_OPS
from edgelstm.artifacts.onnx_graph import FLOAT, FLOAT16, DOUBLE, name_unnamed_nodes, topological_sort
from edgelstm.errors import BadInput, opt

BFLOAT16 = 16
FLOAT_TYPES = frozenset({FLOAT, FLOAT16, DOUBLE, BFLOAT16})
#: what the outputs of a recurrent op hold (ONNX LSTM/GRU/RNN: Y, Y_h, Y_c)
RECURRENT_ROLES = ("Y", "Y_h", "Y_c")
ROLE_TEXT = {"Y": "hidden state h_t at every step", "Y_h": "last hidden state", "Y_c": "last cell state"}
MARK_CHOICES = ("all", "recurrent")


@dataclass
class Site:
    """One float tensor of the reference graph that localisation compares."""

    tensor: str
    node: str                     # the node that makes it ("" for a graph input)
    op: str
    index: int                    # position in topological order
    inputs: tuple[str, ...] = ()  # the producing node's float inputs that are sites too (where its error comes from)
    role: str | None = None       # Y / Y_h / Y_c of a recurrent op
    time_axis: int | None = None
    graph_output: bool = False
    quantized_copy_of: str | None = None   # a Q/DQ pair's output: the tensor it quantizes (candidate-only site)
    consumers: tuple[str, ...] = field(default_factory=tuple)
    slot: int = 0                 # which output of its node

    @property
    def label(self) -> str:
        if self.quantized_copy_of:
            return f"{self.quantized_copy_of} (after {self.op})"
        return self.tensor + (f" ({self.role}: {ROLE_TEXT[self.role]})" if self.role else "")


def prepared(model) -> Any:
    """A copy of the model with every node named (as the quantizers name them) and nodes in topological order."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    name_unnamed_nodes(copy)
    topological_sort(copy.graph)
    return copy


def _inferred(model) -> tuple[dict[str, int], dict[str, list]]:
    """Element type and dims (ints or dim_param names) of every value the shape inference knows."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - types/shapes are a help, not a requirement
        inferred = model
    types: dict[str, int] = {}
    dims: dict[str, list] = {}
    g = inferred.graph
    for init in g.initializer:
        types[init.name] = init.data_type
    for vi in (*g.input, *g.output, *g.value_info):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.elem_type:
            types[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                dims[vi.name] = [d.dim_param if d.dim_param else (int(d.dim_value) if d.HasField("dim_value") else None)
                                 for d in tt.shape.dim]
    return types, dims


def _seq_symbol(model, dims: dict[str, list]) -> str | None:
    """The symbolic name of the time axis: ``seq`` when an input has it, else the second dim of a 3-d input."""
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    for n in names:
        if "seq" in dims.get(n, []):
            return "seq"
    for n in names:
        d = dims.get(n, [])
        if len(d) == 3 and isinstance(d[1], str) and d[1]:
            return d[1]
    return None


def _rnn_time_axis(node, role: str | None) -> int | None:
    if role != "Y":
        return None
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    return 1 if layout == 1 else 0


def graph_sites(model) -> list[Site]:
    """The float node outputs of the main graph of ``model`` (a ``prepared`` copy), in topological order."""
    types, dims = _inferred(model)
    seq = _seq_symbol(model, dims)
    outputs = {o.name for o in model.graph.output}
    sites: list[Site] = []
    known: set[str] = set()
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node.name)
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        recurrent = node.op_type in RECURRENT_OPS
        float_inputs = tuple(i for i in node.input if i in known)
        for k, out in enumerate(node.output):
            if not out or types.get(out, FLOAT) not in FLOAT_TYPES:
                continue
            role = RECURRENT_ROLES[k] if recurrent and k < 3 else None
            axis = _rnn_time_axis(node, role) if recurrent else None
            if axis is None and seq is not None and seq in dims.get(out, []):
                axis = dims[out].index(seq)
            sites.append(Site(out, node.name, node.op_type, len(sites), float_inputs, role, axis, out in outputs,
                              consumers=tuple(consumers.get(out, ())), slot=k))
            known.add(out)
    return sites


def choose_sites(sites: list[Site], model, mark: str | Iterable[str]) -> list[Site]:
    """The sites ``--mark`` asks for (graph outputs always included); BadInput for a pattern matching nothing."""
    words = [w.strip() for w in ([mark] if isinstance(mark, str) else list(mark)) for w in str(w).split(",")]
    words = [w for w in words if w]
    if not words or words == ["all"]:
        return list(sites)
    chosen: set[str] = {s.tensor for s in sites if s.graph_output}
    unknown = []
    for w in words:
        if w == "recurrent":
            hits = {s.tensor for s in sites if s.op in RECURRENT_OPS | LOOP_OPS}
        else:
            hits = {s.tensor for s in sites if s.tensor == w or s.node == w or s.op.lower() == w.lower()
                    or (any(ch in w for ch in "*?[") and (fnmatch.fnmatchcase(s.tensor, w)
                                                           or fnmatch.fnmatchcase(s.node, w)))}
        if not hits:
            unknown.append(w)
        chosen |= hits
    if unknown:
        ops = sorted({s.op for s in sites})
        raise BadInput(f"{opt('mark')} {', '.join(repr(u) for u in unknown)} matches no tensor, node or op type of "
                       f"the reference (op types: {', '.join(ops)}; use all, recurrent, or names like "
                       f"{', '.join(s.node for s in sites[:4])})")
    return [s for s in sites if s.tensor in chosen]


def with_outputs(model, names: Iterable[str]) -> Any:
    """A copy of ``model`` whose graph outputs also include ``names`` (float tensors of its main graph)."""
    import onnx
    from onnx import helper

    types, _ = _inferred(model)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    inputs = {i.name for i in copy.graph.input}
    for name in names:
        if name in present or name in inputs:
            continue
        copy.graph.output.append(helper.make_tensor_value_info(name, types.get(name, FLOAT), None))
        present.add(name)
    return copy


def producers(model) -> dict[str, tuple[Any, int]]:
    """tensor name -> (node, output index) for the main graph."""
    out: dict[str, tuple[Any, int]] = {}
    for node in model.graph.node:
        for k, o in enumerate(node.output):
            if o:
                out[o] = (node, k)
    return out


def float_values(model) -> set[str]:
    """The float tensors of the main graph (node outputs and inputs) as type inference knows them."""
    types, _ = _inferred(model)
    names = {o for n in model.graph.node for o in n.output if o} | {i.name for i in model.graph.input}
    return {n for n in names if types.get(n, FLOAT) in FLOAT_TYPES}


__all__ = ["Site", "prepared", "graph_sites", "choose_sites", "with_outputs", "producers", "float_values",
           "MARK_CHOICES", "ROLE_TEXT", "FLOAT_TYPES"]
