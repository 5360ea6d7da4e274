"""`edgelstm bundle` / `edgelstm unbundle`: ship a pipeline's ONNX + a build recipe to the device, checked."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.fileio import human_size
from edgelstm.options import Precision
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.vocabulary import output_option

BUNDLE_HELP = """Pack a pipeline's output directory into a deployment bundle (.tar.gz) for building on the device.

TensorRT engines are tied to the GPU architecture and the TensorRT version that built them, so the bundle
carries the ONNX models with their manifests, an INT8 calibration cache if there is one, the pipeline file
and reports, plus build_engine.sh: a recipe that runs `edgelstm build` (and then `edgelstm validate`) on
the device, e.g. a Jetson. README.txt tells the operator what to do; bundle.json indexes every member;
CHECKSUMS.sha256 works with `sha256sum -c`. Engines are left out unless --include-engines.

The recipe builds, per --precision: fp32/fp16 from the FP32 ONNX models (plain and streaming), int8
from the static Q/DQ model (or from the FP32 model with the calibration cache). --engine-from overrides
the choice. Models with onnxruntime-only operators (dynamic INT8) are shipped but never built.

Bundled file names may only use letters, digits and . _ - + @ = , (with / between folders), and may
not start with '-': the names reach a shell script and a checksum file, so any other is refused.

Examples:

  edgelstm bundle edgelstm-out/lstm_regressor -o lstm-jetson.tar.gz --pipeline pipeline.toml

  edgelstm bundle out/ -o bundle.tar.gz --precision int8 --batch 1:1:4 --seq 1:60:240

  edgelstm bundle out/ -o bundle.tar.gz --include "data/*.npz" --engine-from model.stateful.onnx
"""

UNBUNDLE_HELP = """Check and unpack a bundle made by `edgelstm bundle`.

