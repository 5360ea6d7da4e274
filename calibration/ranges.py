"""Range statistics for INT8 calibration, pure numpy: one implementation for every backend that needs
activation ranges (onnxruntime static Q/DQ, TensorRT calibration caches).

Methods (``edgelstm.options.CalibMethod``):

- ``minmax``     the observed [min, max];
- ``percentile`` the ``percentile``-th percentile of |x| (default 99.999), as a symmetric threshold;
- ``entropy``    the threshold on |x| that minimises the KL divergence between the 2048-bin histogram
  and its 128-level quantized version (TensorRT's entropy calibration).

Percentile and entropy thresholds are clipped to the observed range: a non-negative tensor keeps 0 as its
lower end. Statistics stream over a re-iterable source in two passes: min/max first, then histograms of
|x| over [0, absmax] (only percentile and entropy need the second pass), so no activations are held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.options import CalibMethod

DEFAULT_BINS = 2048
DEFAULT_PERCENTILE = 99.999
QUANTIZED_BINS = 128   # int8 symmetric: 127 levels each side + zero


@dataclass(frozen=True)
class TensorRange:
    lo: float
    hi: float
    method: str = "minmax"

    @property
    def absmax(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    def to_dict(self) -> dict[str, float | str]:
        return {"lo": self.lo, "hi": self.hi, "method": self.method}


def minmax(a: np.ndarray) -> tuple[float, float]:
    a = np.asarray(a)
    if a.size == 0:
        return math.inf, -math.inf
    return float(np.min(a)), float(np.max(a))


def abs_histogram(a: np.ndarray, absmax: float, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Histogram of |a| over [0, absmax] in ``bins`` equal bins (values at absmax fall in the last bin)."""
    a = np.abs(np.asarray(a, dtype=np.float64).ravel())
    if absmax <= 0:
        h = np.zeros(bins, dtype=np.int64)
        h[0] = a.size
        return h
    idx = np.minimum((a * (bins / absmax)).astype(np.int64), bins - 1)
    return np.bincount(idx, minlength=bins).astype(np.int64)


