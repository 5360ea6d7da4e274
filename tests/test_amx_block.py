"""Running INT8 without AMX: the seccomp filter of edgelstm.machine.noamx, the bench policy (--amx), the AMX facts
reports carry, and the x86-amx class.

What is checked for real here, in child processes (a filter cannot be removed, so never in the test process):
the filter makes arch_prctl(ARCH_REQ_XCOMP_PERM) fail with EPERM, leaves the other arch_prctl codes working, is
inherited by children and across exec (the helper), is absent when nobody asked, and onnxruntime computes the
same outputs bit for bit under it. What needs an AMX Xeon (the speed effect) is measured by benchmarks/amx_int8.py.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import numpy as np
import pytest

import quant_models as qm
from edgelstm.machine import amx, noamx
from edgelstm.machine.amx import ARCH_REQ_XCOMP_PERM, decide_amx_block
from edgelstm.machine.noamx import (AUDIT_ARCH_X86_64, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, filter_program,
                                    run_filter)

x86_linux = pytest.mark.skipif(not amx.is_x86_64_linux(), reason="the filter is for x86-64 Linux (AMX)")

PROBE = r"""
import errno, json, sys
from edgelstm.machine import amx, noamx
out = {}
if sys.argv[1] == "install":
    out["install"] = noamx.install_amx_block().to_dict()
rc, err, _ = amx.arch_prctl(amx.ARCH_REQ_XCOMP_PERM, amx.XFEATURE_XTILEDATA)
out["req"] = [rc, errno.errorcode.get(err, err)]
rc, err, fs = amx.arch_prctl(amx.ARCH_GET_FS)
out["get_fs"] = [rc, bool(fs)]
rc, err, perm = amx.arch_prctl(amx.ARCH_GET_XCOMP_PERM)
out["get_perm"] = rc
out["state"] = amx.amx_state()
out["seccomp"] = amx.seccomp_mode()
print(json.dumps(out))
"""


def _child(*args: str, code: str = PROBE) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_bpf_program_refuses_only_the_amx_request():
    prog = filter_program()
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    assert run_filter(prog, 158, AUDIT_ARCH_X86_64, ARCH_REQ_XCOMP_PERM) == eperm
    assert run_filter(prog, 158, AUDIT_ARCH_X86_64, (7 << 32) | ARCH_REQ_XCOMP_PERM) == eperm  # the kernel reads an int
    for code in (0x1001, 0x1002, 0x1003, 0x1021, 0x1022, 0x1024):  # SET_GS, SET_FS, GET_FS, GET_XCOMP_SUPP/PERM, ...
        assert run_filter(prog, 158, AUDIT_ARCH_X86_64, code) == SECCOMP_RET_ALLOW
    assert run_filter(prog, 157, AUDIT_ARCH_X86_64, ARCH_REQ_XCOMP_PERM) == SECCOMP_RET_ALLOW  # prctl, same arg
    assert run_filter(prog, 158, 0x40000003, ARCH_REQ_XCOMP_PERM) == SECCOMP_RET_ALLOW          # i386 ABI


@x86_linux
def test_the_filter_refuses_the_request_with_eperm_and_nothing_else():
    plain = _child("none")
    assert plain["req"][1] != "EPERM" and plain["seccomp"] == 0 and plain["state"]["blocked"] is False
    blocked = _child("install")
    assert blocked["install"]["installed"] is True
    assert blocked["req"] == [-1, "EPERM"]
    assert blocked["get_fs"] == [0, True] and blocked["get_perm"] == 0   # other arch_prctl codes still work
    assert blocked["seccomp"] == 2 and blocked["state"]["blocked"] is True
    assert blocked["state"]["permitted"] is False


@x86_linux
def test_the_helper_runs_a_command_under_the_filter_and_children_inherit_it():
    probe = [sys.executable, "-c", PROBE, "none"]
    proc = subprocess.run([sys.executable, "-m", "edgelstm.machine.noamx", "--", *probe], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["req"] == [-1, "EPERM"] and out["state"]["blocked"] is True
    proc = subprocess.run([sys.executable, "-m", "edgelstm.machine.noamx"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgelstm.machine.noamx", "--", "/nonexistent/cmd"],
                          capture_output=True, text=True)
    assert proc.returncode == 127 and "cannot run" in proc.stderr


ORT_RUN = r"""
import sys, numpy as np
if sys.argv[1] == "install":
    from edgelstm.machine import noamx
    assert noamx.install_amx_block().installed
import onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[2], so, providers=["CPUExecutionProvider"])
np.save(sys.argv[4], s.run(None, {"x": np.load(sys.argv[3])})[0])
from edgelstm.machine import amx
print(amx.amx_state()["blocked"])
"""


@x86_linux
def test_onnxruntime_gives_identical_int8_outputs_under_the_filter(tmp_path):
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8

    src = qm.exported("lstm_regressor", tmp_path)
    model = tmp_path / "m.int8.onnx"
    quantize_int8(src, model, Int8Options(target="x86-vnni"))
    x = qm.x_for("lstm_regressor", n=3, seq=40)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for mode in ("none", "install"):
        proc = subprocess.run([sys.executable, "-c", ORT_RUN, mode, str(model), str(tmp_path / "x.npy"),
                               str(tmp_path / f"{mode}.npy")], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(mode == "install")
        outs[mode] = np.load(tmp_path / f"{mode}.npy")
    assert np.array_equal(outs["none"], outs["install"])


def test_the_policy_blocks_amx_only_where_it_is_slower():
    assert decide_amx_block("auto", "x86-vnni", True, [1])[0] is False           # no AMX here
    assert decide_amx_block("auto", "x86-amx", False, [1])[0] is False           # no INT8 onnxruntime work
    assert decide_amx_block("auto", "x86-amx", True, [1, 8])[0] is True          # INT8 at small batch
    assert decide_amx_block("auto", "x86-amx", True, [32, 64])[0] is False       # tiles fill: keep AMX
    block, why, warning = decide_amx_block("auto", "x86-amx", True, [1, 32])
    assert block is False and warning and "--amx block" in warning
    assert decide_amx_block("block", "arm64", False, [64])[0] is True
    assert decide_amx_block("allow", "x86-amx", True, [1])[0] is False


def test_amx_facts_in_words():
    words = amx.describe_int8_kernel
    assert words({"cpu": False}) == "no AMX on this CPU"
    assert words({"cpu": True, "kernel": True, "permitted": True}).startswith("AMX")
    assert "blocked" in words({"cpu": True, "kernel": True, "permitted": False, "blocked": True})
    assert "pinned" in words({"cpu": True, "kernel": True, "permitted": False, "blocked": False, "pinned": True})


BENCH = r"""
import json, sys
from edgelstm.latency import BenchGrid, BenchOptions, TimingPolicy, bench_artifacts
opts = BenchOptions(policy=TimingPolicy(warmup=0, iters=2), measure_memory=False, amx=sys.argv[2])
rep = bench_artifacts([sys.argv[1]], BenchGrid((1,), (4,)), opts).to_dict()
print(json.dumps(rep["device"]["process"]))
"""


@x86_linux
def test_bench_records_the_process_and_blocks_only_when_asked(tmp_path):
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8

    src = qm.exported("lstm_regressor", tmp_path)
    model = tmp_path / "m.int8.onnx"
    quantize_int8(src, model, Int8Options())
    auto = _child(str(model), "auto", code=BENCH)   # this CPU's class decides: blocks only on x86-amx
    from edgelstm.machine.isa import detect_isa

    assert auto["amx"]["blocked"] is (str(detect_isa()) == "x86-amx")
    assert auto["amx_policy"]["policy"] == "auto" and "pinned" in auto
    blocked = _child(str(model), "block", code=BENCH)
    assert blocked["amx"]["blocked"] is True and blocked["amx_policy"]["install"]["installed"] is True
    assert blocked["amx"]["int8_kernel"]


def test_bench_cli_names_the_process_and_refuses_a_bad_policy(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    code, stdout, stderr = cli("bench", src, "--batch", "1", "--seq", "4", "--iters", "2", "--warmup", "0",
                               "--amx", "allow", "--json")
    assert code == 0, stderr
    process = json.loads(stdout)["device"]["process"]
    assert process["amx_policy"]["block"] is False and "process: INT8 kernel" in " ".join(stderr.split())
    code, _, stderr = cli("bench", src, "--amx", "off")
    assert code == 2 and "--amx" in stderr


def test_doctor_names_the_int8_kernel(cli):
    code, stdout, stderr = cli("doctor", "--json")
    assert code == 0, stderr
    host = json.loads(stdout)["host"]
    assert host["isa"] in ("x86-amx", "x86-vnni", "x86-avx2", "arm64", "other") and "int8_kernel" in host
    assert "pinned" in host


SAMPLE_PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                  "syscalls": [{"names": ["read", "write", "arch_prctl"], "action": "SCMP_ACT_ALLOW"},
                               {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                                "includes": {"arches": ["amd64", "x32"]}},
                               {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}

LIBSECCOMP = r"""
import ctypes, errno, json, sys
from edgelstm.machine import amx
rules = [r for r in json.loads(sys.argv[1])["syscalls"] if "arch_prctl" in r["names"]]
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_EQ": 4}
# default: SCMP_ACT_LOG (allow; libseccomp refuses rules whose action equals the default one)
ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(0x7FFC0000)))
nr = lib.seccomp_syscall_resolve_name(b"arch_prctl")
for r in rules:
    action = 0x7FFF0000 if r["action"] == "SCMP_ACT_ALLOW" else 0x00050000 | r["errnoRet"]
    args = (Cmp * len(r["args"]))(*[Cmp(a["index"], OPS[a["op"]], a["value"], 0) for a in r["args"]])
    rc = lib.seccomp_rule_add_array(ctx, ctypes.c_uint32(action), nr, len(r["args"]), args)
    assert rc == 0, rc
