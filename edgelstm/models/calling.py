"""Calling a torch model by its input contract: feeds by name in, outputs by name out, the recurrent state
argument packed into the model's own structure ((h0, c0) or h0) and its returned state named hn/cn.

``resolve_call(module, InputOptions)`` tries the planned contracts (``edgelstm.models.inputs``), runs the model at
two (batch, seq) points to learn which output axes are ``batch`` and ``seq`` (one point, the model's own, for a
fixed-shape model) and returns a ``ModelCall``: ``io`` (the I/O spec every artifact made from it carries),
``run(feeds)`` and ``as_module()`` (an nn.Module taking the inputs positionally in ``io`` order, for export and
timing)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from edgelstm.artifacts.feeds import random_feeds, zero_feeds
from edgelstm.artifacts.iospec import LENGTHS, IOSpec, TensorSpec, numpy_dtype
from edgelstm.errors import BadInput, opt, require_torch
from edgelstm.models.inputs import Contract, InputOptions, plan_contracts
from edgelstm.models.probing import module_state_guard

#: (batch, seq) probe points: distinct from each other and from typical feature sizes
PROBE_POINTS = ((2, 11), (3, 13))
#: the probe points of a model that runs only at batch 1
BATCH_ONE_POINTS = ((1, 11), (1, 13))
_OTHER_DIMS = ((5, 7), (17, 19), (23, 29), (31, 37))


def output_names_for(n: int) -> list[str]:
    return ["y"] if n == 1 else [f"y{i}" for i in range(n)]


def flatten_outputs(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        flat: list[Any] = []
        for o in out:
            flat.extend(flatten_outputs(o))
        return flat
    if isinstance(out, dict):
        return [v for _, v in sorted(out.items())]
    if hasattr(out, "data") and hasattr(out, "batch_sizes"):  # a PackedSequence
        return [out.data]
    return [out]


def module_device(module):
    torch = require_torch()
    for tensors in (getattr(module, "parameters", None), getattr(module, "buffers", None)):
        for t in (tensors() if callable(tensors) else ()):
            return t.device
    return torch.device("cpu")


def symbol_values(contract: Contract, point: int) -> dict[str, int]:
    """Values of symbolic dims other than batch/seq at probe point 0 or 1."""
    names = sorted({d for t in contract.data for d in t.shape if isinstance(d, str) and d not in ("batch", "seq")})
    return {n: _OTHER_DIMS[i % len(_OTHER_DIMS)][point] + 40 * (i // len(_OTHER_DIMS)) for i, n in enumerate(names)}


class ModelCall:
    """A torch module called through its contract. ``state_index`` is the position of the returned state in the
    model's top-level output tuple (None: the model returns no state)."""

    def __init__(self, module, contract: Contract, io: IOSpec, state_index: int | None, *, fixed: bool = False):
        self.module = module
        self.contract = contract
        self.io = io
        self.state_index = state_index
        self.fixed = fixed

    def with_module(self, module) -> "ModelCall":
        return ModelCall(module, self.contract, self.io, self.state_index, fixed=self.fixed)

    def arguments(self, tensors: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments of the forward for tensors named like ``io.inputs``."""
        from edgelstm.models.state_layouts import pack_state

        st = self.contract.state
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for i, (param, name) in enumerate(self.contract.args):
            if name == "<state>":
                value = pack_state(st.layout, st.lstm, tensors["h0"], tensors.get("c0"))
            else:
                value = tensors[name]
            if kwargs or i != len(args) or param in self.contract.keyword:
                kwargs[param] = value
            else:
                args.append(value)
        return args, kwargs

    def split(self, out: Any) -> list[Any]:
        """The model's return value as a flat list in ``io.outputs`` order (data outputs, then hn[, cn])."""
        if self.state_index is None:
            return flatten_outputs(out)
        from edgelstm.models.state_layouts import unpack_state

        top = list(out)
        state = top.pop(self.state_index)
        st = self.contract.state
        return flatten_outputs(top) + unpack_state(st.layout, st.lstm, state)

    def __call__(self, tensors: Mapping[str, Any]) -> list[Any]:
        args, kwargs = self.arguments(tensors)
        return self.split(self.module(*args, **kwargs))

    def tensors(self, feeds: Mapping[str, np.ndarray], device=None) -> dict[str, Any]:
        """numpy feeds -> torch tensors on the module's device (lengths stay on the CPU, as packing needs); float
        inputs in the dtype the model computes in (a float64 model is fed float64, its outputs come back float32)."""
        torch = require_torch()
        from edgelstm.models.loading import float_dtype

        device = device or module_device(self.module)
        compute = float_dtype(self.module) if hasattr(self.module, "parameters") else torch.float32
        out = {}
        for t in self.io.inputs:
            a = torch.from_numpy(np.ascontiguousarray(feeds[t.name], dtype=numpy_dtype(t.dtype)))
            if a.is_floating_point() and t.role != LENGTHS and compute != a.dtype and compute == torch.float64:
                a = a.to(compute)
            out[t.name] = a if t.role == LENGTHS else a.to(device)
        return out

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require_torch()
        with torch.no_grad():
            outs = self(self.tensors(feeds))
        return {spec.name: o.detach().float().cpu().numpy() for spec, o in zip(self.io.outputs, outs)}

    def as_module(self):
        """An nn.Module whose forward takes the inputs positionally in ``io.inputs`` order and returns a tuple in
        ``io.outputs`` order (the form exporters and timers want): a generated wrapper with named, typed parameters
        (``edgelstm.models.call_wrapper``; torch.jit.script compiles it), else a generic one."""
        torch = require_torch()
        from edgelstm.models.call_wrapper import typed_wrapper

        try:
            feeds = random_feeds(self.io, *PROBE_POINTS[0], np.random.default_rng(0),
                                 dims=symbol_values(self.contract, 0))
            return typed_wrapper(self, feeds)
        except Exception:  # noqa: BLE001 - a return value the generator cannot name: the generic wrapper
            pass
        names = tuple(self.io.input_names)
        call = self

        class ContractModule(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = call.module

            def forward(self, *tensors):
                outs = call.with_module(self.inner)(dict(zip(names, tensors)))
                return tuple(outs) if len(outs) > 1 else outs[0]

        return ContractModule().eval()


def _state_position(out: Any, contract: Contract, batch: int) -> int | None:
    from edgelstm.models.state_layouts import flat_shapes

    st = contract.state
    if st is None or not isinstance(out, (tuple, list)):
        return None
    want = flat_shapes(st.layout, st.lstm, st.layers, batch, st.hidden, st.cell)
    for k in range(len(out) - 1, -1, -1):
        flat = flatten_outputs(out[k])
        if len(flat) == len(want) and all(tuple(getattr(f, "shape", ())) == w for f, w in zip(flat, want)):
            return k
    return None


def _run_at(module, contract: Contract, batch: int, seq: int, point: int, seed: int = 0):
    torch = require_torch()
    io = IOSpec(contract.inputs)
    feeds = random_feeds(io, batch, seq, np.random.default_rng(seed), dims=symbol_values(contract, point))
    call = ModelCall(module, contract, io, None)
    args, kwargs = call.arguments(call.tensors(feeds))
    with module_state_guard(module), torch.no_grad():  # a probe never leaves state set on the module
        return module(*args, **kwargs)


def discover_ranges(module, contract: Contract) -> Contract:
    """Integer inputs without a value range get the range of the nn.Embedding they feed (run once on zeros)."""
    torch = require_torch()
    open_ints = [t for t in contract.data if t.is_integer and t.value_range is None and t.role is None]
    embeddings = [m for m in module.modules() if isinstance(m, torch.nn.Embedding)]
    if not open_ints or not embeddings:
        return contract
    io = IOSpec(contract.inputs)
    tensors = ModelCall(module, contract, io, None).tensors(zero_feeds(io, *PROBE_POINTS[0], symbol_values(contract, 0)))
    seen: list[tuple[Any, int]] = []
    hooks = [e.register_forward_pre_hook(lambda m, a: seen.append((a[0], int(m.num_embeddings)))) for e in embeddings]
    try:
        args, kwargs = ModelCall(module, contract, io, None).arguments(tensors)
        with module_state_guard(module), torch.no_grad():
            module(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the probe that follows reports why the model does not run
        return contract
    finally:
        for h in hooks:
            h.remove()
    ranges: dict[str, tuple[int, int]] = {}
    for t in open_ints:
        ptr = tensors[t.name].untyped_storage().data_ptr()
        for a, n in seen:
            if isinstance(a, torch.Tensor) and a.untyped_storage().data_ptr() == ptr:
                ranges[t.name] = (0, n)
                break
    leftovers = [t for t in open_ints if t.name not in ranges]
    for t, (_, n) in zip(leftovers, [s for s in seen if (0, s[1]) not in ranges.values()]):
        ranges[t.name] = (0, n)
    return replace(contract, data=tuple(replace(t, value_range=ranges.get(t.name, t.value_range))
                                        for t in contract.data))


def _label(values: Sequence[int], points: Sequence[tuple[int, int]], others: Sequence[dict[str, int]],
           name: str, axis: int) -> int | str:
    a, b = values
    if a == b:
        return int(a)
    if (a, b) == (points[0][0], points[1][0]):
        return "batch"
    if (a, b) == (points[0][1], points[1][1]):
        return "seq"
    for sym in others[0]:
        if (a, b) == (others[0][sym], others[1][sym]):
            return sym
    return f"{name}_{axis}"


def probe(module, contract: Contract, points: Sequence[tuple[int, int]] = PROBE_POINTS) -> ModelCall:
    """Run the model at two points (the same point twice: a fixed shape) and name the output axes."""
    outs, state_idx = [], None
    for i, (b, t) in enumerate(points):
        out = _run_at(module, contract, b, t, i)
        state_idx = _state_position(out, contract, b)
        shapes = [tuple(o.shape) for o in (ModelCall(module, contract, IOSpec(()), state_idx).split(out))]
        outs.append(shapes)
    if len(outs[0]) != len(outs[1]):
        raise BadInput(f"the model returns {len(outs[0])} outputs at one shape and {len(outs[1])} at another")
    n_state = 0 if state_idx is None else len(contract.state.out_names)
    names = output_names_for(len(outs[0]) - n_state) + (list(contract.state.out_names) if n_state else [])
    others = [symbol_values(contract, 0), symbol_values(contract, 1)]
    specs = []
    for k, (s1, s2) in enumerate(zip(*outs)):
        if len(s1) != len(s2):
            raise BadInput(f"output {names[k]!r} changes rank with the input shape ({list(s1)} vs {list(s2)})")
        dims = tuple(_label((a, c), points, others, names[k], ax) for ax, (a, c) in enumerate(zip(s1, s2)))
        specs.append(TensorSpec(names[k], "float32", dims, k >= len(names) - n_state))
    inputs = contract.inputs
    if contract.state is not None and state_idx is None:
        inputs = contract.data  # the model keeps the state argument's default: nothing to carry
        contract = replace(contract, notes=contract.notes + (
            f"forward argument {contract.state.param!r} is not returned as new state: it keeps its default",),
            args=tuple(a for a in contract.args if a[1] != "<state>"), state=None)
    return ModelCall(module, contract, IOSpec(inputs, tuple(specs)), state_idx, fixed=points[0] == points[1])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {(lines[0] if lines else '')[:200]}"


def _as_float32(contract: Contract) -> Contract:
    """A float64 input is fed to the model as float64 but stated (and exported) as float32: onnxruntime has no
    float64 LSTM/GRU kernels and edge runtimes compute in float32 (the export verifies the cast)."""
    if not any(t.dtype == "float64" for t in contract.data):
        return contract
    return replace(contract, data=tuple(replace(t, dtype="float32") if t.dtype == "float64" else t
                                        for t in contract.data),
                   notes=contract.notes + ("float64 inputs are stated as float32: the model is called with float64 "
                                           "and exported in float32",))


def _keeps_batch(call: ModelCall) -> bool:
    """Whether the outputs carry the input's batch axis (a seq-first loop fed [batch, seq, F] swaps them: its
    outputs then follow the input's seq axis instead)."""
    ins = {d for t in call.io.data_inputs for d in t.shape}
    outs = {d for t in call.io.outputs for d in t.shape}
    return not ({"batch", "seq"} <= ins) or "batch" in outs or "seq" not in outs


def _mixes_batch(call: ModelCall) -> bool:
    """Whether changing sample 0 of the input changes the other samples' outputs: then the axis named ``batch`` is
    really time (a seq-first loop fed a batch-first layout, or the other way round)."""
    torch = require_torch()
    data = [t for t in call.io.data_inputs if "batch" in t.shape and "seq" in t.shape and t.role is None]
    outs = [k for k, t in enumerate(call.io.outputs) if "batch" in t.shape and not t.state]
    if call.fixed or not data or not outs:
        return False
    t = data[0]
    feeds = random_feeds(call.io, 3, 5, np.random.default_rng(3), dims=symbol_values(call.contract, 0))
    changed = dict(feeds)
    a = np.array(feeds[t.name], copy=True)
    first = [slice(None)] * a.ndim
    first[t.shape.index("batch")] = 0
    if t.value_range:
        lo, hi = t.value_range
        a[tuple(first)] = lo + (a[tuple(first)] - lo + 1) % max(hi - lo, 1)
    else:
        a[tuple(first)] += 1.0
    changed[t.name] = a
    try:
        with module_state_guard(call.module), torch.no_grad():
            before, after = call.run(feeds), call.run(changed)
    except Exception:  # noqa: BLE001 - the probe itself does not run: say nothing
        return False
    for k in outs:
        spec = call.io.outputs[k]
        ax = spec.shape.index("batch")
        x, y = (np.take(v[spec.name], range(1, v[spec.name].shape[ax]), axis=ax) for v in (before, after))
        if x.shape == y.shape and not np.allclose(x, y, rtol=1e-5, atol=1e-6):
            return True
    return False


def check_activations(module, batch: int, seq: int) -> None:
    """Refuse (BadInput) running ``module`` at ``batch`` x ``seq`` when its activations alone would not fit: per
    sample and step, at least one float per output row of each weight matrix (an LSTM's 4 x hidden gates, a Linear's
    outputs). The input array is checked where it is made; this is what a long sequence costs inside the model
    (a --static 1x100000000 would otherwise be found out by the kernel's out-of-memory killer)."""
    from edgelstm.options import check_alloc

    try:
        width = sum(int(p.shape[0]) for p in module.parameters() if p.dim() >= 2)
    except Exception:  # noqa: BLE001 - a module without torch parameters: nothing to estimate
        return
    check_alloc([int(batch), int(seq), max(width, 1)], 4, what=f"running the model at batch {batch} x seq {seq}",
                hint=f"use a shorter {opt('seq_len')}")


def resolve_call(module, options: InputOptions = InputOptions()) -> ModelCall:
    """The model's contract, proved by running it. Of the layouts the model runs on, the first whose outputs keep
    the batch axis, and keep its samples apart, wins. A model that runs on none at the usual batch sizes is tried at batch 1 (one-token encoders
    that ``view(1, 1, -1)`` their input). BadInput (one line, naming the flags that fix it) otherwise."""
    if options.static:
        check_activations(module, *options.static)
    contracts = [_as_float32(c) for c in plan_contracts(module, options)]
    first_error: str | None = None
    fallback: ModelCall | None = None
    for batch_one in (False, True):
        if batch_one and (options.static or fallback is not None):
            break
        for contract in contracts:
            contract = discover_ranges(module, contract.batch_fixed(1) if batch_one else contract)
            attempts = [(options.static,) * 2] if options.static else [BATCH_ONE_POINTS if batch_one else PROBE_POINTS]
            attempts += [(p, p) for p in options.fallback_points if not options.static]
            for points in attempts:
                try:
                    call = probe(module, contract if points[0] != points[1] else contract.fixed(*points[0]), points)
                except BadInput:
                    raise
                except Exception as exc:  # noqa: BLE001 - the model refused this layout: try the next one
                    if first_error is None:
                        described = ", ".join(t.describe() for t in contract.inputs)
                        first_error = f"the model does not run on {described}: {_first_line(exc)}"
                    continue
                if _keeps_batch(call) and not _mixes_batch(call):
                    return call
                fallback = fallback or call
                break
    if fallback is not None:
        return fallback
    hint = (f"describe its inputs with {opt('input')} NAME:DTYPE[DIMS] (repeatable, forward order; "
            f"e.g. {opt('input')} x:float32[batch,seq,8]), {opt('input_size')}, or, for a model that takes one "
            f"fixed shape, {opt('static')} with its batch and sequence length")
    raise BadInput(first_error or "the model does not run on any inferred input", hint=hint)
