"""`edgelstm remote BUNDLE HOST...`: check a bundle on devices over SSH and bring one report home."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish

HELP = """Check a bundle on one device or a fleet over SSH, and merge what comes back into one report.

BUNDLE is a bundle made with `edgelstm bundle DIR -o B.tar.gz --check`, or a pipeline's output
directory (a check bundle is then made from it with the pipeline's data, gates and bench plan). HOST is
[user@]host[:port] or a Host alias from ~/.ssh/config; or pick devices from an inventory file
(--inventory fleet.toml) by --label and --hosts.

Per device: connect (ssh, BatchMode: keys or an agent, never a password prompt), push the bundle (scp),
run its device check (`python3 device_check.py`, from the wheels in the bundle: the device needs no
package index, only numpy, onnx and onnxruntime), stream its progress, pull results.json into
--results-dir, remove the run directory. A lost connection stops the check on the device and removes
its run directory; the report says at which step and after which progress line it stopped. At most
--concurrency devices at once, each with a deadline (--timeout) and --retries after a lost connection.

Exit code: the worst device's (0 all passed, 1 a gate failed, 3 a device did not finish), as
`edgelstm compare` gives for the same files.

Examples:

  edgelstm remote lstm.tar.gz nvidia@orin-nano-1 nvidia@xavier-nx-1 --markdown fleet.md

  edgelstm remote edgelstm-out/lstm_regressor --inventory fleet.toml --label orin-nano --html fleet.html
"""


def _targets(hosts, inventory, label, pick, ssh_config, python, workdir, extra):
    from edgelstm.errors import BadInput
    from edgelstm.fleet.inventory import load_inventory, select, target_of

    if inventory is not None:
        if hosts:
            raise BadInput("give devices either as HOST arguments or from --inventory, not both")
        inv = load_inventory(inventory)
        chosen = select(inv, hosts=tuple(h for x in pick or () for h in x.split(",") if h), labels=tuple(label or ()))
        from dataclasses import replace

        chosen = [replace(t, extra_args=t.extra_args + extra, **({"ssh_config": ssh_config} if ssh_config else {}),
                          **({"python": python} if python else {}), **({"workdir": workdir} if workdir else {}))
                  for t in chosen]
        return chosen, inv
    if label or pick:
        raise BadInput("--label and --hosts pick devices from --inventory FILE")
    if not hosts:
        raise BadInput("name the devices: HOST arguments ([user@]host[:port]) or --inventory FILE")
    defaults = {"ssh_config": ssh_config, "extra_args": extra, **({"python": python} if python else {}),
                **({"workdir": workdir} if workdir else {})}
    return [target_of(h, **defaults) for h in hosts], None


def _bundle_of(path: Path, results_dir: Path) -> Path:
    """A check bundle: the file given, or one made from a pipeline's output directory (into RESULTS_DIR/bundle/,
    where `compare RESULTS_DIR/*.json` does not see its manifest)."""
    if not path.is_dir():
        return path
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle

    out = results_dir / "bundle" / f"{path.name if path.name not in ('', '.', '..') else path.resolve().name}.check.tar.gz"
    console.step(f"making a check bundle of {console.literal(path)} -> {console.literal(out)}")
    result = make_bundle(path, out, BundleOptions(check=CheckOptions()))
    for w in result.warnings:
        console.warn(w)
    return out


def remote(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", show_default=False,
                                  help="A check bundle (.tar.gz from `bundle --check`) or a pipeline output directory."),
    hosts: Optional[List[str]] = typer.Argument(None, metavar="HOST", show_default=False,
                                                help="[user@]host[:port] or an ssh Host alias (repeatable)."),
    inventory: Optional[Path] = typer.Option(None, "--inventory", show_default=False, metavar="FLEET.toml",
                                             help="A fleet inventory (TOML: [defaults], [[device]] host/labels)."),
    label: Optional[List[str]] = typer.Option(None, "--label", show_default=False, metavar="LABEL",
                                              help="With --inventory: devices with this label (repeatable)."),
    pick: Optional[List[str]] = typer.Option(None, "--hosts", show_default=False, metavar="NAME,NAME",
                                             help="With --inventory: these devices, by name (comma-separated)."),
    ssh_config: Optional[Path] = typer.Option(None, "--ssh-config", show_default=False, metavar="FILE",
                                              help="ssh -F FILE [default: ssh's own, ~/.ssh/config]."),
    python: Optional[str] = typer.Option(None, "--python", show_default=False, metavar="PYTHON",
                                         help="The device's Python [default: python3, or the inventory's]."),
    workdir: Optional[str] = typer.Option(None, "--workdir", show_default=False, metavar="DIR",
                                          help="Where runs live on the device [default: ~/.cache/edgelstm-remote]."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", show_default=False, metavar="N",
                                              help="Devices checked at once [default: 4, or the inventory's]."),
    timeout: Optional[float] = typer.Option(None, "--timeout", show_default=False, metavar="SECONDS",
                                            help="Seconds per device, all attempts [default: 1800, or the inventory's]."),
    retries: Optional[int] = typer.Option(None, "--retries", show_default=False, metavar="N",
                                          help="More attempts after a lost connection [default: 1, or the inventory's]."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", metavar="DIR", help="Where each device's results go."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", show_default=False, metavar="OUT.md", help="Write the report as Markdown."),
    html_out: Optional[Path] = typer.Option(None, "--html", show_default=False, metavar="OUT.html", help="Write the report as HTML."),
    report: Optional[Path] = typer.Option(None, "--report", show_default=False, metavar="OUT.json", help="Write the report as JSON."),
    iters: Optional[int] = typer.Option(None, "--iters", show_default=False, metavar="N", help="Bench iterations on the devices."),
    energy: bool = typer.Option(True, "--energy/--no-energy", help="Energy per inference on Jetsons."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm.cli.compare import print_report
    from edgelstm.fleet.compare import merge_results
    from edgelstm.fleet.fleet import FleetOptions, run_fleet
    from edgelstm.fleet.report import write_reports
    from edgelstm.options import check_int

    check_int(iters, "iters", optional=True)
    extra = (*(("--iters", str(iters)) if iters else ()), *(() if energy else ("--no-energy",)))
    targets, inv = _targets(hosts, inventory, label, pick, ssh_config, python, workdir, extra)
    lit = console.literal
    options = FleetOptions(
        concurrency=concurrency or (inv.concurrency if inv else 4), timeout_s=timeout or (inv.timeout if inv else 1800),
        retries=retries if retries is not None else (inv.retries if inv else 1),
        progress=lambda dev, line: console.info(f"[dim]{lit(dev)}[/] {lit(line)}"),
        on_step=lambda dev, step: console.step(f"{lit(dev)}: {step}"))
    check = _bundle_of(bundle, results_dir)
    done = run_fleet(check, targets, results_dir, options)
    merged = merge_results([r for _, r in done], [str(p) for p, _ in done])
    write_reports(merged, markdown=markdown, html_path=html_out, json_path=report)
    print_report(merged)
    for p, _ in done:
        console.info(f"results: {lit(p)}")
    finish(merged, json_out, merged["exit_code"])


def register(app: typer.Typer) -> None:
    app.command("remote", help=HELP)(command(remote))
