#!/usr/bin/env bash
# Idempotent setup: venv, torch (CPU) first, requirements (llama-cpp-python builds once; pip keeps
# the built wheel in its cache), the package itself, then local model files under INFERSCALE_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

stamp=.venv/.inferscale-setup
want="$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch before anything that depends on it: 2.13.0 is the CPU build this machine carries;
  # an unpinned torch would pull gigabytes of CUDA wheels.
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "==> installing torch==2.13.0 (CPU)"
    .venv/bin/pip install -q torch==2.13.0
  fi
  echo "==> installing requirements (llama-cpp-python compiles once, ~5 min on 2 cores)"
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps -r requirements-nodeps.txt
  .venv/bin/pip install -q --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "==> requirements already installed"
fi

echo "==> preparing local models and the database"
.venv/bin/inferscale setup
