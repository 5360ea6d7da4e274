#!/usr/bin/env bash
# The main job: set up, then run the whole pipeline on the built-in demo model into ./edgelstm-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edgelstm demo "$@"
