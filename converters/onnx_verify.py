"""Verification of an exported ONNX model against torch: a grid of batches and sequence lengths, and for
stateful exports a streaming check (step by step and in chunks, state carried) against the full sequence.
Every failing check is collected before the caller decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    atol: float = 1e-4
    rtol: float = 1e-3

    def error(self, ref: np.ndarray, got: np.ndarray) -> float:
        """max |got-ref| / (atol + rtol*|ref|): <= 1 passes."""
        return float(np.max(np.abs(got - ref) / (self.atol + self.rtol * np.abs(ref)))) if ref.size else 0.0


@dataclass
class CheckResult:
    name: str
    passed: bool
    max_abs: float = float("nan")
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "max_abs": self.max_abs, "detail": self.detail}


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
        return "; ".join(f"{c.name}: {c.detail}" for c in f[:4]) + (f" (+{len(f) - 4} more)" if len(f) > 4 else "")


def compare(name: str, ref: Sequence[np.ndarray], got: Sequence[np.ndarray], out_names: Sequence[str],
            tol: Tolerance) -> CheckResult:
    if len(ref) != len(got):
        return CheckResult(name, False, detail=f"{len(got)} outputs, torch has {len(ref)}")
    worst_abs, problems = 0.0, []
    for n, r, g in zip(out_names, ref, got):
        if r.shape != g.shape:
            problems.append(f"{n} shape {list(g.shape)} != torch {list(r.shape)}")
            continue
        if not np.isfinite(g).all():
            problems.append(f"{n} has NaN/inf")
            continue
        abs_err = float(np.max(np.abs(g - r))) if r.size else 0.0
        worst_abs = max(worst_abs, abs_err)
        if tol.error(r, g) > 1.0:
            problems.append(f"{n} differs by {abs_err:.3g}")
    return CheckResult(name, not problems, worst_abs, "; ".join(problems))


def verify_grid(torch_fn: Callable[..., list[np.ndarray]], ort_fn: Callable[[dict], list[np.ndarray]],
                make_feeds: Callable[[int, int], dict[str, np.ndarray]], out_names: Sequence[str],
                batches: Sequence[int], seqs: Sequence[int], tol: Tolerance) -> VerifyReport:
    report = VerifyReport()
    for b in batches:
        for t in seqs:
            feeds = make_feeds(b, t)
            name = f"batch={b} seq={t}"
            try:
                ref = torch_fn(feeds)
            except Exception as exc:  # noqa: BLE001 - torch itself cannot run this shape: skip, not fail
                report.checks.append(CheckResult(name, False, detail=f"torch failed: {_first_line(exc)}"))
                continue
            try:
                got = ort_fn(feeds)
            except Exception as exc:  # noqa: BLE001
                report.checks.append(CheckResult(name, False, detail=f"onnxruntime failed: {_first_line(exc)}"))
                continue
            report.checks.append(compare(name, ref, got, out_names, tol))
    return report


def verify_streaming(torch_full: Callable[[np.ndarray], list[np.ndarray]], ort_fn: Callable[[dict], list[np.ndarray]],
                     x: np.ndarray, zero_state: dict[str, np.ndarray], out_names: Sequence[str],
                     state_out_names: Sequence[str], chunk_sizes: Sequence[int], tol: Tolerance,
                     seq_axes: dict[str, int] | None = None) -> VerifyReport:
    """Run x through the stateful ONNX model in chunks, carrying state; the final outputs (y of the last
    chunk and the final state) must equal the full-sequence torch outputs."""
    report = VerifyReport()
    ref = torch_full(x)
    state_in_names = list(zero_state)
    for chunk in chunk_sizes:
        name = f"stream chunk={chunk} seq={x.shape[1]} batch={x.shape[0]}"
        try:
            state = dict(zero_state)
            outs: list[np.ndarray] = []
            pieces: dict[str, list[np.ndarray]] = {n: [] for n in (seq_axes or {})}
            for start in range(0, x.shape[1], chunk):
                outs = ort_fn({"x": x[:, start:start + chunk], **state})
                named = dict(zip(out_names, outs))
                for n in pieces:
                    pieces[n].append(named[n])
                state = {i: named[o] for i, o in zip(state_in_names, state_out_names)}
            outs = [np.concatenate(pieces[n], axis=seq_axes[n]) if n in pieces else o
                    for n, o in zip(out_names, outs)]
        except Exception as exc:  # noqa: BLE001
            report.checks.append(CheckResult(name, False, detail=f"onnxruntime failed: {_first_line(exc)}"))
            continue
        report.checks.append(compare(name, ref, outs, out_names, tol))
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:240]
