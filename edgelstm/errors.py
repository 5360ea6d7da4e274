"""Errors with exit codes. Only the CLI catches and renders them (one line, no traceback).

Exit codes (ARCHITECTURE.md, "Facts the code relies on"): 0 success, 1 a gate failed, 2 bad usage or input, 3 backend missing, 4 internal.
"""

from __future__ import annotations

import re
from typing import Callable


_OPTION = re.compile(r"\{opt:([a-z0-9_]+)\}")


def opt(name: str) -> str:
    """An option named in a library message, rendered in the caller's words: ``--iters`` on the command line,
    ``[bench].iters`` in a pipeline file (see ``EdgeLSTMError.render``). ``name`` is the option's key."""
    return "{opt:" + name + "}"


#: library option keys whose command-line flag has another name (README.md, "One vocabulary")
CLI_FLAGS = {"seq_len": "--seq", "max_seq_len": "--max-seq", "batch_size": "--batch",
             "calib_batch_size": "--calib-batch", "out": "--output"}


def cli_flag(name: str) -> str:
    return CLI_FLAGS.get(name) or "--" + name.replace("_", "-")


def _one_line(text: str) -> str:
    """A message stays one line whatever user text it quotes (a key, a file or column name with a newline)."""
    return text.replace("\r", "\\r").replace("\n", "\\n") if ("\n" in text or "\r" in text) else text


class EdgeLSTMError(Exception):
    """Base class: every error edgelstm raises on purpose carries an exit code and a one-line message.

    Messages name options with ``opt("key")``; ``str(error)`` renders them as command-line flags, and
    ``render(namer)`` in any other words (the pipeline: ``[section].key``)."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.raw_message = message
        self.raw_hint = hint

    def render(self, namer: Callable[[str], str] = cli_flag) -> str:
        msg = _OPTION.sub(lambda m: namer(m.group(1)), self.raw_message)
        hint = _OPTION.sub(lambda m: namer(m.group(1)), self.raw_hint) if self.raw_hint else None
        return _one_line(msg if not hint else f"{msg} ({hint})")

    @property
    def message(self) -> str:
        return _OPTION.sub(lambda m: cli_flag(m.group(1)), self.raw_message)

    @property
    def hint(self) -> str | None:
        return _OPTION.sub(lambda m: cli_flag(m.group(1)), self.raw_hint) if self.raw_hint else None

    def __str__(self) -> str:
        return self.render()


class GateFailed(EdgeLSTMError):
    """A drift or latency gate failed, or an export did not verify against torch."""

    exit_code = 1


class BadInput(EdgeLSTMError):
    """Bad usage or input: a missing or corrupt file, wrong shapes, NaN data, unknown keys."""

    exit_code = 2


class UntrustedFile(BadInput):
    """A file that would need unpickling arbitrary code, refused without an explicit opt-in."""


class BackendMissing(EdgeLSTMError):
    """A backend (tensorrt, CUDA, onnxruntime provider, torch) is not installed or unusable."""

    exit_code = 3


class InternalError(EdgeLSTMError):
    exit_code = 4


class ExportMismatch(GateFailed):
    """The exported ONNX disagrees with torch; carries every failing check, not just the first."""

    def __init__(self, message: str, failures: list[str] | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.failures = failures or []


def require_backend(module: str, *, purpose: str, install: str):
    """Import an optional heavy module or raise BackendMissing naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendMissing(
            f"{module} is not installed, but {purpose} needs it", hint=f"install with: {install}"
        ) from exc


def require_torch():
    return require_backend("torch", purpose="this step", install="pip install torch==2.13.0 (CPU wheel)")
