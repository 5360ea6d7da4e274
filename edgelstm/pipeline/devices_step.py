"""The `[devices]` step that ends `edgelstm run`: the run's artifacts checked on devices over SSH.

    [devices]
    hosts = ["nvidia@orin-nano-1", "xavier-nx-1"]   # or: inventory = "fleet.toml", labels = ["orin-nano"]
    timeout = 1800
    retries = 1

After the report, the output directory becomes a check bundle (the run's validation data, gates and bench plan,
the reference model's outputs), every device checks it (edgelstm.fleet), and `[output].dir/devices/` gets each
device's results and one cross-device report (fleet.md, fleet.html, fleet.json). Not cached: devices change
while files do not. The run fails when a device's gate fails or a device cannot finish its check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import BadInput
from edgelstm.pipeline.schema import Pipeline, reworded

Say = Callable[[str], None]


def _path(p: Pipeline, value: str | None) -> Path | None:
    return p.resolve(str(Path(value).expanduser())) if value else None


def targets(p: Pipeline) -> tuple[list[Any], Any]:
    """The devices [devices] names, and the inventory they come from (None for hosts)."""
    from dataclasses import replace

    from edgelstm.fleet.inventory import load_inventory, select, target_of

    d = p.devices
    extra = () if d.energy else ("--no-energy",)
    over = {k: v for k, v in (("python", d.python), ("workdir", d.workdir)) if v}
    cfg = _path(p, d.ssh_config)
    if d.inventory:
        if d.hosts:
            raise BadInput("[devices] names devices by hosts or from an inventory, not both")
        inv = load_inventory(_path(p, d.inventory))
        chosen = select(inv, hosts=d.names, labels=d.labels)
        return [replace(t, extra_args=t.extra_args + extra, **over, **({"ssh_config": cfg} if cfg else {}))
                for t in chosen], inv
    if d.labels or d.names:
        raise BadInput("[devices].labels and [devices].names pick devices from [devices].inventory")
    return [target_of(h, ssh_config=cfg, extra_args=extra, **over) for h in d.hosts], None


def precheck(p: Pipeline) -> None:
    """Before any stage runs: the devices can be named (an inventory that reads, hosts that parse)."""
    with reworded("devices", prefix="devices: "):
        targets(p)


def check_devices(p: Pipeline, out_dir: Path, say: Say) -> dict[str, Any]:
    """Bundle the run's output with a device check, check it on every device, write the cross-device report."""
    from edgelstm.bundle import BundleOptions, CheckOptions, make_bundle
    from edgelstm.fleet.compare import merge_results
    from edgelstm.fleet.fleet import FleetOptions, run_fleet
    from edgelstm.fleet.report import headline, write_reports

    d = p.devices
    where = out_dir / d.dir
    with reworded("devices", prefix="devices: "):
        chosen, inv = targets(p)
        say(f"devices: bundling {out_dir.name} for {len(chosen)} device(s)")
        bundle = make_bundle(out_dir, where / "bundle" / f"{out_dir.name}.check.tar.gz",
                             BundleOptions(check=CheckOptions(samples=d.samples))).path
        options = FleetOptions(concurrency=d.concurrency, timeout_s=float(d.timeout), retries=d.retries,
                               progress=lambda dev, line: say(f"{dev}: {line}"),
                               on_step=lambda dev, step: say(f"{dev}: {step}"))
        done = run_fleet(bundle, chosen, where / "results", options)
    report = merge_results([r for _, r in done], [str(path) for path, _ in done])
    paths = write_reports(report, markdown=where / "fleet.md", html_path=where / "fleet.html",
                          json_path=where / "fleet.json")
    return {"passed": report["passed"], "exit_code": report["exit_code"], "headline": headline(report),
            "devices": [dev["name"] for dev in report["devices"]], "reports": paths,
            "results": [str(path) for path, _ in done], "inventory": str(inv.path) if inv else None}
