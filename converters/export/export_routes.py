"""The export routes of torch -> ONNX: which apply to a model (and in which order), running one exporter
quietly, cleaning the result, and turning the routes' failures into a refusal that names the real cause in
one line (no exporter dump).

Routes (ARCHITECTURE.md, "Facts the code relies on"): the TorchScript-based exporter (dynamo=False, tracing) for nn.LSTM/nn.GRU;
hand-written cells lifted to nn.LSTM first; nn.LSTM(proj_size) decomposed into a scripted loop (no exporter
writes LSTM projections); torch.jit.script (ONNX Loop) for Python loops; the dynamo exporter last. A tracing
route whose graph grows with the example length unrolled a Python loop and is rejected for dynamic lengths."""

from __future__ import annotations

import contextlib
import io
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edgelstm.errors import BadInput, ExportMismatch, opt, require_torch
from edgelstm.options import ExportRoute

from edgelstm.converters.export.quiet import silenced


@dataclass
class Candidate:
    route: ExportRoute
    module: Any
    lifted: dict[str, Any] | None = None
    decomposed: list[dict[str, Any]] | None = None
    note: str = ""

    @property
    def traces(self) -> bool:
        """Whether the exporter traces Python (and so unrolls Python loops at the example length)."""
        torch = require_torch()
        return ((self.route != ExportRoute.scripted or bool(self.decomposed))
                and not isinstance(self.module, torch.jit.ScriptModule)
                and not hasattr(self.module, "graph_signature"))  # a torch.export program is already a graph


class Attempts(list):
    """The routes tried, as (route, why it was rejected) pairs; what they taught (a traced loop, why scripting
    failed), and a time budget for trying them (a refusal must not take minutes)."""

    def __init__(self, rejected=(), *, budget_s: float = 60.0):
        super().__init__(rejected)
        self.budget_s = budget_s
        self.started = time.perf_counter()
        self.unrolled = False
        self.script_error = ""

    def skip_reason(self, cand: Candidate) -> str | None:
        if self and time.perf_counter() - self.started > self.budget_s:
            return f"not tried: {self.budget_s:.0f} s spent on the routes before it"
        if self.unrolled and cand.route == ExportRoute.dynamo:
            return "not tried: it traces the same Python loop over time steps"
        missing = [w for r, w in self if r == ExportRoute.torchscript.value and "unsupported op" in w]
        if missing and cand.route == ExportRoute.scripted and not cand.decomposed:
            return f"not tried: the same exporter ({missing[0].removeprefix('export failed: ')})"
        return None

    def failed_export(self, cand: Candidate, exc: BaseException) -> None:
        why = explain_export_error(exc)
        if cand.route == ExportRoute.scripted and not cand.decomposed:
            self.script_error = why
        self.append((cand.route.value, f"export failed: {why}"))

    def unrolling(self, cand: Candidate, onnx_model, export_at: Callable[[int], Any], seq_len: int) -> bool:
        """Whether the route's graph grows with the example length (a traced Python loop): rejected if so."""
        from edgelstm.converters.export.unrolling import check_unrolling

        if not cand.traces:
            return False
        try:
            result = check_unrolling(onnx_model, export_at, seq_len)
        except Exception:  # noqa: BLE001 - the length probe itself failed: the verification decides
            return False
        if result.unrolled:
            self.unrolled = True
            self.append((cand.route.value, result.describe()))
        return result.unrolled


