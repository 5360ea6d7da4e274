"""Files edgelstm must never touch: a symbolic or hard link planted where it writes (the pipeline lock, an
output, a manifest), an output that is really an input (same inode, through links), an ONNX whose external
data points outside its folder. SECURITY.md's rule: no symbolic link is followed when a file is created or
truncated, and an output is never one of the command's inputs.

Refused cases go through ``conftest.run_case`` (exit code, one error line, nothing in the case's directory
changed); every case also checks that the file outside (``victim``) is byte for byte what it was."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from .conftest import case, ids, onnx_graph, run_case, tree
from .tiny_pipeline import tiny_pipeline

ROOT = Path(__file__).resolve().parents[2]
VICTIM = b"someone else's file: must stay exactly as it is\n"



def _victim(w: Path) -> Path:
    """A file outside the case's directory that a planted link points at."""
    v = w.parent / "outside" / "victim.txt"
    v.parent.mkdir(exist_ok=True)
    if not v.exists():
        v.write_bytes(VICTIM)
    return v


def _victim_intact(w: Path) -> None:
    outside = w.parent / "outside"
    assert (outside / "victim.txt").read_bytes() == VICTIM, "the file outside was changed"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"], "a file was created outside"


# ------------------------------------------------------------------------------------------ the pipeline lock


def _lock(kind: str):
    """Setup: a pipeline file, and out/.edgelstm.lock planted as ``kind``."""
    def setup(w, ws, mp):
        (w / "p.toml").write_text(tiny_pipeline(), encoding="utf-8")
        out = w / "out"
        out.mkdir()
        lock = out / ".edgelstm.lock"
        victim = _victim(w)
        if kind == "symlink":
            lock.symlink_to(victim)
        elif kind == "dangling":
            lock.symlink_to(victim.parent / "created-through-the-link.txt")
        elif kind == "hardlink":
            os.link(victim, lock)
        elif kind == "dir":
            lock.mkdir()
    return setup


LOCKS = [
    case("lock-symlink-to-a-file-outside", "run", "{w}/p.toml", setup=_lock("symlink"), needles="symbolic link"),
    case("lock-dangling-symlink", "run", "{w}/p.toml", setup=_lock("dangling"), needles="symbolic link"),
    case("lock-hard-link-to-a-file-outside", "run", "{w}/p.toml", setup=_lock("hardlink"), needles="hard link"),
    case("lock-is-a-directory", "run", "{w}/p.toml", setup=_lock("dir"), needles="not a regular file"),
    case("demo-lock-symlink", "demo", "--out", "{w}/out", "--steps", "2", setup=_lock("symlink"),
         needles="symbolic link"),
]


@pytest.mark.parametrize("c", LOCKS, ids=ids(LOCKS))
def test_the_lock_never_follows_a_link(c, cli, w, ws, monkeypatch):
    from edgelstm.pipeline import steps

    monkeypatch.setattr(steps, "train_model", _must_not_train)
    run_case(c, cli, w, ws, monkeypatch)
    _victim_intact(w)


def _must_not_train(*a, **k):
    raise AssertionError("a stage ran although the output directory could not be locked")


def test_a_lock_that_is_a_fifo_is_refused_without_opening_it(tmp_path):
    """(Not through run_case: its snapshot would read the FIFO.) Opening a FIFO would block; it is looked at only."""
    from edgelstm.errors import BadInput
    from edgelstm.pipeline.lock import LOCK_FILE, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / LOCK_FILE)
    with pytest.raises(BadInput, match="not a regular file"):
        with OutputLock(out):
            pass


def test_a_lock_file_swapped_for_a_link_while_held_is_not_written_through(tmp_path):
    """Holding the lock writes through the descriptor it opened, never through the name again."""
    from edgelstm.pipeline.lock import LOCK_FILE, OutputLock

    victim = _victim(tmp_path / "w")
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out):
        os.unlink(out / LOCK_FILE)
        (out / LOCK_FILE).symlink_to(victim)
    assert victim.read_bytes() == VICTIM


