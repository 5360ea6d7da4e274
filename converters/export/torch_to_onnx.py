"""torch -> ONNX, verified. The export route is chosen per model and a result is accepted only when
onnxruntime reproduces torch at several batch sizes and sequence lengths (and, for stateful exports,
when streaming step by step and in chunks reproduces the full sequence).

Routes (ARCHITECTURE.md, "Facts the code relies on"): the TorchScript-based exporter (dynamo=False) for nn.LSTM/nn.GRU; hand-written
cells lifted to nn.LSTM first; scripting (ONNX Loop) for modules with Python loops; the dynamo exporter only
where it verifies. A file is written only after it verified."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgelstm.errors import BadInput, ExportMismatch, require_torch, opt
from edgelstm.artifacts.iospec import IOSpec, TensorSpec, iospec_from_onnx
from edgelstm.options import ExportRoute

from edgelstm.converters.export.onnx_verify import Tolerance, VerifyReport, verify_grid
from edgelstm.converters.export.float64 import check_against_float64, float32_form, same_inputs
from edgelstm.converters.export.length_facts import length_facts
from edgelstm.converters.export.stateful import check_streams, stream_against_full
from edgelstm.converters.export.export_routes import (Attempts, Candidate as _Candidate, check_and_infer as _check_and_infer,
                                                      export_bytes as _export_bytes, ort_callable as _ort_callable,
                                                      plan_routes, refusal, simplify as _simplify)


MIN_OPSET, MAX_OPSET = 7, 23
DEFAULT_MAX_SEQ_LEN = 4096
MIN_LONG_VERIFY_SEQ = 16


@dataclass(frozen=True)
class ExportOptions:
    input_size: int | None = None
    inputs: tuple[TensorSpec, ...] = ()  # --input: the forward's data arguments (default: inferred from the model)
    state_arg: str | None = None      # --state-arg: the forward argument that takes the recurrent state
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
    tolerance: Tolerance = field(default_factory=Tolerance)  # per output, scaled to each output's spread
    seed: int = 0
    route_budget_s: float = 60.0      # stop trying further routes once this much time went into earlier ones

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
    if options.seq_len < 1 or options.batch < 1:
        raise BadInput(f"{opt('seq_len')} and {opt('batch')} must be >= 1")
    if options.seq_len > options.max_seq_len:
        raise BadInput(f"{opt('seq_len')} {options.seq_len} is above the maximum sequence length "
                       f"{options.max_seq_len} (verification runs ~3x longer sequences)",
                       hint=f"raise {opt('max_seq_len')} if the model really needs it")
    from edgelstm.options import check_alloc  # the longest verification input, before any route tries it

    check_alloc([options.batch + 1, 3 * options.seq_len + 1, options.input_size or 1], 8,
                what=f"verifying at {opt('batch')} {options.batch}, {opt('seq_len')} {options.seq_len}"
                     + (f", {opt('input_size')} {options.input_size}" if options.input_size else ""))


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


def export_onnx(model, out: str | Path, options: ExportOptions = ExportOptions(),
                on_step: Callable[[str], None] | None = None) -> ExportResult:
    """Export `model` (a LoadedModel or nn.Module) to `out`, verified; raises ExportMismatch if no route
    verifies. Nothing is written unless the result verified. Every call of the model during the export starts
    from the state it was loaded with, and the model is left as it was found."""
    from edgelstm.models.loading import LoadedModel, from_module
    from edgelstm.converters.export.behaviour import fresh_calls

    loaded = model if isinstance(model, LoadedModel) else from_module(model)
    with fresh_calls(loaded.module) as calls, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the user's model warning on every verification run is noise here
        return _export_onnx(loaded, out, options, on_step, calls)


@dataclass
class _Job:
    """One export: what every route's attempt shares."""

    loaded: Any
    out: Path
    options: ExportOptions
    say: Callable[[str], None]
    module: Any                     # the float32 form of the user's module
    original64: Any                 # the float64 module it came from, or None
    call: Any                       # the input contract (export_inputs.resolve_export_call)
    state_plan: Any                 # behaviour.plan_state
    attempts: Attempts
    batches: tuple[int, ...]
    seqs: tuple[int, ...]
    rng: Any
    t_start: float


