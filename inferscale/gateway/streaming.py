"""Server-sent events in OpenAI's chunk format, fed by the engine's own events.

- `single` on a cache miss: the model's tokens are forwarded as they arrive (engine `token` events
  of the first call that writes; a fallback model's tokens if the first failed before writing).
- Multi-model strategies: the final answer is streamed once the strategy has decided it (a vote or
  a judge cannot be streamed before it is over).
- A cache hit (any level) is replayed as a stream of the cached text.
The last chunk carries `finish_reason`, `usage` and the `inferscale` object, then `data: [DONE]`.
Headers go out with the first token (or the finished answer), so they name the real cache level
and model; an error before that is a normal JSON error response with its status code.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from ..types import AskResult
from .adapter import Plan, completion_id, headers, info, usage
from .errors import GatewayError, from_exception

_PIECE = re.compile(r"\s*\S+")


def pieces(text: str) -> list[str]:
    """Word-sized chunks of `text` whose concatenation is exactly `text`."""
    out = _PIECE.findall(text)
    return out if "".join(out) == text else [text]


class _Tokens:
    """The text of one model call, as it streams: leading and trailing whitespace held back, so
    what the client receives is exactly the stored (stripped) answer."""

    def __init__(self) -> None:
        self.call_id: int | None = None
        self.model: str | None = None
        self.sent = ""
        self.pending = ""

    def feed(self, text: str) -> str:
        self.pending += text
        if not self.sent:
            self.pending = self.pending.lstrip()
        cut = len(self.pending.rstrip())
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.sent += out
        return out


async def respond(engine: Any, p: Plan, model: str, request_id: str,
                  on_done: Callable[[AskResult], None]) -> StreamingResponse:
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    tokens = _Tokens()

    def on_event(ev: Any) -> None:
        if ev.kind == "token" and ev.text:
            if tokens.call_id is None:
                tokens.call_id, tokens.model = ev.call_id, ev.model
            if ev.call_id == tokens.call_id:
                queue.put_nowait(("token", ev.text))
        elif ev.kind == "failed" and ev.call_id == tokens.call_id and not tokens.sent:
            tokens.call_id = None  # nothing shown yet: a fallback's tokens may take over

    task = asyncio.ensure_future(engine.aask(p.prompt, **p.kwargs, request_id=request_id,
                                             on_event=on_event if p.single else None))

    def finished(t: asyncio.Future) -> None:
        # Charged here, not in the response: a client that hangs up mid-stream still pays.
        if not t.cancelled() and t.exception() is None:
            on_done(t.result())
        queue.put_nowait(("done", None))

    task.add_done_callback(finished)
    first = await queue.get()
    if first[0] == "done":
        result = task.result()  # raises the engine's error: a plain JSON error response
        hdrs = headers(result)
    else:
        result = None
        hdrs = {"x-inferscale-request-id": request_id, "x-inferscale-cache": "miss",
                "x-inferscale-models": tokens.model or ""}
    return StreamingResponse(_events(task, queue, first, tokens, result, model, request_id),
                             media_type="text/event-stream",
                             headers={**hdrs, "cache-control": "no-cache"})


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


async def _events(task: asyncio.Future, queue: asyncio.Queue, first: tuple[str, Any], tokens: _Tokens,
                  result: AskResult | None, model: str, request_id: str) -> AsyncIterator[bytes]:
    base = {"id": completion_id(request_id), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                          "logprobs": None}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    item = first
    while item[0] == "token":
        if out := tokens.feed(item[1]):
            yield chunk({"content": out})
        item = await queue.get()
    if result is None:
        try:
            result = task.result()
        except Exception as exc:  # noqa: BLE001 - headers are sent: report it in the stream
            err = from_exception(exc)
            yield _sse(err.body())
            return
    answer = result.answer
    if not answer.startswith(tokens.sent):
        # The streamed call failed after writing and another answered (or a retry rewrote it):
        # what was shown cannot be taken back, so the stream ends with an error, never a mix.
        err = GatewayError(502, "the streamed answer was interrupted and replaced by another model's; "
                                f"retry the request (request_id {request_id})", code="stream_interrupted")
        yield _sse(err.body())
        return
    for piece in pieces(answer[len(tokens.sent):]):
        yield chunk({"content": piece})
    yield chunk({}, "stop", usage=usage(result).model_dump(), inferscale=info(result).model_dump())
    yield b"data: [DONE]\n\n"