def percentile_threshold(hist: np.ndarray, absmax: float, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Upper edge of the first bin where the cumulative share of |x| reaches ``percentile``."""
    if not 0 < percentile <= 100:
        raise BadInput(f"percentile must be in (0, 100], got {percentile}")
    total = float(np.sum(hist))
    if total == 0 or absmax <= 0:
        return float(max(absmax, 0.0))
    cdf = np.cumsum(hist) / total
    i = int(np.searchsorted(cdf, percentile / 100.0, side="left"))
    i = min(i, len(hist) - 1)
    return float((i + 1) * absmax / len(hist))


_KL_FLOOR = 1e-9


def entropy_threshold(hist: np.ndarray, absmax: float, quantized_bins: int = QUANTIZED_BINS,
                      stride: int = 1) -> float:
    """TensorRT-style KL calibration on a histogram of |x| over [0, absmax]: try every threshold bin i in
    [quantized_bins, nbins], fold the tail into bin i-1, quantize the first i bins to ``quantized_bins``
    levels (spreading each level's mass over its non-empty bins) and keep the i with the smallest
    KL(reference || quantized)."""
    hist = np.asarray(hist, dtype=np.float64)
    nbins = hist.size
    if absmax <= 0 or hist.sum() == 0:
        return float(max(absmax, 0.0))
    if nbins <= quantized_bins:
        return float(absmax)
    suffix = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # suffix[i] = sum(hist[i:])
    best_kl, best_i = math.inf, nbins
    for i in range(quantized_bins, nbins + 1, max(1, stride)):
        ref = hist[:i].copy()
        ref[i - 1] += suffix[i]
        nonzero = hist[:i] != 0
        # split the i bins into quantized_bins groups; the last group takes the remainder
        per = i // quantized_bins
        starts = np.arange(quantized_bins) * per
        sums = np.add.reduceat(hist[:i], starts)
        counts = np.add.reduceat(nonzero.astype(np.float64), starts)
        group = np.minimum(np.arange(i) // per, quantized_bins - 1)
        q = np.where(nonzero, (sums / np.maximum(counts, 1))[group], 0.0)
        if ref.sum() <= 0 or q.sum() <= 0:
            continue
        p_n, q_n = ref / ref.sum(), q / q.sum()
        mask = p_n > 0
        # an empty quantized bin under reference mass (the folded tail landing on an empty bin) is heavily
        # penalised rather than infinite, so such thresholds lose without breaking the comparison
        kl = float(np.sum(p_n[mask] * np.log(p_n[mask] / np.maximum(q_n[mask], _KL_FLOOR))))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(best_i * absmax / nbins)


@dataclass
class _Stats:
    lo: float = math.inf
    hi: float = -math.inf
    count: int = 0
    hist: np.ndarray | None = None

    @property
    def absmax(self) -> float:
        return max(abs(self.lo), abs(self.hi)) if self.count else 0.0


@dataclass
class RangeCollector:
    """Streaming per-tensor statistics. Pass 1: ``observe`` every batch (min/max). Pass 2 (only when
    ``needs_histograms``): ``observe_histogram`` every batch again. Then ``ranges()``."""

    method: CalibMethod = CalibMethod.minmax
    percentile: float = DEFAULT_PERCENTILE
    bins: int = DEFAULT_BINS
    quantized_bins: int = QUANTIZED_BINS
    stats: dict[str, _Stats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.method = CalibMethod(self.method)
        if self.bins < self.quantized_bins:
            raise BadInput(f"histogram bins ({self.bins}) must be >= {self.quantized_bins}")

    @property
    def needs_histograms(self) -> bool:
        return self.method != CalibMethod.minmax

    def observe(self, tensors: Mapping[str, np.ndarray]) -> None:
        for name, a in tensors.items():
            a = np.asarray(a)
            if a.dtype.kind != "f" or a.size == 0:
                continue
            if not np.isfinite(a).all():
                raise BadInput(f"calibration produced NaN/inf in tensor {name!r}; check the calibration data")
            s = self.stats.setdefault(name, _Stats())
            lo, hi = minmax(a)
            s.lo, s.hi, s.count = min(s.lo, lo), max(s.hi, hi), s.count + a.size

    def observe_histogram(self, tensors: Mapping[str, np.ndarray]) -> None:
        for name, a in tensors.items():
            s = self.stats.get(name)
            if s is None:
                continue
            h = abs_histogram(a, s.absmax, self.bins)
            s.hist = h if s.hist is None else s.hist + h

    def ranges(self) -> dict[str, TensorRange]:
        out: dict[str, TensorRange] = {}
        for name, s in self.stats.items():
            if not s.count:
                continue
            if self.method == CalibMethod.minmax or s.hist is None:
                out[name] = TensorRange(s.lo, s.hi, "minmax")
                continue
            if self.method == CalibMethod.percentile:
                t = percentile_threshold(s.hist, s.absmax, self.percentile)
            else:
                t = entropy_threshold(s.hist, s.absmax, self.quantized_bins)
            out[name] = TensorRange(max(s.lo, -t), min(s.hi, t), self.method.value)
        return out


def collect_ranges(batches: Iterable[Mapping[str, np.ndarray]], method: CalibMethod = CalibMethod.minmax, *,
                   percentile: float = DEFAULT_PERCENTILE, bins: int = DEFAULT_BINS) -> dict[str, TensorRange]:
    """Ranges of every float tensor in a re-iterable source of {name: array} dicts (two passes when the
    method needs histograms)."""
    c = RangeCollector(method, percentile=percentile, bins=bins)
    n = 0
    for b in batches:
        c.observe(b)
        n += 1
    if n == 0:
        raise BadInput("no calibration batches: the calibration source is empty")
    if c.needs_histograms:
        for b in batches:
            c.observe_histogram(b)
    return c.ranges()
