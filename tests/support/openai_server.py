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
    chaos-<name>      a seeded fault mix per (model, prompt, nth call): 20% HTTP 5xx, 10% 429 with
                      Retry-After, 5% hang past any test timeout, 5% malformed body, else echo;
                      `server.injected` counts what was drawn, by (model, kind)
    cycle-<a>_<b>_…   the n-th call to this model answers the n-th item (cycling); an item
                      `<word>@<ms>` answers after <ms> ms (stragglers for early-stop tests)
    conf-<pct>-<word> answers <word>; with `logprobs: true` every token has probability pct%
    ratelimit-<ms>    the first call per prompt is a 429 with Retry-After <ms>/1000 s, then echo
    keyecho-401       HTTP 401 whose error message repeats the bearer token, as some providers do
    keypad[-<n>]      HTTP 500 whose message is <n> padding characters then the request's
                      Authorization header (bare `keypad`: <n> is read from "pad <n>" in the prompt)
    hostile-md        answers Markdown that would fetch from / link to `server.hostile_origin`
                      (images inline and by reference, autolinks, bare URLs, HTML, TeX)
    hostile-error     HTTP 500 whose message is that same Markdown (an image and a phishing link)
    huge-<n>          answers <n> characters whatever max_tokens says (a provider ignoring it)
    ansi              answers text full of terminal escape sequences
    parity-<rule>[-t] scored-run patterns on N, the first integer of the first user message: rule
                      even / odd answers N when N is even / odd and N+1 otherwise; fail3 is HTTP
                      500 when N % 3 == 0, else N (a tag `-t` only tells models apart)
    nth-<k>[-t]       the n-th call for a prompt (per model name) answers N when n % k == 0, else N+1
    nostream          echo, but ignores `stream: true`: a plain JSON body (some providers do)
    drip-<ms>         echo; when streamed, each word is sent <ms> milliseconds after the previous
    blank             200 with a well-formed choice whose content is "" (or only whitespace)
    solver-<kinds>    right only on the kinds of prompt it knows (`_`-joined): `sum` (a prompt with
                      "plus" between numbers: the sum of its integers) and `rev` (a prompt asking
                      for a quoted word backwards: that word reversed); otherwise "not sure"

`server.calls` counts requests per model; `server.last_headers` keeps the last Authorization seen and
`server.last_request` the last JSON body.
Supports `stream: true` (SSE) with a final usage chunk.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _usage(prompt: str, answer: str) -> dict[str, int]:
    pin, pout = max(1, len(prompt.split())), max(1, len(answer.split()))
    return {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout}


def prompt_kind(prompt: str) -> str | None:
    """`sum` or `rev` (see `solver-<kinds>`), None for any other prompt."""
    if "plus" in prompt and re.search(r"\d", prompt):
        return "sum"
    if "backwards" in prompt and re.search(r"'([^']+)'", prompt):
        return "rev"
    return None


def right_answer(prompt: str) -> str | None:
    kind = prompt_kind(prompt)
    if kind == "sum":
        return str(sum(int(x) for x in re.findall(r"-?\d+", prompt)))
    if kind == "rev":
        return re.search(r"'([^']+)'", prompt).group(1)[::-1]  # type: ignore[union-attr]
    return None


