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

With --check the bundle also carries what `edgelstm device-check` judges with on the device: a stated
sample of the validation data (--check-samples, the first N; its sha256 in check/check.json), the
reference model's outputs on it computed now (--reference, default ARTIFACT_DIR/model.pt), the gates
(--gate, default the pipeline's [validate] gates) and the bench plan (--bench-*, default its [bench]),
plus edgelstm and its pure-Python dependencies as wheels (built from what is installed here; about 2
MiB, at most 48 MiB) and device_check.py, which runs the check from those wheels: no package index is
needed on the device, only numpy, onnx and onnxruntime. Data and reference outputs may take at most
64 MiB.

Examples:

  edgelstm bundle edgelstm-out/lstm_regressor -o lstm-jetson.tar.gz --pipeline pipeline.toml

  edgelstm bundle edgelstm-out/lstm_regressor -o lstm-check.tar.gz --check --check-samples 128

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


def _ints(text: Optional[str], what: str) -> tuple[int, ...]:
    if text is None:
        return ()
    from edgelstm.errors import BadInput

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BadInput(f"{what} must be a comma-separated list of positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise BadInput(f"{what} must be a comma-separated list of positive integers, got {text!r}")
    return values


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
    check: bool = typer.Option(False, "--check", help="Carry a device check (data sample, reference outputs, gates, "
                                                      "bench plan, edgelstm wheels) for `edgelstm device-check`."),
    reference: Optional[Path] = typer.Option(None, "--reference", show_default=False, metavar="MODEL",
                                             help="With --check: the model whose outputs are the truth [default: "
                                                  "ARTIFACT_DIR/model.pt, else the FP32 ONNX]."),
    data: Optional[Path] = typer.Option(None, "--data", show_default=False, metavar="DATA",
                                        help="With --check: validation data (.npz/.npy/.csv) [default: the "
                                             "pipeline's [data]]."),
    synthetic: Optional[int] = typer.Option(None, "--synthetic", show_default=False, metavar="N",
                                            help="With --check: N synthetic samples instead of data."),
    gate: Optional[List[str]] = typer.Option(None, "--gate", show_default=False, metavar="METRIC<=VALUE",
                                             help="With --check: METRIC[:OUTPUT]<=VALUE for every artifact "
                                                  "(repeatable) [default: the pipeline's, else rel_l2<=0.01]."),
    check_samples: int = typer.Option(256, "--check-samples", metavar="N", help="With --check: at most this many samples "
                                                                   "(the first N) go into the bundle."),
    bench_batch: Optional[str] = typer.Option(None, "--bench-batch", show_default=False, metavar="1,8",
                                              help="With --check: bench batch sizes, e.g. 1,8 [default: the "
                                                   "pipeline's [bench], else 1]."),
    bench_seq: Optional[str] = typer.Option(None, "--bench-seq", show_default=False, metavar="60,256",
                                            help="With --check: bench sequence lengths [default: pipeline's, else 60]."),
    bench_threads: Optional[str] = typer.Option(None, "--bench-threads", show_default=False, metavar="1,2",
                                                help="With --check: bench CPU threads [default: pipeline's, else 1]."),
    bench_iters: Optional[int] = typer.Option(None, "--bench-iters", show_default=False, metavar="N",
                                              help="With --check: iterations per bench point [default: 50]."),
    no_wheels: bool = typer.Option(False, "--no-wheels", help="With --check: do not carry edgelstm as wheels "
                                                              "(the device has it installed)."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle

    check_options = None
    if check:
        check_options = CheckOptions(reference=reference, data=data, synthetic=synthetic, gates=tuple(gate or ()),
                                     samples=check_samples, batch=_ints(bench_batch, "--bench-batch"),
                                     seqs=_ints(bench_seq, "--bench-seq"), threads=_ints(bench_threads, "--bench-threads"),
                                     iters=bench_iters, wheels=not no_wheels)
    elif any(v is not None for v in (reference, data, synthetic, gate, bench_batch, bench_seq, bench_threads,
                                     bench_iters)) or no_wheels:
        from edgelstm.errors import BadInput

        raise BadInput("--reference, --data, --synthetic, --gate, --bench-* and --no-wheels belong to --check")
    options = BundleOptions(pipeline=pipeline, include=tuple(include or ()), precision=precision,
                            batch=_range(batch, "--batch"), seq=_range(seq, "--seq"),
                            engine_from=tuple(engine_from or ()), include_engines=include_engines,
                            validate_on_device=not no_validate, check=check_options)
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
    if check:
        console.info(f"on the device: python3 device_check.py {lit(out.name)} -o results.json   (or from here: "
                     f"edgelstm remote {lit(out)} [user@]host)")
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
