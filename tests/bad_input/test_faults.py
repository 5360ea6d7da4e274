"""Faults of the machine rather than the input: a full disk, a read-only file system, unreadable files, and
tracebacks that third-party libraries print on the real stderr (checked in a subprocess).

Full and read-only disks are real tmpfs mounts where this runs as root and may mount (CI containers often
may not): there the same cases run with the file system calls monkeypatched to fail the same way."""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import case, error_lines, ids, onnx_graph, tree

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ small file systems


def _mount_tmpfs(path: Path, size: str) -> bool:
    """A real tmpfs at ``path`` where possible (root, mount allowed; EDGELSTM_TEST_NO_MOUNT=1 says no)."""
    if os.environ.get("EDGELSTM_TEST_NO_MOUNT") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


def _fill(path: Path) -> None:
    """Write zeros into ``path/.filler`` until the file system is full."""
    block = bytes(4096)
    with open(path / ".filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    for n in range(64):  # and the inodes' worth of small files a last write could still squeeze in
        try:
            (path / f".filler{n}").write_bytes(b"x" * 512)
        except OSError:
            break


def _patch_writes(monkeypatch, root: Path, err: int) -> None:
    """No real mount: every write-mode open and temp file under ``root`` fails with ``err``."""
    root_s = str(root.resolve())

    def under(p) -> bool:
        try:
            return os.path.abspath(os.fspath(p)).startswith(root_s)
        except TypeError:
            return False

    real_open, real_io_open, real_mkstemp, real_mkdir, real_os_open = (builtins.open, io.open, tempfile.mkstemp,
                                                                       os.mkdir, os.open)
    msg = os.strerror(err)

    def fake_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and under(file):
            raise OSError(err, msg, os.fspath(file))
        return real_open(file, mode, *a, **k)

    def fake_io_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and under(file):
            raise OSError(err, msg, os.fspath(file))
        return real_io_open(file, mode, *a, **k)

    def fake_mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and under(dir):
            raise OSError(err, msg, os.fspath(dir))
        return real_mkstemp(suffix, prefix, dir, text)

    def fake_mkdir(p, *a, **k):
        if err == errno.EROFS and under(p):
            raise OSError(err, msg, os.fspath(p))
        return real_mkdir(p, *a, **k)

    def fake_os_open(p, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(p):
            raise OSError(err, msg, os.fspath(p))
        return real_os_open(p, flags, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_io_open)
    monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "open", fake_os_open)


def _seed(d: Path, ws: Path) -> None:
    """Earlier good artifacts in the small file system, for the failure to leave intact."""
    for name in ("m.onnx", "m.onnx.json", "good.tar.gz", "good.tar.gz.json"):
        shutil.copy2(ws / name, d / name.replace("m.", "good.", 1))
    for name, data in (("good.json", b'{"earlier": 1}\n'), ("good.xml", b"<earlier/>\n"), ("good.csv", b"e\n")):
        (d / name).write_bytes(data)


@pytest.fixture
def full_disk(tmp_path, ws, monkeypatch):
    d = tmp_path / "full"
    if _mount_tmpfs(d, "1m"):
        _seed(d, ws)
        _fill(d)
        yield d
        _umount(d)
    else:
        d.mkdir()
        _seed(d, ws)
        _patch_writes(monkeypatch, d, errno.ENOSPC)
        yield d


@pytest.fixture
def read_only(tmp_path, ws, monkeypatch):
    d = tmp_path / "ro"
    if _mount_tmpfs(d, "1m"):
        _seed(d, ws)
        subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True, capture_output=True, timeout=20)
        yield d
        _umount(d)
    else:
        d.mkdir()
        _seed(d, ws)
        _patch_writes(monkeypatch, d, errno.EROFS)
        yield d


# ------------------------------------------------------------------------------------------ the cases

