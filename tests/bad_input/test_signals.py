"""SIGTERM (CI cancellation, ``docker stop``) handled like Ctrl-C, sent to a real ``python -m edgelstm`` child
at a point the test controls: the child stops at a named point (``EDGELSTM_TEST_HOLD=POINT@FIFO``, see
``edgelstm.signals.hold``) and opens the FIFO; the test's open of the write end returns only then, so the signal
lands exactly there. No sleep decides anything.

Each case: exit 128 + the signal (143 for SIGTERM), one error line, no temp file or ``.bak`` in the output
folder, no ``edgelstm-*`` folder left in $TMPDIR, every earlier file byte for byte as it was. Also: a killed
(SIGKILL) run's temp pair is swept by the next write, and a signal the parent ignores stays ignored."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import error_lines, tree
from .tiny_pipeline import tiny_pipeline

ROOT = Path(__file__).resolve().parents[2]


_CHILDREN: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Held:
    """A child ``edgelstm`` process stopped at ``point`` (it has opened the FIFO and waits on it)."""

    def __init__(self, args: list[str], point: str, cwd: Path, tmpdir: Path, preexec=None):
        fifo = cwd.parent / f"hold-{point}.fifo"
        os.mkfifo(fifo)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGELSTM_TEST_HOLD": f"{point}@{fifo}", "TMPDIR": str(tmpdir),
               "COLUMNS": "200"}
        env.pop("EDGELSTM_DEBUG", None)
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "edgelstm", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)
        _CHILDREN.append(self.proc)
        self.fd = self._open_write_end(fifo, point)

    def _open_write_end(self, fifo: Path, point: str) -> int:
        deadline = time.monotonic() + 300  # a generous bound for a loaded machine, not a measurement
        while True:
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds once the child holds the read end
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                pytest.fail(f"the child exited {self.proc.returncode} before reaching {point!r}:\n{err}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"the child never reached {point!r}")
            time.sleep(0.02)

    def signal(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        return self.finish()

    def release(self) -> tuple[int, str, str]:
        return self.finish()

    def finish(self) -> tuple[int, str, str]:
        os.close(self.fd)  # a child still waiting reads EOF and goes on
        out, err = self.proc.communicate(timeout=300)
        return self.proc.returncode, out, err


@pytest.fixture
def place(tmp_path, ws):
    """The child's working folder (with an earlier good pair) and its private $TMPDIR."""
    w = tmp_path / "w"
    w.mkdir()
    for name in ("m.onnx", "m.onnx.json"):
        (w / name.replace("m.", "good.", 1)).write_bytes((ws / name).read_bytes())
    (w / "good.json").write_bytes(b'{"earlier": "report"}\n')
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return w, tmpdir


def _no_leftovers(w: Path, tmpdir: Path, before: dict[str, str], *, new_ok: tuple[str, ...] = ()) -> None:
    after = tree(w)
    temps = [n for n in after if Path(n).name.endswith((".tmp", ".bak")) or "edgelstm-" in Path(n).name]
    assert not temps, f"temp files left: {temps}"
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert not changed, f"earlier files changed or removed: {changed}"
    new = sorted(set(after) - set(before) - set(new_ok))
    assert not new, f"new files left: {new}"
    scratch = sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(("edgelstm-", ".edgelstm-")))
    assert not scratch, f"scratch folders left in $TMPDIR: {scratch}"


def _terminated(code: int, err: str, sig: int = signal.SIGTERM) -> None:
    assert code == 128 + sig, f"exit {code}, expected {128 + sig}:\n{err}"
    assert "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1 and "terminated" in lines[0] and signal.Signals(sig).name in lines[0], err


CASES = [
    ("convert-while-committing", ["convert", "{ws}/m.pt", "-o", "good.onnx", "--seq-len", "4"], "commit"),
    ("quantize-fallback-while-committing", ["quantize", "{ws}/m.onnx", "-p", "int8", "-o", "good.onnx", "--data",
                                            "{ws}/good.npz", "--max-drift", "rel_l2=10"], "commit"),
    ("validate-reports-while-committing", ["validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4",
                                           "--seq", "4", "--report", "good.json", "--junit", "r.xml"], "commit"),
]


