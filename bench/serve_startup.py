"""How long `inferscale serve` takes to start: from spawning the process to the first accepted TCP
connection, the first `GET /health` answer (and, if it says so, the first `ready: true`), and the
first chat completion answered (a cache miss to the fake backend, the `slow-<ms>` behaviour).

Each run uses a fresh home (registry import, one key) so nothing is warm from a previous run except
the OS page cache (the first run may be slower for it). Model files are shared (`data/models`, as
the tests do), so no run pays the one-time build of the fast embedding graph.

    python bench/serve_startup.py                 # 3 runs
    python bench/serve_startup.py --runs 5 --json out.json
    python bench/serve_startup.py --repo /tmp/before --repo . # alternate two checkouts, same load
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway import MODEL, REPO, _port, _stop, start_backend  # noqa: E402


def prepare_home(home: Path, backend: str, repo: Path) -> tuple[dict[str, str], str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "INFERSCALE_HOME": str(home), "PYTHONPATH": str(repo), "BENCH_KEY": "unused"}
    env.pop("INFERSCALE_CHROMA_URL", None)
    if (REPO / "data" / "models").is_dir():
        env.setdefault("INFERSCALE_MODELS_DIR", str(REPO / "data" / "models"))
    (home / "models.yaml").write_text(json.dumps({"models": [{
        "id": MODEL, "model": "openai/slow-20", "api_base": backend, "api_key_env": "BENCH_KEY"}]}))
    run = [sys.executable, "-m", "inferscale"]
    # cwd = the checkout too: `python -m` puts the working directory first on sys.path.
    subprocess.run([*run, "models", "import", str(home / "models.yaml")], env=env, check=True,
                   capture_output=True, cwd=repo)
    for local in ("local/smollm2-135m-instruct", "local/gemma-3-270m"):
        subprocess.run([*run, "models", "disable", local], env=env, capture_output=True, cwd=repo)
    key = subprocess.run([*run, "keys", "create", "bench"], env=env, check=True, capture_output=True,
                         text=True, cwd=repo).stdout.strip()
    return env, key


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def one_run(home: Path, backend: str, timeout_s: float, repo: Path, poll_s: float) -> dict[str, Any]:
    env, key = prepare_home(home, backend, repo)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inferscale", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo)
    out: dict[str, Any] = {"listen_s": None, "health_s": None, "ready_s": None, "first_answer_s": None}
    try:
        while time.perf_counter() - t0 < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}")
            if out["listen_s"] is None and _listening(port):
                out["listen_s"] = time.perf_counter() - t0
            if out["listen_s"] is not None:
                try:
                    r = httpx.get(url + "/health", timeout=5)
                except httpx.HTTPError:
                    r = None
                if r is not None and out["health_s"] is None:
                    out["health_s"] = time.perf_counter() - t0  # any answer: 200, or 503 warming
                    out["first_health"] = f"{r.status_code} {r.text[:80]}"
                # A /health without `ready` (older servers) is ready when it answers 200.
                if r is not None and r.status_code == 200 and r.json().get("ready", True):
                    out["ready_s"] = time.perf_counter() - t0
                    break
            time.sleep(poll_s)
        else:
            raise RuntimeError(f"serve was not ready within {timeout_s} s")
        r = httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                       json={"model": MODEL, "messages": [{"role": "user", "content": "first question"}]},
                       timeout=timeout_s)
        r.raise_for_status()
        out["first_answer_s"] = time.perf_counter() - t0
        out["first_answer_ms"] = r.json()["inferscale"]["latency_ms"]
    finally:
        _stop(proc)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout-s", type=float, default=300)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--poll-ms", type=float, default=50, help="how often /health is probed")
    ap.add_argument("--repo", action="append", type=Path,
                    help="run serve from this checkout (repeat to alternate between checkouts, "
                         "e.g. before/after a change under the same load); default: this one")
    args = ap.parse_args()
    repos = args.repo or [REPO]
    bport = _port()
    backend_proc = start_backend(bport)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-startup-"))
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(args.runs):
            for repo in repos:
                load = os.getloadavg()[0]
                r = one_run(work / f"home{len(runs)}", f"http://127.0.0.1:{bport}/v1", args.timeout_s, repo,
                            args.poll_ms / 1000)
                r |= {"loadavg_1m": load, "repo": str(repo)}
                runs.append(r)
            print(json.dumps(r), flush=True)
    finally:
        _stop(backend_proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'run':>3} {'listen s':>9} {'health s':>9} {'ready s':>8} {'1st answer s':>13} "
          f"{'its ms':>8} {'load':>5}  checkout")
    for i, r in enumerate(runs):
        print(f"{i:>3} {r['listen_s']:9.2f} {r['health_s']:9.2f} {r['ready_s']:8.2f} "
              f"{r['first_answer_s']:13.2f} {r['first_answer_ms']:8.0f} {r['loadavg_1m']:5.1f}  {r['repo']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "cores": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
