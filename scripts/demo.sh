#!/usr/bin/env bash
# The main job: set-up, then virtnet's demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/virtnet demo "$@"
