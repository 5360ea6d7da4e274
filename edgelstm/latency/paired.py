"""Paired-block statistics of the same-run comparison: the latency ratio NEW/OLD and a confidence interval
on it, from blocks of iterations timed alternately (see compare.py for the schedule).

Each pair is two adjacent blocks, one of each model, timed within a fraction of a second of each other; its
ratio is median(NEW block) / median(OLD block). The estimate of the ratio is the Hodges–Lehmann estimator of
the log-ratios (the median of all pairwise means (d_i + d_j) / 2, i <= j, the "Walsh averages") and its
confidence interval is the one that inverts Wilcoxon's signed-rank test (order statistics of the Walsh
averages; exact null distribution, normal approximation above 400 pairs).

Why this, on a shared or hosted runner:
- load that lasts longer than a pair (another job, a CPU hog, a lower clock) slows both blocks of the pair
  alike and cancels in the ratio: the comparison needs no stored number and no "quiet" machine;
- a spike shorter than a block shifts one block's median little (the median of its iterations), and a spike
  that hits one block whole gives one outlying pair, which moves a rank-based interval by one rank, not by
  its size (the Hodges–Lehmann estimator tolerates up to 29% wild pairs);
- the order inside each pair is random, so a spike is as likely to hit OLD as NEW: the log-ratios stay
  symmetric about the true one, which is what the signed-rank interval assumes;
- with few pairs the interval is wide (below 6 pairs at 95% it is unbounded): noise makes the answer
  inconclusive, never wrong.
Pure numpy; nothing is timed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

EXACT_MAX_PAIRS = 400


@dataclass(frozen=True)
class RatioInterval:
    """The latency ratio NEW/OLD: Hodges–Lehmann estimate and a `confidence` interval [low, high] over `pairs`
    pairs (low 0 / high inf when there are too few pairs for any interval at that confidence)."""

    estimate: float
    low: float
    high: float
    confidence: float
    pairs: int

    def to_dict(self) -> dict[str, float | int | None]:
        def r(v: float) -> float | None:
            return round(v, 5) if math.isfinite(v) else None

        return {"estimate": r(self.estimate), "low": r(self.low), "high": r(self.high),
                "confidence": round(self.confidence, 6), "pairs": self.pairs}


def signed_rank_cdf(n: int) -> np.ndarray:
    """P(T <= t), t = 0 .. n(n+1)/2, for Wilcoxon's signed-rank statistic T of n pairs under the null (exact)."""
    top = n * (n + 1) // 2
    p = np.zeros(top + 1)
    p[0] = 1.0
    for k in range(1, n + 1):  # rank k is in the positive set or not, each with probability 1/2
        p[k:] = 0.5 * (p[k:] + p[:-k])
        p[:k] *= 0.5
    return np.cumsum(p)


def _rank_cut(n: int, alpha: float) -> int:
    """k: the interval is [W_(k), W_(M+1-k)] (1-based order statistics of the M Walsh averages); 0 when no
    interval reaches 1 - alpha with n pairs."""
    if n < 1:
        return 0
    if n <= EXACT_MAX_PAIRS:
        cdf = signed_rank_cdf(n)
        ok = np.nonzero(cdf <= alpha / 2)[0]  # t with P(T <= t) <= alpha/2; the cut is the largest + 1
        return int(ok[-1]) + 1 if ok.size else 0
    m = n * (n + 1) / 4
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return max(0, int(math.floor(m - z * sd)))


def walsh_averages(d: Sequence[float]) -> np.ndarray:
    a = np.asarray(d, dtype=np.float64)
    i, j = np.triu_indices(a.size)
    return np.sort((a[i] + a[j]) / 2)


def hodges_lehmann(d: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """(estimate, low, high) of the centre of `d` (log-ratios): the median of the Walsh averages and the
    signed-rank confidence interval. low/high are -inf/inf when there are too few values."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if len(d) == 0:
        return float("nan"), -math.inf, math.inf
    w = walsh_averages(d)
    estimate = float(np.median(w))
    k = _rank_cut(len(d), 1 - confidence)
    if k < 1:
        return estimate, -math.inf, math.inf
    return estimate, float(w[k - 1]), float(w[w.size - k])


def block_log_ratios(new_blocks: Sequence[float], old_blocks: Sequence[float]) -> list[float]:
    """log(new_i / old_i) of paired block statistics (both > 0)."""
    if len(new_blocks) != len(old_blocks):
        raise ValueError("blocks must come in pairs")
    return [math.log(n / o) for n, o in zip(new_blocks, old_blocks)]


def ratio_interval(new_blocks: Sequence[float], old_blocks: Sequence[float], confidence: float) -> RatioInterval:
    """The ratio NEW/OLD from paired block statistics (block medians, ms) and its confidence interval."""
    est, lo, hi = hodges_lehmann(block_log_ratios(new_blocks, old_blocks), confidence)
    return RatioInterval(math.exp(est) if math.isfinite(est) else float("nan"),
                         math.exp(lo) if lo > -math.inf else 0.0, math.exp(hi) if hi < math.inf else math.inf,
                         confidence, len(new_blocks))


__all__ = ["RatioInterval", "block_log_ratios", "hodges_lehmann", "ratio_interval", "signed_rank_cdf",
           "walsh_averages"]
