"""A simulated machine for the same-run comparison's tests: time is a ManualClock that moves only when a model
runs, by the model's cost times what the machine is doing at that moment.

- `jitter`: every iteration's cost is scaled by a random 1 +- jitter (log-normal), as real iterations vary;
- load bursts: the timeline is cut into windows of `window_ms`; each window is busy with probability
  `burst_p` (drawn once per window), and an iteration that starts in a busy window costs `burst_factor` x
  (another process preempting the model). Short windows hit single blocks; long ones (hundreds of ms) model
  another job starting, which fools a before/after measurement but hits both blocks of a pair alike.

`timer(cost_ms)` is a block timer for compare_point that runs edgelstm's real timing loop
(harness.time_callable) on the fake clock; `costed_open(monkeypatch, machine)` makes the real bench path
(real ONNX files, runners, Bencher) run on the fake clock, at a cost per LSTM node of the graph
(`cost_runners_by_lstm`, shared with tests/test_bench_regression.py)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from edgelstm.latency.clock import ManualClock
from edgelstm.latency.harness import TimingPolicy, time_callable


class FakeMachine:
    def __init__(self, *, jitter: float = 0.02, burst_p: float = 0.0, burst_factor: float = 3.0,
                 window_ms: float = 20.0, seed: int = 0):
        self.clock = ManualClock()
        self.jitter, self.burst_p, self.burst_factor = jitter, burst_p, burst_factor
        self.window_ns = int(window_ms * 1e6)
        self.rng = np.random.default_rng(seed)
        self._busy: dict[int, bool] = {}
        self.iterations = 0

    def busy_now(self) -> bool:
        w = self.clock.now_ns() // self.window_ns
        if w not in self._busy:
            self._busy[w] = bool(self.rng.random() < self.burst_p)
        return self._busy[w]

    def run(self, cost_ms: float) -> None:
        self.iterations += 1
        factor = self.burst_factor if self.busy_now() else 1.0
        factor *= math.exp(self.jitter * float(self.rng.standard_normal()))
        self.clock.advance(cost_ms * 1e6 * factor)

    def timer(self, cost_ms: float):
        def block(warmup: int, iters: int) -> list[float]:
            return time_callable(lambda: self.run(cost_ms), TimingPolicy(warmup=warmup, iters=iters),
                                 clock=self.clock.now_ns).samples_ms
        return block

    def naive_ratio(self, new_cost_ms: float, old_cost_ms: float, iters: int = 500) -> float:
        """What a before/after measurement says: p50 of NEW's run, then p50 of OLD's run, one after the other."""
        new = np.median(self.timer(new_cost_ms)(10, iters))
        old = np.median(self.timer(old_cost_ms)(10, iters))
        return float(new / old)


US_PER_LSTM_STEP = 500.0  # 3 ms an iteration at batch 1 x seq 6: ~10 iterations a block


def costed_open(monkeypatch, machine: FakeMachine) -> None:
    """The real bench path on `machine`'s clock, at 0.5 ms per LSTM node per time step per sequence."""
    cost_runners_by_lstm(monkeypatch, lambda cost_us: machine.run(cost_us / 1e3), US_PER_LSTM_STEP)


def cost_runners_by_lstm(monkeypatch, run: Callable[[float], None], us_per_lstm_step: float) -> None:
    """Every runner the Bencher opens for an ONNX file really runs, through `bind` (the harness's own loop), and
    then calls `run(cost_us)`, the cost a fake clock advances by: `us_per_lstm_step` per LSTM node of its graph
    per time step per sequence. Other targets (a torch model in memory) run as they are: a test makes their
    forward advance the clock. Shared with tests/test_bench_regression.py's VirtualMachine."""
    import onnx

    from edgelstm.latency.bencher import Bencher

    real_open = Bencher._open

    class Costed:
        timed_run = None

        def __init__(self, real, lstm_nodes):
            self._real, self._lstm_nodes = real, lstm_nodes

        def __getattr__(self, name):
            return getattr(self._real, name)

        def bind(self, feeds):
            x = feeds[self._real.io.data_inputs[0].name]
            cost_us = self._lstm_nodes * x.shape[0] * x.shape[1] * us_per_lstm_step

            def call():
                self._real.run(feeds)
                run(cost_us)
            return call

    def open_costed(bencher, res, threads):
        if res.path is None or res.path.suffix != ".onnx":
            return real_open(bencher, res, threads)
        nodes = sum(n.op_type == "LSTM" for n in onnx.load(str(res.path)).graph.node)
        assert nodes, f"{res.path} has no LSTM node to cost"
        return Costed(real_open(bencher, res, threads), nodes)

    monkeypatch.setattr(Bencher, "_open", open_costed)
