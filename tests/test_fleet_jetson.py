"""Jetson facts from recorded output (tests/fixtures/jetson/SOURCES.md names each source): tegrastats lines of Orin
Nano, AGX Orin, AGX Xavier and TX2; nvpmodel -q; jetson_clocks --show; JetPack of an L4T release; and the energy
arithmetic, checked by hand on recorded rail values. No Jetson ran these tests: what needs one is said in README."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from edgelstm.fleet.energy import TegrastatsSampler, energy_per_inference, measure_energy
from edgelstm.fleet.jetson_parsers import (jetpack_of, parse_jetson_clocks, parse_nvpmodel, parse_tegrastats_line,
                                           power_groups)

FIX = Path(__file__).parent / "fixtures" / "jetson"


def line(name: str, i: int = 0) -> str:
    return (FIX / name).read_text().splitlines()[i]


def test_orin_nano_jetpack6_line():
    s = parse_tegrastats_line(line("tegrastats_orin_nano_load.txt"))
    assert s.rails == {"VDD_IN": 12479, "VDD_CPU_GPU_CV": 4667, "VDD_SOC": 2817}
    assert (s.emc_load, s.emc_mhz, s.gpu_load, s.gpu_mhz) == (43, 2133, 63, 621)
    assert s.ram_mb == (6185, 7620)
    assert s.temps["tj"] == 53.968 and "APE" not in s.rails
    p = s.power()
    assert p["total"] == {"mw": 12479, "rails": ["VDD_IN"], "rule": "input rail"}
    assert p["compute"]["mw"] == 4667 and p["compute"]["rails"] == ["VDD_CPU_GPU_CV"]


def test_orin_nano_idle_line_has_no_gpu_clock():
    s = parse_tegrastats_line(line("tegrastats_orin_nano_idle.txt"))
    assert s.rails == {"VDD_IN": 4824, "VDD_CPU_GPU_CV": 518, "VDD_SOC": 1475}
    assert (s.gpu_load, s.gpu_mhz, s.emc_mhz) == (0, None, None)


def test_agx_orin_has_no_input_rail_so_total_is_the_sum_of_its_rails():
    s = parse_tegrastats_line(line("tegrastats_agx_orin.txt"))
    # NC (not connected) rails are dropped; -256C marks sensors that are off
    assert s.rails == {"VDD_GPU_SOC": 2340, "VDD_CPU_CV": 390, "VIN_SYS_5V0": 4025, "VDDQ_VDD2_1V8AO": 301}
    assert "CV0" not in s.temps and s.temps["tj"] == 44.343
    assert s.gpu_mhz == 0 and s.emc_mhz == 2133  # GR3D_FREQ 0%@[0,0]: two GPCs, both idle
    p = s.power()
    assert p["total"]["mw"] == 2340 + 390 + 4025 + 301 == 7056
    assert p["total"]["rule"].startswith("sum of all rails")
    assert p["compute"] == {"mw": 2340 + 390, "rails": ["VDD_GPU_SOC", "VDD_CPU_CV"], "rule": "sum of the CPU/GPU rails"}


def test_agx_xavier_jetpack42_rails_have_plain_names_and_no_unit():
    s = parse_tegrastats_line(line("tegrastats_agx_xavier_jp42.txt"))
    assert s.rails == {"GPU": 463, "CPU": 618, "SOC": 2936, "CV": 0, "VDDRQ": 309, "SYS5V": 3306}
    assert s.temps["GPU"] == 30.5 and (s.emc_load, s.emc_mhz) == (0, None)
    p = s.power()
    assert p["total"]["mw"] == 463 + 618 + 2936 + 0 + 309 + 3306 == 7632
    assert p["compute"]["mw"] == 463 + 618 + 0 and p["compute"]["rails"] == ["GPU", "CPU", "CV"]


@pytest.mark.parametrize("i, vdd_in, compute", [(0, 5297, 182 + 1917), (1, 3140, 153 + 536)])
def test_tx2_lines_use_the_current_value_not_the_average(i, vdd_in, compute):
    s = parse_tegrastats_line(line("tegrastats_tx2.txt", i))
    assert s.rails["VDD_IN"] == vdd_in  # "VDD_IN 3140/3208": 3140 now, 3208 since tegrastats started
    p = s.power()
    assert p["total"]["mw"] == vdd_in and p["compute"]["mw"] == compute


def test_non_lines_and_power_without_rails():
    assert parse_tegrastats_line("") is None
    assert parse_tegrastats_line("NVPM WARN: something") is None
    assert power_groups({}) == {}


def test_nvpmodel_outputs():
    assert parse_nvpmodel((FIX / "nvpmodel_nano_sudo.txt").read_text()) == {"mode": "5W", "id": 1, "warnings": []}
    user = parse_nvpmodel((FIX / "nvpmodel_nano_user.txt").read_text())
    assert (user["mode"], user["id"]) == ("5W", 1) and len(user["warnings"]) == 2  # the NVPM ERROR lines, kept
    assert parse_nvpmodel((FIX / "nvpmodel_thor.txt").read_text())["mode"] == "MAXN"


def test_jetson_clocks_on_and_off():
    on = parse_jetson_clocks((FIX / "jetson_clocks_tx1_on.txt").read_text())
    assert on["on"] is True and on["cpus"] == 4
    assert (on["gpu_mhz"], on["emc_mhz"], on["emc_max_mhz"]) == (998, 1600, 1600)
    off = parse_jetson_clocks((FIX / "jetson_clocks_agx_orin_excerpt.txt").read_text())
    assert off["on"] is False and off["cpus"] == 9  # MinFreq 115200 < MaxFreq 2201600: not pinned
    assert parse_jetson_clocks("jetson_clocks: permission denied")["on"] is None


@pytest.mark.parametrize("l4t, dpkg, expected", [
    ("36.4.3", None, "6.2"), ("36.4.0", None, "6.1"), ("36.3.0", None, "6.0"), ("35.4.1", None, "5.1.2"),
    ("32.7.4", None, "4.6.4"), ("36.4.3", "6.2+b77", "6.2"), (None, "4.5-b129", "4.5"), ("99.1", None, None)])
def test_jetpack_of_l4t(l4t, dpkg, expected):
    assert jetpack_of(l4t, dpkg)["version"] == expected


# ------------------------------------------------------------------------------------------- energy

def test_energy_per_inference_from_recorded_lines():
    """The arithmetic by hand: recorded Orin Nano lines (idle 4824 mW, under load 12479 mW on VDD_IN; 518 / 4667 mW
    on VDD_CPU_GPU_CV) at times this test chooses; 1000 inferences in the 2.0 s window from t=1.0 to t=3.0."""
    idle = parse_tegrastats_line(line("tegrastats_orin_nano_idle.txt"))
    load = parse_tegrastats_line(line("tegrastats_orin_nano_load.txt"))
    samples = [(0.2, idle), (0.7, idle), (1.0, load), (1.5, load), (2.0, load), (2.5, load), (3.0, load), (3.4, idle)]
    e = energy_per_inference(samples, 1.0, 3.0, 1000, idle=samples[:2])
    assert e["samples"] == 5 and e["seconds"] == 2.0
    # 12479 mW x 2.0 s = 24958 mJ over 1000 inferences = 24.958 mJ each
    assert e["total"]["mean_mw"] == 12479.0
    assert e["total"]["mj_per_inference"] == pytest.approx(24.958, rel=1e-12)
    # above idle: (12479 - 4824) mW x 2.0 s / 1000 = 15.31 mJ
    assert e["total"]["idle_mw"] == 4824.0
    assert e["total"]["dynamic_mj_per_inference"] == pytest.approx(15.31, rel=1e-12)
    # the CPU+GPU+CV rail: 4667 mW x 2.0 s / 1000 = 9.334 mJ, above its idle 518 mW: 8.298 mJ
    assert e["compute"]["mj_per_inference"] == pytest.approx(9.334, rel=1e-12)
    assert e["compute"]["dynamic_mj_per_inference"] == pytest.approx(8.298, rel=1e-12)
    assert e["clocks"] == {"gpu_mhz": 621, "emc_mhz": 2133}
    assert "measured on the device" in e["note"]


def test_energy_mean_of_mixed_samples_and_refusals():
    idle = parse_tegrastats_line(line("tegrastats_orin_nano_idle.txt"))
    load = parse_tegrastats_line(line("tegrastats_orin_nano_load.txt"))
    e = energy_per_inference([(0.0, idle), (1.0, load)], 0.0, 1.0, 10)
    # mean (4824 + 12479) / 2 = 8651.5 mW x 1.0 s / 10 = 865.15 mJ
    assert e["total"]["mj_per_inference"] == pytest.approx(865.15, rel=1e-12) and "idle_mw" not in e["total"]
    assert "too few" in energy_per_inference([(0.5, load)], 0.0, 1.0, 10)["error"]
    assert "no inference" in energy_per_inference([(0.5, load), (0.6, load)], 0.0, 1.0, 0)["error"]


def fake_tegrastats(tmp_path: Path, lines: list[str]) -> Path:
    """A `tegrastats` that prints recorded lines every --interval ms, as the real one does, until killed."""
    script = tmp_path / "tegrastats"
    body = "\n".join(f"printf '%s\\n' {repr(x)}; sleep \"$t\"" for x in lines)
    script.write_text(f'#!/bin/sh\nt=$(awk "BEGIN{{print $2/1000}}")\nwhile :; do\n{body}\ndone\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_sampler_reads_a_running_tegrastats_and_measures_energy(tmp_path):
    """The sampler against a process printing recorded AGX Orin lines; the energy is consistent with its own
    window, inference count and the recorded (constant) rails."""
    script = fake_tegrastats(tmp_path, [line("tegrastats_agx_orin.txt")])
    sampler = TegrastatsSampler(interval_ms=20, command=str(script))
    assert sampler.available()
    calls = []
    e = measure_energy(lambda: calls.append(1), sampler, seconds=0.3, warmup=2, idle_seconds=0.1)
    assert e["samples"] >= 2 and e["inferences"] == len(calls) - 2
    assert e["total"]["mean_mw"] == 7056.0 and e["total"]["idle_mw"] == 7056.0
    assert e["total"]["mj_per_inference"] == pytest.approx(7056.0 * e["seconds"] / e["inferences"], rel=1e-5)  # seconds: 6 decimals
    assert e["total"]["dynamic_mj_per_inference"] == pytest.approx(0.0, abs=1e-12)
    assert sampler._proc.poll() is not None  # stopped


def test_jetson_facts_from_recorded_outputs(tmp_path):
    from edgelstm.fleet.device_facts import jetson_facts

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, "
                                                   "EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_text("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit\x00")
    outputs = {"nvpmodel": (FIX / "nvpmodel_nano_user.txt").read_text(),
               "jetson_clocks": (FIX / "jetson_clocks_agx_orin_excerpt.txt").read_text()}
    facts = jetson_facts(lambda argv: outputs.get(argv[0]), tmp_path)
    assert facts["model"].startswith("NVIDIA Jetson Orin Nano") and facts["l4t"] == "36.4.3"
    assert facts["jetpack"] == {"version": "6.2", "from": "L4T 36.4.3"}
    assert facts["nvpmodel"]["mode"] == "5W" and facts["jetson_clocks"] is False


def test_jetson_clocks_from_sysfs_without_root(tmp_path):
    from edgelstm.fleet.device_facts import jetson_facts

    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_text("NVIDIA Jetson Xavier NX Developer Kit")
    gpu = tmp_path / "sys/class/devfreq/17000000.gv11b"
    gpu.mkdir(parents=True)
    for f, v in (("cur_freq", "1109250000"), ("min_freq", "1109250000"), ("max_freq", "1109250000")):
        (gpu / f).write_text(v)
    facts = jetson_facts(lambda argv: None, tmp_path)  # jetson_clocks --show refused (no root)
    assert facts["jetson_clocks"] is True and facts["clocks"]["from"] == "sysfs"
    assert facts["clocks"]["gpu_mhz"] == 1109 and facts["l4t"] is None
    assert jetson_facts(lambda argv: None, tmp_path / "nothing") is None  # not a Jetson


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_this_machine_is_described_by_its_isa_class():
    from edgelstm.fleet.device_facts import describe_target

    d = describe_target("here", labels=("x86-test",))
    assert d["name"] == "here" and d["labels"] == ["x86-test"] and d["isa"]
    assert d["kind"] == ("jetson" if os.path.exists("/etc/nv_tegra_release") else "cpu")