Before anything is written, every archive member is checked: absolute paths, `..` components,
symbolic and hard links, device files, names with shell syntax ($, `, ") and anything landing
outside DIR are refused. The content is
unpacked into a temp directory beside DIR, every file is checked against CHECKSUMS.sha256 and
bundle.json (no missing or extra files) and every ONNX against its manifest, and only then is it
renamed to DIR. A refused bundle leaves nothing behind.

A bundle may unpack to at most 32GiB, and above 256MiB to at most 200 times its own size (a
compression bomb is refused on the sizes its members declare, before anything is written, and a
member holding more than it declares is refused as it streams); --max-unpacked-size replaces both.
DIR may not be the current directory or one above it (it is replaced as a whole).

Exit codes: 0 verified (and unpacked), 2 refused (one line naming the culprit) or bad input.

Examples:

  edgelstm unbundle lstm-jetson.tar.gz -o model-bundle && ./model-bundle/build_engine.sh

  edgelstm unbundle --verify-only lstm-jetson.tar.gz --json
"""




def _range(text: Optional[str], what: str):
    if text is None:
        return None
    from edgelstm.options import parse_range

    return parse_range(text, what=what)


def bundle(
    artifact_dir: Path = typer.Argument(..., metavar="ARTIFACT_DIR", help="A pipeline's output directory (ONNX files with their "
                                                  "<file>.json manifests).", show_default=False),
    out: Path = output_option("OUT.tar.gz", "The bundle to write (.tar.gz or .tgz); written atomically, with a "
                                            "<file>.json manifest beside it."),
    pipeline: Optional[Path] = typer.Option(None, "--pipeline", metavar="PIPELINE.toml", show_default=False,
                                            help="Include this pipeline file as pipeline.toml (default: "
                                                 "ARTIFACT_DIR/pipeline.toml when it exists)."),
    include: Optional[List[str]] = typer.Option(None, "--include", metavar="GLOB", show_default=False,
                                                help="Extra files to ship: a glob relative to ARTIFACT_DIR "
                                                     "(repeatable), e.g. 'data/*.npz'."),
    precision: Precision = typer.Option(Precision.fp16, "--precision",
                                        help="Precision of the engines the recipe builds on the device."),
    batch: Optional[str] = typer.Option(None, "--batch", metavar="1:1:8", show_default=False,
                                        help="Batch range min:opt:max of the engines' optimization profile "
                                             "[default: 1:1:8, or the model's fixed batch]."),
    seq: Optional[str] = typer.Option(None, "--seq", metavar="1:60:512", show_default=False,
                                      help="Sequence-length range min:opt:max [default: 1:L:max(512,4L) with L the "
                                           "pipeline's [export].seq, else 64]."),
    engine_from: Optional[List[str]] = typer.Option(None, "--engine-from", metavar="FILE.onnx", show_default=False,
                                                    help="ONNX file (name or glob) the recipe builds an engine from "
                                                         "(repeatable) [default: chosen per --precision]."),
    include_engines: bool = typer.Option(False, "--include-engines",
                                         help="Also ship the TensorRT engines found (they only run on the GPU "
                                              "architecture and TensorRT version that built them)."),
    no_validate: bool = typer.Option(False, "--no-device-validate",
                                     help="Recipe default VALIDATE=0: do not compare each built engine with its ONNX."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.bundle import BundleOptions, make_bundle

    options = BundleOptions(pipeline=pipeline, include=tuple(include or ()), precision=precision,
                            batch=_range(batch, "--batch"), seq=_range(seq, "--seq"),
                            engine_from=tuple(engine_from or ()), include_engines=include_engines,
                            validate_on_device=not no_validate)
    console.step(f"bundling {console.literal(artifact_dir)}")
    result = make_bundle(artifact_dir, out, options)
    lit = console.literal  # file names are shown as they are, never taken for markup
    console.table(f"bundle {out.name}", ["member", "role", "size", "sha256"],
                  [[lit(m.name), m.role + (" [yellow](GPU-tied)[/]" if m.tied_to else ""), human_size(m.size),
                    m.sha256[:12]] for m in result.members])
    console.table("build recipe (build_engine.sh, runs on the device)",
                  ["onnx", "engine", "precision", "batch", "seq", "calibration"],
                  [[lit(b.onnx), lit(b.engine), b.precision, ":".join(map(str, b.batch)), ":".join(map(str, b.seq)),
                    lit(b.calib_cache) if b.calib_cache else "$CALIB" if b.needs_calib_data else "–"]
                   for b in result.builds])
    for s in result.skipped:
        console.info(f"[dim]left out {lit(s['file'])}: {lit(s['reason'])}[/]")
    for w in result.warnings:
        console.warn(w)
    console.success(f"wrote {lit(out)} ({human_size(result.size)}, {len(result.members) + 1} files, "
                    f"sha256 {result.sha256[:12]}…)")
    finish(result.to_dict(), json_out)


def unbundle(
    bundle_path: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.tar.gz) to check and unpack.",
                                       show_default=False),
    out: Optional[Path] = output_option("DIR", "Directory to unpack into (must not exist or be empty).",
                                        required=False),
    verify: bool = typer.Option(True, "--verify/--no-verify",
                                help="Check every file against CHECKSUMS.sha256, bundle.json and the manifests. "
                                     "Unsafe members are refused either way."),
    verify_only: bool = typer.Option(False, "--verify-only", help="Check the bundle without unpacking anything."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty -o directory (after all checks pass)."),
    max_unpacked_size: Optional[str] = typer.Option(
        None, "--max-unpacked-size", metavar="SIZE", show_default=False,
        help="Refuse a bundle that unpacks to more than this, e.g. 64GiB [default: 32GiB, and at most 200 times "
             "the bundle's size above 256MiB (a compression bomb); a value replaces both limits]."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.bundle import BundleRefused, parse_size, unpack_bundle, verify_bundle
    from edgelstm.errors import BadInput

    if not verify_only and out is None:
        raise BadInput("give -o DIR to unpack into, or --verify-only to only check the bundle")
    if verify_only and not verify:
        raise BadInput("--verify-only and --no-verify contradict each other")
    limit = parse_size(max_unpacked_size) if max_unpacked_size is not None else None
    try:
        if verify_only:
            check = verify_bundle(bundle_path, max_unpacked_size=limit).raise_if_failed()
        else:
            if not verify:
                console.warn("--no-verify: checksums are not checked (unsafe members are still refused)")
            check = unpack_bundle(bundle_path, out, verify, force=force, max_unpacked_size=limit)
    except BundleRefused as exc:
        if json_out and exc.check is not None:
            console.result(exc.check.to_dict())  # printed with the error when the command ends
        raise
    lit = console.literal  # member names come from the archive: shown as they are, never taken for markup
    console.table(f"bundle {bundle_path.name}", ["member", "size", "sha256", "status"],
                  [[lit(m["name"]), human_size(m["size"]), (m["sha256"] or "")[:12],
                    "[green]ok[/]" if m["status"] == "ok" else lit(m["status"])] for m in check.members])
    n = len(check.members)
    if verify_only:
        console.success(f"{lit(bundle_path.name)}: all {n} files verified (nothing unpacked)")
    else:
        console.success(f"unpacked {n} files into {lit(out)}" + (", all verified" if verify else " (not verified)"))
        if any(m["name"] == "build_engine.sh" for m in check.members):
            console.info(f"next, on the device: {lit(out)}/build_engine.sh")
    finish(check.to_dict(), json_out)


def register(app: typer.Typer) -> None:
    app.command("bundle", help=BUNDLE_HELP)(command(bundle))
    app.command("unbundle", help=UNBUNDLE_HELP)(command(unbundle))
