"""Gateway overhead, side by side: `inferscale serve` vs LiteLLM Proxy vs the backend called directly.

Same backend (the fake OpenAI server in its own process, `slow-<ms>`: a fixed latency), same client
(the official async `openai` client), same concurrency. For each target:
  misses      N distinct prompts            -> added latency p50/p99 over direct, requests/s
  exact hits  the same K prompts, repeated  -> the same, served from each gateway's own cache
LiteLLM Proxy runs with its local in-memory cache (`cache: true, type: local`); inferscale with its
four levels (the exact hit is L4), and again with the semantic level off (`semantic_enabled=false`:
exact levels only, the same kind of cache as LiteLLM Proxy's; the analysis still embeds the prompt).
The load generator shares the machine's cores with the servers: its own CPU share is reported, since
a busy client inflates every latency it measures. So is each server's CPU per request (its whole
process tree: inferscale's Chroma server, uvicorn's workers), which a busy machine changes far less.

    python bench/gateway.py                      # defaults: 400 requests, concurrency 16, 50 ms
    python bench/gateway.py --requests 2000 --concurrency 32 --latency-ms 20 --json out.json
    python bench/gateway.py --workers 2          # each gateway with two worker processes
    LITELLM_PROXY=/path/to/litellm python bench/gateway.py   # the proxy's own venv (see below)

LiteLLM Proxy comes from bench/requirements-bench.txt; its `proxy` extra pins an older litellm
than inferscale's, so install it in a venv of its own and point LITELLM_PROXY at its `litellm`.
"""

from __future__ import annotations

import argparse
import asyncio
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

REPO = Path(__file__).resolve().parent.parent
MODEL = "bench-model"
CHROMA = "chroma run"  # inferscale's Chroma server, a child of `serve`: its share of the CPU


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_backend(port: int) -> subprocess.Popen:
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from tests.support.openai_server import FakeOpenAIServer;"
            "FakeOpenAIServer(int(sys.argv[2])).start(); time.sleep(1e9)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO), str(port)])
    _wait(f"http://127.0.0.1:{port}/v1/models", proc)
    return proc


