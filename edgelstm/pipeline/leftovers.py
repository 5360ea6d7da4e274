"""What a failed pipeline run leaves behind: nothing, when it made no artifact yet.

``run_pipeline`` notes which folders of ``[output].dir`` are missing and what the folder holds before the run
(``missing_dirs``, ``entries``); when the run fails or is interrupted, ``UndoIfNothingMade`` (called while the lock
is still held) removes what the run created if no artifact exists yet, and the caller removes the folders it
made once they are empty again. Once an artifact exists, everything stays (a re-run resumes from the cache)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from edgelstm.pipeline.lock import LOCK_FILE

#: what a run writes before its first stage finishes (besides temps, which clean up after themselves)
BOOKKEEPING = {LOCK_FILE, "pipeline.toml"}


def missing_dirs(out: Path) -> list[Path]:
    """``out`` and its ancestors that do not exist yet, deepest first."""
    return [d for d in (out, *out.parents) if not os.path.lexists(d)]


def entries(out: Path) -> set[str]:
    try:
        return set(os.listdir(out))
    except OSError:
        return set()


def remove_made_dirs(made: list[Path]) -> None:
    """The output directory (and parents) a run made, deepest first, while each is empty again."""
    for d in made:
        try:
            d.rmdir()
        except OSError:
            break


class UndoIfNothingMade:
    """Called when a run fails (or is interrupted) while it still holds the lock: if it made no artifact yet, it
    removes what it created (the copied pipeline.toml, empty folders) and returns True, so that the lock file
    goes too. Once an artifact exists, everything stays (a re-run resumes from the cache)."""

    def __init__(self, out: Path, before: set[str]):
        self.out, self.before = out, before

    def __call__(self) -> bool:
        new = entries(self.out) - self.before
        if not all(n in BOOKKEEPING or _empty_dir(self.out / n) for n in new):
            return False
        for n in sorted(new - {LOCK_FILE}):
            path = self.out / n
            with contextlib.suppress(OSError):
                if _empty_dir(path):
                    path.rmdir()
                else:
                    path.unlink()
        return LOCK_FILE in new


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
