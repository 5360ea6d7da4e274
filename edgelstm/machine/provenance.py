"""Where a report comes from, for the first lines a reviewer reads: the date, the edgelstm version, the git
commit of the project (when the files live in a git work tree), the model file and its sha256, and the
machine with its CPU's int8 ISA class. One dict (``provenance``) and one line of Markdown (``provenance_line``)
shared by the pipeline report, validate's Markdown and bench's Markdown."""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping


def git_commit(where: Path | str | None) -> dict[str, Any] | None:
    """``{"commit": <12 hex>, "dirty": bool}`` of the git work tree holding ``where``; None outside one, or when
    git is missing or slow. On a GitHub runner without a checkout, ``GITHUB_SHA`` is used."""
    folder = Path(where) if where is not None else Path.cwd()
    folder = folder if folder.is_dir() else folder.parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode == 0 and head.stdout.strip():
            status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            return {"commit": head.stdout.strip()[:12], "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    sha = os.environ.get("GITHUB_SHA", "").strip()
    return {"commit": sha[:12], "dirty": False} if sha else None


def machine_facts(device: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """CPU model, cores and ISA class (from a bench report's device block when there is one)."""
    if device is None:
        from edgelstm.machine.device import describe_device

        device = describe_device()
    cpu = device.get("cpu") if isinstance(device.get("cpu"), Mapping) else {}
    gpu = device.get("gpu") if isinstance(device.get("gpu"), Mapping) else None
    return {"cpu": cpu.get("model") or "unknown CPU", "cores": cpu.get("usable_cores") or cpu.get("logical_cores"),
            "isa": cpu.get("isa") or "unknown", "gpu": gpu.get("name") if gpu else None}


def provenance(model: Path | str | None = None, *, where: Path | str | None = None,
               device: Mapping[str, Any] | None = None, sha256: str | None = None) -> dict[str, Any]:
    """The facts a report starts with. ``where``: a path inside the project (for the git commit; default:
    the model's folder); ``sha256``: the model's, when already known."""
    from edgelstm import __version__

    out: dict[str, Any] = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                           "edgelstm": __version__}
    if model is not None:
        path = Path(model)
        if sha256 is None and path.is_file():
            from edgelstm.fileio import sha256_file

            sha256 = sha256_file(path)
        out["model"] = {"file": str(path), "sha256": sha256}
    out["git"] = git_commit(where if where is not None else (Path(model).parent if model is not None else None))
    out["machine"] = machine_facts(device)
    return out


def machine_words(m: Mapping[str, Any]) -> str:
    cores = f", {m['cores']} cores" if m.get("cores") else ""
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    return f"{m.get('cpu')}{cores} (ISA class {m.get('isa')}){gpu}"


def provenance_lines(p: Mapping[str, Any]) -> list[str]:
    """Markdown lines (each ending in two spaces: a line break) for the top of a report."""
    git = p.get("git")
    commit = (f"`{git['commit']}`" + (" (with uncommitted changes)" if git.get("dirty") else "")) if git else \
        "not in a git work tree"
    lines = [f"**Date** {p['date']} · **edgelstm** {p['edgelstm']} · **commit** {commit}"]
    model = p.get("model")
    if model:
        sha = model.get("sha256")
        lines.append(f"**Model** `{Path(str(model['file'])).name}` · sha256 `{sha or 'n/a'}`")
    lines.append(f"**Machine** {machine_words(p['machine'])}")
    return [line + "  " for line in lines[:-1]] + lines[-1:]
