#!/usr/bin/env bash
# Create ./.venv with edgelstm and its CPU dependencies (called by scripts/demo.sh, scripts/test.sh and CI).
#
# torch goes in first, from PyTorch's CPU index (https://download.pytorch.org/whl/cpu) when that index answers
# within 3 seconds, so that pip never pulls the multi-GB CUDA build (and its nvidia-* packages) from PyPI.
# When the index does not answer (offline mirror, a proxy that only lets PyPI through), plain
# `pip install torch==2.13.0` runs at once with your pip configuration (find-links, mirrors); a CUDA build that
# gets in that way is named in a one-line warning.
#
# Idempotent and quick to re-run: a stamp in .venv holds a hash of pyproject.toml, this script and the settings
# below; when it matches and every requirement is installed, a re-run only checks (about a second).
#
# Settings (environment variables):
#   PYTHON=python3.12                  the interpreter that creates .venv (default: python3)
#   EDGELSTM_TORCH_SPEC="torch==2.13.0"  the torch requirement to install (e.g. "torch>=2.4")
#   EDGELSTM_TORCH_INDEX=URL           the index torch comes from (default: https://download.pytorch.org/whl/cpu);
#                                      "none" skips it and installs torch with your pip configuration as is
#   EDGELSTM_SKIP_TORCH=1              leave torch alone (you installed the CUDA or Jetson torch you want yourself)
#   EDGELSTM_SETUP_FORCE=1             reinstall even when the stamp says nothing changed
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${EDGELSTM_TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${EDGELSTM_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
SKIP_TORCH=${EDGELSTM_SKIP_TORCH:-0}
STAMP=.venv/.edgelstm-setup-stamp
start=$(date +%s)

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "" >/dev/null 2>&1; then
  echo "setup: creating .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv --clear .venv
fi
VPY=.venv/bin/python
export EDGELSTM_TORCH_SPEC="$TORCH_SPEC" EDGELSTM_SKIP_TORCH="$SKIP_TORCH"

# The stamp: what this setup was made from.
want=$("$VPY" - <<'EOF'
import hashlib, os, sys
h = hashlib.sha256()
for name in ("pyproject.toml", "scripts/setup.sh"):
    with open(name, "rb") as f:
        h.update(f.read())
h.update(repr((os.environ["EDGELSTM_TORCH_SPEC"], os.environ["EDGELSTM_SKIP_TORCH"], sys.version)).encode())
print(h.hexdigest())
EOF
)

# check torch|project: exit 0 when that part is already installed as asked (cheap: metadata only, no imports).
check() {
  "$VPY" - "$1" "$PWD" <<'EOF'
import importlib.metadata as md, json, os, sys
from pathlib import Path
from urllib.parse import unquote
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]  # not ./edgelstm.egg-info: the installed one
try:
    from pip._vendor.packaging.requirements import Requirement
except ImportError:  # no way to check: install
    sys.exit(1)

def have(text, extras=("",)):
    req = Requirement(text)
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
        return True
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)

what, root = sys.argv[1], Path(sys.argv[2]).resolve()
if what == "torch":
    sys.exit(0 if os.environ["EDGELSTM_SKIP_TORCH"] == "1" or have(os.environ["EDGELSTM_TORCH_SPEC"]) else 1)
try:  # edgelstm itself, installed editable from this checkout
    dist = md.distribution("edgelstm")
    url = json.loads(dist.read_text("direct_url.json") or "{}")
except (md.PackageNotFoundError, ValueError):
    sys.exit(1)
if not url.get("dir_info", {}).get("editable") or Path(unquote(url.get("url", "").removeprefix("file://"))).resolve() != root:
    sys.exit(1)
sys.exit(0 if all(have(r, ("", "dev")) for r in dist.requires or []) else 1)
EOF
}

if [ "${EDGELSTM_SETUP_FORCE:-0}" = 1 ]; then
  why="EDGELSTM_SETUP_FORCE=1"
elif [ ! -f "$STAMP" ]; then
  why="first run"
elif [ "$(cat "$STAMP")" != "$want" ]; then
  why="pyproject.toml, scripts/setup.sh or the settings changed"
elif ! check torch || ! check project; then
  why="a requirement is missing or edgelstm is not installed from this checkout"
else
  echo "setup: .venv is up to date (only checked, nothing installed; $(($(date +%s) - start))s)"
  exit 0
fi

rm -f "$STAMP"
echo "setup: installing into .venv ($why)"
"$VPY" -m pip install -q --upgrade pip >/dev/null

# torch first, so that nothing later pulls a CUDA build of it
if [ "$SKIP_TORCH" = 1 ]; then
  echo "setup: EDGELSTM_SKIP_TORCH=1: leaving torch as it is"
elif check torch; then
  echo "setup: $TORCH_SPEC already installed"
else
  reachable=1
  if [ "$TORCH_INDEX" != none ]; then
    # A short probe in a thread (covers slow DNS too): never let an unreachable index stall pip for minutes.
    "$VPY" - "$TORCH_INDEX" <<'EOF' && reachable=0 || true
import os, sys, threading, urllib.request
ok = []
def probe():
    try:
        with urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=3) as r:
            ok.append(r.status == 200)
    except Exception:
        pass
t = threading.Thread(target=probe, daemon=True)
t.start()
t.join(3.5)
os._exit(0 if ok and ok[0] else 1)
EOF
  fi
  if [ "$reachable" = 0 ]; then
    echo "setup: installing $TORCH_SPEC from $TORCH_INDEX (CPU build)"
    "$VPY" -m pip install -q "$TORCH_SPEC" --index-url "$TORCH_INDEX" \
      || { echo "setup: that failed; installing $TORCH_SPEC with your pip configuration"; "$VPY" -m pip install -q "$TORCH_SPEC"; }
  else
    [ "$TORCH_INDEX" = none ] || echo "setup: $TORCH_INDEX not reachable; installing $TORCH_SPEC with your pip configuration"
    "$VPY" -m pip install -q "$TORCH_SPEC"
  fi
fi

# (setuptools' advice about folders named like the package is the point of an editable install: not shown)
PYTHONWARNINGS="ignore:Editable installation" "$VPY" -m pip install -q -e ".[dev]"

if [ "$SKIP_TORCH" != 1 ]; then
  "$VPY" - <<'EOF' || true
import importlib.metadata as md, os
try:
    import torch
except Exception as exc:  # noqa: BLE001
    print(f"setup: warning: torch does not import: {exc}")
else:
    nvidia = sorted(d.metadata["Name"] for d in md.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-"))
    if torch.version.cuda:
        print(f"setup: warning: torch {torch.__version__} is a CUDA {torch.version.cuda} build ({len(nvidia)} nvidia-* "
              f"packages); for the CPU wheel: .venv/bin/pip install --force-reinstall '{os.environ['EDGELSTM_TORCH_SPEC']}' "
              "--index-url https://download.pytorch.org/whl/cpu")
    else:
        print(f"setup: torch {torch.__version__} (CPU build)")
EOF
fi

echo "$want" > "$STAMP"
echo "setup: done in $(($(date +%s) - start))s"
