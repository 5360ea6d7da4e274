"""Parsers for what a Jetson says about itself: `tegrastats` lines, `nvpmodel -q`, `jetson_clocks --show`, and the
JetPack release of an L4T version. Pure functions on text; tests/fixtures/jetson/ holds recorded outputs.

tegrastats differs by board and release (all values in mW, with or without the unit):

    Orin Nano/NX, JetPack 6:  ... VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW VDD_SOC 2817mW/2817mW
    AGX Orin (no VDD_IN):      ... VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW
    AGX Xavier, JetPack 4:     ... GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 SYS5V 3306/3306
    TX2, JetPack 4:            ... VDD_SYS_GPU 182/182 VDD_SYS_SOC 730/730 VDD_IN 5297/5297 VDD_SYS_CPU 1917/1917
    Nano, JetPack 4:           ... POM_5V_IN 4520/4680 POM_5V_GPU 0/0 POM_5V_CPU 1078/1205

Each rail prints `current/average`; the average runs since tegrastats started, so only the current value is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_TIMESTAMP = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2} ")
# NAME cur[mW]/avg[mW], or NAME curmW alone; the value must end the token (RAM 6185/7620MB is no rail)
_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")
_RAIL_UNIT = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)mW(?=\s|$)")
_FREQ = re.compile(r"\b(EMC_FREQ|EMC|GR3D_FREQ|GR3D) (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"(?<![\w])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
NOT_RAILS = {"RAM", "SWAP", "IRAM", "APE", "VIC_FREQ", "NVENC", "NVDEC", "NVJPG", "MSENC", "MTS"}

#: what "total" and "compute" power are on each board, in order of preference: (rail names, how they combine)
TOTAL_RAILS = (("VDD_IN",), ("POM_5V_IN",))
COMPUTE_RAILS = (("VDD_CPU_GPU_CV",), ("VDD_GPU_SOC", "VDD_CPU_CV"), ("GPU", "CPU", "CV"),
                 ("POM_5V_GPU", "POM_5V_CPU"), ("VDD_SYS_GPU", "VDD_SYS_CPU"))


@dataclass
class TegraSample:
    """One tegrastats line: rails (mW, current value), clocks (MHz) and loads (%), temperatures (C)."""

    rails: dict[str, int] = field(default_factory=dict)
    emc_mhz: int | None = None
    emc_load: int | None = None
    gpu_mhz: int | None = None
    gpu_load: int | None = None
    ram_mb: tuple[int, int] | None = None
    temps: dict[str, float] = field(default_factory=dict)

    def power(self) -> dict[str, dict[str, Any]]:
        """{"total": {"mw", "rails", "rule"}, "compute": {...}} for the rails this board reports."""
        return power_groups(self.rails)


def parse_tegrastats_line(line: str) -> TegraSample | None:
    """A tegrastats line (with or without the timestamp `--interval` lines carry on JetPack 5+), or None when the
    line holds nothing tegrastats prints (a warning, an empty line)."""
    text = _TIMESTAMP.sub("", line.strip())
    if "RAM " not in text and not _RAIL_UNIT.search(text):
        return None
    s = TegraSample()
    temps = {m.group(1): float(m.group(2)) for m in _TEMP.finditer(text)}
    # temperatures (CPU@31.5C) are not rails; -256C marks a sensor that is off (CV0@-256C on Orin)
    s.temps = {k: v for k, v in temps.items() if v > -200}
    for m in _RAIL.finditer(text):
        name, cur = m.group(1), int(m.group(2))
        if name in NOT_RAILS or name == "NC" or (m.group(3) is None and not text[m.end(2):m.end(2) + 2] == "mW"):
            continue  # "APE 150" (a clock), "NC" (not connected)
        s.rails[name] = cur
    for m in _FREQ.finditer(text):
        load = int(m.group(2))
        mhz = max(int(v) for v in m.group(3).split(",") if v) if m.group(3) else None  # two GPCs: [611,0]
        if m.group(1).startswith("EMC"):
            s.emc_load, s.emc_mhz = load, mhz
        else:
            s.gpu_load, s.gpu_mhz = load, mhz
    ram = _RAM.search(text)
    if ram:
        s.ram_mb = (int(ram.group(1)), int(ram.group(2)))
    return s


def power_groups(rails: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Total and compute power from a board's rails. Total: VDD_IN (or POM_5V_IN on Nano/TX1), else, on boards that
    have no input rail (AGX Orin, AGX Xavier), the sum of every rail reported. Compute: VDD_CPU_GPU_CV (Orin Nano/
    NX, Xavier NX), else the sum of the board's CPU/GPU rails."""
    out: dict[str, dict[str, Any]] = {}
    for names in TOTAL_RAILS:
        if all(n in rails for n in names):
            out["total"] = {"mw": sum(rails[n] for n in names), "rails": list(names), "rule": "input rail"}
            break
    else:
        if rails:
            out["total"] = {"mw": sum(rails.values()), "rails": sorted(rails),
                            "rule": "sum of all rails (this board has no input rail)"}
    for names in COMPUTE_RAILS:
        if all(n in rails for n in names):
            out["compute"] = {"mw": sum(rails[n] for n in names), "rails": list(names),
                              "rule": "CPU+GPU+CV rail" if len(names) == 1 else "sum of the CPU/GPU rails"}
            break
    return out


