#!/usr/bin/env bash
# A GPU check anyone can run in five minutes, one line per backend:
#   torch CUDA        the `gpu`-marked tests (the torch CUDA runner; bench rows eager / autocast / CUDA graphs; the
#                     cuda-python, torch and pycuda buffer backends with real round trips and events; the TensorRT
#                     runner over the TensorRT stand-in with real device memory)
#   onnxruntime CUDA  a MatMul on the CUDA execution provider against numpy (when onnxruntime-gpu is installed)
#   TensorRT          the `trt`-marked tests (real engines: fp32/fp16/int8 LSTM/GRU/BiLSTM, streaming, CUDA graphs),
#                     wherever `import tensorrt` works (the TensorRT and Jetson images: no torch needed)
# A backend that is not there says why (no torch / no GPU / not installed) and is not a failure.
#
#   bash scripts/gpu-check.sh                  # from the repository root, in the environment edgelstm runs in
#   PYTHON=.venv/bin/python bash scripts/gpu-check.sh -k backend   # another interpreter; extra pytest arguments
#
# Exit status: 0 every backend that is present passed (or none is present: "nothing to check here"); 1 a present
# backend failed (its tests, or the onnxruntime CUDA check). No network needed.
# GPU_CHECK_PYTEST overrides the pytest command (default: "$PYTHON -m pytest"), for testing this script.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="${PWD}${PYTHONPATH:+:${PYTHONPATH}}"
PYTEST="${GPU_CHECK_PYTEST:-$PY -m pytest}"
started=$(date +%s)
failed=0
ran=0
lines=()

probe() { "$PY" scripts/gpu_probe.py "$1" 2>/dev/null || echo "broken the probe itself failed"; }

# run_tests MARKER LABEL FACTS: pytest -m MARKER, one summary line, the tail of the log on failure
run_tests() {
    local marker="$1" label="$2" facts="$3" log rc counts
    log="$(mktemp)"
    $PYTEST tests -m "$marker" -q -rs -p no:cacheprovider "${@:4}" >"$log" 2>&1
    rc=$?
    counts="$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$log" | tail -1 | sed -E 's/^=+ //; s/ =+$//')"
    if [ "$rc" -eq 0 ] && ! grep -q "passed" <<<"$counts"; then
        lines+=("${label}: skipped: every ${marker} test skipped itself (${counts:-no summary}): no usable device?")
    elif [ "$rc" -eq 0 ]; then
        ran=1
        lines+=("${label}: PASS: ${counts:-no summary} on ${facts}")
    else
        ran=1
        failed=1
        [ "$rc" -eq 5 ] && counts="no ${marker} test collected"
        tail -n 40 "$log" | sed 's/^/  /'
        lines+=("${label}: FAIL: ${counts:-pytest exit ${rc}} on ${facts}")
    fi
    rm -f "$log"
}

# torch CUDA
state="$(probe torch)"
case "${state%% *}" in
    ok) run_tests gpu "torch CUDA" "${state#ok }" "$@" ;;
    no-torch) lines+=("torch CUDA: skipped: no torch ${state#no-torch }") ;;
    no-gpu) lines+=("torch CUDA: skipped: no GPU: ${state#no-gpu }") ;;
    *) failed=1; lines+=("torch CUDA: FAIL: torch is installed but broken: ${state#* }") ;;
esac

# onnxruntime CUDA
state="$(probe onnxruntime)"
case "${state%% *}" in
    pass) ran=1; lines+=("onnxruntime CUDA: PASS: ${state#pass }") ;;
    absent) lines+=("onnxruntime CUDA: skipped: not installed ${state#absent }") ;;
    *) ran=1; failed=1; lines+=("onnxruntime CUDA: FAIL: ${state#* }") ;;
esac

# TensorRT
state="$(probe tensorrt)"
case "${state%% *}" in
    ok) run_tests trt "TensorRT" "${state#ok }" "$@" ;;
    absent) lines+=("TensorRT: skipped: not installed ${state#absent }") ;;
    *) failed=1; lines+=("TensorRT: FAIL: ${state#* }") ;;
esac

printf '%s\n' "${lines[@]}"
elapsed=$(( $(date +%s) - started ))
if [ "$failed" -ne 0 ]; then
    echo "gpu-check: FAIL in ${elapsed}s (a backend that is present failed)"
    exit 1
fi
[ "$ran" -eq 0 ] && echo "gpu-check: nothing to check here (no backend with a GPU); nothing was run" && exit 0
echo "gpu-check: PASS in ${elapsed}s"
exit 0
