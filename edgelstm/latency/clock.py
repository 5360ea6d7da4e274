"""Clocks for timing loops that must be testable: the same-run comparison (compare.py) reads time only
through a `Clock`, so that a test drives it with a `ManualClock` whose time moves only when a fake model
"runs" (and by as much as the test says), and asserts exact verdicts on a loaded machine.

A clock answers `now_ns()` (monotonic nanoseconds). `SYSTEM_CLOCK` is time.perf_counter_ns.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now_ns(self) -> int:
        """Monotonic time in nanoseconds."""
        ...


class SystemClock:
    """The wall clock of every real measurement: time.perf_counter_ns (monotonic, the finest the OS has)."""

    now_ns = staticmethod(time.perf_counter_ns)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to (`advance`): simulated time for tests and simulations. A fake
    model calls `advance(cost_ns)` each time it runs, so a timing loop measures exactly the cost the test
    gave it, whatever else the machine is doing."""

    def __init__(self, start_ns: int = 0):
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance(self, ns: float) -> None:
        if ns < 0:
            raise ValueError("a clock does not go back")
        self._now += int(round(ns))

    def __repr__(self) -> str:
        return f"ManualClock(now_ns={self._now})"


SYSTEM_CLOCK: Clock = SystemClock()

__all__ = ["Clock", "ManualClock", "SYSTEM_CLOCK", "SystemClock"]
