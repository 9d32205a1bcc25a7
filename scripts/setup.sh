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
llama_has_amx() {  # the AMX matrix multiply compiled into llama.cpp's CPU backend
  nm -D --defined-only .venv/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu.so* 2>/dev/null \
    | grep ggml_backend_amx_mul_mat > /dev/null  # not -q: an early exit fails nm, and pipefail
}
want="$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || llama_has_amx; then
  # torch before anything that depends on it: 2.13.0 is the CPU build this machine carries;
  # an unpinned torch would pull gigabytes of CUDA wheels.
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "==> installing torch==2.13.0 (CPU)"
    .venv/bin/pip install -q torch==2.13.0
  fi
  if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null || llama_has_amx; then
    # llama.cpp is compiled for this CPU (-march=native). Where the CPU has AMX, its matrix
    # multiplies use AMX tiles, and on a virtual machine that does not grant the tile state the
    # first one segfaults (`ldtilecfg` in ggml_backend_amx_mul_mat). So it is built without AMX
    # (AVX-512 and the rest stay), and not from pip's wheel cache, which ignores CMAKE_ARGS and
    # may hold a build with AMX.
    echo "==> building llama-cpp-python without AMX (~5 min on 2 cores)"
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    CMAKE_ARGS="-DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'" \
      .venv/bin/pip install -q --no-cache-dir --force-reinstall --no-deps \
      "$(grep -E '^llama-cpp-python' requirements.txt)"
  fi
  echo "==> installing requirements"
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps -r requirements-nodeps.txt
  .venv/bin/pip install -q --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "==> requirements already installed"
fi

echo "==> preparing local models and the database"
.venv/bin/inferscale setup
