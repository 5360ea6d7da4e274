"""`run_remote(bundle, target, options) -> results`: one device over SSH, in five steps, each named in the report.

    connect   ssh: sweep run directories a lost connection left behind, make this run's temp dir, find Python
    push      scp: the bundle and its starter script (device_check.py) into the run dir
    run       ssh: the starter runs `edgelstm device-check` from the bundle's own wheels; its progress streams back
    pull      scp: results.json comes home; the transport block (host, steps, timings) is added to it
    cleanup   ssh: the run dir is removed

The device is left clean whatever happens. During `run` the device-side wrapper watches the connection twice:
its stdin (which this side holds open until the end) reaching EOF, and its parent (sshd's session) going away;
either one stops the check and removes the run dir. A run dir that still survives (a lost push, a device that
rebooted) is removed by the next connection's sweep: a dead owner, or never started and over an hour old.
A failed step ends the attempt; the results then say which step failed, the last progress line and the error.
"""

from __future__ import annotations

import json
import re
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import BadInput
from edgelstm.safe_files import private_tempdir
from edgelstm.fleet.results import incomplete
from edgelstm.fleet.ssh import SSH_FAILED, SshClient, SshTarget

STEPS = ("connect", "push", "run", "pull", "cleanup")
#: what the ssh client itself says about its connection (kept apart from the device's progress)
SSH_MESSAGE = re.compile(r"^(Connection to \S+ closed|Connection closed by|ssh: |client_loop: |Read from remote host|"
                         r"Timeout, server |kex_exchange_identification|Broken pipe|Warning: Permanently added)")

PREPARE = r'''set -eu
base="$1"; py="$2"
case "$base" in "~/"*) base="$HOME/${base#"~/"}";; esac
mkdir -p "$base"
for d in "$base"/run.*; do
  [ -d "$d" ] || continue
  if [ -f "$d/done" ]; then
    [ -n "$(find "$d/done" -mmin +60 2>/dev/null)" ] && rm -rf "$d" && echo "@@swept $d"
  elif [ -f "$d/owner" ]; then
    pid=$(cat "$d/owner" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then rm -rf "$d"; echo "@@swept $d"; fi
  elif [ -n "$(find "$d" -maxdepth 0 -mmin +60 2>/dev/null)" ]; then
    rm -rf "$d"; echo "@@swept $d"
  fi
done
run=$(mktemp -d "$base/run.XXXXXXXX")
echo "@@run $run"
if command -v "$py" >/dev/null 2>&1; then
  "$py" -c 'import sys; print("@@python %d.%d.%d" % sys.version_info[:3])' || true
else
  echo "@@nopython"
fi
echo "@@arch $(uname -m)"
'''

RUN = r'''run="$1"; py="$2"; shift 2
echo $$ > "$run/owner"
parent=$PPID
exec 3<&0 </dev/null
"$py" "$run/device_check.py" "$run/bundle.tar.gz" -o "$run/results.json" --work "$run/work" "$@" &
worker=$!
echo "@@worker $worker"
( cat <&3 >/dev/null 2>&1; touch "$run/.lost"; kill -TERM "$worker" 2>/dev/null ) >/dev/null 2>&1 &
eof_watch=$!
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; touch "$run/.lost"; kill -TERM "$worker" 2>/dev/null
) >/dev/null 2>&1 &
parent_watch=$!
trap 'touch "$run/.lost"; kill -TERM "$worker" 2>/dev/null' HUP INT TERM PIPE
rc=0
wait "$worker" || rc=$?
while kill -0 "$worker" 2>/dev/null; do sleep 1; done
kill "$eof_watch" "$parent_watch" 2>/dev/null
exec 3<&-
[ "$rc" -le 4 ] || sleep 1
if [ -e "$run/.lost" ] || ! kill -0 "$parent" 2>/dev/null; then rm -rf "$run"; exit 129; fi
rm -rf "$run/work" "$run/bundle.tar.gz" "$run/device_check.py"
touch "$run/done"
exit "$rc"
'''


@dataclass
class RemoteOptions:
    progress: Callable[[str, str], None] | None = None      # (device name, line): the device's progress
    on_step: Callable[[str, str], None] | None = None       # (device name, step) as each starts
    client_factory: Callable[[SshTarget], SshClient] = SshClient
    clock: Callable[[], float] = time.monotonic
    keep: dict[str, Any] = field(default_factory=dict)       # the client in flight, for cancel()


