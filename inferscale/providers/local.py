"""`local/…` models: a litellm custom provider backed by llama-cpp-python.

Each GGUF is loaded lazily, once per process, and shared by every engine in it. A llama.cpp context
is not thread-safe, so generation on one model is serialised by a per-model lock and runs in a worker
thread to keep the event loop free for the other members of an ensemble.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import Message
from .modelfiles import LOCAL_MODELS, LocalModel, model_path

# Few-shot template for base (non-chat) models: they continue text, so we show them the pattern.
BASE_PREAMBLE = (
    "The following are questions with short, accurate answers.\n\n"
    "Question: What is the capital of Italy?\nAnswer: The capital of Italy is Rome.\n\n"
    "Question: Name two fruits.\nAnswer: Apple and banana.\n\n"
)
BASE_STOP = ["\nQuestion:", "\n\n"]


@dataclass(frozen=True)
class LocalConfig:
    models_dir: Path
    n_threads: int
    n_ctx: int


class _Loaded:
    def __init__(self, llm: Any, spec: LocalModel) -> None:
        self.llm = llm
        self.spec = spec
        self.lock = threading.Lock()


_LOADED: dict[tuple[str, Path], _Loaded] = {}
_LOAD_LOCK = threading.Lock()


def load(name: str, cfg: LocalConfig) -> _Loaded:
    """Return the process-wide instance of `local/<name>`, loading it on first use."""
    spec = LOCAL_MODELS.get(name)
    path = model_path(name, cfg.models_dir)  # raises ModelUnavailableError for unknown names
    assert spec is not None
    key = (name, path)
    with _LOAD_LOCK:
        if key not in _LOADED:
            from llama_cpp import Llama  # heavy import, only when a local model is really used

            with _quiet_stderr():  # llama.cpp prints loader notes on fd 2 even with verbose=False
                llm = Llama(
                    model_path=str(path),
                    n_ctx=cfg.n_ctx,
                    n_threads=cfg.n_threads,
                    n_threads_batch=cfg.n_threads,
                    chat_format=spec.chat_format,
                    verbose=False,
                )
            _LOADED[key] = _Loaded(llm, spec)
        return _LOADED[key]


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real fd (e.g. captured by a test runner)
        yield
        return
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def base_prompt(messages: list[Message]) -> str:
    """Render a conversation as a Question/Answer completion prompt for a base model."""
    system = " ".join(m["content"] for m in messages if m["role"] == "system").strip()
    parts = [BASE_PREAMBLE]
    if system:
        parts.append(f"Instructions: {system}\n\n")
    for m in messages:
        if m["role"] == "user":
            parts.append(f"Question: {m['content'].strip()}\nAnswer:")
        elif m["role"] == "assistant":
            parts.append(f" {m['content'].strip()}\n\n")
    return "".join(parts)


def _gen_kwargs(optional_params: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "max_tokens": int(optional_params.get("max_tokens") or 128),
        "temperature": float(optional_params.get("temperature", 0.0) or 0.0),
    }
    for k in ("top_p", "seed"):
        if optional_params.get(k) is not None:
            kw[k] = optional_params[k]
    return kw


def generate(loaded: _Loaded, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
    """Blocking generation; returns an OpenAI-shaped completion dict with real token usage."""
    kw = _gen_kwargs(params)
    with loaded.lock:
        if loaded.spec.chat:
            out = loaded.llm.create_chat_completion(messages=messages, **kw)
            text = out["choices"][0]["message"]["content"] or ""
        else:
            stop = list(BASE_STOP) + list(params.get("stop") or [])
            out = loaded.llm.create_completion(prompt=base_prompt(messages), stop=stop, **kw)
            text = out["choices"][0]["text"]
    return {"text": text.strip(), "usage": out["usage"], "finish_reason": out["choices"][0]["finish_reason"]}


def stream(loaded: _Loaded, messages: list[Message], params: dict[str, Any]
           ) -> Iterator[tuple[str, dict | None]]:
    """Blocking token stream: yields (text_delta, None) then ("", usage) at the end."""
    kw = _gen_kwargs(params)
    with loaded.lock:
        llm = loaded.llm
        if loaded.spec.chat:
            n_out = 0
            for chunk in llm.create_chat_completion(messages=messages, stream=True, **kw):
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    n_out += 1
                    yield delta, None
            # The KV cache now holds prompt + generated tokens; the difference is the real prompt size.
            prompt_tokens = max(0, llm.n_tokens - n_out)
        else:
            prompt = base_prompt(messages)
            prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True))
            n_out = 0
            stop = list(BASE_STOP) + list(params.get("stop") or [])
            for chunk in llm.create_completion(prompt=prompt, stop=stop, stream=True, **kw):
                delta = chunk["choices"][0]["text"]
                if delta:
                    n_out += 1
                    yield delta, None
    yield "", {"prompt_tokens": prompt_tokens, "completion_tokens": n_out,
               "total_tokens": prompt_tokens + n_out}


def make_handler(cfg_getter: Any) -> Any:  # noqa: C901 - one class: litellm's four entry points
    """Build the litellm CustomLLM instance. `cfg_getter()` returns the current LocalConfig."""
    import litellm
    from litellm import CustomLLM

    class LocalLLM(CustomLLM):
        def _loaded(self, model: str) -> _Loaded:
            return load(model.removeprefix("local/"), cfg_getter())

        def _response(self, model: str, out: dict[str, Any], started: float) -> Any:
            resp = litellm.ModelResponse(
                model=f"local/{model.removeprefix('local/')}",
                choices=[{
                    "index": 0,
                    "message": {"role": "assistant", "content": out["text"]},
                    "finish_reason": out["finish_reason"] or "stop",
                }],
                usage=out["usage"],
            )
            resp._response_ms = (time.perf_counter() - started) * 1000
            return resp

        def completion(self, model: str, messages: list, *args: Any, optional_params: dict, **kw: Any) -> Any:
            started = time.perf_counter()
            return self._response(model, generate(self._loaded(model), messages, optional_params), started)

        async def acompletion(self, model: str, messages: list, *args: Any, optional_params: dict,
                              **kw: Any) -> Any:
            started = time.perf_counter()
            loaded = await asyncio.to_thread(self._loaded, model)
            out = await asyncio.to_thread(generate, loaded, messages, optional_params)
            return self._response(model, out, started)

        def streaming(self, model: str, messages: list, *args: Any, optional_params: dict,
                      **kw: Any) -> Iterator[Any]:
            for delta, usage in stream(self._loaded(model), messages, optional_params):
                yield _chunk(delta, usage)

        async def astreaming(
            self, model: str, messages: list, *args: Any, optional_params: dict, **kw: Any
        ) -> AsyncIterator[Any]:
            loaded = await asyncio.to_thread(self._loaded, model)
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            done = object()

            def pump() -> None:
                try:
                    for item in stream(loaded, messages, optional_params):
                        loop.call_soon_threadsafe(queue.put_nowait, item)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the awaiting side
                    loop.call_soon_threadsafe(queue.put_nowait, exc)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, done)

            threading.Thread(target=pump, daemon=True, name=f"local-{model}").start()
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield _chunk(*item)

    return LocalLLM()


def _chunk(delta: str, usage: dict | None) -> dict[str, Any]:
    return {
        "text": delta,
        "is_finished": usage is not None,
        "finish_reason": "stop" if usage is not None else "",
        "usage": usage,
        "index": 0,
        "tool_use": None,
    }