def test_a_removed_lock_file_is_locked_afresh(tmp_path):
    """A run that made nothing removes its lock file while holding it; the next holder locks the file that is
    there, not the removed one."""
    from edgelstm.pipeline.lock import LOCK_FILE, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out) as held:
        held.remove()
        assert not (out / LOCK_FILE).exists()
    with OutputLock(out):
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()


# ------------------------------------------------------------------------------------------ links at an output


def _links_at(*names: str):
    """Setup: each name in the case's directory is a symbolic link to the victim outside."""
    def setup(w, ws, mp):
        victim = _victim(w)
        for n in names:
            (w / n).symlink_to(victim)
        onnx_graph(w / "art" / "model.onnx")
    return setup


WRITES = [
    case("convert-output-and-manifest-are-links", "convert", "{ws}/m.pt", "-o", "{w}/o.onnx", "--seq-len", "4",
         code=0, setup=_links_at("o.onnx", "o.onnx.json")),
    case("quantize-output-is-a-link", "quantize", "{ws}/id.onnx", "-p", "fp16", "-o", "{w}/o.onnx", code=0,
         setup=_links_at("o.onnx", "o.onnx.json")),
    case("validate-reports-are-links", "validate", "-r", "{ws}/id.onnx", "-c", "{ws}/id.onnx", "--synthetic", "4",
         "--seq", "4", "--report", "{w}/r.json", "--junit", "{w}/r.xml", "--markdown", "{w}/r.md", code=0,
         setup=_links_at("r.json", "r.xml", "r.md")),
    case("bench-reports-are-links", "bench", "{ws}/id.onnx", "--batch", "1", "--seq", "4", "--iters", "2",
         "--warmup", "0", "--report", "{w}/b.json", "--csv", "{w}/b.csv", code=0, setup=_links_at("b.json", "b.csv")),
    case("bundle-output-is-a-link", "bundle", "{w}/art", "-o", "{w}/b.tar.gz", code=0,
         setup=_links_at("b.tar.gz", "b.tar.gz.json")),
]


@pytest.mark.parametrize("c", WRITES, ids=ids(WRITES))
def test_a_link_at_an_output_is_replaced_not_written_through(c, cli, w, ws, monkeypatch):
    """rename() replaces the planted link with the new file; the file it pointed to is untouched."""
    c.setup(w, ws, monkeypatch)
    args = [a.format(w=w, ws=ws) for a in c.args]
    code, _, stderr = cli(*args)
    assert code == 0, stderr
    _victim_intact(w)
    links = [p for p in w.iterdir() if p.is_symlink()]
    assert not links, f"links left at the outputs: {links}"
    assert not [n for n in tree(w) if Path(n).name.endswith((".tmp", ".bak"))], tree(w)


@pytest.mark.parametrize("force", [False, True], ids=["refused", "force"])
def test_unbundle_into_a_link_to_a_folder_outside(force, cli, w, ws, monkeypatch):
    """The target is a link to someone's folder: refused (not empty), or with --force the link itself is
    replaced by the unpacked folder; the folder it pointed to keeps its files and gains none."""
    victim = _victim(w)
    (w / "u").symlink_to(victim.parent)
    code, _, stderr = cli("unbundle", str(ws / "good.tar.gz"), "-o", str(w / "u"), *(["--force"] if force else []))
    _victim_intact(w)
    if force:
        assert code == 0 and (w / "u").is_dir() and not (w / "u").is_symlink(), stderr
    else:
        assert code == 2 and (w / "u").is_symlink(), stderr


def test_a_planted_temp_name_is_never_opened(tmp_path, monkeypatch):
    """A temp is created O_EXCL|O_NOFOLLOW: a link already at its name (guessed, or raced) is never opened; the
    next name is taken."""
    import edgelstm.safe_files as sf

    victim = _victim(tmp_path / "w")
    out = tmp_path / "d" / "a.txt"
    out.parent.mkdir()
    planted = out.parent / f".a.txt.edgelstm-{os.getpid()}-{sf._HOST}-00000000.tmp"
    planted.symlink_to(victim)
    names = iter(["00000000", "11111111"])
    monkeypatch.setattr(sf.secrets, "token_hex", lambda n: next(names))
    sf.write_bytes(out, b"new")
    assert out.read_bytes() == b"new" and victim.read_bytes() == VICTIM
    assert planted.is_symlink()  # not ours: left alone


