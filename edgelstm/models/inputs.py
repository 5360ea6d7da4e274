"""The input contract of a torch model: what its forward arguments are, stated by the user or inferred.

``--input NAME:DTYPE[DIMS]`` (repeatable, in forward-argument order) states one data argument: DTYPE is float32,
float16, int64, int32 or bool; DIMS are comma-separated symbolic names (``batch``, ``seq`` or others) or integers;
an integer input may end with ``@LOW:HIGH``, the half-open range of its values (token ids). Without ``--input`` the
first argument is inferred from the model's first layer (Embedding -> int64 token ids in [0, num_embeddings);
Linear, Conv1d, BatchNorm1d, LayerNorm or the RNN itself -> float features), laid out ``[seq, batch, ...]`` when the
first recurrent layer is not ``batch_first``. Later arguments: the recurrent state (``forward(x, hidden)``, named by
``--state-arg`` or detected by name / a ``None`` default) becomes state inputs h0/c0 (GRU: h0); a lengths argument
(``forward(x, lengths)`` for ``pack_padded_sequence``) becomes ``lengths: int64[batch]``; an argument with a default
keeps it. Which candidate layout the model really takes is decided by running it (``edgelstm.models.calling``).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from edgelstm.artifacts.iospec import LENGTHS, TensorSpec
from edgelstm.errors import BadInput, opt, require_torch
from edgelstm.models.state_args import StateArg, _kind, _rnns, state_arg_of, state_candidates  # noqa: F401

INPUT_DTYPES = ("float32", "float16", "float64", "int64", "int32", "bool")
INPUT_SYNTAX = "NAME:DTYPE[DIMS] (e.g. tokens:int64[seq,batch]@0:10000 or x:float32[batch,seq,8])"
_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<dtype>\w+)\s*\[(?P<dims>[^\]]*)\]"
                   r"\s*(?:@\s*(?P<lo>-?\d+)\s*:\s*(?P<hi>-?\d+))?\s*$")
_STATE_NAME = re.compile(r"hidden|state|^hx$|^hc$|^h0?$|^h_0$|^carry$", re.I)
_LENGTH_NAME = re.compile(r"len", re.I)
_RESERVED = ("h0", "c0", "hn", "cn")


def parse_input(text: str) -> TensorSpec:
    """One ``--input`` value as a TensorSpec (exit 2 with the syntax on anything else)."""
    m = _SPEC.match(text or "")
    if not m:
        raise BadInput(f"{opt('input')} {text!r} is not {INPUT_SYNTAX}")
    name, dtype = m["name"], m["dtype"].lower()
    if dtype not in INPUT_DTYPES:
        raise BadInput(f"{opt('input')} {text!r}: dtype {dtype!r} is not one of {', '.join(INPUT_DTYPES)}")
    if name in _RESERVED:
        raise BadInput(f"{opt('input')} {text!r}: {name!r} is the name of edgelstm's state I/O; name the state "
                       f"argument with {opt('state_arg')} instead")
    dims: list[int | str] = []
    for part in [p.strip() for p in m["dims"].split(",")] if m["dims"].strip() else []:
        if re.fullmatch(r"\d+", part) and int(part) > 0:
            dims.append(int(part))
        elif re.fullmatch(r"[A-Za-z_]\w*", part):
            dims.append(part)
        else:
            raise BadInput(f"{opt('input')} {text!r}: dimension {part!r} is neither a positive integer nor a name")
    value_range = None
    if m["lo"] is not None:
        if dtype not in ("int64", "int32"):
            raise BadInput(f"{opt('input')} {text!r}: a value range @LOW:HIGH applies to int64/int32 inputs only")
        lo, hi = int(m["lo"]), int(m["hi"])
        if lo >= hi:
            raise BadInput(f"{opt('input')} {text!r}: the range @{lo}:{hi} is empty (LOW must be below HIGH; "
                           "HIGH is excluded)")
        value_range = (lo, hi)
    role = LENGTHS if dtype in ("int64", "int32", "float32", "float64") and _LENGTH_NAME.search(name) \
        and len(dims) == 1 and value_range is None else None  # float lengths: relative, in (0, 1]
    return TensorSpec(name, dtype, tuple(dims), False, value_range, role)


def parse_inputs(texts: Sequence[str] | None) -> tuple[TensorSpec, ...]:
    specs = tuple(parse_input(t) for t in (texts or ()))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadInput(f"{opt('input')} names {dup} more than once")
    return specs


@dataclass(frozen=True)
class InputOptions:
    """How to call a torch model: the same options on every command (convert, validate, bench, inspect, [model])."""

    inputs: tuple[TensorSpec, ...] = ()            # --input, forward-argument order (state argument excluded)
    input_size: int | None = None                  # features per step when the first layer does not say
    state_arg: str | None = None                   # --state-arg: the forward argument that takes (h, c) / h
    static: tuple[int, int] | None = None          # (batch, seq): the model takes exactly this shape
    fallback_points: tuple[tuple[int, int], ...] = ()  # (batch, seq) to try when the default probe is refused

    def __post_init__(self) -> None:
        if self.input_size is not None and self.input_size < 1:
            raise BadInput(f"{opt('input_size')} must be >= 1, got {self.input_size}")
        refuse_contradictions(self)

    @classmethod
    def from_cli(cls, inputs: Sequence[str] | None = None, input_size: int | None = None,
                 state_arg: str | None = None, static: tuple[int, int] | None = None,
                 fallback_points: Sequence[tuple[int, int]] = ()) -> "InputOptions":
        return cls(parse_inputs(inputs), input_size, state_arg or None, static, tuple(fallback_points))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.describe() for t in self.inputs], "input_size": self.input_size,
                "state_arg": self.state_arg, "static": list(self.static) if self.static else None}


# ----------------------------------------------------------------------------------------------- the forward


@dataclass(frozen=True)
class Param:
    name: str
    has_default: bool = False
    default_none: bool = False
    keyword_only: bool = False   # after a bare * in the signature: passed by keyword


def forward_params(module) -> list[Param]:
    """The forward arguments after self (TorchScript: from its schema); one ``x`` when they cannot be read."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is not None:
        return [Param(a.name, a.has_default_value(), a.has_default_value() and a.default_value is None)
                for a in schema.arguments[1:]]
    try:
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return [Param("x")]
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            break
        has = p.default is not inspect.Parameter.empty
        out.append(Param(p.name, has, has and p.default is None, p.kind == p.KEYWORD_ONLY))
    return out or [Param("x")]


