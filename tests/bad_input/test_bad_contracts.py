"""Bad input to a model's input contract and messages that used to mislead: packed-sequence ``lengths`` out of
[1, seq], options that contradict each other (refused naming both), symbolic link loops, unreadable or special
files, damaged arrays, a model that is a link out of a bundle's folder, long and bracketed output names, and
``--weight-type`` in capitals.

Table cases get every check of ``conftest.run_case``; a few outcomes that write a file (exit 0) are plain tests.
``{w}/packed*``, ``{w}/hidden*``, ``{w}/len_*.npz`` and ``{w}/models.py`` come from ``tests/contract_models.py``."""

from __future__ import annotations

import os
import shutil
import pytest

from .conftest import case, error_lines, ids, run_case, tree
from contract_models import copy

PACKED = copy("packed.onnx", "packed_sd.pt", "models.py", *(f"len_{n}.npz" for n in
                                                           ("good", "zero", "negative", "longer", "huge", "float")))
HIDDEN = copy("hidden_sd.pt", "models.py", "hidden_x.npz")
VAL_ONNX = ("validate", "-r", "{w}/packed.onnx", "-c", "{w}/packed.onnx", "--data")
VAL_TORCH = ("validate", "-r", "{w}/packed_sd.pt", "--factory", "{w}/models.py:packed", "-c", "{w}/packed.onnx",
             "--data")
FALLBACK = ("quantize", "{w}/packed.onnx", "-p", "int8", "--max-drift", "rel_l2=0.5", "-o", "{w}/q.onnx", "--data")
STATIC = ("quantize", "{w}/packed.onnx", "-p", "int8", "--mode", "static", "-o", "{w}/q.onnx", "--calib")

# ------------------------------------------------------------------------------------------ packed lengths

LENGTHS = [
    *(case(f"validate-onnx-lengths-{n}", *VAL_ONNX, f"{{w}}/len_{n}.npz", setup=PACKED, needles=("'lengths'", "[1, 6]"))
      for n in ("zero", "negative", "longer", "huge")),
    *(case(f"validate-torch-reference-lengths-{n}", *VAL_TORCH, f"{{w}}/len_{n}.npz", setup=PACKED,
           needles=("'lengths'", "[1, 6]")) for n in ("zero", "negative", "longer", "huge")),
    *(case(f"quantize-data-lengths-{n}", *FALLBACK, f"{{w}}/len_{n}.npz", setup=PACKED, needles="'lengths'")
      for n in ("zero", "longer", "huge")),
    case("quantize-calib-lengths-negative", *STATIC, "{w}/len_negative.npz", setup=PACKED, needles="'lengths'"),
    case("validate-lengths-fractional", *VAL_ONNX, "{w}/len_float.npz", setup=PACKED, needles="fractional"),
    case("validate-lengths-good", *VAL_TORCH, "{w}/len_good.npz", setup=PACKED, code=0),
]


@pytest.mark.parametrize("c", LENGTHS, ids=ids(LENGTHS))
def test_lengths(c, cli, w, ws, monkeypatch):
    line = run_case(c, cli, w, ws, monkeypatch)
    assert "onnxruntime" not in line.lower() and "RuntimeError" not in line


# ------------------------------------------------------------------------------------------ contradictions

CONFLICTS = [
    case("convert-input-vs-input-size", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--input", "x:float32[batch,seq,1]",
         "--input-size", "5", needles=("--input-size 5", "--input x")),
    case("convert-state-arg-names-the-data", "convert", "{ws}/m.pt", "-o", "{w}/m.onnx", "--state-arg", "x",
         needles=("--state-arg", "data input")),
    case("convert-state-arg-data-of-a-hidden-model", "convert", "{w}/hidden_sd.pt", "--factory", "{w}/models.py:hidden",
         "-o", "{w}/m.onnx", "--state-arg", "x", setup=HIDDEN, needles=("--state-arg 'x'", "hidden")),
    case("convert-state-arg-and-input-same-argument", "convert", "{w}/hidden_sd.pt", "--factory",
         "{w}/models.py:hidden", "-o", "{w}/m.onnx", "--input", "x:float32[batch,seq,3]", "--input",
         "hidden:float32[1,batch,8]", "--state-arg", "hidden", setup=HIDDEN, needles=("--state-arg", "--input")),
    case("inspect-input-vs-input-size", "inspect", "{ws}/m.pt", "--input", "x:float32[batch,seq,1]", "--input-size",
         "3", needles=("--input-size 3", "--input x")),
    case("bench-state-arg-names-the-data", "bench", "{ws}/m.pt", "--state-arg", "x", "--iters", "2",
         needles="--state-arg"),
    case("validate-torch-input-vs-input-size", "validate", "-r", "{ws}/m.pt", "-c", "{ws}/m.onnx", "--synthetic", "4",
         "--input", "x:float32[batch,seq,1]", "--input-size", "2", needles=("--input-size 2", "--input x")),
    *(case(f"validate-no-torch-model-{name}", "validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4",
           *extra, needles=(flag, "torch model")) for name, flag, extra in (
        ("input", "--input", ("--input", "x:float32[batch,seq,3]")),
        ("input-size", "--input-size", ("--input-size", "3")),
        ("state-arg", "--state-arg", ("--state-arg", "hidden")),
        ("factory", "--factory", ("--factory", "{w}/models.py:packed")))),
]


