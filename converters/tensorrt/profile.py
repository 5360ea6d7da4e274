"""Optimization profiles: min/opt/max shapes per network input from the --batch/--seq ranges, by axis role
(data inputs: axis 0 batch, axis 1 seq; state inputs h0/c0: axis 1 batch; symbolic names win)."""

from __future__ import annotations

from typing import Mapping

from edgelstm.converters.tensorrt.options import DEFAULT_BATCH, DEFAULT_SEQ, Range, check_range
from edgelstm.artifacts.iospec import STATE_INPUTS, IOSpec, TensorSpec
from edgelstm.errors import BadInput, opt

Shapes = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

_BATCH_NAMES = ("batch", "batch_size", "n")
_SEQ_NAMES = ("seq", "sequence", "seq_len", "time", "t")


def _axis_roles(spec: TensorSpec | None, name: str, rank: int) -> list[str | None]:
    state = name in STATE_INPUTS or bool(spec and spec.state)
    roles: list[str | None] = []
    for axis in range(rank):
        sym = spec.shape[axis] if spec is not None and axis < len(spec.shape) else None
        if isinstance(sym, str) and sym.lower() in _BATCH_NAMES:
            roles.append("batch")
        elif isinstance(sym, str) and sym.lower() in _SEQ_NAMES:
            roles.append("seq")
        elif state:
            roles.append("batch" if axis == 1 else None)
        elif isinstance(sym, str) and sym != "?" and any(d in ("batch", "seq") for d in spec.shape):
            roles.append("seq")  # another named axis (a decoder's encoder length): sized like seq, as edgelstm feeds it
        else:
            roles.append({0: "batch", 1: "seq"}.get(axis))
    return roles


def plan_profile(inputs: list[tuple[str, tuple[int, ...]]], spec: IOSpec | None, batch: Range | int | str | None,
                 seq: Range | int | str | None) -> Shapes:
    """min/opt/max shapes per network input. Dynamic dims (-1) take the batch or seq range by role; fixed dims
    stay fixed, and a range given for a fixed axis must be that size (d or d:d:d)."""
    given = {"batch": check_range(batch, "batch"), "seq": check_range(seq, "seq")}
    ranges = {"batch": given["batch"] or DEFAULT_BATCH, "seq": given["seq"] or DEFAULT_SEQ}
    specs = {t.name: t for t in spec.inputs} if spec else {}
    out: Shapes = {}
    for name, shape in inputs:
        roles = _axis_roles(specs.get(name), name, len(shape))
        lo, mid, hi = [], [], []
        for axis, (d, role) in enumerate(zip(shape, roles)):
            if d is None or int(d) < 0:
                if role is None:
                    raise BadInput(f"input {name!r} axis {axis} is dynamic but is neither the batch nor the sequence "
                                   f"axis (shape {list(shape)}); export it with a fixed size")
                r = ranges[role]
            else:
                d = int(d)
                if role and given[role] is not None and given[role] != (d, d, d):
                    raise BadInput(f"{opt(role)} {':'.join(map(str, given[role]))} does not fit input {name!r}: its "
                                   f"{role} axis {axis} is fixed at {d}; pass {opt(role)} {d} (or leave it out), or "
                                   "re-export it without `edgelstm convert --static` for a range")
                r = (d, d, d)
            lo.append(r[0]); mid.append(r[1]); hi.append(r[2])  # noqa: E702
        out[name] = (tuple(lo), tuple(mid), tuple(hi))
    return out


def calibration_shapes(shapes: Shapes, feeder) -> dict[str, tuple[int, ...]]:
    """The one fixed shape TensorRT calibrates at: the first calibration batch's, or the opt shapes when only a
    cache is reused (nothing is fed)."""
    if feeder.source is None:
        return {n: s[1] for n, s in shapes.items()}
    calib = feeder.first_batch_shapes()
    missing = [n for n in shapes if n not in calib]
    if missing:
        raise BadInput(f"calibration data lacks input(s) {missing}; it has {sorted(calib)}")
    return {n: tuple(calib[n]) for n in shapes}


def profile_dict(shapes: Mapping[str, tuple]) -> dict[str, dict[str, list[int]]]:
    return {n: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for n, s in shapes.items()}