def _forward_source(module) -> str:
    try:
        return inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return getattr(module, "code", "") or ""


@dataclass(frozen=True)
class Contract:
    """Which forward arguments edgelstm feeds and how: ``args`` in forward order, each a data input name or the
    state argument; ``data`` the data inputs' specs (in the same order); arguments not listed keep their default."""

    args: tuple[tuple[str, str], ...]           # (forward argument, input name or "<state>")
    data: tuple[TensorSpec, ...]
    state: StateArg | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    keyword: tuple[str, ...] = ()               # forward arguments passed by keyword (keyword-only ones)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.data + (self.state.specs() if self.state else ())

    @property
    def feature_size(self) -> int | None:
        for t in self.data:
            if not t.is_integer and t.role is None and t.shape and isinstance(t.shape[-1], int):
                return int(t.shape[-1])
        return None

    def fixed(self, batch: int, seq: int) -> "Contract":
        """The same contract with ``batch`` and ``seq`` fixed (a static export, a fixed-shape model)."""
        def fix(t: TensorSpec) -> TensorSpec:
            return replace(t, shape=tuple(batch if d == "batch" else seq if d == "seq" else d for d in t.shape))
        return replace(self, data=tuple(fix(t) for t in self.data))

    def batch_fixed(self, batch: int) -> "Contract":
        """The same contract at one batch size (a model that only runs at batch 1)."""
        data = tuple(replace(t, shape=tuple(batch if d == "batch" else d for d in t.shape)) for t in self.data)
        return replace(self, data=data, state=replace(self.state, batch=batch) if self.state else None)


