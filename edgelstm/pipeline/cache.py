"""Content-hash cache for pipeline steps: a step whose inputs and options are unchanged and whose outputs
are intact on disk is not run again. The record is written only after a step finished, so an interrupted
run resumes from the last finished step. (A *stage* is a pure function of ``edgelstm.stages``; a pipeline *step*
calls one, through this cache. `run --json` and the report still list the steps under "stages".)"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgelstm.fileio import sha256_file, write_text_atomic

CACHE_FILE = ".edgelstm-cache.json"


def cache_key(material: Any) -> str:
    from edgelstm import __version__

    blob = json.dumps({"edgelstm": __version__, "material": material}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class StepCache:
    root: Path
    records: dict[str, Any] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path) -> "StepCache":
        path = root / CACHE_FILE
        records = {}
        if path.exists():
            try:
                records = json.loads(path.read_text())
            except ValueError:
                records = {}  # a damaged cache is only a cache: start over
        return cls(root, records)

    def _intact(self, record: dict[str, Any]) -> bool:
        for rel, sha in record.get("outputs", {}).items():
            p = self.root / rel
            if not p.exists() or sha256_file(p) != sha:
                return False
        return True

    def run(self, step: str, material: Any, fn: Callable[[], tuple[list[Path], dict[str, Any]]]) -> dict[str, Any]:
        """Run fn unless a record with the same key has intact outputs; fn returns (output paths, result)."""
        key = cache_key(material)
        rec = self.records.get(step)
        if rec and rec.get("key") == key and self._intact(rec):
            self.hits.append(step)
            return {**rec["result"], "cached": True}
        outputs, result = fn()
        self.records[step] = {
            "key": key, "result": result,
            "outputs": {str(Path(p).resolve().relative_to(self.root.resolve())): sha256_file(p) for p in outputs},
        }
        write_text_atomic(self.root / CACHE_FILE, json.dumps(self.records, indent=1, default=str))
        self.runs.append(step)
        return {**result, "cached": False}