def tree_cpu_s(pid: int, only: str | None = None) -> float:
    """CPU seconds (user + system) of a process and all its descendants, from /proc: a server's
    Chroma child or uvicorn workers count as the server's cost. `only`: just the processes of the
    tree whose command line contains it (e.g. the Chroma server)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if only is not None and only not in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                fields[11] = fields[12] = "0"
        except OSError:  # exited meanwhile
            continue
        parent[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    return sum(cpu.get(p, 0.0) for p in tree)


def start_inferscale(home: Path, backend: str, behaviour: str, port: int, workers: int = 1,
                     tunables: tuple[tuple[str, str], ...] = ()) -> tuple[subprocess.Popen, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "INFERSCALE_HOME": str(home), "PYTHONPATH": str(REPO), "BENCH_KEY": "unused"}
    env.pop("INFERSCALE_CHROMA_URL", None)
    if (REPO / "data" / "models").is_dir():  # the set-up model files (fast graph, lexicon), as a user has
        env.setdefault("INFERSCALE_MODELS_DIR", str(REPO / "data" / "models"))
    (home / "models.yaml").write_text(json.dumps({"models": [{
        "id": MODEL, "model": f"openai/{behaviour}", "api_base": backend, "api_key_env": "BENCH_KEY",
        "input_price_per_1m": 1.0, "output_price_per_1m": 2.0}]}))
    run = [sys.executable, "-m", "inferscale"]
    subprocess.run([*run, "models", "import", str(home / "models.yaml")], env=env, check=True,
                   capture_output=True)
    for local in ("local/smollm2-135m-instruct", "local/gemma-3-270m"):
        subprocess.run([*run, "models", "disable", local], env=env, capture_output=True)
    for name, value in tunables:
        subprocess.run([*run, "config", "set", name, value], env=env, check=True, capture_output=True)
    key = subprocess.run([*run, "keys", "create", "bench"], env=env, check=True, capture_output=True,
                         text=True).stdout.strip()
    proc = subprocess.Popen([*run, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL)
    _wait(f"http://127.0.0.1:{port}/health", proc)
    return proc, key


def start_litellm(exe: str, workdir: Path, backend: str, behaviour: str, port: int,
                  workers: int = 1) -> tuple[subprocess.Popen, str]:
    config = workdir / "litellm.yaml"
    config.write_text(json.dumps({
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{behaviour}", "api_base": backend, "api_key": "unused"}}],
        "litellm_settings": {"cache": True, "cache_params": {"type": "local"}, "telemetry": False},
        "general_settings": {"master_key": "sk-bench-master"},
    }))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "DISABLE_SCHEMA_UPDATE": "True"}
    proc = subprocess.Popen([exe, "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
                             "--num_workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=workdir)
    _wait(f"http://127.0.0.1:{port}/health/liveliness", proc)
    return proc, "sk-bench-master"


async def load(base_url: str, key: str, model: str, prompts: list[str], concurrency: int) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    gate = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    engine_ms: list[float] = []  # inferscale only: the engine's own latency, from the response
    errors = 0

    async def one(p: str) -> None:
        nonlocal errors
        async with gate:
            t0 = time.perf_counter()
            try:
                r = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": p}])
                assert r.choices[0].message.content
                lat.append((time.perf_counter() - t0) * 1000)
                if (info := (r.model_extra or {}).get("inferscale")) is not None:
                    engine_ms.append(lat[-1] - info["latency_ms"])
            except Exception:  # noqa: BLE001 - counted, reported
                errors += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await client.close()
    lat.sort()
    engine_ms.sort()
    # outside_engine: client latency minus the engine's own — HTTP, FastAPI, auth, (de)serialisation.
    return {"requests": len(prompts), "errors": errors, "wall_s": wall, "rps": len(prompts) / wall,
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99), "loadgen_cpu_share": cpu / wall,
            "outside_engine_p50_ms": _pct(engine_ms, 50)}


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


def phases(base_url: str, key: str, model: str, n: int, concurrency: int, tag: str, server: int) -> dict[str, Any]:
    """Both phases against one target; `server` is the pid whose process tree serves it (its CPU
    per request is the cost that does not depend on how busy the machine is)."""
    misses = [f"{tag} miss {i}: what is {i} plus {3 * i + 1}?" for i in range(n)]
    hot = [f"{tag} hit {i}: name the capital of country number {i}" for i in range(8)]
    asyncio.run(load(base_url, key, model, hot, 4))  # warm the caches (and connections)
    out = {}
    for phase, prompts in (("misses", misses), ("exact_hits", [hot[i % len(hot)] for i in range(n)])):
        cpu0, chroma0 = tree_cpu_s(server), tree_cpu_s(server, CHROMA)
        out[phase] = asyncio.run(load(base_url, key, model, prompts, concurrency))
        out[phase]["server_cpu_ms_per_request"] = (tree_cpu_s(server) - cpu0) / n * 1000
        out[phase]["chroma_cpu_ms_per_request"] = (tree_cpu_s(server, CHROMA) - chroma0) / n * 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency-ms", type=int, default=50, help="the backend's fixed latency")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker processes of each gateway (serve --workers, litellm --num_workers)")
    args = ap.parse_args()

    behaviour = f"slow-{args.latency_ms}"
    bport = _port()
    backend_proc = start_backend(bport)
    backend = f"http://127.0.0.1:{bport}/v1"
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    procs: list[subprocess.Popen] = [backend_proc]
    results: dict[str, Any] = {"config": vars(args) | {"cores": os.cpu_count(),
                                                        "loadavg_start": os.getloadavg()}}
    try:
        # The backend itself: no cache, so "exact hits" are just repeated calls.
        results["direct"] = phases(backend, "unused", behaviour, args.requests, args.concurrency, "direct",
                                   backend_proc.pid)
        port = _port()
        proc, key = start_inferscale(work / "home", backend, behaviour, port, args.workers)
        procs.append(proc)
        results["inferscale"] = phases(f"http://127.0.0.1:{port}/v1", key, MODEL, args.requests,
                                       args.concurrency, "inferscale", proc.pid)
        _stop(proc)
        port = _port()
        proc, key = start_inferscale(work / "home-exact", backend, behaviour, port, args.workers,
                                     (("semantic_enabled", "false"),))
        procs.append(proc)
        results["inferscale_exact"] = phases(f"http://127.0.0.1:{port}/v1", key, MODEL, args.requests,
                                             args.concurrency, "inferscale-exact", proc.pid)
        _stop(proc)
        exe = os.environ.get("LITELLM_PROXY") or shutil.which("litellm")
        if not args.skip_litellm and exe:
            port = _port()
            proc, key = start_litellm(exe, work, backend, behaviour, port, args.workers)
            procs.append(proc)
            results["litellm_proxy"] = phases(f"http://127.0.0.1:{port}", key, MODEL, args.requests,
                                              args.concurrency, "litellm", proc.pid)
            _stop(proc)
    finally:
        for p in procs:
            _stop(p)
        shutil.rmtree(work, ignore_errors=True)
    results["config"]["loadavg_end"] = os.getloadavg()
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def print_table(results: dict[str, Any]) -> None:
    direct = results["direct"]
    c = results["config"]
    print(f"backend latency {c['latency_ms']} ms, {c['requests']} requests per phase, concurrency "
          f"{c['concurrency']}, {c.get('workers', 1)} worker(s) per gateway, {c['cores']} cores, load average "
          f"{c['loadavg_start'][0]:.1f} -> {c['loadavg_end'][0]:.1f}")
    print(f"{'target':16} {'phase':11} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} "
          f"{'req/s':>8} {'errors':>6} {'client CPU':>10} {'server CPU/req':>14} {'of it Chroma':>12} "
          f"{'outside engine p50':>18}")
    for name in ("direct", "inferscale", "inferscale_exact", "litellm_proxy"):
        if name not in results:
            continue
        for phase in ("misses", "exact_hits"):
            r, d = results[name][phase], direct[phase]
            add50 = None if r["p50_ms"] is None else r["p50_ms"] - d["p50_ms"]
            add99 = None if r["p99_ms"] is None else r["p99_ms"] - d["p99_ms"]
            f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"{name:16} {phase:11} {f(r['p50_ms']):>8} {f(r['p99_ms']):>8} {f(add50):>8} {f(add99):>8} "
                  f"{r['rps']:8.1f} {r['errors']:6d} {r['loadgen_cpu_share']:10.0%} "
                  f"{f(r.get('server_cpu_ms_per_request')) + ' ms':>14} "
                  f"{f(r.get('chroma_cpu_ms_per_request')) + ' ms':>12} {f(r.get('outside_engine_p50_ms')):>18}")


if __name__ == "__main__":
    sys.exit(main())
