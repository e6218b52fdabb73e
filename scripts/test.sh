#!/usr/bin/env bash
# The whole test suite: set-up, lint, types, then every test (pure, corpus and host tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check virtnet tests bench
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
