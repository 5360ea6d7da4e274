#!/usr/bin/env bash
# A GPU check anyone can run in five minutes: the `gpu`-marked tests (the torch CUDA runner; bench rows eager /
# autocast / CUDA graphs, the graph proven to replay; the cuda-python, torch and pycuda buffer backends with real
# round trips, events and a cuda-python graph proven to replay; cupy reading what they wrote; the TensorRT runner
# over the TensorRT stand-in with real device memory), then one summary line.
#
# Needs only PyTorch with CUDA (cuda-python, pycuda and cupy are used where installed) and no network:
#
#   bash scripts/gpu-check.sh                  # from the repository root, in the environment edgelstm runs in
#   PYTHON=.venv/bin/python bash scripts/gpu-check.sh -k backend   # another interpreter; extra pytest arguments
#
# Exit status: 0 all passed, or no CUDA GPU here ("gpu-check: no CUDA GPU: skipped ..."); 1 a test failed;
# 2 a GPU is visible but this Python's torch cannot use it (install a CUDA build of PyTorch).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="${PWD}${PYTHONPATH:+:${PYTHONPATH}}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        torch_says="$("$PY" -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda)' 2>&1 | tail -1)"
        echo "gpu-check: a GPU is visible (nvidia-smi) but this Python's torch cannot use it (${torch_says}): install a CUDA build of PyTorch"
        exit 2
    fi
    echo "gpu-check: no CUDA GPU: skipped (torch sees no CUDA device here; nothing was run)"
    exit 0
fi

started=$(date +%s)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$PY" -m pytest tests -m gpu -q -rs -p no:cacheprovider "$@" >"$log" 2>&1
rc=$?
tail -n 40 "$log" | sed 's/^/  /'
counts="$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$log" | tail -1 | sed -E 's/^=+ //; s/ =+$//')"
facts="$("$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as md, torch
p = torch.cuda.get_device_properties(0)
def v(pkg):
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "-"
print(f"{p.name} (compute {p.major}.{p.minor}), torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"cuda-python {v('cuda-python')}, pycuda {v('pycuda')}, cupy {v('cupy-cuda12x') if v('cupy-cuda12x') != '-' else v('cupy')}")
EOF
)"
verdict=$([ "$rc" -eq 0 ] && echo PASS || echo FAIL)
[ "$rc" -eq 5 ] && verdict="FAIL (no gpu test collected)"
echo "gpu-check: ${verdict}: ${counts:-no summary} in $(( $(date +%s) - started ))s on ${facts:-an unknown GPU}"
[ "$rc" -eq 0 ] && exit 0 || exit 1