# ------------------------------------------------------------------------------------------ an output that is an input


def _links(**links: str):
    """Setup: name -> what it is made of: ``copy:SRC`` (from ws), ``sym:NAME`` / ``hard:NAME`` (a link to a file in w)."""
    def setup(w, ws, mp):
        for name, spec in links.items():
            how, _, src = spec.partition(":")
            if how == "copy":
                shutil.copy2(ws / src, w / name)
            elif how == "sym":
                (w / name).symlink_to(w / src)
            else:
                os.link(w / src, w / name)
    return setup


SAME = [
    case("convert-onto-itself-torch-named-onnx", "convert", "{w}/m.onnx", "-o", "{w}/m.onnx",
         setup=_links(**{"m.onnx": "copy:m.pt"}), needles="would overwrite the input"),
    case("convert-onto-itself-dot-slash", "convert", "m.onnx", "-o", "./m.onnx",
         setup=_links(**{"m.onnx": "copy:m.pt"}), needles="would overwrite the input"),
    case("convert-onto-a-symlink-to-the-input", "convert", "{w}/m.pt", "-o", "{w}/l.onnx",
         setup=_links(**{"m.pt": "copy:m.pt", "l.onnx": "sym:m.pt"}), needles=("would overwrite", "through a link")),
    case("convert-onto-a-hard-link-to-the-input", "convert", "{w}/m.pt", "-o", "{w}/h.onnx",
         setup=_links(**{"m.pt": "copy:m.pt", "h.onnx": "hard:m.pt"}), needles=("would overwrite", "through a link")),
    case("quantize-onto-a-symlink-to-the-input", "quantize", "{w}/m.onnx", "-p", "fp16", "-o", "{w}/l.onnx",
         setup=_links(**{"m.onnx": "copy:m.onnx", "l.onnx": "sym:m.onnx"}), needles="would overwrite"),
    case("quantize-onto-a-hard-link-to-the-input", "quantize", "{w}/m.onnx", "-p", "int8", "-o", "{w}/h.onnx",
         setup=_links(**{"m.onnx": "copy:m.onnx", "h.onnx": "hard:m.onnx"}), needles="would overwrite"),
    case("quantize-manifest-onto-the-inputs-manifest", "quantize", "{w}/m.onnx", "-p", "fp16", "-o", "{w}/q.onnx",
         setup=_links(**{"m.onnx": "copy:m.onnx", "m.onnx.json": "copy:m.onnx.json", "q.onnx.json": "hard:m.onnx.json"}),
         needles="would overwrite"),
    case("build-onto-the-model-before-the-backend-check", "build", "{w}/m.onnx", "-o", "{w}/l.plan",
         setup=_links(**{"m.onnx": "copy:m.onnx", "l.plan": "sym:m.onnx"}), needles="would overwrite"),
    case("build-timing-cache-is-the-model", "build", "{w}/m.onnx", "-o", "{w}/m.plan", "--timing-cache",
         "{w}/h.cache", setup=_links(**{"m.onnx": "copy:m.onnx", "h.cache": "hard:m.onnx"}), needles="would overwrite"),
    case("build-keep-onnx-is-the-model", "build", "{w}/m.onnx", "-o", "{w}/m.plan", "-p", "fp16", "--keep-onnx",
         "{w}/m.onnx", setup=_links(**{"m.onnx": "copy:m.onnx"}), needles="would overwrite"),
    case("build-calib-cache-is-the-calib-data", "build", "{w}/m.onnx", "-o", "{w}/m.plan", "-p", "int8", "--calib",
         "{w}/c.npz", "--calib-cache", "{w}/c.cache",
         setup=_links(**{"m.onnx": "copy:m.onnx", "c.npz": "copy:good.npz", "c.cache": "sym:c.npz"}),
         needles="would overwrite"),
    case("validate-report-hard-link-to-the-reference", "validate", "-r", "{w}/m.onnx", "-c", "{ws}/m.onnx",
         "--synthetic", "4", "--report", "{w}/r.json",
         setup=_links(**{"m.onnx": "copy:m.onnx", "r.json": "hard:m.onnx"}), needles="would overwrite"),
    case("validate-markdown-symlink-to-the-policy", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx",
         "--synthetic", "4", "--policy", "{w}/p.toml", "--markdown", "{w}/r.md",
         setup=_links(**{"p.toml": "copy:good_policy.toml", "r.md": "sym:p.toml"}), needles="would overwrite"),
    case("bench-csv-symlink-to-the-artifact", "bench", "{w}/m.onnx", "--iters", "2", "--csv", "{w}/b.csv",
         setup=_links(**{"m.onnx": "copy:m.onnx", "b.csv": "sym:m.onnx"}), needles="would overwrite"),
    case("bench-plot-hard-link-to-the-baseline", "bench", "{ws}/m.onnx", "--iters", "2", "--baseline",
         "{w}/base.json", "--plot", "{w}/b.png", setup=_links(**{"base.json": "copy:nokeys.json", "b.png": "hard:base.json"}),
         needles="would overwrite"),
    case("two-outputs-one-file-through-a-folder-link", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx",
         "--synthetic", "4", "--report", "{w}/good.json", "--junit", "{w}/d/good.json",
         setup=_links(**{"d": "sym:."}), needles="name the same file"),
]


