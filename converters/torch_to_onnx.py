"""torch -> ONNX, verified. The export route is chosen per model and a result is accepted only when
onnxruntime reproduces torch at several batch sizes and sequence lengths (and, for stateful exports,
when streaming step by step and in chunks reproduces the full sequence).

Routes (DESIGN.md facts): the TorchScript-based exporter (dynamo=False) for nn.LSTM/nn.GRU; hand-written
cells lifted to nn.LSTM first; scripting (ONNX Loop) for modules with Python loops; the dynamo exporter only
where it verifies. A file is written only after it verified."""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgelstm.errors import BadInput, ExportMismatch, require_torch, opt
from edgelstm.artifacts.iospec import IOSpec, TensorSpec, iospec_from_onnx
from edgelstm.options import ExportRoute

from converters.onnx_verify import Tolerance, VerifyReport, verify_grid, verify_streaming


MIN_OPSET, MAX_OPSET = 7, 23
DEFAULT_MAX_SEQ_LEN = 4096
MIN_LONG_VERIFY_SEQ = 16


@dataclass(frozen=True)
class ExportOptions:
    input_size: int | None = None
    seq_len: int = 16                 # example length used for export
    batch: int = 2                    # example batch
    opset: int | None = None          # None: the route's default (17 TorchScript, 18 dynamo)
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN  # guard against lengths that exhaust memory while verifying
    stateful: bool = False
    static: bool = False              # no dynamic axes
    simplify: bool = True             # graph simplification, kept only when it still verifies
    route: ExportRoute | None = None  # force one route (default: chosen per model)
    verify_seqs: tuple[int, ...] | None = None     # default: 1, seq_len, max(3*seq_len+1, 16)
    verify_batches: tuple[int, ...] | None = None  # default: 1, batch+1
    tolerance: Tolerance = field(default_factory=Tolerance)
    seed: int = 0

    def __post_init__(self) -> None:
        check_export_options(self)


def check_export_options(options: ExportOptions) -> None:
    """Usage errors in the options themselves, before any model is loaded or run (exit 2)."""
    if options.input_size is not None and options.input_size < 1:
        raise BadInput(f"{opt('input_size')} must be >= 1, got {options.input_size}")
    if options.opset is not None and not MIN_OPSET <= options.opset <= MAX_OPSET:
        raise BadInput(f"{opt('opset')} {options.opset} is outside the opsets the exporters write "
                       f"({MIN_OPSET}..{MAX_OPSET})")
    if options.static and options.stateful:
        raise BadInput(f"{opt('static')} and {opt('stateful')} do not combine: a streaming model takes one step "
                       "(or any chunk) per call, which needs a dynamic sequence axis")
    if options.max_seq_len < 1:
        raise BadInput(f"{opt('max_seq_len')} must be >= 1, got {options.max_seq_len}")


@dataclass
class ExportResult:
    path: Path
    route: ExportRoute
    io: IOSpec
    verification: VerifyReport
    attempts: list[tuple[str, str]]   # (route, why it was rejected)
    lifted: dict[str, Any] | None
    simplified: bool
    seconds: float
    manifest: Any = None


@dataclass
class _Candidate:
    route: ExportRoute
    module: Any
    lifted: dict[str, Any] | None = None
    note: str = ""


