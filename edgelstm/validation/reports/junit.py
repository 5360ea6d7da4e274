"""JUnit XML for CI test tabs (GitLab, Jenkins, GitHub test reporters): one testcase per gate, a failed
gate is a <failure> with its message. Root <testsuites>, one <testsuite>."""

from __future__ import annotations

import datetime as _dt
import platform
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgelstm.fileio import write_text_atomic
from edgelstm.validation.metrics import GATE_PREFIX
from edgelstm.validation.reports.validate_json import report_dict


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _gate_name(g: dict[str, Any]) -> str:
    prefix = GATE_PREFIX.get(str(g.get("source")), "")
    out = f":{g['output']}" if g.get("output") else ""
    return f"{prefix}{g['metric']}{out} {g.get('op', '<=')} {_fmt(g.get('limit'))}"


def junit_xml(result, *, suite_name: str | None = None) -> str:
    """The JUnit XML text for a ValidationResult (or its report dict)."""
    rep = report_dict(result)
    gates = rep.get("gates", [])
    failures = sum(1 for g in gates if not g.get("passed"))
    cand = Path(str(rep.get("candidate", "candidate"))).name
    classname = "edgelstm.validate." + cand.replace(".", "_").replace(" ", "_")
    seconds = f"{float(rep.get('seconds') or 0.0):.3f}"
    name = suite_name or f"edgelstm validate {cand}"
    tests = max(1, len(gates))

    root = ET.Element("testsuites", name="edgelstm validate", tests=str(tests), failures=str(failures),
                      errors="0", skipped="0", time=seconds)
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(tests), failures=str(failures), errors="0",
                          skipped="0", time=seconds,
                          timestamp=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
                          hostname=platform.node() or "localhost")
    props = ET.SubElement(suite, "properties")
    for key in ("reference", "candidate", "samples", "passed"):
        ET.SubElement(props, "property", name=key, value=_fmt(rep.get(key)))
    data = rep.get("data") or {}
    if data.get("source"):
        ET.SubElement(props, "property", name="data", value=str(data["source"]))
    if rep.get("against"):
        ET.SubElement(props, "property", name="against", value=str(rep["against"].get("old")))
    machine = rep.get("machine") or {}
    if machine.get("isa"):
        ET.SubElement(props, "property", name="machine_isa", value=str(machine["isa"]))
    for i, w in enumerate(rep.get("warnings") or []):
        ET.SubElement(props, "property", name=f"warning_{i + 1}", value=str(w))
    if not gates:
        ET.SubElement(suite, "testcase", classname=classname, name="validation ran (no gates given)", time="0")
    for g in gates:
        case = ET.SubElement(suite, "testcase", classname=classname, name=_gate_name(g), time="0")
        if not g.get("passed"):
            msg = g.get("message") or (f"{g['metric']} = {_fmt(g.get('value'))}, budget {g.get('op', '<=')} "
                                       f"{_fmt(g.get('limit'))}")
            fail = ET.SubElement(case, "failure", message=msg, type="GateFailed")
            detail = [f"metric: {g['metric']}", f"output: {g.get('output')}", f"value: {_fmt(g.get('value'))}",
                      f"limit: {g.get('op', '<=')} {_fmt(g.get('limit'))}", f"source: {g.get('source')}"]
            if g.get("baseline") is not None:
                was = "OLD" if g.get("source") == "against" else "baseline"
                detail.append(f"{was} value: {_fmt(g['baseline'])}")
            fail.text = "\n".join(detail)
    out_lines = [f"reference: {rep.get('reference')}", f"candidate: {rep.get('candidate')}",
                 f"samples: {rep.get('samples')}", f"measured on: {machine.get('isa', 'unknown')}",
                 *(f"warning: {w}" for w in rep.get("warnings") or [])]
    for oname, m in (rep.get("outputs") or {}).items():
        out_lines.append(f"{oname}: " + ", ".join(f"{k}={_fmt(m.get(k))}" for k in
                                                  ("max_abs", "mean_abs", "rmse", "rel_l2", "cosine")))
    ET.SubElement(suite, "system-out").text = "\n".join(out_lines)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(result, path: str | Path) -> Path:
    return write_text_atomic(path, junit_xml(result))