def _first_layer(module) -> tuple[Any, str, int | None]:
    """(layer, kind, features) of the first layer that consumes the model's input (registration order; see
    ``edgelstm.models.loading.input_layers``); kind "cell" for a hand-written cell, "" when there is none."""
    from edgelstm.models.loading import input_layers

    layers = input_layers(module)
    if not layers:
        return None, "", None
    path, kind, size = layers[0]
    layer = None if kind == "cell" else (module.get_submodule(path) if path else module)
    return layer, kind, size


def _layout(module) -> tuple[str, str]:
    rnns = _rnns(module)
    if rnns and not bool(getattr(rnns[0], "batch_first", False)):
        return ("seq", "batch")
    return ("batch", "seq")


def first_input_candidates(module, name: str, input_size: int | None) -> list[TensorSpec]:
    """Likely specs of the first forward argument, most likely first (the model is run to pick one)."""
    from edgelstm.models.loading import infer_input_size

    order = _layout(module)
    layer, kind, size = _first_layer(module)
    if kind in ("Embedding", "EmbeddingBag") and input_size is None:
        rng = (0, int(layer.weight.shape[0]))
        return [TensorSpec(name, "int64", order, value_range=rng), TensorSpec(name, "int64", ("batch",), value_range=rng),
                TensorSpec(name, "int64", order[::-1], value_range=rng)]
    if input_size is None:
        size = infer_input_size(module) or size  # the first size the model runs on, when layers disagree
    if size is None:  # a torch.export program's module keeps the recurrent weights' names, not the layers
        size = next((int(p.shape[1]) for n, p in module.named_parameters() if n.endswith("weight_ih_l0")), None)
    if input_size is not None and size is not None and input_size != size and kind not in ("Embedding", "EmbeddingBag"):
        raise BadInput(f"{opt('input_size')} {input_size} does not fit the model: its first layer "
                       f"({'a hand-written cell' if kind == 'cell' else kind}) takes {size} features")
    size = input_size or size
    if size is None:
        return []
    seq_major = TensorSpec(name, "float32", (*order, size))
    if kind in ("Conv1d", "BatchNorm1d"):
        return [TensorSpec(name, "float32", ("batch", size, "seq")), seq_major,
                TensorSpec(name, "float32", (*order[::-1], size)), TensorSpec(name, "float32", ("batch", size))]
    out = [seq_major, TensorSpec(name, "float32", (*order[::-1], size))]
    if size == 1:  # one feature per step is often fed as [batch, seq] (x.split(1, dim=1) gives [batch, 1] steps)
        out += [TensorSpec(name, "float32", order), TensorSpec(name, "float32", order[::-1])]
    return out


def _is_state_param(p: Param, forced: str | None) -> bool:
    if forced:
        return p.name == forced
    return bool(_STATE_NAME.search(p.name)) or (p.default_none and not _LENGTH_NAME.search(p.name)
                                                  and "mask" not in p.name.lower())


def refuse_contradictions(options: InputOptions, forward_names: Sequence[str] = ()) -> None:
    """Options that contradict each other are refused in one line naming both (never one silently ignored);
    with the model's forward argument names, also a state argument that names the data argument."""
    state = options.state_arg
    if state and forward_names and state == forward_names[0]:
        raise BadInput(f"{opt('state_arg')} {state!r} names the model's first forward argument, its data input; "
                       f"name the argument that takes the recurrent state "
                       f"({', '.join(forward_names[1:]) or 'the forward takes no other'})")
    if state and state in {t.name for t in options.inputs}:
        raise BadInput(f"{opt('state_arg')} {state!r} and {opt('input')} {state}:... describe the same argument "
                       "as the recurrent state and as data; give one of them")
    if options.inputs and options.input_size is not None:
        sizes = {t.shape[-1] for t in options.inputs
                 if t.role is None and not t.is_integer and t.shape and isinstance(t.shape[-1], int)}
        if sizes != {options.input_size}:
            said = ", ".join(t.describe() for t in options.inputs)
            raise BadInput(f"{opt('input_size')} {options.input_size} contradicts {opt('input')} {said}"
                           + (f" ({sorted(sizes)[0]} feature(s) per step)" if len(sizes) == 1 else "")
                           + f"; the input descriptions state the shapes: drop {opt('input_size')}")