@pytest.mark.parametrize("c", CONFLICTS, ids=ids(CONFLICTS))
def test_conflicts(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


# ------------------------------------------------------------------------------------------ links, special files


def _links(w, ws, mp):
    os.symlink("loop.onnx", w / "loop.onnx")
    os.symlink("loop_b.pt", w / "loop_a.pt")
    os.symlink("loop_a.pt", w / "loop_b.pt")
    os.symlink("nowhere.onnx", w / "dangling.onnx")


def _outside(w, ws, mp):
    """An unreadable empty model, an unreadable data file and a FIFO, beside (not in) the case's directory."""
    from .test_faults import _unreadable

    d = w.parent / "outside"
    d.mkdir(exist_ok=True)
    (d / "zero.onnx").write_bytes(b"")
    shutil.copy2(ws / "good.npz", d / "good.npz")
    if not (d / "fifo.onnx").exists():
        os.mkfifo(d / "fifo.onnx")
    for name in ("zero.onnx", "good.npz"):
        _unreadable(mp, d / name)  # each call wraps the open calls patched before it


def _art_with_link(w, ws, mp):
    (w / "art").mkdir()
    os.symlink(ws / "m.onnx", w / "art" / "model.onnx")


def _npz_members(w, ws, mp):
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.zeros((8, 6, 1), np.float32))
    raw = buf.getvalue()
    with zipfile.ZipFile(w / "truncated_member.npz", "w") as z:
        z.writestr("x.npy", raw[: len(raw) // 2])
    with zipfile.ZipFile(w / "negative_shape.npz", "w") as z:
        z.writestr("x.npy", raw.replace(b"(8, 6, 1)", b"(-8, 6, 1)"))
    (w / "negative_shape.npy").write_bytes(raw.replace(b"(8, 6, 1)", b"(-8, 6, 1)"))


VAL = ("validate", "-r", "{ws}/m.onnx", "-c", "{ws}/m.onnx")
MESSAGES = [
    case("validate-reference-link-loop", "validate", "-r", "{w}/loop.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4",
         setup=_links, needles="symbolic link loop"),
    case("validate-candidate-link-loop", "validate", "-r", "{ws}/m.onnx", "-c", "{w}/loop.onnx", "--synthetic", "4",
         setup=_links, needles="symbolic link loop"),
    case("validate-data-link-loop", *VAL, "--data", "{w}/loop.onnx", setup=_links, needles="symbolic link loop"),
    case("bench-link-loop", "bench", "{w}/loop.onnx", "--iters", "2", setup=_links, needles="symbolic link loop"),
    case("bench-two-link-loop", "bench", "{w}/loop_a.pt", "--iters", "2", setup=_links, needles="symbolic link loop"),
    case("inspect-link-loop", "inspect", "{w}/loop.onnx", setup=_links, needles="symbolic link loop"),
    case("quantize-link-loop", "quantize", "{w}/loop.onnx", "-p", "fp16", "-o", "{w}/q.onnx", setup=_links,
         needles="symbolic link loop"),
    case("convert-link-loop", "convert", "{w}/loop_a.pt", "-o", "{w}/m.onnx", setup=_links,
         needles="symbolic link loop"),
    case("build-link-loop", "build", "{w}/loop.onnx", "-o", "{w}/m.plan", setup=_links, needles="symbolic link loop"),
    case("inspect-broken-link", "inspect", "{w}/dangling.onnx", setup=_links, needles="broken symbolic link"),
    case("inspect-unreadable-empty-model", "inspect", "{w}/../outside/zero.onnx", setup=_outside,
         needles="permission denied"),
    case("quantize-unreadable-empty-model", "quantize", "{w}/../outside/zero.onnx", "-p", "fp16", "-o", "{w}/q.onnx",
         setup=_outside, needles="permission denied"),
    case("inspect-fifo", "inspect", "{w}/../outside/fifo.onnx", setup=_outside, needles="not a regular file"),
    case("validate-unreadable-data", *VAL, "--data", "{w}/../outside/good.npz", setup=_outside,
         needles="permission denied"),
    case("validate-npz-truncated-member", *VAL, "--data", "{w}/truncated_member.npz", setup=_npz_members,
         needles="truncated"),
    case("validate-npz-negative-shape", *VAL, "--data", "{w}/negative_shape.npz", setup=_npz_members,
         needles="damaged"),
    case("validate-npy-negative-shape", *VAL, "--data", "{w}/negative_shape.npy", setup=_npz_members,
         needles="damaged"),
    case("bundle-model-is-a-link-out", "bundle", "{w}/art", "-o", "{w}/b.tar.gz", setup=_art_with_link,
         needles=("model.onnx", "symbolic link")),
]


@pytest.mark.parametrize("c", MESSAGES, ids=ids(MESSAGES))
def test_messages(c, cli, w, ws, monkeypatch):
    line = run_case(c, cli, w, ws, monkeypatch)
    assert "pickle" not in line and "0 bytes" not in line and "nothing to bundle" not in line, line


# ------------------------------------------------------------------------------------------ outputs that must work


def _ok(cli, *args) -> str:
    code, _, stderr = cli(*[str(a) for a in args])
    assert code == 0 and not error_lines(stderr) and "Traceback" not in stderr, stderr
    return stderr


@pytest.mark.parametrize("command", ["quantize", "validate-report", "bench-csv"])
def test_a_legal_long_output_name_works(command, cli, ws, tmp_path):
    """240 characters is a legal name: its temp files must be legal too (their names are bounded)."""
    long = tmp_path / ("n" * 236)
    args = {"quantize": ("quantize", ws / "m.onnx", "-p", "fp16", "-o", f"{long}.onnx"),
            "validate-report": ("validate", "-r", ws / "m.onnx", "-c", ws / "m.onnx", "--synthetic", "4", "--report",
                                f"{long}.json"),
            "bench-csv": ("bench", ws / "m.onnx", "--iters", "2", "--warmup", "0", "--batch", "1", "--seq", "4",
                          "--csv", f"{long}.csv")}[command]
    _ok(cli, *args)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert all(n.startswith("n" * 236) for n in names) and not any(n.endswith((".tmp", ".bak")) for n in names), names


def test_a_legal_long_unbundle_target_works(cli, ws, tmp_path):
    """unbundle's scratch folders beside a 250-byte target name stay within the file name limit too."""
    out = tmp_path / ("u" * 250)
    _ok(cli, "unbundle", ws / "good.tar.gz", "-o", out)
    assert out.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_bracketed_output_name_is_printed_as_it_is(cli, ws, tmp_path):
    out = tmp_path / "[red]x[/red].onnx"
    stderr = _ok(cli, "quantize", ws / "m.onnx", "-p", "fp16", "-o", out)
    assert "[red]x[/red].onnx" in stderr and out.exists()


def test_weight_type_is_case_insensitive_like_target_cpu(cli, ws, tmp_path):
    _ok(cli, "quantize", ws / "m.onnx", "-p", "int8", "--weight-type", "U8", "--target-cpu", "AUTO",
        "-o", tmp_path / "q.onnx")
    import json

    manifest = json.loads((tmp_path / "q.onnx.json").read_text())
    assert manifest["details"]["quantization"]["weight_type"] == "u8"


def test_no_onnxruntime_log_on_the_real_stderr(ws, tmp_path):
    """onnxruntime's own (coloured, C++) log line never reaches the terminal: a subprocess sees what a user sees."""
    import subprocess
    import sys

    from contract_models import shared
    from .test_faults import ROOT

    d = shared()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGELSTM_DEBUG", None)
    code = ("import numpy as np, sys\nfrom edgelstm.runners.onnxruntime_runner import OrtRunner\n"
            f"r = OrtRunner({str(d / 'packed.onnx')!r})\n"
            "try:\n    r.run({'x': np.zeros((2, 6, 4), np.float32), 'lengths': np.array([9, 6])})\n"
            "except Exception as e:\n    print(type(e).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.strip() == "BadInput" and proc.stderr == "", proc.stderr
    assert tree(tmp_path) == {}


def test_user_text_in_a_styled_message_or_cell_stays_text(capsys):
    """The code's own styling survives; a name that looks like Rich markup is shown as it is, everywhere."""
    from edgelstm import console

    assert console.markup("wrote [red]x[/red].onnx") == "wrote \\[red]x\\[/red].onnx"
    assert console.markup("  [dim]left out [bold]a[/bold]: b[/]") == "  [dim]left out \\[bold]a\\[/bold]: b[/]"
    assert console.markup("[green]pass[/]") == "[green]pass[/]"
    assert console.markup("m.onnx [yellow](GPU-tied)[/]") == "m.onnx [yellow](GPU-tied)[/]"
    console.configure()
    console.table("t", ["artifact", "result"], [["[red]x[/red].onnx", "[green]pass[/]"]])
    console.info("  [dim]note about [blue]y[/blue][/]")
    err = capsys.readouterr().err
    assert "[red]x[/red].onnx" in err and "[blue]y[/blue]" in err and "[green]" not in err
