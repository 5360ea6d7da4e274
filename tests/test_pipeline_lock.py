"""One pipeline at a time per output directory, and an output directory that cannot be written is bad input:
two pipelines run concurrently on the same directory (threads), the second fails at once naming the holder
or waits with --wait; a file, a read-only directory or bad demo options exit 2 with nothing written."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from edgelstm.errors import BadInput
from edgelstm.pipeline.config import load_pipeline

try:
    from bad_input.tiny_pipeline import ZOO, tiny_pipeline
except ImportError:  # tests/ is a package in some layouts
    from tests.bad_input.tiny_pipeline import ZOO, tiny_pipeline  # type: ignore[no-redef]

TINY = tiny_pipeline(model=ZOO + "\nconfig = { hidden_size = 4 }")


def _write(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


class _Holder:
    """A real pipeline run in a thread, held inside its first stage until ``release()``."""

    def __init__(self, p, monkeypatch):
        from edgelstm.pipeline import flow, steps

        self.entered, self.released = threading.Event(), threading.Event()
        real = steps.train_model

        def held_train(*args, **kwargs):
            self.entered.set()
            self.released.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(steps, "train_model", held_train)
        self.result, self.error = None, None

        def target():
            try:
                self.result = flow.run_pipeline(p)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        assert self.entered.wait(60), "the first pipeline never reached its first stage"

    def release(self):
        self.released.set()
        self.thread.join(120)
        assert not self.thread.is_alive() and self.error is None, self.error
        return self.result


def test_second_pipeline_on_the_same_dir_fails_at_once_naming_the_holder(cli, tmp_path, monkeypatch):
    from edgelstm.pipeline import flow

    path = _write(tmp_path)
    p = load_pipeline(path)
    holder = _Holder(p, monkeypatch)
    try:
        lock = json.loads((tmp_path / "out" / ".edgelstm.lock").read_text())
        assert lock["pid"] == os.getpid() and lock["host"] and lock["command"]
        started = time.monotonic()
        with pytest.raises(BadInput) as exc:
            flow.run_pipeline(p)
        assert time.monotonic() - started < 5  # at once, not after the first one finished
        msg = str(exc.value)
        assert "is in use by" in msg and f"pid {os.getpid()}" in msg and "--wait" in msg
        code, _, stderr = cli("run", path)
        line = _one_error_line(stderr)
        assert code == 2 and f"pid {os.getpid()}" in line
    finally:
        first = holder.release()
    assert first.passed and not first.cached_everything
    assert (tmp_path / "out" / ".edgelstm.lock").read_text() == ""  # the holder is gone: no name left behind


def test_wait_runs_after_the_holder_finished(tmp_path, monkeypatch):
    from edgelstm.pipeline import flow

    p = load_pipeline(_write(tmp_path))
    holder = _Holder(p, monkeypatch)
    heard: list[str] = []
    second: dict = {}
    waiter = threading.Thread(target=lambda: second.setdefault("res", flow.run_pipeline(p, wait=True,
                                                                                        on_step=heard.append)),
                              daemon=True)
    waiter.start()
    try:
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert waiter.is_alive() and heard and heard[0].startswith(f"waiting for pid {os.getpid()}")
    finally:
        holder.release()
    waiter.join(120)
    assert second["res"].cached_everything  # it ran after the first: everything came from its cache


def test_output_dir_that_is_a_file_is_one_line_exit_2(cli, tmp_path):
    (tmp_path / "out").write_text("not a directory")
    code, _, stderr = cli("run", _write(tmp_path))
    assert code == 2 and "[output].dir" in _one_error_line(stderr) and "is a file" in stderr
    assert (tmp_path / "out").read_text() == "not a directory"
    code, _, stderr = cli("run", _write(tmp_path, TINY.replace('dir = "out"', 'dir = "out/sub"')))
    assert code == 2 and "a parent is a file" in _one_error_line(stderr)


def test_read_only_output_dir_is_one_line_exit_2(cli, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root writes anyway: let the directory look read-only to the check
            from edgelstm.pipeline import lock

            monkeypatch.setattr(lock, "_writable", lambda _d: False)
        code, _, stderr = cli("run", _write(tmp_path))
        assert code == 2 and "is not writable" in _one_error_line(stderr)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("args,needle", [(["--steps", "-1"], "--steps must be an integer >= 1"),
                                         (["--steps", "0"], "--steps must be an integer >= 1"),
                                         (["--seed", "-1"], "--seed must be an integer >= 0")])
def test_bad_demo_options_exit_2_with_nothing_written(cli, tmp_path, args, needle):
    out = tmp_path / "demo"
    code, _, stderr = cli("demo", "--out", out, *args)
    assert code == 2 and needle in _one_error_line(stderr)
    assert not out.exists()


def test_demo_into_a_file_is_one_line_exit_2(cli, tmp_path):
    (tmp_path / "demo").write_text("x")
    code, _, stderr = cli("demo", "--out", tmp_path / "demo", "--steps", "2")
    assert code == 2 and "is a file" in _one_error_line(stderr)
