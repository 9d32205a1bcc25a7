"""`inferscale serve` listens before it is warm: /health answers 503 `warming` while the worker
loads litellm, the embedding graphs and the L1 index, then 200 `ok`; a request sent while it warms
is answered, not refused; a worker stopped while it warms lets warming finish first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from inferscale.settings import REPO_ROOT
from tests.support.fakes import fake_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_listens_first_reports_warming_then_ready_and_answers_meanwhile(make_engine) -> None:
    engine = make_engine(fake_model("fake-echo", "echo"))
    from inferscale.gateway.keys import KeyStore

    key = KeyStore(engine.database).create("early")[1]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen([sys.executable, "-m", "inferscale", "serve", "--port", str(port)],
                             env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers: list[httpx.Response] = []
    seen: list[tuple[int, dict]] = []

    def ask_early() -> None:
        answers.append(httpx.post(
            url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
            json={"model": "fake-echo", "messages": [{"role": "user", "content": "early bird"}]},
            timeout=240))

    early = threading.Thread(target=ask_early)
    try:
        deadline = time.monotonic() + 240
        while True:  # poll fast: the warm-up window is seconds long (importing litellm alone)
            assert serve.poll() is None and time.monotonic() < deadline, "serve did not become ready"
            try:
                r = httpx.get(url + "/health", timeout=10)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            seen.append((r.status_code, r.json()))
            if early.ident is None:  # sent once, while the worker is still warming
                early.start()
            if r.status_code == 200:
                break
            time.sleep(0.02)
        early.join(240)
    finally:
        serve.terminate()
        serve.wait(60)
    statuses = [s for s, _ in seen]
    assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses) == {503, 200}, statuses
    assert seen[0][1]["status"] == "warming" and seen[0][1]["ready"] is False
    assert seen[-1][1]["status"] == "ok" and seen[-1][1]["ready"] is True and seen[-1][1]["models"] == 1
    [resp] = answers
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "echo: early bird"


def test_a_worker_stopped_while_it_warms_waits_for_the_warm_up(make_engine) -> None:
    """A daemon thread frozen mid-import at exit would keep the import lock (see
    `orchestration/runner.shutdown`): the worker lets warming finish before it exits."""
    from inferscale.gateway.app import create_app
    from tests.support.gateway import GatewayThread

    engine = make_engine(fake_model("fake-echo", "echo"))
    warmed = threading.Event()

    def slow_warm_up(background: bool = True) -> None:
        time.sleep(1.0)  # stands for seconds of imports
        warmed.set()

    engine.warm_up = slow_warm_up
    gateway = GatewayThread(create_app(engine=engine, auth=False)).start()
    gateway.stop()  # at once: the warm-up is still sleeping
    assert warmed.is_set()
    assert not any(t.name == "gateway-warm-up" for t in threading.enumerate())
