"""Shared CLI plumbing: error rendering with exit codes, --json handling, common option types."""

from __future__ import annotations

import functools
import os
import traceback
from typing import Any, Callable

import typer

from edgelstm import console
from edgelstm.errors import EdgeLSTMError

JsonOpt = typer.Option(False, "--json", help="Print a machine-readable JSON result on stdout.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Only errors on stderr.")


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: EdgeLSTMError -> one-line message + its exit code; anything else -> exit 4."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        console.configure(quiet=bool(kwargs.get("quiet")), json_mode=bool(kwargs.get("json_out")))
        new_dirs = _missing_dirs(kwargs)
        code = 4
        try:
            value = _run(_outputs_checked(fn), args, kwargs)
            code = 0
            return value
        except typer.Exit as exc:
            code = exc.exit_code
            if exc.exit_code not in (0, 1):  # refused or broken: no empty output directory is left behind
                _remove_empty(new_dirs)
            raise
        finally:
            console.close_json(code)  # --json: exactly one JSON object on stdout, whatever happened

    return wrapper


#: options naming a file or directory a command writes (a failed command removes the empty folders it made)
OUTPUT_OPTIONS = ("out", "report", "junit", "markdown", "csv_out", "plot", "keep_onnx", "timing_cache",
                  "calib_cache", "localize_out")


def _outputs_checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, after the one same-file check of every command that writes: no output may be an input (edgelstm.same_file)."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        from edgelstm.same_file import refuse_outputs_over_inputs

        refuse_outputs_over_inputs(kwargs, OUTPUT_OPTIONS)
        return fn(*args, **kwargs)

    return checked


def _missing_dirs(kwargs: dict[str, Any]) -> list[str]:
    """The not-yet-existing paths from each output option up to its first existing ancestor, deepest first."""
    out: list[str] = []
    for key in OUTPUT_OPTIONS:
        value = kwargs.get(key)
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            continue
        d = os.path.abspath(value)
        while not os.path.lexists(d) and os.path.dirname(d) != d:
            out.append(d)
            d = os.path.dirname(d)
    return out


def _remove_empty(paths: list[str]) -> None:
    for d in paths:
        if os.path.isdir(d) and not os.path.islink(d):
            try:
                os.rmdir(d)  # only when empty
            except OSError:
                pass


def _run(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """EdgeLSTMError -> one-line message + its exit code; anything else -> exit 4 (2 for disk/permissions)."""
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except EdgeLSTMError as exc:
        console.error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM/SIGHUP (edgelstm.signals): cleaned up on the way here
        from edgelstm import signals

        console.error(signals.describe(exc))
        raise typer.Exit(signals.exit_code(exc)) from None
    except MemoryError:
        console.error("not enough memory for this input (shapes or sample counts too large); use smaller ones")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        problem = environment_problem(exc) if isinstance(exc, OSError) else _link_loop(exc)
        if problem is not None:  # the disk or the file system said no: the user's to fix, not a bug
            console.error(problem)
            raise typer.Exit(2) from None
        if os.environ.get("EDGELSTM_DEBUG"):
            traceback.print_exc()
        console.error(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                      "(set EDGELSTM_DEBUG=1 for the traceback and please report it)")
        raise typer.Exit(4) from None


def _link_loop(exc: Exception) -> str | None:
    """pathlib's ``resolve()`` says RuntimeError("Symlink loop from '...'") (Python < 3.13): the user's path."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and text.startswith("Symlink loop from "):
        return f"{text.removeprefix('Symlink loop from ').strip(chr(39))}: a symbolic link loop; pass the real file"
    return None


def environment_problem(exc: OSError) -> str | None:
    """One line for an OSError that is about the user's disk or permissions (exit 2), else None (a bug)."""
    import errno

    what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted", errno.ENOENT: "no such file or directory",
            errno.EISDIR: "is a directory", errno.ENOTDIR: "not a directory", errno.EFBIG: "file too large",
            errno.ENAMETOOLONG: "file name too long", errno.EMFILE: "too many open files",
            errno.ELOOP: "a symbolic link loop",
            errno.EEXIST: "already exists (a file is in the way of a directory)"}.get(exc.errno or 0)
    if what is None:
        return None
    where = exc.filename
    if where and os.path.basename(os.fspath(where)).startswith("."):  # our temp file: name the folder instead
        where = os.path.dirname(os.fspath(where)) or "."
    return f"{where or 'the file system'}: {what}; nothing was replaced (earlier artifacts are intact)"


def finish(payload: dict[str, Any], json_out: bool, exit_code: int = 0) -> None:
    """The command's result: with ``--json`` it is printed on stdout when the command ends (with ``ok`` and
    ``exit_code`` added); a non-zero ``exit_code`` ends the command with it."""
    if json_out:
        console.result(payload)
    if exit_code:
        raise typer.Exit(exit_code)