def _export_onnx(loaded, out, options: ExportOptions, on_step, calls) -> ExportResult:
    import dataclasses

    from edgelstm.converters.export import export_inputs
    from edgelstm.converters.export.behaviour import plan_state

    t_start = time.perf_counter()
    say = on_step or (lambda _msg: None)
    module, original64 = float32_form(loaded.module)  # a float64 model is exported in float32, checked against itself
    _check_fixed_program(loaded, module, options)
    call = calls.resolve(module, lambda: export_inputs.resolve_export_call(module, options))  # the input contract
    input_size = call.contract.feature_size or 0
    state_plan = plan_state(module, call, options, calls)  # state kept on the module, randomness
    if state_plan.stateful and not options.stateful:
        options = dataclasses.replace(options, stateful=True)
    for note in state_plan.notes:
        say(note)

    if loaded.exported_program is not None and options.route in (None, ExportRoute.dynamo) and not options.stateful:
        # a torch.export program is already an exported graph: the dynamo exporter consumes it as is
        cands, attempts = [_Candidate(ExportRoute.dynamo, loaded.exported_program)], []
    else:
        cands, attempts = plan_routes(module, input_size, options.route, options.stateful, call)
    batches, seqs = _verify_points(options)
    job = _Job(loaded, Path(out), options, say, module, original64, call, state_plan,
               Attempts(attempts, budget_s=options.route_budget_s), batches, seqs,
               np.random.default_rng(options.seed), t_start)
    for cand in cands:
        skip = job.attempts.skip_reason(cand)
        if skip:
            job.attempts.append((cand.route.value, skip))
            continue
        result = _try_route(job, cand)
        if result is not None:
            return result
    raise refusal(job.attempts)


def _check_fixed_program(loaded, module, options: ExportOptions) -> None:
    """A torch.export program that specialised batch or seq to constants exports only at those (static)."""
    from edgelstm.models.loading import infer_input_size

    fixed = _fixed_program_dims(loaded)  # (seq_len, batch and max_seq_len: check_export_options)
    if not fixed:
        return
    input_size = options.input_size or infer_input_size(module)
    shape = f"[{fixed.get('batch', 'batch')}, {fixed.get('seq', 'seq')}, {input_size}]"
    want = {"batch": options.batch, "seq": options.seq_len}
    if not options.static or any(want[k] != v for k, v in fixed.items()):
        raise BadInput(f"this torch.export program accepts only inputs {shape}: torch.export specialised "
                       f"{' and '.join(fixed)}",
                       hint=f"pass {opt('static')} {opt('batch')} {fixed.get('batch', options.batch)} {opt('seq_len')} "
                            f"{fixed.get('seq', options.seq_len)}, or give a TorchScript file or an edgelstm "
                            "checkpoint for dynamic axes")


