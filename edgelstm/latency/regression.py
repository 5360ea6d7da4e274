"""The latency regression gate: compare a bench run with a baseline report.

Rows match on (artifact, backend, device, precision, variant, mode, batch, seq, threads). A baseline
from another device (CPU model, GPU, Jetson model) or from another model is refused (BadInput): an
artifact matches its baseline rows when it has the same sha256, or — a rebuilt artifact of the same
model — the same parent sha256 in its manifest (e.g. the same checkpoint exported again).

Machine speed: every row carries `probe_ms`, the time of a fixed numpy workload measured around it
(harness.speed_probe). When the machine is slower now than when the baseline was made (a busy SMT
sibling, a noisy neighbour on a shared runner, a lower clock), the limit is scaled by that factor; it is
never made stricter than max_slowdown.

Noise: a row whose p50 looks slower than max_slowdown x the baseline p50 is only a suspect. It is
re-measured (up to `repeats` times); it counts as a regression only when a majority of the repeats is
slow in both its p50 and its best (min) time, i.e. the medians of both exceed max_slowdown x the
baseline's. Background load inflates p50 but rarely the minimum; a model that really got slower moves both.

Nothing to compare is an error, not a pass: when no row of the run matches a baseline row (another
batch/seq/threads grid, another backend or precision), BadInput names what differs.

Clocks: the gate itself reads no clock. Latencies and `probe_ms` come from the rows and from `remeasure`;
the pause between re-measurements goes through the module-level `sleep` (time.sleep), which tests replace.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from edgelstm.errors import BadInput, opt
from edgelstm.fileio import load_json_file
from edgelstm.latency.schema import ROW_KEY_FIELDS, describe_key, row_key, work_list
from edgelstm.machine.device import same_device

#: Where a refused baseline points: the comparison that needs no stored number (edgelstm.latency.compare).
AGAINST_HINT = (f"to compare two models on any machine, a CI runner included, time both in the same run: "
                f"edgelstm bench NEW {opt('against')} OLD")

#: The pause between re-measurements of a suspect (seconds); a module attribute so that tests replace it.
sleep: Callable[[float], Any] = time.sleep


@dataclass
class RowComparison:
    key: tuple
    baseline_p50: float
    current_p50: float
    baseline_min: float | None = None
    current_min: float | None = None
    suspected: bool = False
    repeats_p50: list[float] = field(default_factory=list)
    repeats_min: list[float] = field(default_factory=list)
    regressed: bool = False
    artifact_changed: bool = False
    note: str = ""
    baseline_probe: float | None = None
    current_probe: float | None = None
    repeats_factor: list[float] = field(default_factory=list)

    def machine_factor(self, probe: float | None) -> float:
        """How much slower the machine is now than when the baseline was made (>= 1: never stricter)."""
        if not probe or not self.baseline_probe:
            return 1.0
        return max(1.0, probe / self.baseline_probe)

    @property
    def ratio(self) -> float:
        return self.current_p50 / self.baseline_p50 if self.baseline_p50 > 0 else float("inf")

    @property
    def confirmed_ratio(self) -> float | None:
        if not self.repeats_p50:
            return None
        return statistics.median(self.repeats_p50) / self.baseline_p50 if self.baseline_p50 > 0 else float("inf")

    @property
    def confirmed_min_ratio(self) -> float | None:
        if not self.repeats_min or not self.baseline_min:
            return None
        return statistics.median(self.repeats_min) / self.baseline_min

    def to_dict(self) -> dict[str, Any]:
        return {
            **dict(zip(ROW_KEY_FIELDS, self.key)), "row": describe_key(self.key),
            "baseline_p50_ms": self.baseline_p50, "current_p50_ms": self.current_p50, "ratio": round(self.ratio, 4),
            "baseline_min_ms": self.baseline_min, "current_min_ms": self.current_min, "suspected": self.suspected,
            "repeats_p50_ms": self.repeats_p50, "repeats_min_ms": self.repeats_min,
            "confirmed_ratio": None if self.confirmed_ratio is None else round(self.confirmed_ratio, 4),
            "confirmed_min_ratio": None if self.confirmed_min_ratio is None else round(self.confirmed_min_ratio, 4),
            "regressed": self.regressed, "artifact_changed": self.artifact_changed, "note": self.note,
            "baseline_probe_ms": self.baseline_probe, "current_probe_ms": self.current_probe,
            "machine_factor": round(self.machine_factor(self.current_probe), 4),
            "repeats_machine_factor": [round(f, 4) for f in self.repeats_factor],
        }


@dataclass
class RegressionResult:
    max_slowdown: float
    repeats: int
    comparisons: list[RowComparison] = field(default_factory=list)
    unmatched_current: list[tuple] = field(default_factory=list)
    unmatched_baseline: list[tuple] = field(default_factory=list)
    baseline: str | None = None

    @property
    def regressed(self) -> list[RowComparison]:
        return [c for c in self.comparisons if c.regressed]

    @property
    def passed(self) -> bool:
        return not self.regressed

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline, "max_slowdown": self.max_slowdown, "statistic": "p50 (confirmed by min, scaled by the machine probe)",
            "repeats": self.repeats, "passed": self.passed, "compared": len(self.comparisons),
            "regressed": [c.to_dict() for c in self.regressed],
            "noise_cleared": [c.to_dict() for c in self.comparisons if c.suspected and not c.regressed],
            "rows": [c.to_dict() for c in self.comparisons],
            "unmatched_current": [describe_key(k) for k in self.unmatched_current],
            "unmatched_baseline": [describe_key(k) for k in self.unmatched_baseline],
        }


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A bench report to compare with: BadInput in one line when missing, not JSON, or not a bench report."""
    path = Path(path)
    data = load_json_file(path, what="baseline")
    check_report(data, what=f"baseline {path.name}")
    data.setdefault("_source", str(path))
    return data


