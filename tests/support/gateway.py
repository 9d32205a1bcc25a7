"""`inferscale serve`'s app on 127.0.0.1 in a background thread (uvicorn, a real socket), for tests
that drive it with the official `openai` client. Stopped (and joined) by `stop()`."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class GatewayThread:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5, backlog=2048)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="gateway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout_s: float = 30) -> GatewayThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


class Gateway:
    """A running gateway over a real engine: `.url`, `.base_url`, `.engine`, `.key(name)`, `.client()`."""

    def __init__(self, engine: Any, auth: bool = True) -> None:
        from inferscale.gateway.app import create_app
        from inferscale.gateway.keys import KeyStore

        self.engine = engine
        self.keys = KeyStore(engine.database)
        self.thread = GatewayThread(create_app(engine=engine, auth=auth)).start()
        self.url, self.base_url = self.thread.url, self.thread.base_url
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Wait for /health to say ready (the worker warms up after it starts listening), as a
        deployment's readiness probe would; tests then start from a warm worker."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while httpx.get(self.url + "/health", timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.05)

    def key(self, name: str, budget_usd: float | None = None) -> str:
        return self.keys.create(name, budget_usd)[1]

    def client(self, key: str = "none", **kw: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, **kw)

    def async_client(self, key: str = "none", **kw: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0, **kw)

    def stop(self) -> None:
        self.thread.stop()
