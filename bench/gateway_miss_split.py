"""Where one gateway cache miss spends its time, step by step (issue 14's added latency on misses).

An in-process gateway (uvicorn on 127.0.0.1, the real app and engine) over the fake backend
(`slow-<ms>`); sequential misses through one keep-alive client, so nothing queues. Timers are
wrapped around the engine's steps and the gateway's own parts (measurement only; nothing else
changes), with the CPU time of the thread each runs on. The gateway's own share is the client's
total minus `Engine.aask`'s wall time.

    python bench/gateway_miss_split.py              # 60 requests, the first 10 not counted
    python bench/gateway_miss_split.py --requests 200 --latency-ms 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
T: dict[str, list[float]] = {}
CPU: dict[str, list[float]] = {}  # the calling thread's CPU time in the same calls


def _timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def w(*a: Any, **k: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            T.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
            CPU.setdefault(label, []).append((time.thread_time() - c0) * 1000)
    return w


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--latency-ms", type=int, default=50)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-miss-split-"))
    os.environ["INFERSCALE_HOME"] = str(home)
    repo_models = Path(__file__).resolve().parent.parent / "data" / "models"
    if repo_models.is_dir():
        os.environ.setdefault("INFERSCALE_MODELS_DIR", str(repo_models))
    import httpx

    from inferscale import Engine, Settings
    from inferscale.gateway import keys
    from inferscale.gateway.routes import chat
    from tests.support.fakes import KEY_VAR, fake_model, write_registry
    from tests.support.gateway import Gateway
    from tests.support.openai_server import FakeOpenAIServer

    os.environ[KEY_VAR] = "sk-fake"
    srv = FakeOpenAIServer()
    srv.start()
    e = Engine(Settings.from_env())
    e.registry.import_yaml(write_registry(home / "m.yaml", [fake_model("m", f"slow-{args.latency_ms}")],
                                          srv.base_url))
    for spec in e.registry.list():
        if spec.is_local:
            e.registry.set_enabled(spec.id, False)
    for obj, name, label in ((e, "_prepare", "engine: plan + analysis + L4 get + L1 search"),
                             (e, "_start", "engine: analysis + request row"),
                             (e.levels, "lookup", "engine: L1 search"),
                             (e, "_finish", "engine: L4/L1 store + monitor rows (after latency_ms)"),
                             (e.levels, "_store_queued", "L1 writer: one batch (off the request path)"),
                             (e.monitor, "finish_request", "writer: monitor rows (off the request path)"),
                             (e.tunables_store, "load", "tunables load (per call)"),
                             (keys.KeyStore, "verify", "gateway: key verify"),
                             (keys.KeyStore, "charge", "gateway: key charge"),
                             (chat, "plan", "gateway: plan"),
                             (chat, "completion", "gateway: response object")):
        setattr(obj, name, _timed(label, getattr(obj, name)))
    aask = e.aask

    async def timed_aask(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await aask(*a, **k)
        finally:
            T.setdefault("engine: aask wall", []).append((time.perf_counter() - t0) * 1000)

    e.aask = timed_aask  # type: ignore[method-assign]
    g = Gateway(e)
    key = g.key("split")
    T.clear()
    total, stamped = [], []
    with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        for i in range(args.requests):
            t0 = time.perf_counter()
            r = client.post(g.base_url + "/chat/completions", json={"model": "m", "messages": [
                {"role": "user", "content": f"split {i}: what is {i} times {i + 7}?"}]})
            total.append((time.perf_counter() - t0) * 1000)
            assert r.headers["x-inferscale-cache"] == "miss", r.headers
            stamped.append(r.json()["inferscale"]["latency_ms"])
    g.stop()
    skip = min(10, args.requests // 4)
    med = statistics.median
    print(f"{args.requests - skip} sequential misses, backend {args.latency_ms} ms, load average "
          f"{os.getloadavg()[0]:.1f}; p50 per request:")
    print(f"  {'':58} {'wall':>7}    {'CPU':>7} (the calling thread's)")
    print(f"  {'client total':58} {med(total[skip:]):7.1f} ms")
    print(f"  {'engine latency_ms (in the response)':58} {med(stamped[skip:]):7.1f} ms")
    for label, v in T.items():
        per = len(v) / args.requests
        cpu = med(CPU[label][skip:] or CPU[label]) if label in CPU else None
        print(f"  {label:58} {med(v[skip:] or v):7.1f} ms" + (f" {cpu:7.2f} ms" if cpu is not None else "")
              + (f"  x{per:.1f}" if per != 1 else ""))
    gw = med([t - a for t, a in zip(total[skip:], T["engine: aask wall"][skip:], strict=True)])
    print(f"  {'gateway + HTTP (client total - aask wall)':58} {gw:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
