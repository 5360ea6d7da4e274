#!/usr/bin/env bash
# Set up, then run the test suite (TensorRT/GPU-marked tests skip themselves without the hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests "$@"
