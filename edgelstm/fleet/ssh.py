"""One device's connection, through the system's OpenSSH client (`ssh`, `scp`).

OpenSSH does what a device fleet needs already: ~/.ssh/config (Host aliases, users, ports, keys, jump hosts),
agents and known_hosts. edgelstm adds only non-secret options on the command line: `BatchMode=yes` (never a
password prompt: a key or an agent, or the step fails), a connect timeout and keep-alives (a dead link is noticed
in ~15 s), and `-F FILE` when an inventory names another config. No secret ever goes on a command line.
"""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgelstm.errors import BackendMissing, BadInput

Line = Callable[[str], None]
#: ssh's own exit status for a connection error (the remote command's status otherwise)
SSH_FAILED = 255
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/~+-]+$")


@dataclass(frozen=True)
class SshTarget:
    """A device as ssh sees it: `host` is a Host alias from the ssh config or a host name."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"                     # the device's Python (on Jetson: the one with TensorRT's bindings)
    workdir: str = "~/.cache/edgelstm-remote"   # where runs live on the device (one temp dir per run)
    labels: tuple[str, ...] = ()
    ssh_config: Path | None = None              # -F FILE (default: ssh's own, ~/.ssh/config)
    connect_timeout: int = 15
    extra_args: tuple[str, ...] = field(default=())   # more device-check options, e.g. ("--no-energy",)

    def __post_init__(self) -> None:
        for what, value in (("host", self.host), ("user", self.user or "x")):
            if not value or value.startswith("-") or not re.fullmatch(r"[A-Za-z0-9._@:%\[\]-]+", value):
                raise BadInput(f"device {self.name!r}: {what} {value!r} is not a host name or ssh alias")
        if not _SAFE_PATH.fullmatch(self.workdir) or ".." in self.workdir.split("/"):
            raise BadInput(f"device {self.name!r}: workdir {self.workdir!r} may only use letters, digits, . _ / ~ + -")
        if not _SAFE_PATH.fullmatch(self.python):
            raise BadInput(f"device {self.name!r}: python {self.python!r} must be a plain path or command name")

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


class SshFailed(BackendMissing):
    """ssh or scp could not do a step (exit 3: the device is unreachable or unusable)."""


class SshClient:
    """ssh/scp for one target; `cancel()` kills the command in flight (a timeout, a test cutting the link)."""

    def __init__(self, target: SshTarget, *, ssh: str = "ssh", scp: str = "scp"):
        self.target = target
        self.ssh, self.scp = ssh, scp
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.cancelled = False

    def _options(self) -> list[str]:
        t = self.target
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(t.connect_timeout)}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if t.ssh_config is not None:
            opts = ["-F", str(t.ssh_config)] + opts
        return opts

    def ssh_argv(self, remote_command: str) -> list[str]:
        t = self.target
        return [self.ssh, *self._options(), *(["-p", str(t.port)] if t.port else []), "-T", t.destination, "--",
                remote_command]

    def scp_argv(self, sources: list[str], dest: str) -> list[str]:
        t = self.target
        return [self.scp, "-q", *self._options(), *(["-P", str(t.port)] if t.port else []), "--", *sources, dest]

    def remote(self, path: str) -> str:
        return f"{self.target.destination}:{path}"

    def _start(self, argv: list[str], *, keep_stdin: bool) -> subprocess.Popen:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                    stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
                                    errors="replace")
        except FileNotFoundError:
            raise SshFailed(f"{argv[0]} is not installed here: install the OpenSSH client "
                            "(apt-get install openssh-client)") from None
        with self._lock:
            self._proc = proc
            if self.cancelled:
                proc.kill()
        return proc

    def call(self, argv: list[str], *, on_stdout: Line | None = None, on_stderr: Line | None = None,
             keep_stdin: bool = False) -> tuple[int, list[str], list[str]]:
        """Run ssh/scp to the end; each output line goes to its callback as it arrives. keep_stdin: the remote
        side's stdin stays open until the command ends (the device notices a lost connection as its EOF)."""
        proc = self._start(argv, keep_stdin=keep_stdin)
        out: list[str] = []
        err: list[str] = []

        def pump(stream, sink: list[str], cb: Line | None) -> None:
            for line in stream:
                line = line.rstrip("\n")
                sink.append(line)
                if cb is not None:
                    cb(line)

        threads = [threading.Thread(target=pump, args=(proc.stdout, out, on_stdout), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, err, on_stderr), daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        rc = proc.wait()
        with self._lock:
            self._proc = None
        return rc, out, err

    def cancel(self) -> None:
        """Kill the ssh/scp in flight (and any later one): the device side sees its connection drop."""
        with self._lock:
            self.cancelled = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None