def _verify_points(options: ExportOptions) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(batches, lengths) the export is verified at: lengths far from the example, never only {1, 1, 4} when the
    example is 1 (a traced loop hides there)."""
    long_seq = min(max(3 * options.seq_len + 1, MIN_LONG_VERIFY_SEQ), options.max_seq_len)
    seqs = options.verify_seqs or ((options.seq_len,) if options.static else
                                   tuple(sorted({1, options.seq_len, long_seq, *(() if options.seq_len > 1 else
                                                                                 (max(2, long_seq // 3),))})))
    batches = options.verify_batches or ((options.batch,) if options.static else tuple(sorted({1, options.batch + 1})))
    return batches, seqs


def _try_route(job: _Job, cand) -> ExportResult | None:
    """Export with one route, verify it, write it: the result, or None with the reason in job.attempts."""
    exported = _export_candidate(job, cand)
    if exported is None:
        return None
    ex, onnx_model, kept_axes, ort_fn, make_feeds = exported
    rnn = getattr(ex, "stateful_rnn", None)
    verified = _verify_candidate(job, cand, ex, onnx_model, kept_axes, ort_fn, make_feeds)
    if verified is None:
        return None
    ex, onnx_model, report, simplified, cast = verified
    return _write_export(job, cand, ex, onnx_model, report, simplified, cast, kept_axes, rnn)


def _export_candidate(job: _Job, cand):
    """Run the route's exporter; (inputs, ONNX model, kept axes, onnxruntime callable, feeds maker) or None."""
    from edgelstm.converters.export import export_inputs
    from edgelstm.converters.export.onnx_fixups import fix_interface

    options, rng = job.options, job.rng
    job.say(f"exporting with the {cand.route.value} route")
    ex = export_inputs.prepare(job.call, cand.module, stateful=options.stateful, static=options.static)
    make_feeds = lambda b, t, zero_state=False, _ex=ex: _ex.feeds(rng, b, t, zero_state=zero_state)  # noqa: E731

    def export_at(seq_len: int, _cand=cand, _ex=ex, _mf=make_feeds):
        with export_inputs.packed_rnn_shim(_cand.module, _ex.has_lengths):
            return _check_and_infer(_export_bytes(_cand.route, _ex.module, _ex.args(_mf(options.batch, seq_len)),
                                                  _ex.in_names, _ex.out_names, _ex.dynamic_axes, options.opset))
    try:
        onnx_model = export_at(options.seq_len)
    except MemoryError:
        raise  # the shapes asked for do not fit: the user's to fix (exit 2), not a route's failure
    except Exception as exc:  # noqa: BLE001 - an exporter failure rejects this route, with its reason
        job.attempts.failed_export(cand, exc)
        return None
    if not options.static and job.attempts.unrolling(cand, onnx_model, export_at, options.seq_len):
        return None  # a traced Python loop: right at the example length only
    kept_axes = fix_interface(onnx_model, ex.io.outputs)  # constant dims as ints, squeeze() keeps its rank
    try:
        ort_fn = _ort_callable(onnx_model)
    except Exception as exc:  # noqa: BLE001
        job.attempts.failed_export(cand, exc)
        return None
    return ex, onnx_model, kept_axes, ort_fn, make_feeds


def _verify_candidate(job: _Job, cand, ex, onnx_model, kept_axes, ort_fn, make_feeds):
    """Verify the export against torch (and the float64 model), simplify it when that still verifies;
    (inputs, ONNX model, report, simplified, cast) or None."""
    from edgelstm.converters.export import export_inputs
    from edgelstm.converters.export.behaviour import RANDOM_MESSAGE, check_deterministic

    options, loaded, rng, batches, seqs = job.options, job.loaded, job.rng, job.batches, job.seqs
    export_module, all_out = ex.module, ex.out_names
    if loaded.exported_program is not None and export_module is loaded.exported_program:
        export_module = job.module  # run the program's module as the torch reference
    torch_fn = ex.torch_fn
    if export_module is not ex.module:
        ex = export_inputs.ExportInputs(export_module, ex.io, ex.state, ex.static)
        torch_fn = ex.torch_fn
    if "initial_state" in job.state_plan.details and not check_deterministic(torch_fn, make_feeds):
        raise BadInput(f"{RANDOM_MESSAGE}, even with its initial state replaced by the h0/c0 inputs",
                       hint="make the model deterministic (no random draws in forward)")

    def run_checks(fn) -> VerifyReport:
        report = verify_grid(torch_fn, fn, make_feeds, all_out, batches, seqs, options.tolerance,
                             kept_axes=kept_axes)
        report.checks += ex.verify_streaming(fn, rng, options.seq_len, options.tolerance)
        if options.stateful and ex.state is None:
            report.checks += stream_against_full(torch_fn, fn, ex, make_feeds, options.seq_len, options.tolerance)
        return report

    job.say(f"verifying in onnxruntime at batches {list(batches)} x lengths {list(seqs)}"
            + (" and streaming" if options.stateful else ""))
    report = run_checks(ort_fn)
    if not report.passed:
        if options.stateful and ex.state is None:
            check_streams(torch_fn, ex, make_feeds, options.seq_len, options.tolerance)  # the model's fault?
        job.attempts.append((cand.route.value, f"does not verify: {report.summary()}"))
        return None
    simplified = False
    if options.simplify:
        try:
            slim = _check_and_infer(_simplify(onnx_model).SerializeToString())
            slim_report = run_checks(_ort_callable(slim))
            if slim_report.passed:
                onnx_model, report, simplified = slim, slim_report, True
        except Exception:  # noqa: BLE001 - simplification is optional; keep the verified original
            pass
    cast = None
    if job.original64 is not None:
        cast = {"from": "float64", "to": "float32", "checks_against_float64": 0,
                "note": "verified against the float32 copy (the export's inputs are not the model's own)"}
        if same_inputs(ex.in_names, job.original64, options):
            r64, cast = check_against_float64(job.original64, options, _ort_callable(onnx_model), make_feeds, all_out,
                                              batches, seqs, options.tolerance, kept_axes)
            if not r64.passed:
                job.attempts.append((cand.route.value, f"does not reproduce the float64 model: {r64.summary()}"))
                return None
    return ex, onnx_model, report, simplified, cast


