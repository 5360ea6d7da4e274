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


def junit_document(suites: list[dict[str, Any]], *, name: str, seconds: float = 0.0,
                   properties: dict[str, str] | None = None, system_out: str | None = None) -> str:
    """JUnit XML text for ``suites``: ``[{"name", "cases": [{"classname", "name", "failure": message or None,
    "detail": text}]}]``; a case whose failure is set is a <failure type="GateFailed">. Root <testsuites>."""
    total = sum(len(s["cases"]) for s in suites)
    failures = sum(1 for s in suites for c in s["cases"] if c.get("failure"))
    stamp = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    root = ET.Element("testsuites", name=name, tests=str(total), failures=str(failures), errors="0", skipped="0",
                      time=f"{seconds:.3f}")
    for s in suites:
        failed = sum(1 for c in s["cases"] if c.get("failure"))
        suite = ET.SubElement(root, "testsuite", name=s["name"], tests=str(len(s["cases"])), failures=str(failed),
                              errors="0", skipped="0", time=f"{seconds:.3f}", timestamp=stamp,
                              hostname=platform.node() or "localhost")
        if properties:
            props = ET.SubElement(suite, "properties")
            for key, value in properties.items():
                ET.SubElement(props, "property", name=key, value=value)
        for c in s["cases"]:
            case = ET.SubElement(suite, "testcase", classname=c["classname"], name=c["name"], time="0")
            if c.get("failure"):
                fail = ET.SubElement(case, "failure", message=c["failure"], type="GateFailed")
                fail.text = c.get("detail") or c["failure"]
        if system_out:
            ET.SubElement(suite, "system-out").text = system_out
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _failure_detail(g: dict[str, Any]) -> str:
    detail = [f"metric: {g['metric']}", f"output: {g.get('output')}", f"value: {_fmt(g.get('value'))}",
              f"limit: {g.get('op', '<=')} {_fmt(g.get('limit'))}", f"source: {g.get('source')}"]
    if g.get("baseline") is not None:
        was = "OLD" if g.get("source") == "against" else "baseline"
        detail.append(f"{was} value: {_fmt(g['baseline'])}")
    return "\n".join(detail)


def junit_xml(result, *, suite_name: str | None = None) -> str:
    """The JUnit XML text for a ValidationResult (or its report dict)."""
    rep = report_dict(result)
    gates = rep.get("gates", [])
    cand = Path(str(rep.get("candidate", "candidate"))).name
    classname = "edgelstm.validate." + cand.replace(".", "_").replace(" ", "_")
    cases = [{"classname": classname, "name": _gate_name(g), "detail": _failure_detail(g),
              "failure": None if g.get("passed") else (g.get("message") or f"{g['metric']} = {_fmt(g.get('value'))}, "
                                                       f"budget {g.get('op', '<=')} {_fmt(g.get('limit'))}")}
             for g in gates] or [{"classname": classname, "name": "validation ran (no gates given)", "failure": None}]
    props = {key: _fmt(rep.get(key)) for key in ("reference", "candidate", "samples", "passed")}
    data = rep.get("data") or {}
    if data.get("source"):
        props["data"] = str(data["source"])
    if rep.get("against"):
        props["against"] = str(rep["against"].get("old"))
    machine = rep.get("machine") or {}
    if machine.get("isa"):
        props["machine_isa"] = str(machine["isa"])
    for i, w in enumerate(rep.get("warnings") or []):
        props[f"warning_{i + 1}"] = str(w)
    out_lines = [f"reference: {rep.get('reference')}", f"candidate: {rep.get('candidate')}",
                 f"samples: {rep.get('samples')}", f"measured on: {machine.get('isa', 'unknown')}",
                 *(f"warning: {w}" for w in rep.get("warnings") or [])]
    for oname, m in (rep.get("outputs") or {}).items():
        out_lines.append(f"{oname}: " + ", ".join(f"{k}={_fmt(m.get(k))}" for k in
                                                  ("max_abs", "mean_abs", "rmse", "rel_l2", "cosine")))
    return junit_document([{"name": suite_name or f"edgelstm validate {cand}", "cases": cases}],
                          name="edgelstm validate", seconds=float(rep.get("seconds") or 0.0), properties=props,
                          system_out="\n".join(out_lines))


def write_junit(result, path: str | Path) -> Path:
    return write_text_atomic(path, junit_xml(result))