def plan_routes(module, input_size: int, forced: ExportRoute | None, stateful: bool) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    """Candidate routes in order of preference, and the routes already ruled out (with reasons)."""
    torch = require_torch()
    from converters.cell_lifting import LiftError, lift_cells
    from edgelstm.models.cells import cell_candidates

    rejected: list[tuple[str, str]] = []
    is_script = isinstance(module, torch.jit.ScriptModule)
    has_rnn = any(isinstance(m, torch.nn.RNNBase) for m in module.modules()) if not is_script else False
    cands: list[_Candidate] = []
    if is_script:
        cands.append(_Candidate(ExportRoute.torchscript, module, note="TorchScript module exported as scripted"))
    elif has_rnn:
        cands += [_Candidate(ExportRoute.torchscript, module), _Candidate(ExportRoute.dynamo, module)]
    else:
        if cell_candidates(module):
            try:
                lifted = lift_cells(module, input_size)
                info = {"cell": lifted.cell.path, "gate_order": lifted.cell.gate_order, "concat": lifted.cell.concat,
                        "linears": lifted.cell.linears, "hidden_size": lifted.cell.hidden_size,
                        "readout": lifted.readout, "max_error": lifted.max_error}
                cands.append(_Candidate(ExportRoute.lifted, lifted.model, info))
            except LiftError as exc:
                rejected.append(("lifted", str(exc)))
        cands += [_Candidate(ExportRoute.scripted, module), _Candidate(ExportRoute.torchscript, module),
                  _Candidate(ExportRoute.dynamo, module)]
    if stateful:
        kept = [c for c in cands if c.route != ExportRoute.scripted and not is_script]
        if not kept:
            raise BadInput(f"{opt('stateful')} needs an nn.LSTM/nn.GRU (native, or a hand-written cell that lifts to one); "
                           + "; ".join(w for _, w in rejected))
        cands = kept
    if forced is not None:
        kept = [c for c in cands if c.route == forced]
        if not kept:
            raise BadInput(f"route {forced.value!r} does not apply to this model; possible: "
                           f"{[c.route.value for c in cands] or 'none'}")
        cands = kept
    return cands, rejected


def _export_bytes(route: ExportRoute, module, args: tuple, input_names, output_names, dynamic_axes,
                  opset: int | None) -> bytes:
    torch = require_torch()
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        if route == ExportRoute.dynamo:
            dyn = None
            if dynamic_axes:
                dyn = tuple({ax: torch.export.Dim.AUTO for ax in dynamic_axes.get(n, {})} or None for n in input_names)
            prog = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names),
                                     output_names=list(output_names), dynamic_shapes=dyn, opset_version=opset or 18,
                                     verbose=False)
            return prog.model_proto.SerializeToString()
        target = torch.jit.script(module) if route == ExportRoute.scripted else module
        buf = io.BytesIO()
        torch.onnx.export(target, args, buf, dynamo=False, opset_version=opset or 17, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes or None, do_constant_folding=True)
        return buf.getvalue()


def _check_and_infer(data: bytes):
    import onnx

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model, strict_mode=False)


def _simplify(model):
    import onnxscript.optimizer

    import logging

    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    drop_zero_initial_states(model)  # the optimizer below removes the chains left dangling
    logging.getLogger("onnxscript").setLevel(logging.ERROR)
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
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


def _ort_callable(model) -> Callable[[dict], list[np.ndarray]]:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return lambda feeds: sess.run(None, {n: feeds[n] for n in names})