def solve(prompt: str, kinds: set[str]) -> str:
    kind = prompt_kind(prompt)
    return (right_answer(prompt) or "not sure") if kind in kinds else "not sure"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAIServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes on a keep-alive connection: with Nagle's algorithm the
    # body would wait ~40 ms for the client's delayed ACK on every request.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json",
              extra: dict | None = None) -> None:
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
        with self.server.lock:
            self.server.inflight += 1
            self.server.max_inflight = max(self.server.max_inflight, self.server.inflight)
        try:
            self._post()
        finally:
            with self.server.lock:
                self.server.inflight -= 1

    def _post(self) -> None:  # noqa: C901 - one branch per fake behaviour, read as a table
        length = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(length) or b"{}")
        model = str(req.get("model", "echo"))
        srv = self.server
        with srv.lock:
            srv.calls[model] += 1
            srv.last_headers = dict(self.headers)
            srv.last_request = req
        messages = req.get("messages") or []
        prompt = str(messages[-1].get("content", "")) if messages else ""
        answer = f"echo: {prompt}"
        logprob = math.log(0.99)

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
        elif model == "keyecho-401":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            err = {"error": {"message": f"Incorrect API key provided: {token}",
                             "type": "invalid_request_error",
                             "code": "invalid_api_key"}}
            return self._send(401, json.dumps(err).encode())
        elif model == "keypad" or model.startswith("keypad-"):
            tail = model.split("-", 1)[1] if "-" in model else prompt.rsplit("pad ", 1)[-1].split()[0]
            err = {"error": {"message": "x" * int(tail) + "Authorization: " + self.headers.get("Authorization", ""),
                             "type": "server_error", "code": 500}}
            return self._send(500, json.dumps(err).encode())
        elif model == "hostile-md":
            answer = hostile_markdown(srv.hostile_origin)
        elif model == "hostile-error":
            err = {"error": {"message": hostile_markdown(srv.hostile_origin, short=True),
                             "type": "server_error", "code": 500}}
            return self._send(500, json.dumps(err).encode())
        elif model.startswith("huge-"):
            answer = ("lorem ipsum " * (int(model.split("-", 1)[1]) // 12 + 1))[: int(model.split("-", 1)[1])]
        elif model == "ansi":
            answer = "plain \x1b[2J\x1b]0;pwned\x07 title \x1b[31mred\x1b[0m \r overwritten \u202e reversed"
        elif model == "malformed":
            return self._send(200, b"{this is not json")
        elif model == "empty":
            empty = {"id": "x", "object": "chat.completion", "choices": []}
            return self._send(200, json.dumps(empty).encode())
        elif model == "hang":
            # Woken early by stop(), so shutting the server down never waits on a hung handler.
            if srv.stopping.wait(30):
                return None
        elif model.startswith("const-"):
            answer = model.split("-", 1)[1]
        elif model.startswith("chaos-"):
            kind = srv.draw(model, prompt)
            if kind in ("500", "502", "503", "429"):
                extra = {"Retry-After": "0", "retry-after-ms": "5"} if kind == "429" else None
                err = {"error": {"message": f"chaos {kind}", "type": "server_error", "code": int(kind)}}
                return self._send(int(kind), json.dumps(err).encode(), extra=extra)
            if kind == "hang":
                if srv.stopping.wait(srv.hang_s):
                    return None
            elif kind == "malformed":
                return self._send(200, b'{"choices": [{"message": ')
        elif model.startswith("cycle-"):
            items = model.split("-", 1)[1].split("_")
            word, _, ms = items[(srv.calls[model] - 1) % len(items)].partition("@")
            if ms and srv.stopping.wait(int(ms) / 1000):
                return None
            answer = word
        elif model.startswith("conf-"):
            _, pct, answer = model.split("-", 2)
            logprob = math.log(max(1e-9, int(pct) / 100))
        elif model.startswith("solver-"):
            answer = solve(prompt, set(model.split("-", 1)[1].split("_")))
        elif model.startswith("ratelimit-"):
            with srv.lock:
                srv.flaky[(model, prompt)] += 1
                first = srv.flaky[(model, prompt)] == 1
            if first:
                wait = str(int(model.split("-", 1)[1]) / 1000)
                err = {"error": {"message": "slow down", "type": "rate_limit", "code": 429}}
                return self._send(429, json.dumps(err).encode(), extra={"Retry-After": wait})

        elif model.startswith(("parity-", "nth-")):
            # The question is the first user message (a tree search's refinements come after it).
            prompt = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), prompt)
            found = re.search(r"-?\d+", prompt)
            n = int(found.group(0)) if found else 0
            rule = model.split("-")[1]
            if rule == "fail3" and n % 3 == 0:
                return self._send(500, b'{"error": {"message": "fail3", "type": "server_error"}}')
            if model.startswith("nth-"):
                with srv.lock:
                    srv.flaky[(model, prompt)] += 1
                    right = srv.flaky[(model, prompt)] % int(rule) == 0
            else:
                right = rule == "fail3" or (n % 2 == 0) == (rule == "even")
            answer = str(n if right else n + 1)
        elif model == "blank":
            answer = "  "

        usage = _usage(" ".join(str(m.get("content", "")) for m in messages), answer)
        if req.get("stream") and model != "nostream":
            drip = int(model.split("-", 1)[1]) / 1000 if model.startswith("drip-") else 0.0
            return self._stream(model, answer, usage, drip)
        body = {
            "id": f"chatcmpl-{srv.calls[model]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
            "usage": usage,
        }
        if req.get("logprobs"):
            body["choices"][0]["logprobs"] = {"content": [
                {"token": w, "logprob": logprob, "bytes": None, "top_logprobs": []} for w in answer.split()
            ]}
        self._send(200, json.dumps(body).encode())

    def _stream(self, model: str, answer: str, usage: dict, drip: float = 0.0) -> None:
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
            if drip and i:
                self.wfile.flush()
                time.sleep(drip)
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
        self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def hostile_markdown(origin: str, short: bool = False) -> str:
    """Markdown that makes a naive renderer fetch from `origin` or show a link to it."""
    if short:
        return (f"Upstream failure ![e]({origin}/err.png) [Re-authenticate here]({origin}/phish) "
                f"<img src=\"{origin}/err-html.png\">")
    return "\n".join([
        "Here is the answer.",
        f"![tracking pixel]({origin}/pixel.png?data=secret)",
        f"[Re-authenticate here]({origin}/phish)",
        f"![by reference][pic] and <{origin}/autolink> and {origin}/bare and www.example.invalid",
        f"<img src=\"{origin}/html.png\"> <iframe src=\"{origin}/frame\"></iframe>",
        f"[![nested]({origin}/nested.png)]({origin}/nested-link)",
        f"$\\includegraphics{{{origin}/tex.png}}$",
        "",
        f"[pic]: {origin}/ref.png",
    ])


class FakeOpenAIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default backlog (5) drops connections under a burst of requests

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.flaky: Counter[tuple[str, str]] = Counter()
        self.last_headers: dict[str, str] = {}
        self.last_request: dict[str, Any] = {}
        self.stopping = threading.Event()
        self.injected: Counter[tuple[str, str]] = Counter()  # chaos draws, by (model, kind)
        self.inflight = 0  # requests being handled now, and the most seen at once
        self.max_inflight = 0
        self.chaos_seed = 0
        self.hang_s = 2.0  # how long a chaos hang lasts: longer than any test timeout
        self.hostile_origin = "http://hostile.invalid:8123"  # where hostile-md/-error point
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) closes its socket; that is expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="fake-openai")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def draw(self, model: str, prompt: str) -> str:
        """The chaos outcome of this call: seeded by (seed, model, prompt, nth call), so a run is
        reproducible however the requests interleave."""
        with self.lock:
            self.flaky[(model, prompt)] += 1
            nth = self.flaky[(model, prompt)]
        rng = random.Random(f"{self.chaos_seed}:{model}:{prompt}:{nth}")
        r = rng.random()
        kind = (rng.choice(("500", "502", "503")) if r < 0.20 else "429" if r < 0.30 else
                "hang" if r < 0.35 else "malformed" if r < 0.40 else "ok")
        with self.lock:
            self.injected[(model, kind)] += 1
        return kind

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.flaky.clear()
            self.injected.clear()
            self.max_inflight = self.inflight
