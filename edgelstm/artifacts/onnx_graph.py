"""ONNX graph helpers shared by the quantizers (FP16, INT8): loading with one-line errors, walking
subgraphs (Loop/If/Scan bodies), a subgraph-aware topological sort, value types, naming unnamed nodes,
and resolving ``--exclude`` patterns against node names and op types."""

from __future__ import annotations

import fnmatch
import heapq
import os
from pathlib import Path
from typing import Iterable, Iterator

from edgelstm.errors import BadInput, InternalError

# onnx.TensorProto element types used here (kept as ints so this module imports onnx lazily)
FLOAT, UINT8, INT8, INT32, INT64, FLOAT16, DOUBLE = 1, 2, 3, 6, 7, 10, 11

#: op types that only appear in an already quantized model
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "DynamicQuantizeLSTM", "MatMulInteger",
    "ConvInteger", "QLinearMatMul", "QLinearConv", "QLinearAdd", "QLinearMul", "QAttention", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "QGemm",
})
CONTROL_FLOW_OPS = frozenset({"Loop", "If", "Scan"})


def load_onnx(path: str | Path, *, what: str = "model"):
    """Load and check an ONNX file; a missing, empty or corrupt file is BadInput with one line."""
    import onnx

    from edgelstm.fileio import require_file

    p = require_file(path, what=what, kind="an ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=False)
        locations = external_locations(model)
        if locations:  # read only what lies in the model's own folder
            refuse_outside_data(p, locations)
            onnx.load_external_data_for_model(model, str(p.parent))
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted errors on garbage
        raise BadInput(f"{p.name} is not a valid ONNX model: {_first_line(exc)}") from None
    if not model.graph.node:
        raise BadInput(f"{p.name} is not a valid ONNX model: its graph has no nodes")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{p.name} fails the ONNX checker: {_first_line(exc)}") from None
    return model


def external_locations(model) -> list[str]:
    """The external-data file names of every initializer, in every graph (Loop/If/Scan bodies too)."""
    graphs = [model.graph] + [g for _, g, _ in walk(model.graph) if g is not model.graph]
    found: dict[str, None] = {}
    for g in graphs:
        for t in g.initializer:
            if t.data_location == 1:  # TensorProto.EXTERNAL
                found.update((e.value, None) for e in t.external_data if e.key == "location")
    return list(found)


def external_data_outside(model_path: str | os.PathLike, locations: "list[str] | tuple[str, ...]") -> list[str]:
    """The external-data locations of the ONNX at ``model_path`` that point outside its folder: an absolute
    path, a ``..`` that climbs out, or a name whose symbolic link (anywhere on the way) leads out. Only names
    are resolved; no file's content is read."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(model_path)))
    outside = []
    for loc in locations:
        try:
            if not loc or os.path.isabs(loc) or loc.startswith("\\") or (len(loc) > 1 and loc[1] == ":"):
                outside.append(loc)
                continue
            target = os.path.realpath(os.path.join(folder, loc))
            if os.path.commonpath([folder, target]) != folder:
                outside.append(loc)
        except (ValueError, OSError):  # a NUL byte, a name no file system takes
            outside.append(loc)
    return outside


def refuse_outside_data(path: Path, locations: "list[str] | tuple[str, ...]") -> None:
    """BadInput (one line) when the ONNX at ``path`` keeps external data outside its folder."""
    outside = external_data_outside(path, locations)
    if outside:
        shown = ", ".join(repr(o) for o in outside[:3]) + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
        raise BadInput(f"{path.name} points outside its folder for its external data ({shown}); edgelstm reads "
                       "no file a model names outside its own folder",
                       hint="keep the weights beside the .onnx; `edgelstm inspect --describe-only` describes the "
                            "file without reading them")


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:240]


def opset_of(model, domain: str = "") -> int:
    for o in model.opset_import:
        if o.domain == domain or (domain in ("", "ai.onnx") and o.domain in ("", "ai.onnx")):
            return int(o.version)
    return 0


def subgraphs(node) -> list[tuple[str, object]]:
    """(attribute name, GraphProto) for every subgraph of a node (Loop/Scan body, If branches)."""
    out = []
    for attr in node.attribute:
        if attr.HasField("g"):
            out.append((attr.name, attr.g))
        for i, g in enumerate(attr.graphs):
            out.append((f"{attr.name}[{i}]", g))
    return out


def walk(graph, scope: str = "main") -> Iterator[tuple[str, object, object]]:
    """(scope, graph, node) for every node, depth first; a body's scope is '<node name>.<attr>'."""
    for node in graph.node:
        yield scope, graph, node
        for attr, g in subgraphs(node):
            yield from walk(g, f"{node.name or node.op_type}.{attr}")


def defined_names(graph) -> set[str]:
    names = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(o for o in node.output if o)
    return names


def free_names(graph) -> set[str]:
    """Names a (sub)graph reads from its enclosing scopes."""
    used: set[str] = set()
    for node in graph.node:
        used.update(i for i in node.input if i)
        for _, g in subgraphs(node):
            used |= free_names(g)
    used.update(o.name for o in graph.output)
    return used - defined_names(graph)


def topological_sort(graph) -> None:
    """Sort nodes in place (stable: original order among ready nodes), recursing into subgraphs.

    A node with a subgraph also depends on the producers of the names its body reads from outside."""
    for node in graph.node:
        for _, g in subgraphs(node):
            topological_sort(g)
    nodes = list(graph.node)
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for o in node.output:
            if o:
                producer[o] = i
    deps: list[set[int]] = []
    for i, node in enumerate(nodes):
        needs = {n for n in node.input if n}
        for _, g in subgraphs(node):
            needs |= free_names(g)
        deps.append({producer[n] for n in needs if n in producer and producer[n] != i})
    users: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    remaining = [len(d) for d in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if remaining[i] > 0][:5]
        raise InternalError(f"the graph has a cycle (nodes {stuck}); cannot sort it")
    if order != list(range(len(nodes))):
        ordered = [type(nodes[i])() for i in order]
        for dst, i in zip(ordered, order):
            dst.CopyFrom(nodes[i])
        del graph.node[:]
        graph.node.extend(ordered)


def is_sorted(graph, outer: Iterable[str] = ()) -> bool:
    """True when every node (in every subgraph) reads only names defined before it."""
    known = set(outer) | {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    for node in graph.node:
        if any(i not in known for i in node.input):
            return False
        for _, g in subgraphs(node):
            if not is_sorted(g, known):
                return False
        known.update(node.output)
    return True


def name_unnamed_nodes(model) -> int:
    """Give every unnamed node a unique name (reports and --exclude need names); returns how many."""
    taken = {node.name for _, _, node in walk(model.graph) if node.name}
    count = 0
    for _, _, node in walk(model.graph):
        if not node.name:
            k = 0
            while f"{node.op_type}_{k}" in taken:
                k += 1
            node.name = f"{node.op_type}_{k}"
            taken.add(node.name)
            count += 1
    return count


def value_types(model) -> dict[str, int]:
    """Element type of every value (all graphs) as far as ONNX type inference knows it."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - fall back to what the file declares
        inferred = model
    types: dict[str, int] = {}

    def visit(graph) -> None:
        for init in graph.initializer:
            types[init.name] = init.data_type
        for vi in (*graph.input, *graph.output, *graph.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types[vi.name] = vi.type.tensor_type.elem_type
        for node in graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        types[node.output[0]] = a.t.data_type
                    elif a.name in ("value_float", "value_floats"):
                        types[node.output[0]] = FLOAT
            for _, g in subgraphs(node):
                visit(g)

    visit(inferred.graph)
    return types


def op_types_in(model) -> set[str]:
    return {node.op_type for _, _, node in walk(model.graph)}


def float_initializer_bytes(model) -> dict[int, int]:
    """Bytes of initializers per element type (all graphs)."""
    out: dict[int, int] = {}

    def visit(graph) -> None:
        for init in graph.initializer:
            out[init.data_type] = out.get(init.data_type, 0) + len(init.raw_data) + 4 * len(init.float_data)
        for node in graph.node:
            for _, g in subgraphs(node):
                visit(g)

    visit(model.graph)
    return out


#: operator domains onnxruntime runs without a custom-op library (quantize runs every result in onnxruntime)
ORT_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc", "ai.onnx.training",
                         "ai.onnx.preview.training", "com.ms.internal.nhwc"})


def unknown_domain_ops(model) -> list[str]:
    """``domain:op`` of every operator onnxruntime cannot run out of the box (model-local functions excepted)."""
    local = {(f.domain, f.name) for f in model.functions}
    return sorted({f"{n.domain}:{n.op_type}" for _, _, n in walk(model.graph)
                   if n.domain not in ORT_DOMAINS and (n.domain, n.op_type) not in local})


def reject_quantized(model, name: str, *, target: str) -> None:
    """BadInput when the model is already quantized or already FP16 (quantize the FP32 model instead), or uses
    operators from a custom domain that onnxruntime, which checks every quantized model, cannot run."""
    custom = unknown_domain_ops(model)
    if custom:
        raise BadInput(f"{name} uses custom operators onnxruntime cannot run ({', '.join(custom[:3])}"
                       f"{', ...' if len(custom) > 3 else ''}); {target} needs a model of standard ONNX operators")
    found = sorted(op_types_in(model) & QUANTIZED_OPS)
    if found:
        raise BadInput(f"{name} is already quantized (it has {', '.join(found[:3])}); {target} needs the FP32 "
                       "model as input")
    sizes = float_initializer_bytes(model)
    if sizes.get(FLOAT16, 0) and not sizes.get(FLOAT, 0):
        raise BadInput(f"{name} is already FP16 (its weights are float16); {target} needs the FP32 model as input")


def resolve_patterns(model, patterns: Iterable[str], *, what: str = "--exclude") -> tuple[set[str], dict[str, list[str]]]:
    """Node names matched by each pattern: an exact node name, a glob over names ('/rnn/*'), or an op type
    (case-insensitive). Returns (all matched names, {pattern: names}); a pattern matching nothing is BadInput."""
    nodes = [(node.name, node.op_type) for _, _, node in walk(model.graph)]
    by_pattern: dict[str, list[str]] = {}
    unknown: list[str] = []
    for raw in patterns:
        for pat in (p.strip() for p in str(raw).split(",")):
            if not pat:
                continue
            hits = [n for n, op in nodes if n == pat]
            if not hits and any(ch in pat for ch in "*?["):
                hits = [n for n, _ in nodes if fnmatch.fnmatchcase(n, pat)]
            if not hits:
                hits = [n for n, op in nodes if op.lower() == pat.lower()]
            if not hits:
                unknown.append(pat)
            by_pattern[pat] = hits
    if unknown:
        ops = sorted({op for _, op in nodes})
        sample = [n for n, _ in nodes if n][:6]
        raise BadInput(f"{what} {', '.join(repr(u) for u in unknown)} matches no node name or op type in the model "
                       f"(op types: {', '.join(ops)}; names like {', '.join(sample)})")
    matched = {n for hits in by_pattern.values() for n in hits}
    return matched, by_pattern
