"""A fleet's inventory (TOML): the devices, their labels, how to reach them; and which ones a run picks.

    [defaults]                      # every device's, unless it says otherwise
    python = "python3"              # on Jetson: the Python whose site-packages hold TensorRT's bindings
    workdir = "~/.cache/edgelstm-remote"
    timeout = 1800                  # seconds per device, all attempts together
    retries = 1                     # more attempts after a lost connection or an unreachable device
    concurrency = 4                 # devices checked at once
    ssh_config = "fleet_ssh_config" # ssh -F FILE (relative to this file); default: ~/.ssh/config
    args = ["--no-energy"]          # more `edgelstm device-check` options

    [[device]]
    name = "orin-nano-1"            # its name in reports (default: host)
    host = "orin-nano-1"            # a Host alias from the ssh config, or a host name
    user = "nvidia"                 # optional, as `port`
    labels = ["orin-nano", "jetson"]

Secrets never go here: keys and passwords stay with ssh (its config, an agent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput, opt
from edgelstm.fileio import parse_toml, read_text_file
from edgelstm.fleet.ssh import SshTarget

DEVICE_KEYS = {"name", "host", "user", "port", "labels", "python", "workdir", "ssh_config", "args"}
DEFAULT_KEYS = {"python", "workdir", "timeout", "retries", "concurrency", "ssh_config", "args", "user", "port"}
_DEST = re.compile(r"^(?:([^@\s]+)@)?([^@:\s]+|\[[0-9a-fA-F:]+\])(?::(\d+))?$")


@dataclass(frozen=True)
class Inventory:
    devices: tuple[SshTarget, ...]
    timeout: float = 1800.0
    retries: int = 1
    concurrency: int = 4
    path: Path | None = None

    def labels(self) -> list[str]:
        return sorted({lab for d in self.devices for lab in d.labels})


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadInput(f"{where}: {key} must be a {names}, got {value!r}")
    return value


def _target(d: dict[str, Any], defaults: dict[str, Any], where: str, base: Path) -> SshTarget:
    unknown = sorted(set(d) - DEVICE_KEYS)
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {unknown}; a device has {sorted(DEVICE_KEYS)}")
    merged = {**{k: v for k, v in defaults.items() if k in DEVICE_KEYS}, **d}
    host = _typed(where, "host", merged.get("host"), str)
    labels = _typed(where, "labels", merged.get("labels", []), list)
    args = _typed(where, "args", merged.get("args", []), list)
    cfg = merged.get("ssh_config")
    cfg_path = (base / Path(_typed(where, "ssh_config", cfg, str)).expanduser()) if cfg else None
    return SshTarget(name=str(_typed(where, "name", merged.get("name", host), str)), host=host,
                     user=_typed(where, "user", merged["user"], str) if merged.get("user") else None,
                     port=_typed(where, "port", merged["port"], int) if merged.get("port") else None,
                     python=str(_typed(where, "python", merged.get("python", "python3"), str)),
                     workdir=str(_typed(where, "workdir", merged.get("workdir", "~/.cache/edgelstm-remote"), str)),
                     labels=tuple(str(x) for x in labels), ssh_config=cfg_path,
                     extra_args=tuple(str(x) for x in args))


def load_inventory(path: str | Path) -> Inventory:
    """Read and check an inventory file: BadInput naming the device and key for anything wrong."""
    path = Path(path)
    data = parse_toml(read_text_file(path, what=f"{opt('inventory')} file"), name=path.name)
    unknown = sorted(set(data) - {"defaults", "device"})
    if unknown:
        raise BadInput(f"{path.name}: unknown section(s) {unknown}; an inventory has [defaults] and [[device]]")
    defaults = data.get("defaults") or {}
    bad = sorted(set(defaults) - DEFAULT_KEYS)
    if bad:
        raise BadInput(f"{path.name} [defaults]: unknown key(s) {bad}; known: {sorted(DEFAULT_KEYS)}")
    devices = data.get("device") or []
    if not isinstance(devices, list) or not devices:
        raise BadInput(f"{path.name}: no [[device]] entries")
    targets = tuple(_target(d, defaults, f"{path.name} device {i + 1}", path.parent) for i, d in enumerate(devices))
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"{path.name}: device name(s) {dupes} appear twice (reports and result files use them)")
    return Inventory(targets, timeout=float(_typed(path.name, "timeout", defaults.get("timeout", 1800), (int, float))),
                     retries=int(_typed(path.name, "retries", defaults.get("retries", 1), int)),
                     concurrency=int(_typed(path.name, "concurrency", defaults.get("concurrency", 4), int)),
                     path=path)


def select(inventory: Inventory, *, hosts: tuple[str, ...] = (), labels: tuple[str, ...] = ()) -> list[SshTarget]:
    """The devices named in `hosts` (by name or host) and/or carrying any of `labels`; all when neither is given."""
    chosen = list(inventory.devices)
    if hosts:
        known = {t.name: t for t in chosen} | {t.host: t for t in chosen}
        missing = [h for h in hosts if h not in known]
        if missing:
            raise BadInput(f"{opt('hosts')} {', '.join(missing)}: not in the inventory (devices: "
                           f"{', '.join(t.name for t in inventory.devices)})")
        chosen = [t for t in chosen if t.name in hosts or t.host in hosts]
    if labels:
        chosen = [t for t in chosen if set(t.labels) & set(labels)]
        if not chosen:
            raise BadInput(f"no device carries the label(s) {', '.join(labels)} (labels in the inventory: "
                           f"{', '.join(inventory.labels()) or 'none'})")
    return chosen


def target_of(destination: str, **defaults: Any) -> SshTarget:
    """`[user@]host[:port]` given on the command line (host may be an alias from the ssh config)."""
    m = _DEST.match(destination)
    if not m:
        raise BadInput(f"{destination!r} is not [user@]host[:port]")
    user, host, port = m.group(1), m.group(2), m.group(3)
    return SshTarget(name=f"{user}@{host}" if user else host, host=host, user=user, port=int(port) if port else None,
                     **defaults)
