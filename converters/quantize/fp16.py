"""ONNX FP32 -> FP16 (weights and compute in float16, float32 inputs/outputs by default), for GPU and
TensorRT deployment.

Written here rather than taken from ``onnxruntime.transformers.float16`` because that converter appends
its Cast nodes at the end of the graph (an unsorted graph the ONNX checker rejects), places the casts of
blocked nodes that sit inside a Loop/If body in the main graph, and rounds initializers shared between
fp32 and fp16 nodes. This converter works on precision regions:

- every float value becomes float16 except the graph inputs/outputs (``keep_io_types``), the inputs and
  outputs of nodes kept in float32, and initializers only those nodes read;
- a Cast is inserted, in the graph where the consumer lives, wherever a consumer wants the other
  precision; Loop/If/Scan bodies are converted too (their formal inputs/outputs become float16);
- integer tensors (LSTM/GRU ``sequence_lens`` int32, shapes, indices) are never touched;
- which nodes stay float32 is decided from the ONNX schema (an op or input whose type constraint has no
  tensor(float16), e.g. Range, Resize scales, DequantizeLinear), ONNX-ML ops, ``--exclude``, and a short
  precision list (CumSum);
- initializers are clipped to the float16 range (counted), and the result is topologically sorted,
  type-checked by ONNX inference and probed in onnxruntime in a child process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from edgelstm.errors import BadInput, InternalError, opt
from edgelstm.options import Precision

from edgelstm.artifacts.onnx_graph import (
    CONTROL_FLOW_OPS, FLOAT, FLOAT16, load_onnx, name_unnamed_nodes, reject_quantized, resolve_patterns,
    subgraphs, topological_sort, value_types, walk,
)
from edgelstm.converters.quantize.fp16_policy import TRANSPARENT_OPS, TYPE_AGNOSTIC_OPS, fp16_policy
from edgelstm.converters.quantize.quant_report import NA, OpRow, QuantResult, write_quantized

FP16_MAX = 65504.0

_DTYPE_ATTR_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike", "Bernoulli"}


@dataclass(frozen=True)
class Fp16Options:
    precision: ClassVar[Precision] = Precision.fp16  # the config's type is its precision (stages.quantize dispatches)
    keep_io_types: bool = True            # float32 graph inputs/outputs, casts inside
    exclude: tuple[str, ...] = ()         # node names (globs) or op types to keep in float32
    layer_precisions: tuple = ()          # edgelstm.converters.quantize.layer_precision requests ("recurrent:fp32"): kept FP32
    probe: bool = True                    # probe an onnxruntime session (child process) before writing


@dataclass
class Fp16Stats:
    casts_inserted: int = 0
    initializers_converted: int = 0
    initializers_kept_fp32: int = 0
    values_clipped: int = 0               # |w| > 65504 clipped to the float16 range
    values_flushed: int = 0               # tiny non-zero weights that became 0 in float16
    subgraphs_converted: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _Converter:
    def __init__(self, model, *, keep_io_types: bool, excluded: set[str], reasons: Mapping[str, str] | None = None):
        self.model = model
        self.keep_io = keep_io_types
        self.excluded = excluded
        self.reasons = dict(reasons or {})
        self.types = value_types(model)                  # types before conversion
        self.fp32: set[str] = set()                      # float values that stay float32
        self.stats = Fp16Stats()
        self.rows: list[OpRow] = []
        self.taken = {n for _, g, node in walk(model.graph) for n in (*node.input, *node.output, node.name)}
        self._collect_graph_names(model.graph)
        self.policy: dict[tuple[str, str], tuple[str | None, set[int]]] = {}
        self.dup_fp32: dict[str, str] = {}               # fp16-converted initializer -> its float32 twin

    def _collect_graph_names(self, graph) -> None:
        for v in (*graph.input, *graph.output, *graph.initializer):
            self.taken.add(v.name)
        for node in graph.node:
            for _, g in subgraphs(node):
                self._collect_graph_names(g)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def is_float(self, name: str) -> bool:
        return bool(name) and self.types.get(name) == FLOAT

    # ------------------------------------------------------------------------------------------ decisions

    def decide(self) -> None:
        for scope, _, node in walk(self.model.graph):
            key = (scope, node.name)
            if node.name in self.excluded:
                if node.op_type in CONTROL_FLOW_OPS:
                    raise BadInput(f"{opt('exclude')} {node.name!r}: a {node.op_type} cannot be kept in float32 as a whole "
                                   "(its body would need it too); exclude the nodes inside its body instead")
                self.policy[key] = (self.reasons.get(node.name, "excluded by --exclude"), set())
            else:
                self.policy[key] = fp16_policy(node, self.model)

    def blocked(self, node, scope: str) -> bool:
        return self.policy[(scope, node.name)][0] is not None

    def wants(self, node, index: int, scope: str) -> int:
        reason, fp32_inputs = self.policy[(scope, node.name)]
        return FLOAT if (reason is not None or index in fp32_inputs) else FLOAT16

    # ------------------------------------------------------------------------------------------ conversion

    def run(self):
        g = self.model.graph
        name_unnamed_nodes(self.model)  # decisions are keyed by (scope, node name)
        topological_sort(g)  # producers before consumers: precision decisions flow forward
        self.decide()
        if self.keep_io:
            self.fp32.update(i.name for i in g.input if self.is_float(i.name))
        self.convert_initializers(g)
        self.convert_graph(g, "main", is_main=True)
        self.fix_main_outputs(g)
        self._strip_value_info(g)
        topological_sort(g)
        return self.model

    def _consumers(self, name: str):
        for scope, _, node in walk(self.model.graph):
            for i, inp in enumerate(node.input):
                if inp == name:
                    yield scope, node, i

    def convert_initializers(self, graph) -> None:
        """Float initializers: to float16 when an fp16 consumer reads them, kept float32 when only float32
        consumers do, both (a float32 twin) when both do. Recurses into subgraphs."""
        from onnx import numpy_helper

        new_inits = []
        for init in graph.initializer:
            if init.data_type != FLOAT:
                continue
            wants = {self.wants(node, i, scope) for scope, node, i in self._consumers(init.name)}
            if not wants:
                wants = {FLOAT16}
            arr = numpy_helper.to_array(init)
            if FLOAT in wants:
                if FLOAT16 not in wants:
                    self.fp32.add(init.name)
                    self.stats.initializers_kept_fp32 += 1
                    continue
                twin = numpy_helper.from_array(arr.astype(np.float32), self.fresh(init.name + "_fp32"))
                new_inits.append(twin)
                self.dup_fp32[init.name] = twin.name
                self.stats.initializers_kept_fp32 += 1
            half = self._to_half(arr)
            t = numpy_helper.from_array(half, init.name)
            t.doc_string = init.doc_string
            init.CopyFrom(t)
            self.stats.initializers_converted += 1
        graph.initializer.extend(new_inits)
        for node in graph.node:
            for _, g in subgraphs(node):
                self.convert_initializers(g)

    def _to_half(self, arr: np.ndarray) -> np.ndarray:
        a = np.asarray(arr, dtype=np.float32)
        finite = np.isfinite(a)
        over = finite & (np.abs(a) > FP16_MAX)
        self.stats.values_clipped += int(over.sum())
        a = np.where(over, np.sign(a) * FP16_MAX, a)
        half = a.astype(np.float16)
        self.stats.values_flushed += int(((a != 0) & (half == 0)).sum())
        return half

    def cast(self, graph_nodes: list, cache: dict, name: str, to: int) -> str:
        if to == FLOAT and name in self.dup_fp32:
            return self.dup_fp32[name]
        key = (name, to)
        if key not in cache:
            from onnx import helper

            suffix = "fp16" if to == FLOAT16 else "fp32"
            out = self.fresh(f"{name}_to_{suffix}")
            graph_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=self.fresh(f"{name}_cast_{suffix}")))
            cache[key] = out
            self.stats.casts_inserted += 1
        return cache[key]

    def convert_graph(self, graph, scope: str, *, is_main: bool) -> None:
        from onnx import helper

        if not is_main:
            for vi in (*graph.input, *graph.output):
                if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == FLOAT:
                    vi.type.tensor_type.elem_type = FLOAT16
        elif not self.keep_io:
            for vi in graph.input:
                if vi.type.tensor_type.elem_type == FLOAT:
                    vi.type.tensor_type.elem_type = FLOAT16
        new_nodes: list = []
        cache: dict = {}
        for node in list(graph.node):
            blocked = self.blocked(node, scope)
            float_in = [n for n in node.input if self.is_float(n)]
            # data movement follows its input: x (float32) -> Transpose -> a float32 LSTM needs no cast
            follows_fp32 = (not blocked and node.op_type in TRANSPARENT_OPS and bool(float_in)
                            and all(n in self.fp32 for n in float_in))
            self.rows.append(self._row(node, scope, follows_fp32))
            for i, name in enumerate(node.input):
                if not self.is_float(name) or node.op_type in TYPE_AGNOSTIC_OPS or follows_fp32:
                    continue
                have = FLOAT if name in self.fp32 else FLOAT16
                want = self.wants(node, i, scope)
                if have != want:
                    node.input[i] = self.cast(new_nodes, cache, name, want)
            if blocked or follows_fp32:
                self.fp32.update(o for o in node.output if self.is_float(o))
            else:
                self._convert_attributes(node)
                for attr, g in subgraphs(node):
                    self.stats.subgraphs_converted += 1
                    self.convert_graph(g, f"{node.name or node.op_type}.{attr}", is_main=False)
            new_nodes.append(node)
        if not is_main:  # a body's outputs are float16 by declaration: cast float32 ones
            for vi in graph.output:
                if self.is_float(vi.name) and vi.name in self.fp32:
                    out = self.fresh(vi.name + "_to_fp16")
                    new_nodes.append(helper.make_node("Cast", [vi.name], [out], to=FLOAT16,
                                                      name=self.fresh(vi.name + "_cast_fp16")))
                    self.stats.casts_inserted += 1
                    vi.name = out
        del graph.node[:]
        graph.node.extend(new_nodes)

    def _convert_attributes(self, node) -> None:
        from onnx import helper

        op = node.op_type
        if op == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = FLOAT16
        elif op == "Constant":
            for a in list(node.attribute):
                if a.name == "value" and a.t.data_type == FLOAT:
                    from onnx import numpy_helper

                    t = numpy_helper.from_array(self._to_half(numpy_helper.to_array(a.t)), a.t.name)
                    a.t.CopyFrom(t)
                elif a.name in ("value_float", "value_floats"):
                    vals = np.array(a.f if a.name == "value_float" else list(a.floats), dtype=np.float32)
                    node.attribute.remove(a)
                    node.attribute.append(helper.make_attribute(
                        "value", helper.make_tensor("value", FLOAT16, vals.shape, self._to_half(vals).tolist())))
        elif op == "ConstantOfShape":
            found = False
            for a in node.attribute:
                if a.name == "value":
                    found = True
                    if a.t.data_type == FLOAT:
                        from onnx import numpy_helper

                        a.t.CopyFrom(numpy_helper.from_array(self._to_half(numpy_helper.to_array(a.t)), a.t.name))
            if not found:  # default is a float32 zero
                node.attribute.append(helper.make_attribute("value", helper.make_tensor("value", FLOAT16, [1], [0.0])))
        elif op in _DTYPE_ATTR_OPS:
            has = False
            for a in node.attribute:
                if a.name == "dtype":
                    has = True
                    if a.i == FLOAT:
                        a.i = FLOAT16
            if not has and op in ("RandomNormal", "RandomUniform"):
                node.attribute.append(helper.make_attribute("dtype", FLOAT16))

    def _row(self, node, scope: str, follows_fp32: bool = False) -> OpRow:
        reason, fp32_inputs = self.policy[(scope, node.name)]
        if follows_fp32:
            return OpRow(node.name, node.op_type, "fp32", "moves data: stays float32 like its input", scope,
                         node.op_type)
        has_float = any(self.is_float(n) for n in (*node.input, *node.output)) and node.op_type not in TYPE_AGNOSTIC_OPS
        if node.op_type in CONTROL_FLOW_OPS:
            has_float = has_float or any(True for _ in subgraphs(node))
        if reason is not None:
            return OpRow(node.name, node.op_type, "fp32" if has_float else NA, reason, scope, node.op_type)
        if not has_float:
            return OpRow(node.name, node.op_type, NA, "no float tensors", scope, node.op_type)
        note = ""
        if fp32_inputs:
            note = f"inputs {sorted(fp32_inputs)} stay float32 (the spec requires it)"
        if node.op_type in ("LSTM", "GRU", "RNN"):
            note = "weights and state float16" + ("; sequence_lens stays int32" if len(node.input) > 4 and node.input[4] else "")
        if node.op_type in CONTROL_FLOW_OPS:
            note = "body converted to float16"
        return OpRow(node.name, node.op_type, "fp16", note, scope, node.op_type)

    def fix_main_outputs(self, graph) -> None:
        from onnx import helper

        want = FLOAT if self.keep_io else FLOAT16
        produced = {o for n in graph.node for o in n.output}
        for vi in graph.output:
            if not self.is_float(vi.name):
                continue
            have = FLOAT if vi.name in self.fp32 else FLOAT16
            vi.type.tensor_type.elem_type = want
            if have == want:
                continue
            if vi.name not in produced:
                raise InternalError(f"graph output {vi.name!r} is not produced by a node; cannot cast it")
            inner = self.fresh(vi.name + ("_fp16" if have == FLOAT16 else "_fp32"))
            self._rename_everywhere(graph, vi.name, inner)
            graph.node.append(helper.make_node("Cast", [inner], [vi.name], to=want, name=self.fresh(vi.name + "_cast_out")))
            self.stats.casts_inserted += 1

    def _rename_everywhere(self, graph, old: str, new: str) -> None:
        for node in graph.node:
            for i, n in enumerate(node.input):
                if n == old:
                    node.input[i] = new
            for i, n in enumerate(node.output):
                if n == old:
                    node.output[i] = new
            for _, g in subgraphs(node):
                if old not in {v.name for v in g.input}:  # not shadowed
                    self._rename_everywhere(g, old, new)
                    for vi in g.output:
                        if vi.name == old:
                            vi.name = new

    def _strip_value_info(self, graph) -> None:
        del graph.value_info[:]
        for node in graph.node:
            for _, g in subgraphs(node):
                self._strip_value_info(g)


def convert_model_to_fp16(model, *, keep_io_types: bool = True,
                          keep_fp32: set[str] | frozenset[str] | Mapping[str, str] = frozenset()):
    """Convert an onnx.ModelProto in place to FP16; returns (model, rows, stats). Pure: no files. ``keep_fp32``:
    node names, or {name: why} (the report's reason)."""
    conv = _Converter(model, keep_io_types=keep_io_types, excluded=set(keep_fp32),
                      reasons=keep_fp32 if isinstance(keep_fp32, Mapping) else None)
    out = conv.run()
    return out, conv.rows, conv.stats


def check_converted(model) -> None:
    """ONNX checker plus strict type inference: a type mismatch our converter introduced fails here."""
    import onnx

    try:
        onnx.checker.check_model(model)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise InternalError(f"the FP16 conversion produced an invalid model: {(lines or ['?'])[0][:300]}") from None


def layer_kept(model, options: Fp16Options) -> dict[str, str]:
    """Nodes ``--layer-precisions`` keeps in FP32 (edgelstm.converters.quantize.layer_precision), with the report's reason."""
    if not options.layer_precisions:
        return {}
    from edgelstm.converters.quantize.layer_precision import kept_fp32

    return kept_fp32(model, options.layer_precisions, target="fp16")


def quantize_fp16(src: str | Path, out: str | Path, options: Fp16Options = Fp16Options()) -> QuantResult:
    """FP32 ONNX -> FP16 ONNX at ``out`` (+ manifest). Nothing is written on failure."""
    src, out = Path(src), Path(out)
    if out.suffix.lower() != ".onnx":
        raise BadInput(f"the output must end in .onnx, got {out.name}")
    if out.resolve() == src.resolve():
        raise BadInput("the output would overwrite the input model; pass another -o path")
    parent = load_onnx(src)
    reject_quantized(parent, src.name, target="FP16 conversion")
    model = type(parent)()
    model.CopyFrom(parent)
    name_unnamed_nodes(model)
    excluded, by_pattern = resolve_patterns(model, options.exclude) if options.exclude else (set(), {})
    model, rows, stats = convert_model_to_fp16(model, keep_io_types=options.keep_io_types,
                                               keep_fp32={**dict.fromkeys(excluded, "excluded by --exclude"),
                                                          **layer_kept(model, options)})
    check_converted(model)
    details: dict[str, Any] = {
        "precision": "fp16", "mode": None, "method": None, "keep_io_types": options.keep_io_types,
        "excluded": sorted(excluded), "exclude_patterns": {k: v for k, v in by_pattern.items()},
        "fp16": stats.to_dict(), "converter": "edgelstm (precision regions)",
    }
    return write_quantized(model, src, out, precision=Precision.fp16, parent_model=parent, rows=rows,
                           details=details, probe=options.probe)