def parse_nvpmodel(text: str) -> dict[str, Any]:
    """`nvpmodel -q`: `NV Power Mode: NAME` then the mode's number; NVPM ERROR/WARN lines are kept as warnings
    (without root some boards print errors after the answer)."""
    out: dict[str, Any] = {"mode": None, "id": None, "warnings": []}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("NVPM"):
            out["warnings"].append(line)
            continue
        m = re.match(r"NV Power Mode:\s*(.+)$", line)
        if m:
            out["mode"] = m.group(1).strip()
            if i + 1 < len(lines) and lines[i + 1].isdigit():
                out["id"] = int(lines[i + 1])
    return out


def parse_jetson_clocks(text: str) -> dict[str, Any]:
    """`jetson_clocks --show`: per-CPU, GPU and EMC min/max/current frequencies. `on` is True when every online
    CPU and the GPU have their minimum at their maximum (what jetson_clocks sets) and the EMC override is set where
    it is shown; None when the text shows no CPU line (no permission, not a Jetson)."""
    cpus, gpu, emc = [], None, None
    for line in text.splitlines():
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        head = line.split(":", 1)[0].split()[0] if line.strip() else ""
        if re.fullmatch(r"cpu\d+", head) and "MinFreq" in f:
            if f.get("Online", "1") == "1":
                cpus.append(f)
        elif head == "GPU" and "MinFreq" in f:
            gpu = f
        elif head == "EMC" and "MinFreq" in f:
            emc = f
    mode = re.search(r"NV Power Mode:\s*(.+)", text)
    out: dict[str, Any] = {"on": None, "cpus": len(cpus), "power_mode": mode.group(1).strip() if mode else None,
                           "gpu_mhz": _mhz(gpu, "CurrentFreq"), "gpu_max_mhz": _mhz(gpu, "MaxFreq"),
                           "emc_mhz": _mhz(emc, "CurrentFreq"), "emc_max_mhz": _mhz(emc, "MaxFreq")}
    if not cpus:
        return out
    pinned = [c.get("MinFreq") == c.get("MaxFreq") for c in cpus]
    if gpu is not None:
        pinned.append(gpu.get("MinFreq") == gpu.get("MaxFreq"))
    if emc is not None and "FreqOverride" in emc:
        pinned.append(emc["FreqOverride"] == "1")
    out["on"] = all(pinned)
    return out


def _mhz(fields: dict[str, str] | None, key: str) -> int | None:
    if not fields or not str(fields.get(key, "")).isdigit():
        return None
    hz = int(fields[key])
    return round(hz / 1e6) if hz > 10_000_000 else round(hz / 1e3)  # GPU/EMC in Hz, CPU in kHz


#: JetPack release of an L4T release (NVIDIA's Jetson release notes); the most specific prefix wins
JETPACK_OF_L4T = {"36.4.4": "6.2.1", "36.4.3": "6.2", "36.4": "6.1", "36.3": "6.0", "36.2": "6.0 DP",
                  "35.6": "5.1.4", "35.5": "5.1.3", "35.4": "5.1.2", "35.3": "5.1.1", "35.2": "5.1", "35.1": "5.0.2",
                  "32.7.6": "4.6.6", "32.7.5": "4.6.5", "32.7.4": "4.6.4", "32.7.3": "4.6.3", "32.7.2": "4.6.2",
                  "32.7.1": "4.6.1", "32.6": "4.6", "32.5": "4.5"}


def jetpack_of(l4t: str | None, dpkg_version: str | None = None) -> dict[str, Any] | None:
    """JetPack from the nvidia-jetpack package's version (`6.2+b77`, `4.5-b129`) when installed, else derived
    from the L4T release (`36.4.3`)."""
    if dpkg_version:
        m = re.match(r"(\d+(?:\.\d+)*)", dpkg_version.strip())
        if m:
            return {"version": m.group(1), "from": "nvidia-jetpack package"}
    if not l4t:
        return None
    parts = l4t.split(".")
    for n in range(len(parts), 1, -1):
        key = ".".join(parts[:n])
        if key in JETPACK_OF_L4T:
            return {"version": JETPACK_OF_L4T[key], "from": f"L4T {l4t}"}
    return {"version": None, "from": f"L4T {l4t} (not in edgelstm's table)"}
