"""Verification of an exported ONNX model against torch: a grid of batches and sequence lengths, and for
stateful exports a streaming check (step by step and in chunks, state carried) against the full sequence.
Every failing check is collected before the caller decides.

The tolerance is data (per output, with a default) and scaled to the output: an error is measured against
the reference's *spread* (its standard deviation) and magnitude, and as a relative L2 norm, so a small output
cannot hide a wrong export under an absolute tolerance (a traced loop at example length 1 left an error of 3x
the output's spread under ``1e-4 + 1e-3*|ref|``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class OutputTolerance:
    """One output passes when ``max|got-ref| <= atol + spread*std(ref) + magnitude*max|ref|`` and
    ``||got-ref|| <= rel_l2*||ref|| + atol*sqrt(n)``. ``std(ref)`` falls back to ``max|ref|`` for an output
    with a single value (or no variation)."""

    spread: float = 1e-3      # max-abs error, relative to the reference's spread
    magnitude: float = 2e-6   # float32 round-off of large values (about 16 ulps of the largest)
    rel_l2: float = 1e-3      # ||got - ref|| / ||ref||
    atol: float = 1e-6        # floor for outputs that are (nearly) zero

    def measure(self, ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
        """max_abs, rel_l2, spread and ratio (worst of error / allowed over both criteria; <= 1 passes)."""
        if ref.size == 0:
            return {"max_abs": 0.0, "rel_l2": 0.0, "spread": 0.0, "ratio": 0.0}
        r, g = ref.astype(np.float64), got.astype(np.float64)
        diff = g - r
        max_abs = float(np.max(np.abs(diff)))
        peak = float(np.max(np.abs(r)))
        spread = float(np.std(r)) if r.size > 1 else 0.0
        spread = spread if spread > 0 else peak
        ref_norm, diff_norm = float(np.linalg.norm(r)), float(np.linalg.norm(diff))
        rel_l2 = diff_norm / ref_norm if ref_norm > 0 else (0.0 if diff_norm == 0 else float("inf"))
        allowed_abs = self.atol + self.spread * spread + self.magnitude * peak
        allowed_l2 = self.rel_l2 * ref_norm + self.atol * np.sqrt(r.size)
        ratio = max(max_abs / allowed_abs, diff_norm / allowed_l2)
        return {"max_abs": max_abs, "rel_l2": rel_l2, "spread": spread, "ratio": float(ratio)}


@dataclass(frozen=True)
class Tolerance:
    """Per-output tolerances with a default: ``Tolerance.of(y=OutputTolerance(spread=1e-2))``."""

    default: OutputTolerance = field(default_factory=OutputTolerance)
    outputs: tuple[tuple[str, OutputTolerance], ...] = ()

    @classmethod
    def of(cls, default: OutputTolerance | None = None, **per_output: OutputTolerance) -> "Tolerance":
        return cls(default or OutputTolerance(), tuple(sorted(per_output.items())))

    def for_output(self, name: str) -> OutputTolerance:
        return dict(self.outputs).get(name, self.default)

    def to_dict(self) -> dict[str, Any]:
        return {"default": vars(self.default).copy(), **{n: vars(t).copy() for n, t in self.outputs}}


@dataclass
class CheckResult:
    name: str
    passed: bool
    max_abs: float = float("nan")
    detail: str = ""
    rel_l2: float = float("nan")
    ratio: float = float("nan")   # worst error / allowed over the outputs (<= 1 passes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "max_abs": self.max_abs, "rel_l2": self.rel_l2,
                "ratio": self.ratio, "detail": self.detail}


@dataclass
class VerifyReport:
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def max_abs(self) -> float:
        vals = [c.max_abs for c in self.checks if np.isfinite(c.max_abs)]
        return max(vals) if vals else float("nan")

    def summary(self) -> str:
        f = self.failures
        if not f:
            return f"{len(self.checks)} checks passed (max |diff| {self.max_abs:.2e})"
        return "; ".join(f"{c.name}: {c.detail}" for c in f[:3]) + (f" (+{len(f) - 3} more)" if len(f) > 3 else "")


def squeezed_only(ref_shape: tuple, got_shape: tuple) -> bool:
    """``got`` keeps size-1 axes that torch squeezed (``x.squeeze()`` at batch 1), nothing else differs."""
    return (len(got_shape) > len(ref_shape) and int(np.prod(ref_shape)) == int(np.prod(got_shape))
            and [d for d in ref_shape if d != 1] == [d for d in got_shape if d != 1])


def compare(name: str, ref: Sequence[np.ndarray], got: Sequence[np.ndarray], out_names: Sequence[str],
            tol: Tolerance, *, kept_axes: Sequence[str] = ()) -> CheckResult:
    """``kept_axes``: outputs allowed to keep size-1 axes that torch squeezes (see ``squeezed_only``)."""
    if len(ref) != len(got):
        return CheckResult(name, False, detail=f"{len(got)} outputs, torch has {len(ref)}")
    worst_abs, worst_l2, worst_ratio, problems = 0.0, 0.0, 0.0, []
    for n, r, g in zip(out_names, ref, got):
        r, g = np.asarray(r), np.asarray(g)
        if r.shape != g.shape:
            if n in kept_axes and squeezed_only(r.shape, g.shape):
                g = g.reshape(r.shape)
            else:
                problems.append(f"{n} shape {list(g.shape)} != torch {list(r.shape)}")
                continue
        if not np.isfinite(g).all() and not np.array_equal(np.isfinite(g), np.isfinite(r)):
            problems.append(f"{n} has NaN/inf")
            continue
        if not np.isfinite(r).all():  # compare where torch is finite; non-finite positions must match exactly
            same = np.array_equal(r[~np.isfinite(r)], g[~np.isfinite(r)], equal_nan=True)
            if not same:
                problems.append(f"{n} has NaN/inf where torch differs")
                continue
            r, g = r[np.isfinite(r)], g[np.isfinite(r)]
        m = tol.for_output(n).measure(r, g)
        worst_abs, worst_l2 = max(worst_abs, m["max_abs"]), max(worst_l2, m["rel_l2"])
        worst_ratio = max(worst_ratio, m["ratio"])
        if m["ratio"] > 1.0:
            problems.append(f"{n} differs by {m['max_abs']:.3g} ({m['max_abs'] / m['spread']:.2g}x its spread "
                            f"{m['spread']:.2g}, rel L2 {m['rel_l2']:.2g})" if m["spread"] > 0
                            else f"{n} differs by {m['max_abs']:.3g} (torch gives all zeros)")
    return CheckResult(name, not problems, worst_abs, "; ".join(problems), worst_l2, worst_ratio)


def verify_grid(torch_fn: Callable[..., list[np.ndarray]], ort_fn: Callable[[dict], list[np.ndarray]],
                make_feeds: Callable[[int, int], dict[str, np.ndarray]], out_names: Sequence[str],
                batches: Sequence[int], seqs: Sequence[int], tol: Tolerance, *,
                kept_axes: Sequence[str] = ()) -> VerifyReport:
    report = VerifyReport()
    for b in batches:
        for t in seqs:
            feeds = make_feeds(b, t)
            name = f"batch={b} seq={t}"
            try:
                ref = torch_fn(feeds)
            except Exception as exc:  # noqa: BLE001 - torch itself cannot run this shape
                report.checks.append(CheckResult(name, False, detail=f"torch failed: {first_line(exc)}"))
                continue
            try:
                got = ort_fn(feeds)
            except Exception as exc:  # noqa: BLE001
                report.checks.append(CheckResult(name, False, detail=f"onnxruntime failed: {first_line(exc)}"))
                continue
            report.checks.append(compare(name, ref, got, out_names, tol, kept_axes=kept_axes))
    return report


def verify_streaming(torch_full: Callable[[np.ndarray], list[np.ndarray]], ort_fn: Callable[[dict], list[np.ndarray]],
                     x: np.ndarray, zero_state: Mapping[str, np.ndarray], out_names: Sequence[str],
                     state_out_names: Sequence[str], chunk_sizes: Sequence[int], tol: Tolerance,
                     seq_axes: dict[str, int] | None = None, *, input_name: str = "x", seq_axis: int = 1) -> VerifyReport:
    """Run x through the stateful ONNX model in chunks, carrying state; the final outputs (y of the last
    chunk and the final state) must equal the full-sequence torch outputs."""
    report = VerifyReport()
    ref = torch_full(x)
    state_in_names = list(zero_state)
    length = x.shape[seq_axis]
    for chunk in chunk_sizes:
        name = f"stream chunk={chunk} seq={length} batch={x.shape[1 - seq_axis]}"
        try:
            state = dict(zero_state)
            outs: list[np.ndarray] = []
            pieces: dict[str, list[np.ndarray]] = {n: [] for n in (seq_axes or {})}
            for start in range(0, length, chunk):
                piece = np.take(x, np.arange(start, min(start + chunk, length)), axis=seq_axis)
                outs = ort_fn({input_name: piece, **state})
                named = dict(zip(out_names, outs))
                for n in pieces:
                    pieces[n].append(named[n])
                state = {i: named[o] for i, o in zip(state_in_names, state_out_names)}
            outs = [np.concatenate(pieces[n], axis=seq_axes[n]) if n in pieces else o
                    for n, o in zip(out_names, outs)]
        except Exception as exc:  # noqa: BLE001
            report.checks.append(CheckResult(name, False, detail=f"onnxruntime failed: {first_line(exc)}"))
            continue
        report.checks.append(compare(name, ref, outs, out_names, tol))
    return report


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first meaningful line of an exception's text (exporters attach whole graph dumps), capped."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


_first_line = first_line  # the older private name
