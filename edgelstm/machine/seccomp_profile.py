"""A Docker seccomp profile that refuses AMX, made from the Docker default profile you already trust.

``docker run --security-opt seccomp=PROFILE.json`` *replaces* Docker's default profile, so a profile that only says
"refuse arch_prctl(ARCH_REQ_XCOMP_PERM)" would drop every other protection. This module takes a copy of the default
profile (moby's ``profiles/seccomp/default.json``, or your own) and changes one thing: ``arch_prctl`` stays allowed
except with the code ``ARCH_REQ_XCOMP_PERM`` (0x1023), which fails with EPERM. The rule is the one edgelstm's own
filter applies (edgelstm.machine.noamx), in Docker's format:

    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4131, "op": "SCMP_CMP_NE"}]}
    {"names": ["arch_prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
     "args": [{"index": 0, "value": 4131, "op": "SCMP_CMP_EQ"}]}

    python -m edgelstm.machine.seccomp_profile default.json -o seccomp-noamx.json

The simpler container route needs no profile at all: start the service through the helper (``ENTRYPOINT
["edgelstm-noamx", "--"]``); Docker's default profile allows a process to add its own filter. docker/README.md.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from edgelstm.machine.amx import ARCH_REQ_XCOMP_PERM

SYSCALL = "arch_prctl"
MARK = "edgelstm: AMX refused (arch_prctl ARCH_REQ_XCOMP_PERM -> EPERM); other arch_prctl codes allowed"


def amx_rules() -> list[dict[str, Any]]:
    """The two rules that replace an unconditional ``arch_prctl`` allow."""
    arg = {"index": 0, "value": ARCH_REQ_XCOMP_PERM}
    return [{"names": [SYSCALL], "action": "SCMP_ACT_ALLOW", "args": [{**arg, "op": "SCMP_CMP_NE"}],
             "comment": MARK, "includes": {"arches": ["amd64", "x32"]}},
            {"names": [SYSCALL], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{**arg, "op": "SCMP_CMP_EQ"}],
             "comment": MARK, "includes": {"arches": ["amd64", "x32"]}}]


def refuse_amx(profile: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Docker seccomp profile in which ``arch_prctl`` is allowed except ARCH_REQ_XCOMP_PERM (pure).
    ``arch_prctl`` leaves every rule that allowed it without conditions; the two rules of ``amx_rules`` are added
    (a profile that already has them is returned unchanged)."""
    from edgelstm.errors import BadInput

    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls"), list):
        raise BadInput("not a Docker seccomp profile: it needs a \"syscalls\" list")
    out = copy.deepcopy(profile)
    if any(r.get("comment") == MARK for r in out["syscalls"] if isinstance(r, dict)):
        return out
    rules = []
    for rule in out["syscalls"]:
        names = rule.get("names") or ([rule["name"]] if "name" in rule else [])
        if SYSCALL in names and not rule.get("args") and rule.get("action") == "SCMP_ACT_ALLOW":
            rest = [n for n in names if n != SYSCALL]
            if not rest:
                continue
            rule = {**rule, "names": rest}
            rule.pop("name", None)
        rules.append(rule)
    out["syscalls"] = rules + amx_rules()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from edgelstm import console
    from edgelstm.errors import EdgeLSTMError

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "-o") or args[0] in ("-h", "--help"):
        console.info("usage: python -m edgelstm.machine.seccomp_profile DOCKER_PROFILE.json [-o OUT.json]")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        profile = refuse_amx(json.loads(Path(args[0]).read_text()))
    except (OSError, ValueError, EdgeLSTMError) as exc:
        console.error(f"{args[0]}: {exc}")
        return 2
    if len(args) == 3:
        from edgelstm.fileio import write_text_atomic

        write_text_atomic(Path(args[2]), json.dumps(profile, indent=2) + "\n")
    else:
        console.emit_json(profile)
    return 0


__all__ = ["refuse_amx", "amx_rules", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