class StepFailed(Exception):
    def __init__(self, step: str, message: str, rc: int | None = None):
        super().__init__(message)
        self.step, self.message, self.rc = step, message, rc


def sh(script: str, *args: str) -> str:
    """A remote command line: `sh -c SCRIPT sh ARGS...`, every piece quoted for the device's login shell."""
    return " ".join(["sh", "-c", shlex.quote(script), "sh", *(shlex.quote(a) for a in args)])


def _why(err: list[str], rc: int) -> str:
    lines = [line for line in err if line.strip() and not line.startswith("@@")]
    return lines[-1].strip() if lines else f"exit status {rc}"


def starter_bytes(bundle: Path) -> bytes:
    """The bundle's device_check.py (what runs first on the device), read from the tarball."""
    from edgelstm.bundle import BOOTSTRAP

    try:
        with tarfile.open(bundle, "r:*") as tar:
            f = tar.extractfile(BOOTSTRAP)
            data = f.read() if f is not None else None
    except (KeyError, tarfile.TarError, OSError):
        data = None
    if not data:
        raise BadInput(f"{bundle.name} carries no {BOOTSTRAP}: make it with `edgelstm bundle DIR -o B --check`")
    return data


class RemoteRun:
    """One attempt on one device; `steps` records each step's status and time."""

    def __init__(self, bundle: Path, target: SshTarget, options: RemoteOptions):
        self.bundle, self.target, self.options = bundle, target, options
        self.client = options.client_factory(target)
        options.keep["client"] = self.client
        options.keep["run"] = self
        self.steps: list[dict[str, Any]] = []
        self.run_dir: str | None = None
        self.facts: dict[str, Any] = {}
        self.last_progress: str | None = None
        self.worker_pid: int | None = None

    def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.options.on_step:
            self.options.on_step(self.target.name, name)
        t0 = self.options.clock()
        try:
            value = fn()
        except StepFailed as exc:
            self.steps.append({"step": name, "status": "failed", "error": exc.message, "rc": exc.rc,
                               "seconds": round(self.options.clock() - t0, 3)})
            raise
        self.steps.append({"step": name, "status": "ok", "seconds": round(self.options.clock() - t0, 3)})
        return value

    def connect(self) -> None:
        rc, out, err = self.client.call(self.client.ssh_argv(sh(PREPARE, self.target.workdir, self.target.python)))
        if rc != 0:
            raise StepFailed("connect", _why(err, rc), rc)
        for line in out:
            key, _, value = line.partition(" ")
            if key == "@@run":
                self.run_dir = value.strip()
            elif key in ("@@python", "@@arch"):
                self.facts[f"device_{key[2:]}"] = value.strip()
            elif key == "@@swept":
                self.facts.setdefault("swept", []).append(value.strip())
            elif key == "@@nopython":
                raise StepFailed("connect", f"{self.target.python} is not on the device's PATH (set python= for "
                                            f"{self.target.name} in the inventory)")
        if not self.run_dir or not re.fullmatch(r"/[\w./+-]*/run\.[A-Za-z0-9]+", self.run_dir):
            raise StepFailed("connect", f"the device did not make a run directory (got {self.run_dir!r})")

    def push(self) -> None:
        with private_tempdir("push") as tmp:
            starter = Path(tmp) / "device_check.py"
            starter.write_bytes(starter_bytes(self.bundle))
            staged = Path(tmp) / "bundle.tar.gz"
            staged.symlink_to(self.bundle.resolve())
            rc, _, err = self.client.call(self.client.scp_argv([str(staged), str(starter)],
                                                               self.client.remote(self.run_dir + "/")))
        if rc != 0:
            raise StepFailed("push", _why(err, rc), rc)

    def run(self) -> int:
        ssh_said: list[str] = []

        def progress(line: str) -> None:
            if SSH_MESSAGE.match(line):
                ssh_said.append(line.strip())
                return
            self.last_progress = line
            if self.options.progress:
                self.options.progress(self.target.name, line)

        def marker(line: str) -> None:
            if line.startswith("@@worker "):
                self.worker_pid = int(line.split()[1])

        argv = self.client.ssh_argv(sh(RUN, self.run_dir, self.target.python, "--name", self.target.name,
                                       *[a for lab in self.target.labels for a in ("--label", lab)],
                                       *self.target.extra_args))
        rc, _, err = self.client.call(argv, on_stdout=marker, on_stderr=progress, keep_stdin=True)
        if rc == SSH_FAILED or rc < 0 or rc > 128:  # ssh's own failure, ssh killed here, or the device saw EOF
            where = f" during: {self.last_progress}" if self.last_progress else ""
            said = f": {ssh_said[-1]}" if ssh_said else ""
            raise StepFailed("run", f"the connection was lost (ssh exit {rc}{said}){where}", rc)
        if rc != 0 and not self._has_results():  # 1 is a failed gate only when results were written
            raise StepFailed("run", f"device-check exited {rc}: {_why(err, rc)}", rc)
        return rc

    def _has_results(self) -> bool:
        rc, _, _ = self.client.call(self.client.ssh_argv(sh('[ -f "$1/results.json" ]', self.run_dir)))
        return rc == 0

    def pull_json(self) -> dict[str, Any]:
        """results.json from the device, through a local temp dir that is always removed."""
        with private_tempdir("pull") as tmp:
            dest = Path(tmp) / "results.json"
            rc, _, err = self.client.call(self.client.scp_argv([self.client.remote(self.run_dir + "/results.json")],
                                                               str(dest)))
            if rc != 0:
                raise StepFailed("pull", _why(err, rc), rc)
            try:
                data = json.loads(dest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StepFailed("pull", f"results.json from the device is not JSON: {exc}") from None
        if not isinstance(data, dict) or "artifacts" not in data:
            raise StepFailed("pull", "results.json from the device is not a device-check results file")
        return data

    def cleanup(self, client: SshClient | None = None) -> None:
        client = client or self.client
        rc, _, err = client.call(client.ssh_argv(sh('case "$1" in */run.*) rm -rf "$1";; esac', self.run_dir)))
        if rc != 0:
            raise StepFailed("cleanup", _why(err, rc), rc)


def _transport(r: RemoteRun, *, failed: StepFailed | None, attempt: int, cleanup_note: str | None) -> dict[str, Any]:
    t = r.target
    block: dict[str, Any] = {"host": t.destination, "port": t.port, "python": t.python, "attempt": attempt,
                             "run_dir": r.run_dir, "steps": r.steps, **{k: v for k, v in r.facts.items()}}
    if failed is not None:
        block.update(failed_step=failed.step, error=failed.message, last_progress=r.last_progress)
    if cleanup_note:
        block["cleanup"] = cleanup_note
    return block


def run_remote(bundle: str | Path, target: SshTarget, results: str | Path,
               options: RemoteOptions | None = None, *, attempt: int = 1) -> dict[str, Any]:
    """Check `bundle` on `target` over SSH; write its results to `results` (a .json file) and return them.

    Never raises for a device problem: a failed step gives results with exit code 3 and a transport block naming
    the step (`failed_step`), its error and the last progress line. BadInput for a bundle without a device check."""
    from edgelstm.fileio import write_text_atomic

    bundle, results = Path(bundle), Path(results)
    options = options or RemoteOptions()
    starter_bytes(bundle)  # a bundle without a device check is the caller's mistake, before any connection
    r = RemoteRun(bundle, target, options)
    failed: StepFailed | None = None
    data: dict[str, Any] = {}
    try:
        r._step("connect", r.connect)
        r._step("push", r.push)
        r._step("run", r.run)
        data = r._step("pull", r.pull_json)
    except StepFailed as exc:
        failed = exc
    if failed is None:
        try:
            r._step("cleanup", r.cleanup)
            note = None
        except StepFailed as exc:
            note = f"could not remove the run directory ({exc.message}); the next connection's sweep removes it"
        data["transport"] = _transport(r, failed=None, attempt=attempt, cleanup_note=note)
        data.setdefault("bundle", {})["name"] = bundle.name  # the device saw it as bundle.tar.gz
    else:
        note = None
        if r.run_dir:
            try:  # a fresh connection: the one in flight may be the one that broke
                r.cleanup(options.client_factory(target))
                note = "the run directory was removed by a new connection"
            except StepFailed as exc:
                note = f"could not remove the run directory ({exc.message}); the next connection's sweep removes it"
        from edgelstm.fileio import sha256_file

        data = incomplete(target.name, host=target.destination,
                          transport=_transport(r, failed=failed, attempt=attempt, cleanup_note=note),
                          bundle={"name": bundle.name, "sha256": sha256_file(bundle)})
        data["device"]["labels"] = list(target.labels)
    write_text_atomic(results, json.dumps(data, indent=2, default=str) + "\n")
    return data
