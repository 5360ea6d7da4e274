"""What a results file says about the device it came from: edgelstm's device block (CPU and its int8 ISA class,
GPU, library versions) plus, on a Jetson, the model, L4T and JetPack releases, the nvpmodel power mode, whether
`jetson_clocks` pinned the clocks, and the GPU/EMC clocks.

Commands run through `run(argv) -> stdout | None` (None: missing, failed or timed out) and sysfs is read under
`root`, so that tests answer with recorded outputs. Nothing here raises: an unreadable fact is None.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable

from edgelstm.fleet.jetson_parsers import jetpack_of, parse_jetson_clocks, parse_nvpmodel

RunFn = Callable[[list[str]], "str | None"]


def run_command(argv: list[str], timeout: float = 10.0) -> str | None:
    """A command's stdout (+ stderr, where nvpmodel writes its errors), or None when it is missing or fails."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    out = (p.stdout or "") + (p.stderr or "")
    return out if p.returncode == 0 and out.strip() else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def _sysfs_clocks(root: Path) -> dict[str, Any]:
    """GPU and CPU frequencies from sysfs (readable without root): current, min, max; `on` as jetson_clocks sets it."""
    out: dict[str, Any] = {}
    for dev in sorted((root / "sys/class/devfreq").glob("*")):
        name = (_read(dev / "name") or dev.name).lower()
        if "gpu" in name or "gv11b" in name or "ga10b" in name or "gp10b" in name:
            cur, lo, hi = (_read(dev / f) for f in ("cur_freq", "min_freq", "max_freq"))
            if cur and cur.isdigit():
                out.update(gpu_mhz=round(int(cur) / 1e6), gpu_max_mhz=round(int(hi) / 1e6) if hi and hi.isdigit()
                           else None, gpu_pinned=lo == hi if lo and hi else None)
                break
    cpus = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    pinned = [_read(c / "scaling_min_freq") == _read(c / "scaling_max_freq") for c in cpus
              if _read(c / "scaling_min_freq")]
    if pinned:
        out["cpu_pinned"] = all(pinned)
    return out


def jetson_facts(run: RunFn = run_command, root: Path = Path("/")) -> dict[str, Any] | None:
    """Jetson facts, or None on anything that is not a Jetson."""
    release = _read(root / "etc/nv_tegra_release")
    model = _read(root / "proc/device-tree/model")
    if not release and not (model and "jetson" in model.lower()):
        return None
    l4t = None
    if release:
        m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release)
        l4t = f"{m.group(1)}.{m.group(2)}" if m else None
    facts: dict[str, Any] = {"model": model, "l4t": l4t,
                             "jetpack": jetpack_of(l4t, run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"]))}
    nvp = run(["nvpmodel", "-q"])
    facts["nvpmodel"] = parse_nvpmodel(nvp) if nvp else None
    shown = run(["jetson_clocks", "--show"])
    clocks = parse_jetson_clocks(shown) if shown else {"on": None}
    sysfs = _sysfs_clocks(root)
    if clocks.get("on") is None and "gpu_pinned" in sysfs:  # jetson_clocks --show needs root; sysfs does not
        clocks["on"] = bool(sysfs.get("gpu_pinned")) and bool(sysfs.get("cpu_pinned", True))
        clocks["from"] = "sysfs"
    elif shown:
        clocks["from"] = "jetson_clocks --show"
    for key in ("gpu_mhz", "gpu_max_mhz"):
        if clocks.get(key) is None and sysfs.get(key) is not None:
            clocks[key] = sysfs[key]
    facts["jetson_clocks"] = clocks.get("on")
    facts["clocks"] = {k: clocks.get(k) for k in ("gpu_mhz", "gpu_max_mhz", "emc_mhz", "emc_max_mhz", "from")}
    return facts


def describe_target(name: str | None = None, *, labels: tuple[str, ...] = (), run: RunFn = run_command,
                    root: Path = Path("/")) -> dict[str, Any]:
    """The device block of a results file: a name, edgelstm's device description, the ISA class, Jetson facts."""
    from edgelstm.machine.device import describe_device

    dev = describe_device()
    jetson = jetson_facts(run, root)
    if jetson:
        dev["jetson"] = {**(dev.get("jetson") or {}), **jetson}
    return {"name": name or socket.gethostname(), "labels": list(labels), "slug": dev.get("machine"),
            "isa": (dev.get("cpu") or {}).get("isa"), "kind": "jetson" if jetson else "cpu",
            "user": os.environ.get("USER"), **dev}