@pytest.mark.parametrize("c", SAME, ids=ids(SAME))
def test_an_output_that_is_an_input_is_refused_before_any_work(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ external data outside


def _external(w: Path, location: str, name: str) -> Path:
    """models/NAME.onnx: one initializer kept in external data at ``location``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_init = numpy_helper.from_array(np.ones((1,), np.float32), "w")
    w_init.ClearField("raw_data")
    w_init.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "4")):
        e = w_init.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 1])], [w_init])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = w / "models" / f"{name}.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(model.SerializeToString())
    assert onnx is not None
    return path


def _secret(w: Path) -> Path:
    s = w.parent / "secret" / "secret.bin"
    s.parent.mkdir(exist_ok=True)
    s.write_bytes(b"\x00\x00\x80\x3f" * 4)
    return s


def _outside(kind: str):
    def setup(w, ws, mp):
        secret = _secret(w)
        if kind == "dotdot":
            _external(w, "../../secret/secret.bin", "m")
        elif kind == "absolute":
            _external(w, str(secret), "m")
        elif kind == "symlink":
            _external(w, "weights.bin", "m")
            (w / "models" / "weights.bin").symlink_to(secret)
        elif kind == "dir-symlink":
            _external(w, "sub/secret.bin", "m")
            (w / "models" / "sub").symlink_to(secret.parent)
    return setup


OUTSIDE = [
    *[case(f"inspect-{k}", "inspect", "{w}/models/m.onnx", setup=_outside(k), needles="outside its folder")
      for k in ("dotdot", "absolute", "symlink", "dir-symlink")],
    case("validate-dotdot", "validate", "-r", "{w}/models/m.onnx", "-c", "{w}/models/m.onnx", "--synthetic", "4",
         setup=_outside("dotdot"), needles="outside its folder"),
    case("bench-symlink", "bench", "{w}/models/m.onnx", "--iters", "2", setup=_outside("symlink"), needles="outside its folder"),
    case("quantize-absolute", "quantize", "{w}/models/m.onnx", "-p", "int8", "-o", "{w}/q.onnx",
         setup=_outside("absolute"), needles="outside its folder"),
    case("inspect-describe-only", "inspect", "{w}/models/m.onnx", "--describe-only", code=0, setup=_outside("dotdot")),
]


@pytest.mark.parametrize("c", OUTSIDE, ids=ids(OUTSIDE))
def test_external_data_outside_the_models_folder(c, cli, w, ws, monkeypatch):
    def setup(w, ws, mp):
        c.setup(w, ws, mp)
        _no_reads_of_the_secret(w, mp)

    run_case(dataclasses.replace(c, setup=setup), cli, w, ws, monkeypatch)


def _no_reads_of_the_secret(w: Path, monkeypatch) -> None:
    """Fail on any open of the secret file (through any name)."""
    import builtins
    import io

    secret = os.path.realpath(w.parent / "secret" / "secret.bin")

    def guard(real):
        def opener(file, *a, **k):
            if isinstance(file, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(file)) == secret:
                raise AssertionError(f"the outside file was opened: {file}")
            return real(file, *a, **k)
        return opener

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    monkeypatch.setattr(os, "open", guard(os.open))


def test_describe_only_says_so_loudly(cli, w, ws, monkeypatch):
    _outside("symlink")(w, ws, monkeypatch)
    _no_reads_of_the_secret(w, monkeypatch)
    code, stdout, stderr = cli("inspect", str(w / "models" / "m.onnx"), "--describe-only", "--json")
    assert code == 0, stderr
    assert "POINTS OUTSIDE ITS FOLDER" in stderr and "weights.bin" in stderr
    info = json.loads(stdout)
    assert info["external_data_outside"] == ["weights.bin"] and info["external_data"] == ["weights.bin"]


def test_external_data_inside_the_folder_is_fine(cli, w, ws, monkeypatch):
    _secret(w)
    path = _external(w, "weights.bin", "m")
    (w / "models" / "weights.bin").write_bytes(b"\x00\x00\x80\x3f")
    code, stdout, stderr = cli("inspect", str(path), "--json")
    assert code == 0 and json.loads(stdout)["external_data_outside"] == [], stderr


# ------------------------------------------------------------------------------------------ names and temps


def test_a_240_character_output_name_is_written(cli, w, ws, monkeypatch):
    """The temp beside an output fits in 255 bytes whatever the output's name (the name is cut, not the file)."""
    name = "m" * 235 + ".onnx"
    code, _, stderr = cli("quantize", str(ws / "id.onnx"), "-p", "fp16", "-o", str(w / name))
    assert code == 0, stderr
    assert (w / name).is_file() and (w / (name + ".json")).is_file()
    assert not [n for n in os.listdir(w) if n.endswith((".tmp", ".bak"))]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale(dest: Path, kind: str = "tmp", pid: int | None = None, host: str | None = None) -> Path:
    import edgelstm.safe_files as sf

    name = sf.temp_name(dest.name, kind).replace(f"-{os.getpid()}-", f"-{pid or _dead_pid()}-", 1)
    if host is not None:
        name = name.replace(f"-{sf._HOST}-", f"-{host}-", 1)
    p = dest.parent / name
    p.write_bytes(b"half-written by a killed process")
    return p


def test_a_killed_runs_temp_pair_is_swept_on_the_next_write(cli, w, ws, monkeypatch):
    out = w / "good.onnx"
    left = [_stale(out), _stale(out.with_name("good.onnx.json"))]
    code, _, stderr = cli("quantize", str(ws / "id.onnx"), "-p", "fp16", "-o", str(out))
    assert code == 0, stderr
    assert not any(p.exists() for p in left)
    assert not [n for n in os.listdir(w) if n.endswith((".tmp", ".bak"))]


def test_the_sweep_takes_only_what_is_stale_and_ours(tmp_path):
    from edgelstm.safe_files import sweep_stale

    dest = tmp_path / "a.onnx"
    dest.write_bytes(b"current")
    dead = _stale(dest)
    live = _stale(dest, pid=os.getppid())               # a running edgelstm writing the same path
    other_host = _stale(dest, host="abcdef")            # made on another machine (a shared file system)
    other_file = _stale(tmp_path / "b.onnx")            # another output's: swept when that one is written
    dead_bak = _stale(dest, "bak")                      # the earlier file kept aside: dest exists, so it goes
    swept = sweep_stale(dest)
    assert sorted(swept) == sorted([dead.name, dead_bak.name])
    assert live.exists() and other_host.exists() and other_file.exists() and not dead.exists()
    assert dest.read_bytes() == b"current"


def test_an_earlier_file_kept_aside_comes_back_when_its_name_is_missing(tmp_path):
    """Killed between moving the earlier file aside and renaming the new one in: the next write restores it
    first (then replaces it as usual)."""
    from edgelstm.safe_files import sweep_stale

    dest = tmp_path / "a.onnx"
    bak = _stale(dest, "bak")
    sweep_stale(dest)
    assert dest.read_bytes() == b"half-written by a killed process" and not bak.exists()


def test_scratch_folders_a_killed_run_left_in_tmpdir_are_swept(tmp_path, monkeypatch):
    import tempfile

    import edgelstm.safe_files as sf

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"edgelstm-int8-{_dead_pid()}-{sf._HOST}-abc"
    live = tmp_path / f"edgelstm-fallback-{os.getppid()}-{sf._HOST}-abc"
    foreign = tmp_path / "edgelstm-int8-notours"
    for d in (dead, live, foreign):
        d.mkdir()
        (d / "named.onnx").write_bytes(b"x")
    with sf.private_tempdir("int8") as fresh:
        assert Path(fresh).name.startswith(f"edgelstm-int8-{os.getpid()}-")
    assert not dead.exists() and live.exists() and foreign.exists() and not Path(fresh).exists()


# ------------------------------------------------------------------------------------------ all or nothing


def _fail_creating(monkeypatch, suffix: str) -> None:
    """A full disk that shows when the temp for an output ending in ``suffix`` is created."""
    import errno

    import edgelstm.safe_files as sf

    real = sf.create_temp

    def create(dest, kind="tmp"):
        if str(dest).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device", str(dest.parent / ".x.tmp"))
        return real(dest, kind)

    monkeypatch.setattr(sf, "create_temp", create)


REPORTS = [
    case("validate-third-report-on-a-full-disk", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic",
         "4", "--seq", "4", "--report", "{w}/r.json", "--junit", "{w}/r.xml", "--markdown", "{w}/r.md",
         needles=("no space left", "nothing was replaced"), setup=lambda w, ws, mp: _fail_creating(mp, ".md")),
    case("validate-reports-over-earlier-ones", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic",
         "4", "--seq", "4", "--report", "{w}/good.json", "--junit", "{w}/good.xml", "--markdown", "{w}/good.md",
         needles="no space left", setup=lambda w, ws, mp: _fail_creating(mp, ".md")),
    case("bench-plot-on-a-full-disk", "bench", "{ws}/m.onnx", "--batch", "1", "--seq", "4", "--iters", "2",
         "--warmup", "0", "--report", "{w}/good.json", "--csv", "{w}/b.csv", "--plot", "{w}/b.png",
         needles="no space left", setup=lambda w, ws, mp: _fail_creating(mp, ".png")),
]


@pytest.mark.parametrize("c", REPORTS, ids=ids(REPORTS))
def test_reports_of_one_command_commit_together(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


def test_a_failed_rename_in_a_group_puts_every_earlier_file_back(tmp_path, monkeypatch):
    import errno

    from edgelstm.safe_files import all_or_nothing, write_bytes

    for n in ("a", "b"):
        (tmp_path / n).write_bytes(b"earlier " + n.encode())
    real = os.replace

    def flaky(src, dst):
        if str(dst).endswith("/c") and ".bak" not in str(src):
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError):
        with all_or_nothing():
            for n in ("a", "b", "c"):
                write_bytes(tmp_path / n, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").read_bytes() == b"earlier a" and (tmp_path / "b").read_bytes() == b"earlier b"


# ------------------------------------------------------------------------------------------ the audit


#: where the product opens a path for writing by name, and why that is safe there
ALLOWED_BY_NAME = {
    "edgelstm/safe_files.py": "the one place that creates files (O_EXCL|O_NOFOLLOW) and commits them",
    "edgelstm/artifacts/manifest.py": "a pair made by hand (tests) writes its own O_EXCL temp by name",
    "edgelstm/bundle/unpack.py": "members are created O_EXCL|O_NOFOLLOW inside its own mkdtemp folder",
    "edgelstm/pipeline/lock.py": "the lock: O_NOFOLLOW relative to the folder's descriptor, never truncated on open",
    "edgelstm/latency/memory.py": "/proc/self/clear_refs",
    "converters/quantize/int8.py": "scratch files inside its private_tempdir",
    "converters/quantize/quant_fallback.py": "trial models inside its private_tempdir",
    "converters/export/quiet.py": "an anonymous tempfile.TemporaryFile",
    "edgelstm/fleet/remote.py": "the starter script staged inside its private_tempdir before scp",
    "edgelstm/bundle/device_bootstrap.py": "the stdlib-only starter runs on the device before edgelstm is installed "
                                           "(no safe_files there); its mkdtemp folder is private (0700)",
}
_TEMP_CALLS = {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory", "TemporaryFile"}
_SHUTIL_CALLS = {"copyfile", "copy", "copy2", "copytree", "move"}


def _writes_by_name(path: Path, source: str | None = None) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
        modes = [a.value for a in node.args[:2] if isinstance(a, ast.Constant)] + \
                [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
        writes = any(isinstance(m, str) and re.fullmatch(r"[rwxabt+]+", m) and set(m) & set("wax+") for m in modes)
        first = node.args[0] if node.args else None
        by_name = bool(node.args) and not any(k.arg == "fileobj" for k in node.keywords)
        if (name == "open" and by_name and writes) \
                or (name == "open" and base == "os") or name in _TEMP_CALLS \
                or (name in _SHUTIL_CALLS and base == "shutil") \
                or (name in ("write_text", "write_bytes") and isinstance(f, ast.Attribute) and base != "pair") \
                or (name in ("save", "save_model", "savez", "savez_compressed") and base in ("onnx", "np", "numpy")) \
                or (name == "savefig" and not isinstance(first, ast.Name)):  # a Name here is a file object
            where = path.relative_to(ROOT) if path.is_absolute() else path
            found.append(f"{where}:{node.lineno} {ast.unparse(node)[:80]}")
    return found


def test_every_file_is_created_through_safe_files():
    """The audit, kept: outside the modules above, nothing in the product creates or truncates a file by
    name; everything goes through ``edgelstm.safe_files`` (atomic_path/atomic_file/write_artifact)."""
    offenders = []
    for pkg in ("edgelstm", "converters", "calibration"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            if str(p.relative_to(ROOT)) not in ALLOWED_BY_NAME:
                offenders += _writes_by_name(p)
    assert not offenders, "files created by name outside edgelstm.safe_files:\n" + "\n".join(offenders)


def test_the_audit_sees_the_ways_a_file_is_created_by_name():
    source = "\n".join([
        "open(p, 'w')", "open(p, mode='ab')", "p.open('w')", "gzip.open(p, 'wb')", "os.open(p, os.O_CREAT)",
        "Path(p).write_text('x')", "p.write_bytes(b'x')", "pair.tmp.write_bytes(b'x')", "tempfile.mkstemp()",
        "shutil.copyfile(a, b)", "onnx.save(m, p)", "np.save(p, a)", "fig.savefig('x.png')",
        # not creations by name:
        "open(p)", "open(p, 'rb')", "pair.write_bytes(b'x')", "write_bytes(dest, b'x')", "fig.savefig(f)",
        "d.copy()", "x.save()", "tarfile.open(fileobj=gz, mode='w')",
    ])
    found = _writes_by_name(Path("snippet.py"), source)
    assert [int(f.split(":")[1].split()[0]) for f in found] == list(range(1, 14)), found
