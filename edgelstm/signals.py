"""SIGTERM (CI cancellation, ``docker stop``, Kubernetes) and SIGHUP handled like Ctrl-C.

``install()`` (called by the ``edgelstm`` entry point only, never on import) makes these signals raise
``Terminated``, a ``KeyboardInterrupt``: every ``finally`` and context manager on the way out runs, so temp
pairs in the output folder, ``edgelstm-*`` folders in ``$TMPDIR`` and a pipeline's lock are cleaned up as on
Ctrl-C; the CLI then exits with ``128 + signal`` (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; README, exit codes).
A signal the parent set to be ignored (``nohup``) stays ignored; a second signal while cleaning up is ignored.

``hold(point)`` is a test seam: with ``EDGELSTM_TEST_HOLD=POINT@FIFO`` in the environment the process stops at
the named point until a test writes to (or closes) the FIFO, so a test can send a real signal at a point it
controls. Without the variable it is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

HOLD_ENV = "EDGELSTM_TEST_HOLD"
INTERRUPT_EXIT = 130  # Ctrl-C (SIGINT): 128 + 2

_HANDLED = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)
_raised = False
_held: set[str] = set()


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum``; unwinds like Ctrl-C, exits with ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + int(signum)

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:  # pragma: no cover
            return f"signal {self.signum}"


def _on_signal(signum: int, _frame: Any) -> None:
    global _raised
    if _raised:  # already unwinding: let the cleanup finish
        return
    _raised = True
    raise Terminated(signum)


def install() -> None:
    """SIGTERM and SIGHUP raise ``Terminated`` in the main thread (where Python runs signal handlers)."""
    global _raised
    _raised = False
    for sig in _HANDLED:
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                continue
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # not the main thread, or not settable here
            continue


def exit_code(exc: BaseException) -> int:
    """The exit code for an interruption: 128 + the signal (Ctrl-C: 130)."""
    return getattr(exc, "exit_code", INTERRUPT_EXIT)


def describe(exc: BaseException) -> str:
    """One line for an interruption, for the CLI's error line."""
    what = f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted"
    return f"{what}; no partial artifact was written and temp files were removed"


def run_interruptible(fn: Callable[..., int], *args: Any) -> int:
    """``fn(*args)``'s exit code; an interruption anywhere (also before a command starts) is one error line and
    its exit code instead of a traceback."""
    try:
        return fn(*args)
    except KeyboardInterrupt as exc:
        from edgelstm import console

        console.error(describe(exc))
        return exit_code(exc)


def hold(point: str) -> None:
    """A test seam (see the module's docstring); nothing unless ``EDGELSTM_TEST_HOLD`` names this point."""
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    name, _, fifo = spec.partition("@")
    if name != point or not fifo or point in _held:
        return
    _held.add(point)  # once per process
    with open(fifo, "rb") as f:  # blocks until the test opens the write end; a signal interrupts the wait
        f.read()
