"""`edgelstm device-check BUNDLE`: on the device, check a bundle's artifacts with the bundle's own data, gates and
bench plan, and write one results JSON."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish

HELP = """Check a bundle on this device: accuracy and speed here, judged with what the bundle carries.

BUNDLE is a bundle made with `edgelstm bundle DIR -o B.tar.gz --check` (or the directory it was unpacked
into). It is verified first (checksums, manifests). Then, where TensorRT is installed, the engines of the
bundle's build plan are built here (with a timing cache); every ONNX model and every engine is validated
against the reference model's outputs recorded in the bundle (on the bundle's data sample, with its
gates), and benched with the bundle's plan (ONNX on this CPU with onnxruntime, engines with TensorRT).
The results name the device: its CPU's int8 ISA class; on a Jetson also the model, L4T/JetPack, the
nvpmodel power mode, whether jetson_clocks pinned the clocks, the GPU/EMC clocks, and the energy per
inference (mJ) from tegrastats' VDD_IN and VDD_CPU_GPU_CV rails over a steady inference loop (measured on
the device only; --no-energy skips it).

Without edgelstm installed, run the bundle's starter instead: `python3 device_check.py BUNDLE -o r.json`
uses the wheels the bundle carries (no package index needed).

Exit codes: 0 every gate passed, 1 a gate failed (the results name it), 2 bad bundle or input, 3 a
backend is missing, 4 internal error. Bring the results home and merge devices with `edgelstm compare`.

Examples:

  edgelstm device-check lstm.tar.gz -o results/orin-nano.json --name orin-nano-1 --label orin-nano

  python3 device_check.py lstm.tar.gz -o results.json --no-energy
"""


def device_check(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", show_default=False,
                                  help="The bundle (.tar.gz made with `bundle --check`) or its unpacked directory."),
    out: Path = typer.Option(Path("device-check.json"), "-o", "--output", metavar="OUT.json", help="The results JSON to write."),
    name: Optional[str] = typer.Option(None, "--name", show_default=False, metavar="NAME",
                                       help="This device's name in reports [default: the host name]."),
    label: Optional[List[str]] = typer.Option(None, "--label", show_default=False, metavar="LABEL",
                                              help="A label for this device, e.g. orin-nano (repeatable)."),
    only: Optional[List[str]] = typer.Option(None, "--only", show_default=False, metavar="GLOB",
                                             help="Check only artifacts matching this glob (repeatable)."),
    iters: Optional[int] = typer.Option(None, "--iters", show_default=False, metavar="N",
                                        help="Bench iterations per point [default: the bundle's plan]."),
    energy: bool = typer.Option(True, "--energy/--no-energy", help="On a Jetson, measure energy per inference."),
    energy_seconds: Optional[float] = typer.Option(None, "--energy-seconds", show_default=False, metavar="SECONDS",
                                                   help="Seconds of steady inference per artifact under tegrastats "
                                                        "[default: the bundle's plan, 3]."),
    calib: Optional[Path] = typer.Option(None, "--calib", show_default=False, metavar="DATA",
                                         help="Calibration data for an INT8 engine built from a float model."),
    work: Optional[Path] = typer.Option(None, "--work", show_default=False, metavar="DIR",
                                        help="Where to unpack and build [default: a temp directory, removed]."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.fleet.device_check import DeviceCheckOptions, check_device
    from edgelstm.options import check_float, check_int

    check_int(iters, "iters", optional=True)
    check_float(energy_seconds, "energy_seconds", strict=True, optional=True)
    options = DeviceCheckOptions(name=name, labels=tuple(label or ()), work=work, only=tuple(only or ()),
                                 iters=iters, energy=energy, energy_seconds=energy_seconds, calib=calib,
                                 progress=lambda m: console.step(console.literal(m)))
    results = check_device(bundle, out, options)
    lit = console.literal
    rows = []
    for a in results["artifacts"]:
        v = a.get("validate") or {}
        rel = max((o.get("rel_l2") or 0.0 for o in (v.get("outputs") or {}).values()), default=None)
        p50 = next((r["latency_ms"]["p50"] for r in a.get("bench") or [] if r.get("mode") == "window"), None)
        mj = ((a.get("energy") or {}).get("total") or {}).get("mj_per_inference")
        verdict = (a.get("status") if a.get("status") != "ok" else "[green]pass[/]" if v.get("passed")
                   else "[bold red]FAIL[/]")
        rows.append([lit(a["name"]), a.get("backend") or "", f"{rel:.3g}" if rel is not None else "–",
                     f"{p50:.4g}" if p50 is not None else "–", f"{mj:.3g}" if mj is not None else "–", verdict])
    device = results["device"]
    console.table(f"device check on {device.get('name')} ({device.get('slug')})",
                  ["artifact", "backend", "rel_l2", "p50 ms", "mJ/inference", "verdict"], rows)
    failed = [g for g in results["gates"] if not g["passed"]]
    for g in failed:
        console.info(f"[bold red]gate failed[/] {lit(g['artifact'])}: {lit(g['gate'])} (value {g['value']})")
    console.success(f"wrote {lit(out)}")
    finish(results, json_out, results["exit_code"])


def register(app: typer.Typer) -> None:
    app.command("device-check", help=HELP)(command(device_check))