def plan_routes(module, input_size: int, forced: ExportRoute | None, stateful: bool,
                call=None) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Candidate routes in order of preference, and the routes already ruled out (with reasons). ``call``: the
    model's input contract (a cell loop is lifted only for a model called with one input, as it is laid out)."""
    torch = require_torch()
    from edgelstm.converters.export.cell_lifting import LiftError, lift_cells
    from edgelstm.converters.export.proj_lstm import decompose_projections
    from edgelstm.models.cells import cell_candidates
    from edgelstm.models.native_rnn import is_rnn_like

    rejected: list[tuple[str, str]] = []
    is_script = isinstance(module, torch.jit.ScriptModule)
    has_rnn = any(is_rnn_like(m) for m in module.modules()) if not is_script else False
    cands: list[Candidate] = []
    if is_script:
        cands.append(Candidate(ExportRoute.torchscript, module, note="TorchScript module exported as scripted"))
    elif has_rnn:
        decomposed = decompose_projections(module)
        if decomposed is not None:
            new_module, info = decomposed
            cands.append(Candidate(ExportRoute.scripted, new_module, decomposed=info))
        else:
            cands += [Candidate(ExportRoute.torchscript, module), Candidate(ExportRoute.scripted, module),
                      Candidate(ExportRoute.dynamo, module)]
    else:
        if cell_candidates(module) and (call is None or len(call.io.inputs) == 1):
            try:
                lifted = lift_cells(module, input_size, call=call)
                cands.append(Candidate(ExportRoute.lifted, lifted.model, lifted.info()))
            except LiftError as exc:
                rejected.append(("lifted", str(exc)))
        cands += [Candidate(ExportRoute.scripted, module), Candidate(ExportRoute.torchscript, module),
                  Candidate(ExportRoute.dynamo, module)]
    if stateful:
        kept = [c for c in cands if c.route != ExportRoute.scripted or c.decomposed]
        if is_script or not kept:
            raise BadInput(f"{opt('stateful')} needs an nn.LSTM/nn.GRU (native, or a hand-written cell that lifts to one); "
                           + ("; ".join(w for _, w in rejected) or "this model has none"))
        cands = kept
    if forced is not None:
        kept = [c for c in cands if c.route == forced]
        if not kept:
            raise BadInput(f"route {forced.value!r} does not apply to this model; possible: "
                           f"{[c.route.value for c in cands] or 'none'}")
        cands = kept
    return cands, rejected


def export_bytes(route: ExportRoute, module, args: tuple, input_names, output_names, dynamic_axes,
                 opset: int | None) -> bytes:
    """One exporter run, silenced (no warnings, log lines or graph dumps reach the terminal)."""
    torch = require_torch()
    with silenced():
        if route == ExportRoute.dynamo:
            dyn = None
            if dynamic_axes:
                dyn = tuple({ax: torch.export.Dim.AUTO for ax in dynamic_axes.get(n, {})} or None for n in input_names)
            prog = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names),
                                     output_names=list(output_names), dynamic_shapes=dyn, opset_version=opset or 18,
                                     verbose=False)
            return prog.model_proto.SerializeToString()
        target = module
        if route == ExportRoute.scripted and not _has_script(module):
            with _without_edgelstm_hooks(module):
                target = torch.jit.script(module)
        buf = io.BytesIO()
        torch.onnx.export(target, args, buf, dynamo=False, opset_version=opset or 17, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes or None, do_constant_folding=True)
        return buf.getvalue()


@contextlib.contextmanager
def _without_edgelstm_hooks(module):
    """edgelstm's own forward pre-hooks (``edgelstm.converters.export.behaviour.fresh_calls``) are not the model's: script without
    (also on the model inside a contract wrapper)."""
    removed = []
    for m in (module.modules() if hasattr(module, "modules") else [module]):
        hooks = getattr(m, "_forward_pre_hooks", {})
        ours = {k: h for k, h in hooks.items() if getattr(h, "_edgelstm_hook", False)}
        for k in ours:
            del hooks[k]
        removed.append((hooks, ours))
    try:
        yield
    finally:
        for hooks, ours in removed:
            hooks.update(ours)


def _has_script(module) -> bool:
    """A module that already carries its scripted loops (a decomposition) is traced around them."""
    modules = module.modules() if hasattr(module, "modules") else [module]
    return any(getattr(m, "_edgelstm_scripted_inside", False) for m in modules)  # also inside a wrapper


def check_and_infer(data: bytes):
    import onnx

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model, strict_mode=False)


def simplify(model):
    import onnx
    import onnxscript.optimizer

    model = onnx.ModelProto.FromString(model.SerializeToString())
    drop_zero_initial_states(model)  # the optimizer below removes the chains left dangling
    with silenced():
        return onnxscript.optimizer.optimize(model)


