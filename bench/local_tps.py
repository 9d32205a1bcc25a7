"""Goal 1: local-model tokens/s through inferscale vs raw llama-cpp-python.

Same GGUF, same loaded `Llama` instance (the process-wide one `inferscale.providers.local.load`
returns, so n_threads, n_ctx and chat format are identical by construction), same prompt, greedy
decoding (temperature 0) and max_tokens 64. Three variants per round, order rotated each round:

  raw         `Llama.create_chat_completion` (SmolLM2, ChatML) or `Llama.create_completion` on
              `base_prompt(messages)` with the same stop strings (Gemma 3 270M, a base model)
  call_model  `inferscale.providers.llm.call_model` through litellm's custom `local` provider
  engine      `Engine.ask(..., models=[local/...], use_cache=False)`, the whole pipeline

tokens/s = completion tokens / wall seconds of that call as seen by the caller. Prompt prefix reuse
in llama.cpp's KV cache applies equally to every variant (same prompt each time). The goal ratio is
the median over rounds of engine tok/s divided by the same round's raw tok/s; the best-of ratio
(fastest engine call / fastest raw call) is printed next to it, as slowdowns from other load on the
machine only ever add time.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Env, Goal, p50, rotated, table

GOAL_RATIO = 0.9
MAX_TOKENS = 64
PROMPT = "Write a detailed paragraph explaining how photosynthesis works in plants."
# Rounds per model (quick, full): Gemma answers this prompt in ~23 tokens (its few-shot template stops
# at a blank line), so each call is short and noisier; it gets more rounds (they cost less).
MODELS = {"local/smollm2-135m-instruct": (3, 9), "local/gemma-3-270m": (5, 15)}
VARIANTS = ("raw", "call_model", "engine")


def run(env: Env) -> list[Goal]:  # noqa: C901 - a benchmark script, read top to bottom
    from inferscale.orchestration.runner import run_sync
    from inferscale.providers import local
    from inferscale.providers.llm import call_model
    from inferscale.settings import Tunables

    engine = env.engine("local")
    engine.tunables_store.save(Tunables(max_tokens=MAX_TOKENS, temperature=0.0))
    settings = engine.settings
    cfg = local.LocalConfig(settings.models_dir, settings.n_threads, settings.local_n_ctx)
    messages = [{"role": "user", "content": PROMPT}]
    params = {"max_tokens": MAX_TOKENS, "temperature": 0.0}

    print(f"\n### 1. Local tokens/s: inferscale vs raw llama-cpp-python (max_tokens {MAX_TOKENS}, "
          f"temperature 0, n_threads {settings.n_threads}, 1 warm-up round, then rounds with the order "
          "rotated)\n")
    print(f"Prompt: \"{PROMPT}\"; models dir: `{settings.models_dir}`\n")
    goals: list[Goal] = []
    rows: list[tuple[Any, ...]] = []
    fixed_rows: list[tuple[Any, ...]] = []
    for model_id, (quick_rounds, full_rounds) in MODELS.items():
        rounds = quick_rounds if env.quick else full_rounds
        name = model_id.removeprefix("local/")
        t0 = time.perf_counter()
        try:
            loaded = local.load(name, cfg)  # Gemma: assembled from its chunk packages on first use
        except Exception as exc:  # noqa: BLE001 - report the model as unmeasured, keep going
            goals.append(Goal(f"1. {model_id} tokens/s ratio", f">= {GOAL_RATIO}", "not measured", None,
                              f"{type(exc).__name__}: {exc}"))
            continue
        load_s = time.perf_counter() - t0
        spec = engine.registry.get(model_id)
        llm = loaded.llm
        before = {id(v) for v in local._LOADED.values()}

        def raw(loaded: Any = loaded) -> tuple[int, str]:
            with loaded.lock:
                if loaded.spec.chat:
                    out = loaded.llm.create_chat_completion(messages=messages, **params)
                    text = out["choices"][0]["message"]["content"] or ""
                else:
                    out = loaded.llm.create_completion(prompt=local.base_prompt(messages),
                                                       stop=list(local.BASE_STOP), **params)
                    text = out["choices"][0]["text"]
            return int(out["usage"]["completion_tokens"]), text.strip()

        def provider(spec: Any = spec) -> tuple[int, str]:
            m = run_sync(call_model(spec, messages, params, settings))
            assert m.ok, m.error
            return m.tokens_out, m.answer or ""

        def via_engine(model_id: str = model_id) -> tuple[int, str]:
            r = engine.ask(PROMPT, models=[model_id], use_cache=False)
            m = r.members[0]
            assert m.ok and m.model == model_id, m.error
            return m.tokens_out, m.answer or ""

        fns = {"raw": raw, "call_model": provider, "engine": via_engine}
        tps: dict[str, list[float]] = {v: [] for v in VARIANTS}
        toks: dict[str, set[int]] = {v: set() for v in VARIANTS}
        texts: dict[str, set[str]] = {v: set() for v in VARIANTS}
        ratios: dict[str, list[float]] = {"call_model": [], "engine": []}
        for r in range(-1, rounds):
            got: dict[str, float] = {}
            for v in rotated(VARIANTS, r + 1):
                t = time.perf_counter()
                n_tok, text = fns[v]()
                dt = time.perf_counter() - t
                if r >= 0:
                    got[v] = n_tok / dt
                    tps[v].append(got[v])
                    toks[v].add(n_tok)
                    texts[v].add(text)
            if r >= 0:
                for v in ratios:
                    ratios[v].append(got[v] / got["raw"])
        # Fixed cost per call, independent of generation length: the same variants with max_tokens 1.
        params["max_tokens"] = 1
        engine.tunables_store.save(Tunables(max_tokens=1, temperature=0.0))
        fixed: dict[str, list[float]] = {v: [] for v in VARIANTS}
        try:
            for r in range(-1, 5 if env.quick else 10):
                for v in rotated(VARIANTS, r + 1):
                    t = time.perf_counter()
                    fns[v]()
                    if r >= 0:
                        fixed[v].append((time.perf_counter() - t) * 1000)
        finally:
            params["max_tokens"] = MAX_TOKENS
            engine.tunables_store.save(Tunables(max_tokens=MAX_TOKENS, temperature=0.0))
        fixed_rows.append((model_id, *(f"{p50(fixed[v]):.2f}" for v in VARIANTS),
                           f"+{p50(fixed['call_model']) - p50(fixed['raw']):.2f}",
                           f"+{p50(fixed['engine']) - p50(fixed['raw']):.2f}"))
        shared = {id(v) for v in local._LOADED.values()} == before
        same_text = len(set().union(*texts.values())) == 1
        for v in VARIANTS:
            ratio = "1.00 (reference)" if v == "raw" else f"{p50(ratios[v]):.3f}"
            best = "" if v == "raw" else f"{max(tps[v]) / max(tps['raw']):.3f}"
            rows.append((model_id, v, rounds, f"{p50(tps[v]):.1f}", f"{min(tps[v]):.1f}",
                         f"{max(tps[v]):.1f}",
                         "/".join(map(str, sorted(toks[v]))), ratio, best))
        ratio = p50(ratios["engine"])
        best_ratio = max(tps["engine"]) / max(tps["raw"])
        spread = max(tps["raw"]) / min(tps["raw"])
        fmt = f"chat_format {llm.chat_format}" if loaded.spec.chat else "base model (completion API)"
        noisy = f"; NOISY: raw tok/s varied {spread:.1f}x across rounds" if spread > 1.3 else ""
        goals.append(Goal(
            f"1. {model_id} tokens/s, `Engine.ask` / raw (median of paired rounds)", f">= {GOAL_RATIO}",
            f"{ratio:.3f} ({p50(tps['engine']):.1f} vs {p50(tps['raw']):.1f} tok/s; call_model "
            f"{p50(ratios['call_model']):.3f})", ratio >= GOAL_RATIO,
            f"best-of ratio {best_ratio:.3f}; {sorted(toks['raw'])[0]} tokens/answer; "
            f"same instance: {'yes' if shared else 'NO'}; "
            f"identical text: {'yes' if same_text else 'NO'}; {fmt}, "
            f"n_threads {llm.n_threads}; load {load_s:.1f} s{noisy}",
        ))
    print(table(["model", "variant", "rounds", "median tok/s", "min tok/s", "max tok/s", "tokens out",
                 "median paired ratio vs raw", "best-of ratio (max/max)"], rows))
    print("\nFixed cost per call (max_tokens 1, interleaved; p50 ms), the part that does not scale with "
          "answer length:\n")
    print(table(["model", "raw", "call_model", "engine", "call_model added", "engine added"], fixed_rows))
    return goals


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
