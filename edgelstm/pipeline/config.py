"""`pipeline.toml`: the declarative description of a run, validated as a whole before any stage runs, with
every problem named by its key (``[bench].iters``). The schema is ``edgelstm.pipeline.schema``."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping

from edgelstm.errors import BadInput
from edgelstm.pipeline.checks import Problems, check_pipeline, suggest
from edgelstm.pipeline.schema import (FLOAT_MINIMUMS, MINIMUMS, PRECISIONS, SECTIONS, BenchSection, DataSection,
                                      ExportSection, ModelSection, OutputSection, Pipeline, QuantizeSection,
                                      TargetsSection, ValidateSection, option_name, renamed_keys)

__all__ = ["Pipeline", "ModelSection", "ExportSection", "QuantizeSection", "DataSection", "ValidateSection",
           "BenchSection", "TargetsSection", "OutputSection", "SECTIONS", "PRECISIONS", "parse_pipeline",
           "load_pipeline", "option_name"]


def _coerce(section: str, key: str, value: Any, annotation: str) -> Any:
    where = f"[{section}].{key}"

    def bad(expected: str) -> BadInput:
        return BadInput(f"{where} must be {expected}, got {value!r}")

    if annotation.startswith("Mapping"):
        if not isinstance(value, dict):
            raise bad("a table")
        return value
    if "tuple[int" in annotation:
        vals = value if isinstance(value, list) else [value]
        if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals):
            raise bad("a positive integer or a non-empty list of them")
        return tuple(vals)
    if "tuple[str" in annotation:
        vals = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in vals):
            raise bad("a string or a list of strings")
        return tuple(vals)
    if annotation.startswith("bool"):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if annotation.startswith("float"):
        least = FLOAT_MINIMUMS.get((section, key), 0.0)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < least:
            raise bad(f"a number >= {least:g}")
        return float(value)
    if annotation.startswith("int"):
        least = MINIMUMS.get((section, key), 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise bad("a non-negative integer" if least == 0 else f"an integer >= {least}")
        return value
    if annotation.startswith("str"):
        if not isinstance(value, str) or not value.strip():
            raise bad("a non-empty string")
        return value
    return value


def parse_pipeline(data: Mapping[str, Any], *, name: str = "pipeline.toml", base_dir: Path = Path("."),
                   source_text: str = "", on_renamed: Callable[[str], None] | None = None) -> Pipeline:
    """A Pipeline from parsed TOML; every problem in the file (unknown sections and keys, values of the wrong
    type or out of range, unknown precisions, metrics, files, gates) is one BadInput naming each key. An old key
    name (``RENAMED_KEYS``) is read under its new one and told to ``on_renamed``."""
    problems = Problems(name)
    data = renamed_keys(data, on_renamed)
    unknown = [k for k in data if k not in SECTIONS]
    for k in unknown:
        problems.add(f"unknown section [{k}]{suggest(k, SECTIONS)}; sections: {', '.join(SECTIONS)}")
    if "model" not in data:
        problems.add("missing [model] section (zoo = \"lstm_regressor\" or source = \"model.pt\")")
    built: dict[str, Any] = {}
    bad: set[str] = set() if "model" in data else {"model"}  # sections whose values are not all well-typed
    for section, cls in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.add(f"[{section}] must be a table")
            bad.add(section)
            table = {}
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in table.items():
            if key not in known:
                problems.add(f"unknown key [{section}].{key}{suggest(key, known)}; known: {', '.join(known)}")
                bad.add(section)
                continue
            try:
                kwargs[key] = _coerce(section, key, value, str(known[key].type))
            except BadInput as exc:
                problems.add(str(exc))
                bad.add(section)
        built[section] = cls(**kwargs)
    p = Pipeline(**built, base_dir=base_dir, source_text=source_text, name=name)
    check_pipeline(p, problems, skip=bad)  # how the well-typed sections fit together
    problems.raise_any()
    return p


def load_pipeline(path: str | Path, on_renamed: Callable[[str], None] | None = None) -> Pipeline:
    """Read and check a pipeline file: missing, a directory, not UTF-8, not TOML or any bad value is one
    BadInput line; nothing is run or written."""
    from edgelstm.fileio import parse_toml, read_text_file

    path = Path(path)
    text = read_text_file(path, what="pipeline file")
    data = parse_toml(text, name=path.name)
    return parse_pipeline(data, name=path.name, base_dir=path.resolve().parent, source_text=text,
                          on_renamed=on_renamed)
