#!/usr/bin/env bash
# Set up, then run the test suite (TensorRT/GPU-marked tests skip themselves without the hardware).
# Arguments go to pytest as they are: `bash scripts/test.sh tests/bad_input tests/fuzz` runs only those;
# without a test path pytest runs `tests` (testpaths in pyproject.toml), e.g. `bash scripts/test.sh -x -q`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
