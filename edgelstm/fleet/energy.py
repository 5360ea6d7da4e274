"""Energy per inference on a Jetson: tegrastats samples the board's power rails while the artifact runs in a
steady loop; energy per inference = mean power over the loop x its duration / inferences (mW x s = mJ).

Measured on the device only: the rails are the board's own INA3221 monitors, read by tegrastats every
`interval_ms`. "total" is the module's input (VDD_IN; boards without one: the sum of their rails), "compute" the
CPU+GPU(+CV) rail(s); the idle power measured just before the loop gives the energy above idle ("dynamic").
`energy_per_inference` is the arithmetic alone (tests feed it recorded lines at chosen times).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any, Callable

from edgelstm.fleet.jetson_parsers import TegraSample, parse_tegrastats_line

Sample = tuple[float, TegraSample]
MIN_SAMPLES = 2
NOTE = ("energy measured on the device: mean of tegrastats' rail readings over a steady inference loop x its "
        "duration / inferences; rails are the board's own monitors (module input, not the wall socket)")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def energy_per_inference(samples: list[Sample], start: float, end: float, inferences: int, *,
                         idle: list[Sample] | None = None) -> dict[str, Any]:
    """Energy per inference (mJ) from the samples taken in [start, end] while `inferences` ran; with `idle` samples
    also the energy above idle. Each rail group ("total", "compute") is reported with the rails it sums."""
    window = [s for t, s in samples if start <= t <= end]
    seconds = end - start
    out: dict[str, Any] = {"seconds": round(seconds, 6), "inferences": int(inferences), "samples": len(window),
                           "note": NOTE}
    if inferences < 1 or seconds <= 0:
        return {**out, "error": "no inference ran in the window"}
    if len(window) < MIN_SAMPLES:
        return {**out, "error": f"{len(window)} tegrastats sample(s) in {seconds:.2f} s: too few for a mean "
                                "(raise the energy window or lower tegrastats' interval)"}
    idle_groups = [s.power() for _, s in idle or []]
    groups: dict[str, Any] = {}
    for key in ("total", "compute"):
        per = [s.power().get(key) for s in window]
        if any(p is None for p in per):
            continue
        mean_mw = _mean([p["mw"] for p in per])
        g = {"rails": per[0]["rails"], "rule": per[0]["rule"], "mean_mw": round(mean_mw, 3),
             "mj_per_inference": mean_mw * seconds / inferences}
        idle_mw = [p[key]["mw"] for p in idle_groups if key in p]
        if idle_mw:
            g["idle_mw"] = round(_mean(idle_mw), 3)
            g["dynamic_mj_per_inference"] = (mean_mw - g["idle_mw"]) * seconds / inferences
        groups[key] = g
    if not groups:
        return {**out, "error": "tegrastats printed no power rail this board's energy can be read from"}
    clocks = {"gpu_mhz": [s.gpu_mhz for s in window if s.gpu_mhz is not None],
              "emc_mhz": [s.emc_mhz for s in window if s.emc_mhz is not None]}
    return {**out, **groups, "clocks": {k: (max(v) if v else None) for k, v in clocks.items()}}


class TegrastatsSampler:
    """tegrastats in the background: every line it prints is parsed and stamped with `clock()` when read.

    `available()` says whether tegrastats is on PATH; `start()`/`stop()` bracket the measurement; `samples()`
    returns what was read. The command and the clock are injectable (tests run a script printing recorded lines)."""

    def __init__(self, *, interval_ms: int = 100, command: str = "tegrastats",
                 clock: Callable[[], float] = time.monotonic):
        self.interval_ms = int(interval_ms)
        self.command = command
        self.clock = clock
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def available(self) -> bool:
        return shutil.which(self.command) is not None

    def start(self) -> None:
        self._proc = subprocess.Popen([self.command, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_tegrastats_line(line)
            if sample is not None:
                with self._lock:
                    self._samples.append((self.clock(), sample))

    def wait_for(self, n: int, timeout_s: float) -> bool:
        """Wait until n samples have been read (tegrastats' first line takes one interval)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.samples()) >= n:
                return True
            time.sleep(self.interval_ms / 4000)
        return False

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def stop(self) -> list[Sample]:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.samples()

    def __enter__(self) -> "TegrastatsSampler":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def measure_energy(run_once: Callable[[], Any], sampler: TegrastatsSampler, *, seconds: float, warmup: int = 5,
                   idle_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Idle for `idle_seconds`, warm up, then call `run_once` for `seconds` while tegrastats samples; the energy."""
    with sampler:
        sampler.wait_for(1, timeout_s=5 + sampler.interval_ms / 1000)
        t_idle = clock()
        time.sleep(idle_seconds)
        idle_end = clock()
        for _ in range(warmup):
            run_once()
        start = clock()
        n = 0
        while clock() - start < seconds:
            run_once()
            n += 1
        end = clock()
    samples = sampler.samples()
    idle = [(t, s) for t, s in samples if t_idle <= t <= idle_end]
    return energy_per_inference(samples, start, end, n, idle=idle)