PIPELINE = """[model]
zoo = "lstm_regressor"
train_steps = 2
[export]
seq_len = 8
stateful = false
[quantize]
precisions = ["fp16"]
[data]
synthetic = 8
seq = 8
[bench]
enabled = false
[output]
dir = "{out}"
"""


def _art(w, ws, mp):
    onnx_graph(w / "art" / "model.onnx")


def _pipeline(w, ws, mp):
    (w / "p.toml").write_text(PIPELINE.format(out=mp.target_dir / "out"), encoding="utf-8")


# {t} is the full or read-only directory; {w} the case's own, {ws} the shared inputs
WRITES = [
    case("convert", "convert", "{ws}/m.pt", "-o", "{t}/good.onnx", "--seq-len", "4"),
    case("convert-new-dir", "convert", "{ws}/m.pt", "-o", "{t}/a/b/m.onnx", "--seq-len", "4"),
    case("quantize-fp16", "quantize", "{ws}/m.onnx", "-p", "fp16", "-o", "{t}/good.onnx"),
    case("quantize-int8", "quantize", "{ws}/m.onnx", "-p", "int8", "-o", "{t}/good.onnx"),
    case("validate-report", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4", "--seq", "4",
         "--report", "{t}/good.json"),
    case("validate-junit", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4", "--seq", "4",
         "--junit", "{t}/good.xml"),
    case("bench-report", "bench", "{ws}/m.onnx", "--batch", "1", "--seq", "4", "--iters", "2", "--warmup", "0",
         "--report", "{t}/good.json"),
    case("bench-csv", "bench", "{ws}/m.onnx", "--batch", "1", "--seq", "4", "--iters", "2", "--warmup", "0",
         "--csv", "{t}/good.csv"),
    case("bundle", "bundle", "{w}/art", "-o", "{t}/good.tar.gz", setup=_art),
    case("unbundle", "unbundle", "{ws}/good.tar.gz", "-o", "{t}/u"),
    case("run", "run", "{w}/p.toml", setup=_pipeline),
    case("demo", "demo", "--out", "{t}/demo", "--steps", "2"),
]


class _Target:
    def __init__(self, d):
        self.target_dir = d


def _run_fault(c, cli, w, ws, monkeypatch, target: Path, *needles: str) -> None:
    if c.setup is not None:
        c.setup(w, ws, _Target(target))
    before, before_t = tree(w), tree(target)
    args = [a.format(w=w, ws=ws, t=target) for a in c.args]
    code, stdout, stderr = cli(*args)
    where = f"{c.id}: edgelstm {' '.join(args)}\n--- stderr:\n{stderr}"
    assert code == 2, f"exit {code}; {where}"
    assert "Traceback" not in stderr and "internal error" not in stderr, where
    errors = error_lines(stderr)
    assert len(errors) == 1 and any(n in errors[0].lower() for n in needles), where
    after, after_t = tree(w), tree(target)
    assert after == before, f"the case's directory changed: {sorted(set(after) ^ set(before))}; {where}"
    # the earlier artifacts are intact; no temp file, no new file (a pipeline may keep what it finished,
    # e.g. its lock, in the directory it made)
    for k, v in before_t.items():
        assert after_t.get(k) == v, f"{k} was changed or removed; {where}"
    new = sorted(set(after_t) - set(before_t))
    temps = [n for n in new if Path(n).name.startswith(".") and Path(n).name.endswith((".tmp", ".bak"))
             or ".old." in n or ".new." in n]
    assert not temps, f"temp files left: {temps}; {where}"
    if c.id not in ("run", "demo"):
        assert not new, f"stray files: {new}; {where}"
    else:
        empty = [n for n in new if (target / n).is_dir() and not any((target / n).iterdir())]
        assert not empty, f"empty directories left: {empty}; {where}"


@pytest.mark.parametrize("c", WRITES, ids=ids(WRITES))
def test_full_disk(c, cli, w, ws, monkeypatch, full_disk):
    _run_fault(c, cli, w, ws, monkeypatch, full_disk, "no space left", "are free")


