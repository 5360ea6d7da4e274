"""Silence the exporters and onnxruntime while they work: Python warnings, torch/onnx loggers, and the C/C++
writes that go straight to file descriptors 1 and 2 (TorchScript graph dumps on export errors,
``[E:onnxruntime:...]`` lines, ``torchvision is not installed`` registration warnings). What they wrote is
kept on the returned object for diagnostics; nothing reaches the user's terminal or ``--json`` stdout."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator

_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript", "onnx_ir", "torch")


class Captured:
    text: str = ""


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def silenced() -> Iterator[Captured]:
    captured = Captured()
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    sink = io.StringIO()
    saved_fds: list[tuple[int, int]] = []
    tmp = None
    try:
        _flush()
        try:
            tmp = tempfile.TemporaryFile(mode="w+b")
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(tmp.fileno(), fd)
        except OSError:  # no real descriptors (embedded interpreters): Python-level silence only
            pass
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        _flush()
        for fd, saved in reversed(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if tmp is not None:
            with contextlib.suppress(Exception):
                tmp.seek(0)
                captured.text = tmp.read().decode("utf-8", "replace")[-20000:]
            tmp.close()
        captured.text = sink.getvalue()[-20000:] + captured.text