@pytest.mark.parametrize("id,args,point", CASES, ids=[c[0] for c in CASES])
def test_sigterm_cleans_up_and_exits_143(id, args, point, place, ws):
    w, tmpdir = place
    before = tree(w)
    held = Held([a.format(ws=ws) for a in args], point, w, tmpdir)
    if id.startswith("quantize"):  # both scratch folders exist at this point
        scratch = {p.name.split("-")[1] for p in tmpdir.iterdir() if p.name.startswith("edgelstm-")}
        assert scratch >= {"int8", "fallback"}, list(tmpdir.iterdir())
    assert [n for n in os.listdir(w) if n.endswith(".tmp")], "the temps should exist while it is held"
    code, _, err = held.signal(signal.SIGTERM)
    _terminated(code, err)
    _no_leftovers(w, tmpdir, before)


def test_sighup_is_handled_too(place, ws):
    w, tmpdir = place
    before = tree(w)
    held = Held(["quantize", str(ws / "m.onnx"), "-p", "fp16", "-o", "good.onnx"], "commit", w, tmpdir)
    code, _, err = held.signal(signal.SIGHUP)
    _terminated(code, err, signal.SIGHUP)
    _no_leftovers(w, tmpdir, before)


def test_a_run_stopped_before_its_first_artifact_leaves_nothing(place, ws):
    """SIGTERM right after the pipeline locked its new output folder: no out/, no lock, no pipeline.toml copy."""
    w, tmpdir = place
    (w / "p.toml").write_text(tiny_pipeline(), encoding="utf-8")
    before = tree(w)
    held = Held(["run", "p.toml"], "locked", w, tmpdir)
    assert (w / "out" / ".edgelstm.lock").is_file()
    code, _, err = held.signal(signal.SIGTERM)
    _terminated(code, err)
    _no_leftovers(w, tmpdir, before)


def test_sigkill_leaves_a_temp_pair_that_the_next_write_sweeps(place, ws):
    """SIGKILL cannot be handled: the temp pair stays, named with the dead pid, and the next write to the same
    path removes it."""
    w, tmpdir = place
    held = Held(["quantize", str(ws / "id.onnx"), "-p", "fp16", "-o", "good.onnx"], "commit", w, tmpdir)
    code, _, _ = held.signal(signal.SIGKILL)
    assert code == -signal.SIGKILL
    left = sorted(n for n in os.listdir(w) if n.endswith((".tmp", ".bak")))
    assert len(left) >= 2 and all(f"edgelstm-{held.proc.pid}-" in n for n in left), left
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)}
    env.pop("EDGELSTM_TEST_HOLD", None)
    proc = subprocess.run([sys.executable, "-m", "edgelstm", "quantize", str(ws / "id.onnx"), "-p", "fp16", "-o",
                           "good.onnx", "-q"], cwd=w, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not [n for n in os.listdir(w) if n.endswith((".tmp", ".bak"))], os.listdir(w)


def test_an_ignored_sigterm_stays_ignored(place, ws):
    """``nohup``-style: a parent that ignores SIGTERM for its child keeps it running; it finishes normally."""
    w, tmpdir = place
    held = Held(["quantize", str(ws / "id.onnx"), "-p", "fp16", "-o", "q.onnx"], "commit", w, tmpdir,
                preexec=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    held.proc.send_signal(signal.SIGTERM)
    code, _, err = held.release()
    assert code == 0, err
    assert (w / "q.onnx").is_file() and (w / "q.onnx.json").is_file()


def test_the_hold_point_costs_nothing_when_unset(monkeypatch):
    """The seam is one environment lookup when EDGELSTM_TEST_HOLD is not set (or names another point)."""
    from edgelstm import signals

    monkeypatch.delenv(signals.HOLD_ENV, raising=False)
    signals.hold("commit")  # returns at once
    monkeypatch.setenv(signals.HOLD_ENV, "elsewhere@/nonexistent/fifo")
    signals.hold("commit")


def test_the_exit_codes_are_documented():
    readme = (ROOT / "README.md").read_text()
    assert "143" in readme and "SIGTERM" in readme and "130" in readme


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_terminated_maps_to_128_plus_the_signal(sig, code):
    from edgelstm.signals import Terminated, describe, exit_code

    exc = Terminated(sig)
    assert isinstance(exc, KeyboardInterrupt) and exit_code(exc) == code
    assert signal.Signals(sig).name in describe(exc) and exit_code(KeyboardInterrupt()) == 130