def export_onnx(model, out: str | Path, options: ExportOptions = ExportOptions(),
                on_step: Callable[[str], None] | None = None) -> ExportResult:
    """Export `model` (a LoadedModel or nn.Module) to `out`, verified; raises ExportMismatch if no route
    verifies. Nothing is written unless the result verified."""
    torch = require_torch()

    from edgelstm.models.loading import LoadedModel, from_module, infer_input_size
    from edgelstm.artifacts.manifest import write_artifact
    from edgelstm.artifacts.onnx_graph import opset_of
    from edgelstm.runners.torch_runner import flatten_outputs, probe_torch_io

    from converters.stateful import make_stateful, state_names

    t_start = time.perf_counter()
    say = on_step or (lambda _msg: None)
    loaded = model if isinstance(model, LoadedModel) else from_module(model)
    module = loaded.module
    inferred = infer_input_size(module)
    input_size = options.input_size or inferred
    if input_size is None:
        raise BadInput("cannot infer the model's input size (no recurrent layer found)", hint=f"pass {opt('input_size')}")
    if options.input_size and inferred and options.input_size != inferred:
        raise BadInput(f"{opt('input_size')} {options.input_size} does not fit the model: its first recurrent layer "
                       f"takes {inferred} features")
    if options.seq_len < 1 or options.batch < 1:
        raise BadInput(f"{opt('seq_len')} and {opt('batch')} must be >= 1")
    if options.seq_len > options.max_seq_len:
        raise BadInput(f"{opt('seq_len')} {options.seq_len} is above the maximum sequence length "
                       f"{options.max_seq_len} (verification runs ~3x longer sequences)",
                       hint=f"raise {opt('max_seq_len')} if the model really needs it")
    fixed = _fixed_program_dims(loaded)
    if fixed:
        shape = f"[{fixed.get('batch', 'batch')}, {fixed.get('seq', 'seq')}, {input_size}]"
        want = {"batch": options.batch, "seq": options.seq_len}
        if not options.static or any(want[k] != v for k, v in fixed.items()):
            raise BadInput(f"this torch.export program accepts only inputs {shape}: torch.export specialised "
                           f"{' and '.join(fixed)}",
                           hint=f"pass {opt('static')} {opt('batch')} {fixed.get('batch', options.batch)} {opt('seq_len')} "
                                f"{fixed.get('seq', options.seq_len)}, or give a TorchScript file or an edgelstm "
                                "checkpoint for dynamic axes")
    base_io = probe_torch_io(module, input_size, (options.batch, options.seq_len) if options.static else None)  # also proves the model runs on [batch, seq, input_size]
    out_names = [o.name for o in base_io.outputs]
    seq_axes = {o.name: o.shape.index("seq") for o in base_io.outputs if "seq" in o.shape}

    if loaded.exported_program is not None and options.route in (None, ExportRoute.dynamo) and not options.stateful:
        # a torch.export program is already an exported graph: the dynamo exporter consumes it as is
        cands, attempts = [_Candidate(ExportRoute.dynamo, loaded.exported_program)], []
    else:
        cands, attempts = plan_routes(module, input_size, options.route, options.stateful)
    # lengths far from the example: never only {1, 1, 4} when the example is 1 (a traced loop hides there)
    long_seq = min(max(3 * options.seq_len + 1, MIN_LONG_VERIFY_SEQ), options.max_seq_len)
    seqs = options.verify_seqs or ((options.seq_len,) if options.static else
                                   tuple(sorted({1, options.seq_len, long_seq})))
    batches = options.verify_batches or ((options.batch,) if options.static else tuple(sorted({1, options.batch + 1})))
    rng = np.random.default_rng(options.seed)

    for cand in cands:
        say(f"exporting with the {cand.route.value} route")
        export_module = cand.module
        in_names, st_out = ["x"], []
        rnn = None
        if options.stateful:
            export_module, rnn = make_stateful(cand.module)
            st_in, st_out = state_names(rnn)
            in_names += st_in
        all_out = out_names + st_out
        layers = rnn.num_layers if rnn is not None else 0
        hidden = rnn.hidden_size if rnn is not None else 0

        def make_feeds(b: int, t: int, *, zero_state: bool = False) -> dict[str, np.ndarray]:
            feeds = {"x": rng.standard_normal((b, t, input_size)).astype(np.float32)}
            for n in in_names[1:]:
                feeds[n] = (np.zeros if zero_state else lambda s: rng.standard_normal(s) * 0.5)(
                    (layers, b, hidden)).astype(np.float32)
            return feeds

        dynamic_axes = None
        if not options.static:
            dynamic_axes = {"x": {0: "batch", 1: "seq"}}
            for n in in_names[1:] + st_out:
                dynamic_axes[n] = {1: "batch"}
            for o in base_io.outputs:
                axes = {i: d for i, d in enumerate(o.shape) if d in ("batch", "seq")}
                if axes:
                    dynamic_axes[o.name] = axes
        example = make_feeds(options.batch, options.seq_len)
        args = tuple(torch.from_numpy(example[n]) for n in in_names)
        try:
            data = _export_bytes(cand.route, export_module, args, in_names, all_out, dynamic_axes, options.opset)
            onnx_model = _check_and_infer(data)
            ort_fn = _ort_callable(onnx_model)
        except Exception as exc:  # noqa: BLE001 - an exporter failure rejects this route, with its reason
            attempts.append((cand.route.value, f"export failed: {_first_line(exc)}"))
            continue

        if loaded.exported_program is not None and export_module is loaded.exported_program:
            export_module = module  # run the program's module as the torch reference

        def torch_fn(feeds, _m=export_module, _names=tuple(in_names)):
            with torch.no_grad():
                outs = flatten_outputs(_m(*[torch.from_numpy(feeds[n]) for n in _names]))
            return [o.numpy() for o in outs]

        def run_checks(fn) -> VerifyReport:
            report = verify_grid(torch_fn, fn, make_feeds, all_out, batches, seqs, options.tolerance)
            if options.stateful:
                x = rng.standard_normal((2, 2 * options.seq_len + 1, input_size)).astype(np.float32)
                zero = {n: v for n, v in make_feeds(2, 1, zero_state=True).items() if n != "x"}
                full = lambda xx: torch_fn({"x": xx, **zero})  # noqa: E731
                chunks = sorted({1, max(2, options.seq_len // 3)})
                report.checks += verify_streaming(full, fn, x, zero, all_out, st_out, chunks, options.tolerance,
                                                  seq_axes).checks
            return report

        say(f"verifying in onnxruntime at batches {list(batches)} x lengths {list(seqs)}"
            + (" and streaming" if options.stateful else ""))
        report = run_checks(ort_fn)
        if not report.passed:
            why = ""
            if cand.route == ExportRoute.torchscript and not any(
                    isinstance(m, torch.nn.RNNBase) for m in cand.module.modules()):
                why = " (tracing unrolled a Python loop at the example length)"
            attempts.append((cand.route.value, f"does not verify{why}: {report.summary()}"))
            continue
        simplified = False
        if options.simplify:
            try:
                slim = _check_and_infer(_simplify(onnx_model).SerializeToString())
                slim_report = run_checks(_ort_callable(slim))
                if slim_report.passed:
                    onnx_model, report, simplified = slim, slim_report, True
            except Exception:  # noqa: BLE001 - simplification is optional; keep the verified original
                pass
        io_spec = _io_with_roles(iospec_from_onnx(onnx_model), st_out)
        out = Path(out)
        written_opset = opset_of(onnx_model)
        if options.opset and written_opset != options.opset:
            raise BadInput(f"the {cand.route.value} exporter wrote opset {written_opset}, not the {opt('opset')} "
                           f"{options.opset} asked for; nothing was written",
                           hint=f"pass {opt('opset')} {written_opset}, or an opset the route supports")
        seconds = time.perf_counter() - t_start
        details = {
            "route": cand.route.value, "rejected_routes": [{"route": r, "reason": w} for r, w in attempts],
            "lifted": cand.lifted, "simplified": simplified, "opset": written_opset, "stateful": options.stateful,
            "static": options.static, "source": loaded.source, "arch": loaded.arch, "config": loaded.config,
            "verification": {"batches": list(batches), "seqs": list(seqs), "max_abs": report.max_abs,
                             "checks": [c.to_dict() for c in report.checks]},
        }
        if options.stateful and rnn is not None:
            details["state"] = {"layers": layers, "hidden_size": hidden, "kind": type(rnn).__name__}
        with write_artifact(out) as pair:
            pair.tmp.write_bytes(onnx_model.SerializeToString())
            manifest = pair.write_manifest(kind="onnx", precision="fp32", parent=loaded.path, io=io_spec,
                                           details=details)
        return ExportResult(out, cand.route, io_spec, report, attempts, cand.lifted, simplified, seconds, manifest)

    lines = [f"{r}: {w}" for r, w in attempts] or ["no route applies"]
    raise ExportMismatch("the ONNX export does not reproduce torch, nothing was written — " + " | ".join(lines),
                         failures=lines)


def _fixed_program_dims(loaded) -> dict[str, int]:
    """The input dims ("batch", "seq") that a torch.export program specialised to constants."""
    ep = loaded.exported_program
    if ep is None:
        return {}
    user_inputs = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is None or len(shape) != 3:
                return {}
            return {k: int(d) for k, d in zip(("batch", "seq"), shape[:2]) if isinstance(d, int)}
    return {}


def _io_with_roles(spec: IOSpec, state_outputs: list[str]) -> IOSpec:
    outs = tuple(TensorSpec(t.name, t.dtype, t.shape, t.name in state_outputs) for t in spec.outputs)
    return IOSpec(spec.inputs, outs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:240]