def plan_contracts(module, options: InputOptions = InputOptions()) -> list[Contract]:
    """The contracts to try, most likely first. Raises BadInput (one line, naming the flag) when an argument
    cannot be inferred."""
    declared = getattr(module, "_edgelstm_inputs", None)  # a model that states its inputs (an imported Keras model)
    if declared and not options.inputs:
        options = replace(options, inputs=tuple(declared))
    params = forward_params(module)
    names = [p.name for p in params]
    if options.state_arg and options.state_arg not in names:
        raise BadInput(f"{opt('state_arg')} {options.state_arg!r} is not an argument of the model's forward "
                       f"({', '.join(names)})")
    refuse_contradictions(options, names)
    state_params = [p for p in params[1:] if _is_state_param(p, options.state_arg)]
    candidates = state_candidates(module, state_params[0], bool(options.state_arg)) if state_params else []
    if options.state_arg and not candidates:
        raise BadInput(f"{opt('state_arg')} needs an nn.LSTM/nn.GRU or an LSTM/GRU cell in the model to size the "
                       "state; found none")
    state = candidates[0] if candidates else None
    rest = [p for p in params if state is None or p.name != state.param]
    notes: list[str] = []
    if options.inputs:
        if len(options.inputs) > len(rest):
            raise BadInput(f"{len(options.inputs)} {opt('input')}s given, but the model's forward takes "
                           f"{len(rest)} data argument(s) ({', '.join(p.name for p in rest) or 'none'})")
        missing = [p.name for p in rest[len(options.inputs):] if not p.has_default]
        if missing:
            raise BadInput(f"the model's forward also takes {missing}, which no {opt('input')} describes",
                           hint=f"add {opt('input')} NAME:DTYPE[DIMS] for each, in forward order")
        data = tuple(options.inputs)
        firsts = [data]
    else:
        first = first_input_candidates(module, rest[0].name if rest else "x", options.input_size)
        if not first:
            raise BadInput("cannot infer the model's input (no Embedding, Linear, Conv1d, BatchNorm1d or recurrent "
                           "layer found)", hint=f"pass {opt('input')} NAME:DTYPE[DIMS] or {opt('input_size')}")
        extra: list[TensorSpec] = []
        packs = "pack_padded_sequence" in _forward_source(module)
        for p in rest[1:]:
            if _LENGTH_NAME.search(p.name) or (packs and not p.has_default and not extra):
                extra.append(TensorSpec(p.name, "int64", ("batch",), role=LENGTHS))
            elif p.has_default:
                break
            else:
                raise BadInput(f"the model's forward takes an argument {p.name!r} that edgelstm cannot infer",
                               hint=f"describe every data argument with {opt('input')} NAME:DTYPE[DIMS], in forward "
                                    f"order (e.g. {opt('input')} {first[0].name}:{first[0].dtype}"
                                    f"[{','.join(map(str, first[0].shape))}] {opt('input')} {p.name}:DTYPE[DIMS])")
        # rename "x"-like first inputs to "x" so that artifacts keep edgelstm's usual name for a single input
        firsts = [(replace(t, name="x") if not extra and t.name not in ("x",) and not t.is_integer else t, *extra)
                  for t in first]
        if extra:  # lengths may also be relative (SpeechBrain's wav_lens: float in (0, 1])
            firsts += [(t, *(replace(e, dtype="float32") for e in extra)) for t in first]
    states: list[StateArg | None] = list(candidates) or [None]
    if state is not None and not state.forced and not _STATE_NAME.search(state.param):
        states.append(None)  # a None default that is not the state after all (teacher forcing, an option...)
    keyword = tuple(p.name for p in params if p.keyword_only)
    out = [Contract(_args(params, d, st), d, st, tuple(notes), keyword) for d in firsts for st in states]
    if options.static:
        out = [c.fixed(*options.static) for c in out]
    return out


def _args(params: list[Param], data: Sequence[TensorSpec], state: StateArg | None) -> tuple[tuple[str, str], ...]:
    out, it = [], iter(data)
    for p in params:
        if state is not None and p.name == state.param:
            out.append((p.name, "<state>"))
            continue
        t = next(it, None)
        if t is None:
            break
        out.append((p.name, t.name))
    return tuple(out)