@pytest.mark.parametrize("c", WRITES, ids=ids(WRITES))
def test_read_only_file_system(c, cli, w, ws, monkeypatch, read_only):
    _run_fault(c, cli, w, ws, monkeypatch, read_only, "read-only")


# ------------------------------------------------------------------------------------------ unreadable files


def _unreadable(monkeypatch, path: Path) -> None:
    """As if ``chmod 000 path`` (root reads everything, so the open calls are made to refuse it)."""
    target = os.path.abspath(path)
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def denied(p) -> bool:
        try:
            return os.path.abspath(os.fspath(p)) == target
        except TypeError:
            return False

    def fake_open(file, *a, **k):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *a, **k)

    def fake_io_open(file, *a, **k):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_io_open(file, *a, **k)

    def fake_os_open(file, *a, **k):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_os_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_io_open)
    monkeypatch.setattr(os, "open", fake_os_open)


def _copy(*names: str):
    def setup(w, ws, mp):
        for n in names:
            shutil.copy2(ws / n, w / n)
    return setup


UNREADABLE = [
    ("convert-model", "m.pt", ["convert", "{w}/m.pt", "-o", "{w}/good.onnx"]),
    ("quantize-model", "m.onnx", ["quantize", "{w}/m.onnx", "-p", "fp16", "-o", "{w}/good.onnx"]),
    ("inspect-onnx", "m.onnx", ["inspect", "{w}/m.onnx"]),
    ("inspect-torch", "m.pt", ["inspect", "{w}/m.pt"]),
    ("validate-data", "good.npz", ["validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--data", "{w}/good.npz"]),
    ("validate-csv", "good.csv", ["validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--data", "{w}/good.csv",
                                  "--window", "4", "--features", "f"]),
    ("validate-policy", "good_policy.toml", ["validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic",
                                             "4", "--policy", "{w}/good_policy.toml"]),
    ("bench-artifact", "m.onnx", ["bench", "{w}/m.onnx", "--iters", "2"]),
    ("unbundle-bundle", "good.tar.gz", ["unbundle", "{w}/good.tar.gz", "--verify-only"]),
    ("run-pipeline-file", "good_policy.toml", ["run", "{w}/good_policy.toml"]),
]


@pytest.mark.parametrize("id,name,args", UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_unreadable_input(id, name, args, cli, w, ws, monkeypatch):
    shutil.copy2(ws / name, w / name)
    if (ws / (name + ".json")).exists():
        shutil.copy2(ws / (name + ".json"), w / (name + ".json"))
    before = tree(w)
    _unreadable(monkeypatch, w / name)
    argv = [a.format(w=w, ws=ws) for a in args]
    code, _, stderr = cli(*argv)
    monkeypatch.undo()
    where = f"{id}: edgelstm {' '.join(argv)}\n--- stderr:\n{stderr}"
    assert code == 2 and "Traceback" not in stderr and "internal error" not in stderr, where
    errors = error_lines(stderr)
    assert len(errors) == 1 and "permission denied" in errors[0].lower(), where
    assert tree(w) == before, where


# ------------------------------------------------------------------------------------------ the real stderr


@pytest.mark.parametrize("argv", [["convert", "{ws}/pickle.pt2", "-o", "{w}/m.onnx"],
                                  ["inspect", "{ws}/notzip.pt2"]], ids=["convert-pickle-pt2", "inspect-not-zip-pt2"])
def test_no_library_traceback_on_the_real_stderr(argv, w, ws):
    """torch logs a traceback before it raises on a broken .pt2: a subprocess sees what a user's terminal sees."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGELSTM_DEBUG", None)
    before = tree(w)
    proc = subprocess.run([sys.executable, "-m", "edgelstm", *[a.format(w=w, ws=ws) for a in argv]],
                          capture_output=True, text=True, cwd=w, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == error_lines(proc.stderr), proc.stderr
    assert len(error_lines(proc.stderr)) == 1, proc.stderr
    assert tree(w) == before
