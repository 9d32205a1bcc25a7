#!/usr/bin/env bash
# Quick start, part 1: set up, answer a demo prompt on the embedded local models, start the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> demo: inferscale ask"
.venv/bin/inferscale ask "What is the capital of France?"
if [ -f app.py ]; then
  port="${INFERSCALE_PORT:-8501}"
  echo "==> dashboard: http://127.0.0.1:${port}"
  exec .venv/bin/streamlit run app.py --server.address 127.0.0.1 --server.port "$port" \
    --server.headless true --browser.gatherUsageStats false
fi
