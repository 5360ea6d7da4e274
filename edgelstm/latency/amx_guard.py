"""AMX for a bench run: decide (``--amx auto|allow|block``) before anything asks for AMX, install edgelstm's seccomp
filter when blocking (edgelstm.machine.noamx), and record what the measuring process really had, so that no figure
silently comes from a kernel the user's service does not get (edgelstm.machine.amx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgelstm.options import AmxPolicy


def _is_int8_onnx(target: Any, backend: str | None) -> bool:
    """Whether a bench target is an INT8 ONNX file run by onnxruntime (read without onnxruntime)."""
    artifact = getattr(target, "artifact", target)
    backend = getattr(target, "backend", None) or backend
    if not isinstance(artifact, (str, Path)) or Path(artifact).suffix.lower() != ".onnx":
        return False
    if backend not in (None, "onnxruntime"):
        return False
    try:
        from edgelstm.artifacts.artifact import Artifact

        art = Artifact.open(artifact, verify=False)
    except Exception:  # noqa: BLE001 - the bencher reports a broken file properly
        return False
    from edgelstm.options import Precision

    return art.precision == Precision.int8


def prepare_amx(policy: AmxPolicy | str, targets: Sequence[Any], batches: Sequence[int],
                backend: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Decide and, when blocking, install the filter in this process now (before the first runner opens).
    Returns the report's ``amx`` block: policy, decision, why, the install result and warnings."""
    from edgelstm.machine.amx import decide_amx_block
    from edgelstm.machine.isa import detect_isa

    policy = AmxPolicy(policy)
    int8 = device == "cpu" and any(_is_int8_onnx(t, backend) for t in targets)
    block, why, warning = decide_amx_block(policy.value, str(detect_isa()), int8, list(batches))
    out: dict[str, Any] = {"policy": policy.value, "block": block, "why": why, "warnings": [warning] if warning else []}
    if block:
        from edgelstm.machine.noamx import install_amx_block

        result = install_amx_block()
        out["install"] = result.to_dict()
        if not result.effective and result.installed:
            out["warnings"].append(f"AMX block came too late: {result.reason}")
        elif not result.installed:
            out["warnings"].append(f"AMX not blocked: {result.reason}")
    return out


def process_facts(decision: dict[str, Any] | None = None) -> dict[str, Any]:
    """The measuring process after timing: AMX state (permission held, blocked, pinned) and the bench's decision."""
    from edgelstm.machine.amx import amx_state

    state = amx_state()
    facts: dict[str, Any] = {"pinned": state["pinned"], "usable_cpus": state["usable_cpus"],
                             "online_cpus": state["online_cpus"], "amx": state}
    if decision is not None:
        facts["amx_policy"] = {k: v for k, v in decision.items() if k != "warnings"}
    return facts


def describe_process(facts: dict[str, Any]) -> str:
    """One line for the console: the INT8 kernel the process had and whether it was pinned."""
    amx = facts.get("amx") or {}
    pinned = (f"pinned to {facts.get('usable_cpus')} of {facts.get('online_cpus')} CPUs" if facts.get("pinned")
              else "not pinned")
    return f"process: INT8 kernel {amx.get('int8_kernel', 'unknown')}; {pinned}"


__all__ = ["prepare_amx", "process_facts", "describe_process"]
