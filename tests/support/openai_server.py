"""A small OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

Behaviour is chosen per request by the model name, so one server serves many fake models:

    echo              answers "echo: <last user message>"
    slow-<ms>         echo after sleeping <ms> milliseconds
    fail-<code>       always answers HTTP <code> (500, 503, 429 with Retry-After: 0, 401…)
    flaky-<n>         the first <n> calls for a given prompt fail with 500, then echo
    malformed         200 with a body that is not JSON
    empty             200 with JSON but no choices
    hang              never answers within any sane timeout (sleeps 30 s)
    const-<word>      always answers <word>

`server.calls` counts requests per model; `server.last_headers` keeps the last Authorization seen.
Supports `stream: true` (SSE) with a final usage chunk.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _usage(prompt: str, answer: str) -> dict[str, int]:
    pin, pout = max(1, len(prompt.split())), max(1, len(answer.split()))
    return {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout}


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAIServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # /v1/models, for connection tests
        self._send(200, json.dumps({"object": "list", "data": [{"id": "echo", "object": "model"}]}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(length) or b"{}")
        model = str(req.get("model", "echo"))
        srv = self.server
        with srv.lock:
            srv.calls[model] += 1
            srv.last_headers = dict(self.headers)
        messages = req.get("messages") or []
        prompt = str(messages[-1].get("content", "")) if messages else ""
        answer = f"echo: {prompt}"

        if model.startswith("slow-"):
            time.sleep(int(model.split("-", 1)[1]) / 1000)
        elif model.startswith("fail-"):
            code = int(model.split("-", 1)[1])
            extra = {"Retry-After": "0"} if code == 429 else None
            err = {"error": {"message": f"fake failure {code}", "type": "server_error", "code": code}}
            return self._send(code, json.dumps(err).encode(), extra=extra)
        elif model.startswith("flaky-"):
            n = int(model.split("-", 1)[1])
            with srv.lock:
                srv.flaky[(model, prompt)] += 1
                seen = srv.flaky[(model, prompt)]
            if seen <= n:
                return self._send(500, b'{"error": {"message": "flaky", "type": "server_error"}}')
        elif model == "malformed":
            return self._send(200, b"{this is not json")
        elif model == "empty":
            return self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
        elif model == "hang":
            time.sleep(30)
        elif model.startswith("const-"):
            answer = model.split("-", 1)[1]

        usage = _usage(" ".join(str(m.get("content", "")) for m in messages), answer)
        if req.get("stream"):
            return self._stream(model, answer, usage)
        body = {
            "id": f"chatcmpl-{srv.calls[model]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
            "usage": usage,
        }
        self._send(200, json.dumps(body).encode())

    def _stream(self, model: str, answer: str, usage: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model}
        words = answer.split(" ")
        for i, w in enumerate(words):
            delta = {"content": (w if i == 0 else " " + w)}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
        self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class FakeOpenAIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.flaky: Counter[tuple[str, str]] = Counter()
        self.last_headers: dict[str, str] = {}
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="fake-openai")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.flaky.clear()
