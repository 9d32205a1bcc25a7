"""Several processes, one home: `inferscale serve --workers 2`, a concurrent `inferscale batch` and
a dashboard process (the Playground page run by AppTest) write the same L1 cache: SQLite, and
for the scopes promoted to Chroma mid-run the Chroma server `serve` runs. Afterwards every L1 entry
is findable, reconcile has nothing to repair and SQLite's integrity check passes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from inferscale.settings import REPO_ROOT
from tests.support.fakes import fake_model

GATEWAY, BATCH, DASHBOARD = 700, 285, 15
SCAN_MAX = 100

DASHBOARD_SCRIPT = """
import sys
import time
from streamlit.testing.v1 import AppTest
t0 = time.monotonic()
at = AppTest.from_file(sys.argv[1], default_timeout=180)
at.run()
at.switch_page("pages/1_Playground.py")
at.run()
print(f"playground up at {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
for i in range(int(sys.argv[2])):
    at.text_area(key="pg_prompt").input(f"Dashboard question {i}: how many legs has a {i}-legged stool?")
    at.multiselect(key="pg_models").set_value(["fake-echo"])
    at.button(key="pg_submit").click().run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    print(f"prompt {i} answered at {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
print("dashboard done")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_two_workers_a_batch_and_the_dashboard_share_one_home(make_engine, home, tmp_path) -> None:
    engine = make_engine(fake_model("fake-echo", "echo"))  # registers the model; never opens Chroma
    from inferscale.gateway.keys import KeyStore

    key = KeyStore(engine.database).create("multi")[1]
    # Scopes over 100 entries go to Chroma: the gateway's and the batch's are promoted mid-run,
    # while the other processes write them; the dashboard's stays searched in-process.
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), INFERSCALE_L1_SCAN_MAX=str(SCAN_MAX))
    port = _free_port()
    t_start = time.monotonic()
    serve = subprocess.Popen([sys.executable, "-m", "inferscale", "serve", "--workers", "2", "--port", str(port)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, "serve did not become healthy"
            time.sleep(0.3)
        print(f"serve healthy after {time.monotonic() - t_start:.1f} s")
        assert json.loads((home / "chroma.server.json").read_text())["url"].startswith("http://127.0.0.1:")

        batch_file = tmp_path / "batch.jsonl"
        batch_file.write_text("".join(json.dumps({"prompt": f"Batch question {i}: what is {i} squared?"}) + "\n"
                                      for i in range(BATCH)))
        batch = subprocess.Popen([sys.executable, "-m", "inferscale", "batch", str(batch_file), "--models",
                                  "fake-echo", "--concurrency", "8", "--json"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        script = tmp_path / "playground_process.py"  # not dashboard.py: that would shadow the package
        script.write_text(DASHBOARD_SCRIPT)
        dash_log = open(tmp_path / "dashboard.log", "w")  # noqa: SIM115 - closed below
        dash = subprocess.Popen([sys.executable, str(script), str(REPO_ROOT / "app.py"), str(DASHBOARD)],
                                env=env, stdout=subprocess.PIPE, stderr=dash_log, text=True)

        async def gateway() -> list[int]:
            import openai

            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)
            gate = asyncio.Semaphore(24)

            async def one(i: int) -> int:
                async with gate:
                    r = await client.chat.completions.create(
                        model="fake-echo", messages=[{"role": "user", "content": f"Gateway question {i}: "
                                                      f"what is {i} times {i + 11}?"}])
                    assert r.choices[0].message.content.startswith("echo: Gateway question")
                    return 1

            out = await asyncio.gather(*(one(i) for i in range(GATEWAY)))
            await client.close()
            return out

        t0 = time.monotonic()
        assert sum(asyncio.run(gateway())) == GATEWAY
        print(f"gateway requests done in {time.monotonic() - t0:.1f} s")
        b_out, b_err = batch.communicate(timeout=300)
        print(f"batch done at {time.monotonic() - t0:.1f} s")
        assert batch.returncode == 0, b_err
        assert json.loads(b_out.splitlines()[-1])["summary"]["failed"] == 0
        d_out, _ = dash.communicate(timeout=300)
        dash_log.close()
        assert dash.returncode == 0 and "dashboard done" in d_out, (tmp_path / "dashboard.log").read_text()[-3000:]
    finally:
        for proc in (p for p in (locals().get("batch"), locals().get("dash")) if p is not None):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        serve.terminate()
        serve.wait(60)
    assert not (home / "chroma.server.json").exists()  # serve stopped its Chroma server

    # Now one process opens the directory the server wrote, embedded.
    from inferscale import Engine, Settings

    after = Engine(Settings.from_env(home, l1_scan_max=SCAN_MAX))
    db = after.database.db
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT source, status, COUNT(*) FROM requests GROUP BY 1, 2 ORDER BY 1").fetchall() == [
        ("batch", "ok", BATCH), ("gateway", "ok", GATEWAY), ("playground", "ok", DASHBOARD)]
    sem = after.levels.semantic
    rows = db.execute("SELECT s.key, s.scope, s.v_last, s.v_hist, p.indexed FROM semantic_index s"
                      " JOIN semantic_scopes p ON p.scope = s.scope").fetchall()
    assert len(rows) >= 0.9 * (GATEWAY + BATCH + DASHBOARD)  # (a few near-duplicates may hit L1)
    scopes = db.execute("SELECT entries > ?, indexed, COUNT(*) FROM semantic_scopes GROUP BY 1, 2",
                        [SCAN_MAX]).fetchall()
    assert sorted(scopes) == [(0, 0, 1), (1, 2, 2)], scopes  # the two large ones promoted, in full
    promoted = [r for r in rows if r[4] == 2]
    assert sem.index.remote is None and sem.index.count() == len(promoted)
    from inferscale.cache.scope_search import ScopeSearch
    from inferscale.cache.semantic import Vectors

    scan = ScopeSearch(after.database, max_scope=10**6)  # finds every row of any scope in SQLite
    for key_, scope, v_last, v_hist, indexed in rows:
        vec = Vectors(np.frombuffer(v_last, dtype=np.float32),
                      None if v_hist is None else np.frombuffer(v_hist, dtype=np.float32)).search
        found = sem.index.query(vec, scope, 4) if indexed == 2 else scan.nearest(scope, vec, 4)
        assert key_ in [k for k, _ in found], key_
    assert sem.reconcile() == {"removed_vectors": 0, "added_vectors": 0}
    assert Path(home / "chroma").is_dir()
