#!/usr/bin/env bash
# Quick start, part 2: set up and run the whole test suite (lint and type check included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/python -m mypy  # over inferscale/ (pyproject.toml [tool.mypy]); zero errors
mkdir -p artifacts
.venv/bin/python -m pytest -q "$@"
