"""How a candidate's inputs and outputs line up with the reference's: output and input maps, the
candidate's feeds made from the reference's data, and the I/O facts (fixed batch, fixed sequence, time
axis) that shape a validation run. Pure: specs and arrays in, maps and arrays out."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, IOSpec, TensorSpec, is_state
from edgelstm.errors import BadInput


def data_inputs(spec: IOSpec) -> list[TensorSpec]:
    """The inputs that are not recurrent state (h0/c0)."""
    return [t for t in spec.inputs if not is_state(t, STATE_INPUTS)]


def feature_size(spec: IOSpec) -> int | None:
    data = data_inputs(spec)
    if len(data) == 1 and data[0].shape and isinstance(data[0].shape[-1], int):
        return int(data[0].shape[-1])
    return None


def fixed_batch(spec: IOSpec) -> int | None:
    for t in data_inputs(spec):
        if t.shape and isinstance(t.shape[0], int) and t.shape[0] > 0:
            return int(t.shape[0])
    return None


def fixed_seq(spec: IOSpec) -> int | None:
    for t in data_inputs(spec):
        if len(t.shape) >= 3 and isinstance(t.shape[1], int) and t.shape[1] > 0:
            return int(t.shape[1])
    return None


def time_axis(t: TensorSpec | None) -> int | None:
    if t is None:
        return None
    return t.shape.index("seq") if "seq" in t.shape else None


def map_outputs(reference: IOSpec, candidate: IOSpec, *, positional_fallback: bool = False) -> dict[str, str]:
    """reference output name -> candidate output name. Candidate hn/cn are ignored when the reference
    has no state outputs (and the reference's when the candidate has none). Names must match (else
    BadInput naming them); with `positional_fallback` (the reference is a torch model whose output names
    edgelstm invented) non-state outputs map in order."""
    cand_all = candidate.output_names
    cand_has_state = any(is_state(t, STATE_OUTPUTS) for t in candidate.outputs)
    # a stateless candidate cannot return state: compare the reference's data outputs only
    ref_names = [t.name for t in reference.outputs if cand_has_state or not is_state(t, STATE_OUTPUTS)]
    ref_has_state = any(is_state(t, STATE_OUTPUTS) for t in reference.outputs if t.name in ref_names)
    cand_names = [t.name for t in candidate.outputs if ref_has_state or not is_state(t, STATE_OUTPUTS)]
    missing = [n for n in ref_names if n not in cand_all]
    extra = [n for n in cand_names if n not in ref_names]
    if not missing and not extra:
        mapping = {n: n for n in ref_names}
    elif positional_fallback and len(ref_names) == len(cand_names):
        mapping = dict(zip(ref_names, cand_names))
    else:
        parts = []
        if missing:
            parts.append(f"lacks output(s) {missing}")
        if extra:
            parts.append(f"has output(s) {extra} the reference does not")
        raise BadInput(f"the candidate's outputs do not match the reference's: it {' and '.join(parts)} "
                       f"(reference {ref_names}, candidate {cand_all})")
    ref_specs = {t.name: t for t in reference.outputs}
    cand_specs = {t.name: t for t in candidate.outputs}
    for r, c in mapping.items():
        rs, cs = ref_specs[r].shape, cand_specs[c].shape
        if rs and cs and len(rs) != len(cs):
            raise BadInput(f"output {c!r}: the candidate's shape {list(cs)} has rank {len(cs)}, the reference's "
                           f"{list(rs)} has rank {len(rs)}")
        for axis, (a, b) in enumerate(zip(rs, cs)):
            if isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0 and a != b:
                raise BadInput(f"output {c!r}: the candidate has {b} on axis {axis}, the reference {a} "
                               f"(reference {list(rs)}, candidate {list(cs)})")
    return mapping


def map_inputs(reference: IOSpec, candidate: IOSpec) -> dict[str, str]:
    """candidate data input name -> reference data input name (renaming a single differently named input)."""
    ref_d, cand_d = [t.name for t in data_inputs(reference)], [t.name for t in data_inputs(candidate)]
    if set(cand_d) <= set(ref_d):
        return {n: n for n in cand_d}
    if len(ref_d) == 1 and len(cand_d) == 1:
        return {cand_d[0]: ref_d[0]}
    raise BadInput(f"the candidate's inputs {cand_d} do not match the reference's {ref_d}")


def candidate_feeds(batch: Mapping[str, np.ndarray], in_map: Mapping[str, str],
                    cand_io: IOSpec) -> dict[str, np.ndarray]:
    """A batch of the reference's data as the candidate's feeds (renamed; zero state where missing)."""
    from edgelstm.data import with_default_state

    feeds = {c: batch[r] for c, r in in_map.items()}
    for t in cand_io.inputs:
        if t.name in batch and t.name not in feeds:  # state provided by the data
            feeds[t.name] = batch[t.name]
    return with_default_state(cand_io, feeds)


def check_labels_fit(labels: np.ndarray, n: int, out: TensorSpec, kind: str) -> None:
    """Labels must hold one class per sample (classification) or the output's values per sample."""
    per_sample = int(np.asarray(labels).size // max(1, n))
    if kind == "classification":
        want = 1
    else:
        dims = [d for i, d in enumerate(out.shape) if i != 0]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            return  # symbolic (e.g. seq) dims: checked when the outputs exist
        want = int(np.prod(dims)) if dims else 1
    if per_sample != want or np.asarray(labels).size != per_sample * n:
        raise BadInput(f"labels 'y' have shape {list(np.shape(labels))}, but {kind} on output {out.name!r} "
                       f"{list(out.shape)} needs {want} value(s) per sample")


def refuse_unused_torch_options(reference: Any, candidate: Any, inputs: Any, input_size: int | None,
                                factory: str | None) -> None:
    """The options that describe a torch model's forward, given when neither side is a torch model, would be
    silently ignored (the files state their inputs): refused naming them."""
    from pathlib import Path

    from edgelstm.artifacts.artifact import artifact_kind
    from edgelstm.errors import opt
    from edgelstm.options import ArtifactKind, Backend

    def is_torch(a: Any) -> bool:
        if isinstance(a, (str, Path)):
            try:
                return artifact_kind(a) == ArtifactKind.torch
            except BadInput:
                return True  # an unknown file: reported when it is opened
        from edgelstm.runners.contract import as_runner, is_runner

        # an nn.Module is a torch model; a runner that does not say its backend is taken for one
        return not is_runner(a) or (as_runner(a).backend or Backend.torch) == Backend.torch

    given = [name for name, value in (("input", getattr(inputs, "inputs", ())),
                                      ("state_arg", getattr(inputs, "state_arg", None)),
                                      ("input_size", input_size), ("factory", factory)) if value]
    if given and not (is_torch(reference) or is_torch(candidate)):
        raise BadInput(f"{' and '.join(opt(g) for g in given)} describe{'s' if len(given) == 1 else ''} a torch model, "
                       f"but neither {opt('reference')} {Path(str(reference)).name} nor {opt('candidate')} "
                       f"{Path(str(candidate)).name} is one (their inputs come from the files); drop "
                       f"{'it' if len(given) == 1 else 'them'}")
