"""`run_fleet(bundle, targets, results_dir, options)`: the same bundle checked on many devices at once.

At most `concurrency` devices run at a time (a thread each, every one its own ssh processes). Each device has one
deadline for all its attempts (`timeout_s`): when it passes, the ssh or scp in flight is killed, which the device
notices as a lost connection and cleans up after. An attempt that failed on the way (unreachable, a lost
connection, a failed copy) is retried up to `retries` times; a check that ran and reported (gates passed or not,
a device without onnxruntime) is not. The CI system, not this, is the scheduler for anything bigger.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import BadInput, opt
from edgelstm.fleet.remote import RemoteOptions, run_remote
from edgelstm.fleet.ssh import SSH_FAILED, SshClient, SshTarget

RETRYABLE_STEPS = ("connect", "push", "pull")


@dataclass(frozen=True)
class FleetOptions:
    concurrency: int = 4
    timeout_s: float = 1800.0
    retries: int = 1
    retry_delay_s: float = 5.0
    progress: Callable[[str, str], None] | None = field(default=None, compare=False)
    on_step: Callable[[str, str], None] | None = field(default=None, compare=False)
    client_factory: Callable[[SshTarget], SshClient] = field(default=SshClient, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise BadInput(f"{opt('concurrency')} must be >= 1, got {self.concurrency}")
        if not self.timeout_s > 0:
            raise BadInput(f"{opt('timeout')} must be > 0 seconds, got {self.timeout_s}")
        if self.retries < 0:
            raise BadInput(f"{opt('retries')} must be >= 0, got {self.retries}")


def results_name(name: str) -> str:
    """A device name as a file name: results/orin-nano-1.json."""
    return re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._") or "device"


def retryable(results: dict[str, Any]) -> bool:
    t = results.get("transport") or {}
    step = t.get("failed_step")
    if step in RETRYABLE_STEPS:
        return True
    failed_run = next((s for s in t.get("steps", []) if s.get("step") == "run" and s.get("status") == "failed"), None)
    return step == "run" and failed_run is not None and failed_run.get("rc") == SSH_FAILED


def _one(bundle: Path, target: SshTarget, dest: Path, options: FleetOptions) -> dict[str, Any]:
    deadline = time.monotonic() + options.timeout_s
    data: dict[str, Any] = {}
    for attempt in range(1, options.retries + 2):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ro = RemoteOptions(progress=options.progress, on_step=options.on_step, client_factory=options.client_factory)
        timed_out = threading.Event()

        def expire(ro=ro, timed_out=timed_out) -> None:
            timed_out.set()
            client = ro.keep.get("client")
            if client is not None:
                client.cancel()

        timer = threading.Timer(remaining, expire)
        timer.daemon = True
        timer.start()
        try:
            data = run_remote(bundle, target, dest, ro, attempt=attempt)
        finally:
            timer.cancel()
        if timed_out.is_set() and data.get("transport", {}).get("failed_step"):
            t = data["transport"]
            t["error"] = f"timed out after {options.timeout_s:g} s during {t['failed_step']}: {t.get('error')}"
            _rewrite(dest, data)
            return data
        if not retryable(data) or attempt > options.retries:
            return data
        options.sleep(min(options.retry_delay_s, max(0.0, deadline - time.monotonic())))
    return data


def _rewrite(dest: Path, data: dict[str, Any]) -> None:
    import json

    from edgelstm.fileio import write_text_atomic

    write_text_atomic(dest, json.dumps(data, indent=2, default=str) + "\n")


def run_fleet(bundle: str | Path, targets: list[SshTarget], results_dir: str | Path,
              options: FleetOptions = FleetOptions()) -> list[tuple[Path, dict[str, Any]]]:
    """Check `bundle` on every target; (results file, results) per target, in the order given."""
    bundle, results_dir = Path(bundle), Path(results_dir)
    if not targets:
        raise BadInput("no device to check: name hosts, or an inventory and --label/--hosts that select some")
    names = [results_name(t.name) for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"two devices would write the same results file: {', '.join(dupes)}; name them apart")
    dests = [results_dir / f"{n}.json" for n in names]
    with ThreadPoolExecutor(max_workers=min(options.concurrency, len(targets)), thread_name_prefix="device") as pool:
        futures = [pool.submit(_one, bundle, t, d, options) for t, d in zip(targets, dests)]
        return [(d, f.result()) for d, f in zip(dests, futures)]