def drop_zero_initial_states(model):
    """LSTM/GRU whose initial state is a ConstantOfShape of zeros get no initial state input instead (the ONNX
    default is zero): the Shape→Gather→Concat→ConstantOfShape chain the exporter emits costs time on every call.
    The caller re-verifies the result."""
    from onnx import numpy_helper

    producers = {o: n for n in model.graph.node for o in n.output}

    def is_zero_fill(name: str) -> bool:
        node = producers.get(name)
        if node is not None and node.op_type in ("Slice", "Gather", "Squeeze", "Unsqueeze", "Reshape"):
            return is_zero_fill(node.input[0])  # a slice of zeros (one layer's share) is zeros
        if node is None or node.op_type != "ConstantOfShape":
            return False
        for attr in node.attribute:
            if attr.name == "value":
                return not numpy_helper.to_array(attr.t).any()
        return True  # ConstantOfShape defaults to 0

    changed = False
    for node in model.graph.node:
        if node.op_type in ("LSTM", "GRU"):
            for idx in (5, 6):
                if idx < len(node.input) and node.input[idx] and is_zero_fill(node.input[idx]):
                    node.input[idx] = ""
                    changed = True
    return changed


def ort_callable(model) -> Callable[[dict], list[np.ndarray]]:
    """An onnxruntime session (CPU, one thread) as a function of feeds; its own log lines are silenced."""
    import onnxruntime as ort

    from edgelstm.artifacts.ort import make_session

    with silenced():
        sess = make_session(model.SerializeToString(), threads=1)
    names = [i.name for i in sess.get_inputs()]
    run_options = ort.RunOptions()
    run_options.log_severity_level = 4

    def run(feeds: dict) -> list[np.ndarray]:
        with silenced():
            return sess.run(None, {n: feeds[n] for n in names}, run_options)

    return run


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TS_UNSUPPORTED = re.compile(r"Exporting the operator '([\w:.]+)' to ONNX opset version (\d+) is not supported")
_DYNAMO_UNSUPPORTED = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'")


def explain_export_error(exc: BaseException) -> str:
    """One line for an exporter failure: the unsupported op when there is one, else the first meaningful line."""
    text = _ANSI.sub("", str(exc))
    m = _TS_UNSUPPORTED.search(text)
    if m:
        return f"unsupported op {m.group(1)} (opset {m.group(2)})"
    m = _DYNAMO_UNSUPPORTED.search(text)
    if m:
        return f"unsupported op {m.group(1).replace('.', '::', 1)}"
    if "LSTMs with projections" in text:
        return "nn.LSTM with proj_size has no ONNX form in this exporter"
    if "Inference tensors cannot be saved" in text:
        return "the model holds an inference-mode tensor (state left on the module?)"
    lines = [ln.strip().rstrip(":") for ln in text.strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {_cap(lines[0], 160)}" if lines else type(exc).__name__


def refusal(attempts: Attempts) -> ExportMismatch:
    """The refusal when no route produced a faithful ONNX: the real cause first, then each route, one line."""
    reasons = [w for _, w in attempts]
    ops = sorted({m.group(1) for w in reasons for m in [re.search(r"unsupported op ([\w:.]+)", w)] if m})
    ops = [o for o in ops if o.startswith("aten::")] or ops  # the TorchScript exporter names the user's op
    per_route = " | ".join(f"{r}: {_cap(w, 150)}" for r, w in attempts) or "no route applies"
    hint = None
    if ops and not attempts.unrolled:
        cause = f"the model uses {', '.join(ops)}, which the ONNX exporters cannot write"
        hint = f"replace it with supported operations, or try another {opt('opset')}"
    elif attempts.unrolled:
        cause = ("the model loops over time steps in Python: tracing unrolls the loop at the example length "
                 "(the graph grows with it)")
        if attempts.script_error:
            cause += f", and torch.jit.script cannot compile it ({_cap(attempts.script_error, 120)})"
        hint = ("annotate forward's arguments so torch.jit.script compiles the loop (e.g. hidden: "
                f"Tuple[Tensor, Tensor]), use nn.LSTM/nn.GRU, or pass {opt('static')} to fix the length")
    else:
        cause = ""
    lead = f"{cause}: the ONNX export does not reproduce torch" if cause else "the ONNX export does not reproduce torch"
    return ExportMismatch(f"{lead}, nothing was written — {per_route}",
                          failures=[f"{r}: {w}" for r, w in attempts], hint=hint)


def _cap(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