def _write_export(job: _Job, cand, ex, onnx_model, report, simplified, cast, kept_axes, rnn) -> ExportResult:
    """The verified model and its manifest, written as a pair."""
    from edgelstm.artifacts.manifest import write_artifact
    from edgelstm.artifacts.onnx_graph import opset_of

    options, loaded, attempts = job.options, job.loaded, job.attempts
    io_spec = ex.manifest_io(iospec_from_onnx(onnx_model))
    written_opset = opset_of(onnx_model)
    if options.opset and written_opset != options.opset:
        raise BadInput(f"the {cand.route.value} exporter wrote opset {written_opset}, not the {opt('opset')} "
                       f"{options.opset} asked for; nothing was written",
                       hint=f"pass {opt('opset')} {written_opset}, or an opset the route supports")
    seconds = time.perf_counter() - job.t_start
    details = {
        "route": cand.route.value, "rejected_routes": [{"route": r, "reason": w} for r, w in attempts],
        "lifted": cand.lifted, "simplified": simplified, "opset": written_opset, "stateful": options.stateful,
        "static": options.static, "inputs": ex.details(job.call), "source": loaded.source, "arch": loaded.arch,
        "config": loaded.config,
        "verification": {"batches": list(job.batches), "seqs": list(job.seqs), "max_abs": report.max_abs,
                         "tolerance": options.tolerance.to_dict(), "checks": [c.to_dict() for c in report.checks]},
        **({"decomposed": cand.decomposed} if cand.decomposed else {}), **job.state_plan.details,
        **({"import": loaded.origin} if getattr(loaded, "origin", None) else {}),
        **({"cast": cast} if cast else {}),
        "lengths": length_facts(onnx_model, job.seqs, options.max_seq_len,
                                static=options.static or bool(job.call.fixed)),
        **({"kept_axes": {n: "keeps the size-1 axes torch's squeeze() drops at batch 1" for n in kept_axes}}
           if kept_axes else {}),
    }
    if options.stateful and rnn is not None:
        details["state"] = {"layers": rnn.num_layers, "hidden_size": rnn.hidden_size, "kind": type(rnn).__name__}
    with write_artifact(job.out) as pair:
        pair.write_bytes(onnx_model.SerializeToString())
        manifest = pair.write_manifest(kind="onnx", precision="fp32", parent=loaded.path, io=io_spec,
                                       details=details)
    return ExportResult(job.out, cand.route, io_spec, report, attempts, cand.lifted, simplified, seconds, manifest)


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:240]
