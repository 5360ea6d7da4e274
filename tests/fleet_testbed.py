"""The fleet tests' testbed: a tiny pipeline, and real OpenSSH servers on 127.0.0.1 for the remote tests: `sshd -D` with its own config, a throwaway host key and
user key in a temp dir, on a free port, stopped after. Two servers are two "devices". No traffic leaves loopback.

The client side is an ssh config file (`-F`) naming each server as a Host alias with its port, the user key,
IdentitiesOnly and a known_hosts file holding exactly the servers' host keys (StrictHostKeyChecking yes).
`SSHD_MISSING` says why the tests skip when sshd cannot be found (.ci/run installs Debian's openssh-server).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSHD_MISSING = None if SSHD and shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("scp") else (
    "needs OpenSSH's sshd, ssh, scp and ssh-keygen (apt-get install openssh-server openssh-client; .ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgelstm-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return Path(str(path) + ".pub").read_text().strip()


@dataclass
class Server:
    alias: str
    port: int
    dir: Path
    proc: subprocess.Popen

    def session_pids(self) -> list[int]:
        """The sshd session processes serving connections now (children of the listener)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Loopback:
    """n sshd servers and one client config; `config` is the file to pass as `ssh -F`."""

    def __init__(self, root: Path, n: int = 2):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.key = root / "id_ed25519"
        user_pub = keygen(self.key)
        (root / "authorized_keys").write_text(user_pub + "\n")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory (as root)
        self.servers = [self._start(f"dev{i + 1}", user_pub) for i in range(n)]
        self.config = root / "ssh_config"
        self.config.write_text("".join(self._host_block(s) for s in self.servers))

    def _start(self, alias: str, user_pub: str) -> Server:
        d = self.root / alias
        d.mkdir()
        host_key = d / "host_ed25519"
        host_pub = keygen(host_key)
        port = free_port()
        (d / "sshd_config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "StrictModes no", "UsePAM no", "Subsystem sftp internal-sftp", f"AllowUsers {self.user}",
            "LogLevel ERROR", "MaxStartups 30", ""]))
        (self.root / "known_hosts").open("a").write(f"[127.0.0.1]:{port} {host_pub}\n")
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        return Server(alias, port, d, proc)

    def _host_block(self, s: Server) -> str:
        return (f"Host {s.alias}\n  HostName 127.0.0.1\n  Port {s.port}\n  User {self.user}\n"
                f"  IdentityFile {self.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.root / 'known_hosts'}\n"
                f"  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n\n")

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def tiny_pipeline(*, gate: str = "rel_l2<=0.05", samples: int = 32, stateful: bool = True, out: str = "out",
                  extra: str = "") -> str:
    """A pipeline file for a tiny LSTM that runs in seconds: FP32 (+ streaming), INT8 dynamic, no bench stage
    (the devices bench: 2-3 iterations at seq 12)."""
    return f"""
[model]
zoo = "lstm_regressor"
train_steps = 5
config = {{ hidden_size = 8 }}

[export]
seq = 12
batch = 2
stateful = {str(stateful).lower()}

[quantize]
precisions = ["int8-dynamic"]

[data]
synthetic = {samples}
seq = 12

[validate]
gates = ["{gate}"]

[bench]
enabled = false
iters = 3
seq = [12]

[output]
dir = "{out}"
{extra}"""
