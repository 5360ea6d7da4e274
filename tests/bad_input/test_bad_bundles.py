"""Bad input to bundle and unbundle: directories that are not pipeline outputs, hostile or broken archives,
targets that must not be replaced. ``{w}/good.tar.gz`` is an earlier good bundle a failure must keep."""

from __future__ import annotations


import pytest

from .conftest import case, ids, onnx_graph, run_case


def _art(*names: str, junk: bool = False):
    """A setup making ``{w}/art`` with tiny ONNX models ``names`` (random bytes instead with ``junk``)."""
    def setup(w, ws, mp):
        for n in names:
            if junk:
                (w / "art").mkdir(exist_ok=True)
                (w / "art" / n).write_bytes(b"\x08\x07junk" * 10)
            else:
                onnx_graph(w / "art" / n)
    return setup


def bun(id: str, *args: str, setup=None, needles=(), code: int = 2, usage: bool = False):
    return case(id, "bundle", *args, setup=setup, needles=needles, code=code, usage=usage)


BUNDLE = [
    bun("source-missing", "{w}/nope", "-o", "{w}/b.tar.gz", needles="nope"),
    bun("source-is-a-file", "{w}/good.json", "-o", "{w}/b.tar.gz", needles="not a directory"),
    bun("source-empty", "{ws}/emptydir", "-o", "{w}/good.tar.gz"),
    bun("source-only-junk-onnx", "{w}/art", "-o", "{w}/good.tar.gz", setup=_art("model.onnx", junk=True)),
    bun("out-wrong-suffix", "{w}/art", "-o", "{w}/b.zip", setup=_art("model.onnx"), needles=".tar.gz"),
    bun("out-is-existing-directory", "{w}/art", "-o", "{w}/dir.tar.gz", setup=lambda w, ws, mp: (
        _art("model.onnx")(w, ws, mp), (w / "dir.tar.gz").mkdir())),
    bun("out-under-a-file", "{w}/art", "-o", "{w}/good.json/b.tar.gz", setup=_art("model.onnx")),
    bun("batch-range-bad", "{w}/art", "-o", "{w}/b.tar.gz", "--batch", "4:2:1", setup=_art("model.onnx"),
        needles="--batch"),
    bun("seq-range-words", "{w}/art", "-o", "{w}/b.tar.gz", "--seq", "x:y:z", setup=_art("model.onnx"),
        needles="--seq"),
    bun("pipeline-missing", "{w}/art", "-o", "{w}/b.tar.gz", "--pipeline", "{w}/nope.toml", setup=_art("model.onnx")),
    bun("pipeline-directory", "{w}/art", "-o", "{w}/b.tar.gz", "--pipeline", "{w}/gooddir", setup=_art("model.onnx")),
    bun("include-matches-nothing", "{w}/art", "-o", "{w}/b.tar.gz", "--include", "nothing/*.npz",
        setup=_art("model.onnx")),
    bun("engine-from-unknown", "{w}/art", "-o", "{w}/good.tar.gz", "--engine-from", "other.onnx",
        setup=_art("model.onnx")),
    bun("hostile-name", "{w}/art", "-o", "{w}/good.tar.gz", setup=_art("m$(touch INJECTED).onnx")),
    bun("precision-unknown", "{w}/art", "-o", "{w}/b.tar.gz", "--precision", "int4", setup=_art("model.onnx"),
        usage=True),
]


@pytest.mark.parametrize("c", BUNDLE, ids=ids(BUNDLE))
def test_bundle(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


def unb(id: str, bundle: str, *args: str, setup=None, needles=(), code: int = 2):
    return case(id, "unbundle", bundle, *args, setup=setup, needles=needles, code=code)


UNBUNDLE = [
    unb("missing", "{ws}/nope.tar.gz", "-o", "{w}/u", needles="nope.tar.gz"),
    unb("directory", "{ws}/bundle_dir.tar.gz", "-o", "{w}/u"),
    unb("random-bytes", "{ws}/junk.tar.gz", "-o", "{w}/u", needles="junk.tar.gz"),
    unb("empty", "{ws}/zero.tar.gz", "--verify-only"),
    unb("truncated", "{ws}/trunc.tar.gz", "-o", "{w}/a/b/u"),
    unb("no-checksums", "{ws}/nochecksums.tar.gz", "-o", "{w}/u", needles="CHECKSUMS"),
    unb("path-traversal", "{ws}/traversal.tar.gz", "-o", "{w}/u"),
    unb("absolute-member", "{ws}/absolute.tar.gz", "-o", "{w}/u"),
    unb("checksum-mismatch", "{ws}/badsum.tar.gz", "-o", "{w}/u"),
    unb("unlisted-member", "{ws}/unlisted.tar.gz", "-o", "{w}/u"),
    unb("symlink-member", "{ws}/link.tar.gz", "-o", "{w}/u"),
    unb("no-out-no-verify-only", "{ws}/good.tar.gz", needles="-o"),
    unb("verify-only-and-no-verify", "{ws}/good.tar.gz", "--verify-only", "--no-verify"),
    unb("out-is-a-file", "{ws}/good.tar.gz", "-o", "{w}/good.json"),
    unb("out-under-a-file", "{ws}/good.tar.gz", "-o", "{w}/good.json/u"),
    unb("out-is-cwd", "{ws}/good.tar.gz", "-o", ".", needles="current directory"),
    unb("out-is-cwd-force", "{ws}/good.tar.gz", "-o", ".", "--force", needles="current directory"),
    unb("out-is-parent-force", "{ws}/good.tar.gz", "-o", "..", "--force", needles="current directory"),
    unb("out-not-empty", "{ws}/good.tar.gz", "-o", "{w}/gooddir", needles="--force"),
    unb("out-holds-the-bundle-force", "{w}/good.tar.gz", "-o", "{w}", "--force"),
    unb("max-size-words", "{ws}/good.tar.gz", "-o", "{w}/u", "--max-unpacked-size", "lots"),
    unb("max-size-negative", "{ws}/good.tar.gz", "-o", "{w}/u", "--max-unpacked-size", "-1"),
    unb("max-size-too-small", "{ws}/good.tar.gz", "-o", "{w}/u", "--max-unpacked-size", "10"),
    unb("plain-empty-tar", "{ws}/plain.tar", "--verify-only"),
]


@pytest.mark.parametrize("c", UNBUNDLE, ids=ids(UNBUNDLE))
def test_unbundle(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)