rc = lib.seccomp_load(ctx)
assert rc == 0, rc
rc, err, _ = amx.arch_prctl(amx.ARCH_REQ_XCOMP_PERM, amx.XFEATURE_XTILEDATA)
fs = amx.arch_prctl(amx.ARCH_GET_FS)[0]
print(json.dumps([rc, errno.errorcode.get(err), fs, amx.amx_state()["blocked"]]))
"""


def test_docker_profile_keeps_the_base_profile_and_refuses_only_the_amx_request(tmp_path):
    import ctypes.util

    from edgelstm.machine.seccomp_profile import MARK, main, refuse_amx

    out = refuse_amx(SAMPLE_PROFILE)
    rules = out["syscalls"]
    assert rules[0] == {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}      # the rest stays as it was
    assert rules[1]["names"] == ["personality"] and out["defaultAction"] == "SCMP_ACT_ERRNO"
    arch = [r for r in rules if "arch_prctl" in r["names"]]
    assert all(r.get("comment") == MARK and r["args"] for r in arch) and len(arch) == 2  # never unconditional
    assert refuse_amx(out) == out and SAMPLE_PROFILE["syscalls"][0]["names"][-1] == "arch_prctl"  # pure, idempotent
    (tmp_path / "d.json").write_text(json.dumps(SAMPLE_PROFILE))
    assert main([str(tmp_path / "d.json"), "-o", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text()) == out
    assert main([str(tmp_path / "p.json"), "-x"]) == 2
    if not amx.is_x86_64_linux() or not ctypes.util.find_library("seccomp"):
        pytest.skip("libseccomp (what runc compiles Docker profiles with) is not installed here")
    # the two rules, compiled by libseccomp as runc does, refuse the request and leave ARCH_GET_FS working
    assert _child(json.dumps(out), code=LIBSECCOMP) == [-1, "EPERM", 0, True]


def test_the_committed_docker_rules_are_the_ones_the_code_adds():
    from pathlib import Path

    from edgelstm.machine.seccomp_profile import amx_rules

    committed = json.loads((Path(__file__).resolve().parents[1] / "docker" / "seccomp-noamx.rules.json").read_text())
    assert committed["syscalls"] == amx_rules()


RUNNER = r"""
import json, sys
from edgelstm.runners import open_runner
from edgelstm.machine import amx
r = open_runner(sys.argv[1], amx=sys.argv[2] if sys.argv[2] != "none" else None)
print(json.dumps([amx.amx_state()["blocked"], r.warnings]))
"""


@x86_linux
def test_the_onnxruntime_runner_blocks_amx_only_when_asked(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    assert _child(str(src), "none", code=RUNNER) == [False, []]
    assert _child(str(src), "block", code=RUNNER) == [True, []]