def check_report(data: Any, *, what: str) -> None:
    """A bench report's shape, every field the comparison reads typed, so that a hand-edited or foreign file is
    one BadInput line here and never a crash later."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or not isinstance(data.get("device"), dict):
        raise BadInput(f"{what} is not an edgelstm bench report (needs 'device' and 'results')")
    device = data["device"]
    for key in ("cpu", "gpu", "jetson"):
        block = device.get(key)
        if block is not None and not isinstance(block, dict):
            raise BadInput(f"{what}: device.{key} must be an object")
        if isinstance(block, dict) and any(not _scalar(v) for k, v in block.items() if k in ("model", "isa", "name")):
            raise BadInput(f"{what}: device.{key} holds a non-text model/name")
    for i, row in enumerate(data["results"]):
        lat = row.get("latency_ms") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("artifact"), str) or not isinstance(lat, dict) \
                or not _number_ok(lat.get("p50")):
            raise BadInput(f"{what}: results[{i}] lacks artifact / latency_ms.p50")
        if any(not _scalar(row.get(k)) for k in ROW_KEY_FIELDS) or any(
                row.get(k) is not None and not isinstance(row.get(k), str) for k in ("sha256", "parent_sha256")):
            raise BadInput(f"{what}: results[{i}] has a field of the wrong type (artifact, backend, batch, seq, "
                           "threads, sha256 ...)")
        if any(lat.get(k) is not None and not _number_ok(lat.get(k)) for k in ("min", "p90", "p99", "mean")) or (
                row.get("probe_ms") is not None and not _number_ok(row.get("probe_ms"))):
            raise BadInput(f"{what}: results[{i}].latency_ms holds a value that is not a number >= 0")


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _number_ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _artifact_map(current: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]],
                  what: str) -> tuple[dict[str, str], set[str]]:
    """Map each current artifact name to the baseline artifact name it is compared with; the set of
    current names whose artifact changed (same model: same parent)."""
    base_by_name: dict[str, list[Mapping[str, Any]]] = {}
    for r in baseline:
        base_by_name.setdefault(r["artifact"], []).append(r)
    base_by_sha = {r.get("sha256"): r["artifact"] for r in baseline if r.get("sha256")}
    mapping: dict[str, str] = {}
    changed: set[str] = set()
    cur_names: dict[str, Mapping[str, Any]] = {}
    for r in current:
        cur_names.setdefault(r["artifact"], r)
    for name, r in cur_names.items():
        sha, parent = r.get("sha256"), r.get("parent_sha256")
        if name in base_by_name:
            rows = base_by_name[name]
            shas = {b.get("sha256") for b in rows}
            parents = {b.get("parent_sha256") for b in rows} - {None}
            if sha is None or sha in shas or None in shas and not any(shas - {None}):
                mapping[name] = name
            elif parent is not None and parent in parents:
                mapping[name] = name
                changed.add(name)
            else:
                old = next(iter(shas - {None}), None) or "?"
                raise BadInput(f"{what} rows for {name} come from another model (sha256 {str(old)[:12]}… vs "
                               f"{str(sha)[:12]}…, and no common parent)",
                               hint="make a new baseline for the new model, or " + AGAINST_HINT)
        elif sha is not None and sha in base_by_sha:
            mapping[name] = base_by_sha[sha]  # the same file, renamed
    if not mapping:
        names = sorted(base_by_name)
        raise BadInput(f"{what} has no rows for {sorted(cur_names)}; it was measured on {names[:6]}"
                       + ("…" if len(names) > 6 else ""),
                       hint="the baseline belongs to another model; " + AGAINST_HINT)
    return mapping, changed


def _what(baseline: Mapping[str, Any]) -> str:
    return f"baseline {Path(str(baseline.get('_source'))).name}" if baseline.get("_source") else "the baseline"


def precheck_baseline(baseline: Mapping[str, Any], device: Mapping[str, Any], artifacts: Sequence[Mapping[str, Any]],
                      *, max_slowdown: float = 1.10, planned: Sequence[Mapping[str, Any]] | None = None) -> None:
    """The checks compare_reports makes that need no timing (device, model identity, max_slowdown, and with
    `planned` — the rows the run will measure, see planned_keys — that at least one of them has a baseline
    row), so that a wrong baseline fails before the benchmark runs. `artifacts`: [{artifact, sha256,
    parent_sha256}]."""
    if not max_slowdown >= 1.0:
        raise BadInput(f"{opt('max_slowdown')} must be >= 1.0 (1.10 = 10% slower allowed), got {max_slowdown}")
    what = _what(baseline)
    check_report(baseline, what=what)
    ok, why = same_device(baseline["device"], device)
    if not ok:
        raise BadInput(f"{what} was measured on another device ({why}): stored latencies compare only on the "
                       "machine that made them", hint=AGAINST_HINT)
    mapping, _ = _artifact_map(artifacts, baseline["results"], what)
    if planned is not None:
        _check_some_row_matches(planned, baseline["results"], mapping, what)


def planned_keys(resolved: Sequence[Any], grid: Any) -> list[dict[str, Any]]:
    """The row keys a Bencher.run over `resolved` targets and `grid` will measure (the same work list:
    every grid point in window mode, and with streaming one step per batch and thread count)."""
    out = []
    for r in resolved:
        for batch, seq, threads, mode in work_list(grid, bool(getattr(r, "stream", False)), r.target.variant):
            out.append({"artifact": r.name, "backend": r.backend, "device": r.device, "precision": r.precision,
                        "variant": r.target.variant, "mode": mode, "batch": batch, "seq": seq, "threads": threads})
    return out


def _check_some_row_matches(rows: Sequence[Mapping[str, Any]], base_rows: Sequence[Mapping[str, Any]],
                            mapping: Mapping[str, str], what: str) -> None:
    """BadInput when none of `rows` (artifact names mapped to the baseline's) has a baseline row: comparing
    nothing must not pass the gate. The message names the key fields whose values differ."""
    cur = [row_key({**r, "artifact": mapping[r["artifact"]]}) for r in rows if r["artifact"] in mapping]
    base = [row_key(r) for r in base_rows if r["artifact"] in set(mapping.values())]
    if set(cur) & set(base):
        return
    raise BadInput(f"{what} has no row to compare with this run ({_differences(cur, base)})",
                   hint="rows match on " + ", ".join(ROW_KEY_FIELDS) + "; bench with the baseline's settings "
                        f"or make a new baseline with {opt('report')}")


def _differences(cur: Sequence[tuple], base: Sequence[tuple]) -> str:
    """One line: the key fields on which no row of the run can match the baseline (no value in common), e.g.
    "batch 8 here vs 1 in the baseline; seq 60, 256 here vs 20 in the baseline"; when every field shares
    a value (the same values in other combinations), the rows themselves."""
    def values(keys: Sequence[tuple], i: int) -> list[Any]:
        return sorted({k[i] for k in keys}, key=lambda v: (v is None, str(type(v)), v if v is not None else 0))

    def show(vals: list[Any]) -> str:
        return ", ".join("default" if v is None else str(v) if v != "" else "none" for v in vals) or "nothing"

    parts = []
    for i, field_name in enumerate(ROW_KEY_FIELDS):
        here, there = values(cur, i), values(base, i)
        if not set(here) & set(there):
            parts.append(f"{field_name} {show(here)} here vs {show(there)} in the baseline")
    if not parts:  # the same values, in other combinations
        def rows(keys: Sequence[tuple]) -> str:
            shown = [describe_key(k) for k in sorted(keys, key=str)[:3]]
            return "; ".join(shown) + (f"; … {len(keys) - 3} more" if len(keys) > 3 else "")

        parts.append(f"this run: {rows(cur)} / the baseline: {rows(base)}")
    return "; ".join(parts)


def compare_reports(current: Mapping[str, Any], baseline: Mapping[str, Any], *, max_slowdown: float = 1.10,
                    remeasure: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
                    repeats: int = 3, pause_s: float = 0.2) -> RegressionResult:
    """Compare a current bench report with a baseline (both as dicts). `remeasure(row) -> latency stats`
    re-times a suspected row (`pause_s` apart, so that a burst of background load does not cover every
    repeat); without it a suspect counts as a regression (marked "not re-measured")."""
    if repeats < 1:
        raise BadInput(f"repeats must be >= 1, got {repeats}")
    what = _what(baseline)
    precheck_baseline(baseline, current["device"], current["results"], max_slowdown=max_slowdown)
    cur_rows = list(current["results"])
    base_rows = list(baseline["results"])
    mapping, changed = _artifact_map(cur_rows, base_rows, what)
    base_index = {row_key(r): r for r in base_rows}
    result = RegressionResult(max_slowdown, repeats, baseline=baseline.get("_source"))
    matched_base: set[tuple] = set()
    for row in cur_rows:
        name = row["artifact"]
        if name not in mapping:
            result.unmatched_current.append(row_key(row))
            continue
        bkey = row_key({**row, "artifact": mapping[name]})
        base = base_index.get(bkey)
        if base is None:
            result.unmatched_current.append(row_key(row))
            continue
        matched_base.add(bkey)
        c = RowComparison(row_key(row), float(base["latency_ms"]["p50"]), float(row["latency_ms"]["p50"]),
                          _num(base["latency_ms"].get("min")), _num(row["latency_ms"].get("min")),
                          artifact_changed=name in changed, baseline_probe=_num(base.get("probe_ms")),
                          current_probe=_num(row.get("probe_ms")))
        threshold = max_slowdown * c.baseline_p50 * c.machine_factor(c.current_probe)
        if c.current_p50 > threshold:
            c.suspected = True
            if remeasure is None:
                c.regressed = True
                c.note = "not re-measured"
            else:
                _confirm(c, row, remeasure, max_slowdown, repeats, pause_s)
        result.comparisons.append(c)
    result.unmatched_baseline = [k for k in base_index if k not in matched_base and k[0] in set(mapping.values())]
    if not result.comparisons:
        _check_some_row_matches(cur_rows, base_rows, mapping, what)  # raises: nothing was compared
    return result


def _confirm(c: RowComparison, row: Mapping[str, Any], remeasure: Callable[[Mapping[str, Any]], Mapping[str, float]],
             max_slowdown: float, repeats: int, pause_s: float = 0.0) -> None:
    """Re-measure a suspect: a repeat is slow when its p50 and its min both exceed max_slowdown x the
    baseline's (x the machine factor at that moment); the row regressed when a majority of the repeats is
    slow (so the medians are too)."""
    need = repeats // 2 + 1
    slow = fast = 0
    for _ in range(repeats):
        if pause_s > 0:
            sleep(pause_s)
        stats = remeasure(row)
        p50, mn = float(stats["p50"]), float(stats.get("min", stats["p50"]))
        factor = c.machine_factor(_num(stats.get("probe_ms")))
        c.repeats_p50.append(p50)
        c.repeats_min.append(mn)
        c.repeats_factor.append(factor)
        thr_p50 = max_slowdown * c.baseline_p50 * factor
        thr_min = max_slowdown * c.baseline_min * factor if c.baseline_min else None
        if p50 > thr_p50 and (thr_min is None or mn > thr_min):
            slow += 1
        else:
            fast += 1
        if slow >= need or fast >= need:
            break
    c.regressed = slow >= need
    if c.regressed:
        c.note = f"confirmed: {slow} of {len(c.repeats_p50)} re-measurements slower than the limit"
    else:
        c.note = f"cleared as noise: {fast} of {len(c.repeats_p50)} re-measurements within the limit"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None
