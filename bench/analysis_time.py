"""Goal 4: complexity analysis time per prompt (`Analyzer.analyze`), embedding model warm.

Every timed call sees a text the embedder has never seen (each round uses a fresh `Embedder`, whose
memo starts empty, so the MiniLM forward pass is always paid); the model itself is loaded and warmed
before timing. The embedding share is measured by wrapping `Embedder.embed`.
"""

from __future__ import annotations

import time

from bench.common import Env, Goal, ms, p50, p95, rotated, table

GOAL_MS = 15.0

_LONG_CODE = (
    "Here is my Python code:\n```python\n"
    + "\n".join(
        f"def step_{i}(data, limit={i}):\n    out = [x * {i} for x in data if x < limit]\n"
        "    return sorted(out)\n"
        for i in range(12)
    )
    + "```\nWhy is it slow on large inputs, and how would you refactor it to run in linear time? "
    "Explain step by step and justify each change."
)
_LONG_ESSAY = " ".join(
    f"Paragraph {i}: the committee must compare the trade-offs of option {i} against the budget, "
    "the timeline and the regulatory constraints, and explain why it is or is not acceptable."
    for i in range(25)
)

PROMPTS: tuple[str, ...] = (
    "Hi!",
    "Good evening, how's it going?",
    "Thanks a lot, that solved it.",
    "What is the capital of Australia?",
    "Who painted the Mona Lisa?",
    "How many moons does Mars have?",
    "When was the printing press invented?",
    "Name three noble gases.",
    "What does DNA stand for?",
    "Translate 'good morning' into Spanish.",
    "Write a haiku about winter rain.",
    "Tell me a short story about a robot learning to paint.",
    "Write a limerick about a cat who hates Mondays.",
    "Draft a friendly product description for a bamboo toothbrush.",
    "Compose a four-line poem about the night sky in the style of Emily Dickinson.",
    "Solve for x: 5x - 3 = 17.",
    "What is the derivative of sin(x) * x^2?",
    "Compute the probability of drawing two aces from a shuffled deck without replacement.",
    "Prove that there are infinitely many prime numbers.",
    "A tank fills at 3 litres per minute and drains at 1.5 litres per minute; how long to fill 90 litres?",
    "Integrate 1/(1+x^2) from 0 to 1 and explain each step.",
    "Find the eigenvalues of the matrix [[2, 1], [1, 2]].",
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Why does this JavaScript throw 'undefined is not a function'? const f = obj.run; f();",
    "Implement an LRU cache in Rust with O(1) get and put.",
    "Fix the bug in this SQL: SELECT name, COUNT(*) FROM users GROUP BY id;",
    "Refactor a 500-line Java class into smaller services using dependency injection.",
    "How do I read a CSV file in pandas and drop rows with missing values?",
    "Write a regex that matches ISO 8601 dates like 2024-03-15.",
    "Explain the difference between a process and a thread in operating systems.",
    "Compare PostgreSQL and MongoDB for an analytics workload and recommend one.",
    "If all glorps are blinks and no blinks are zorps, can a glorp be a zorp? Explain.",
    "Plan a three-step strategy to reduce customer churn for a SaaS startup and justify each step.",
    "Analyze the causes of the French Revolution and evaluate which mattered most.",
    "Critique this argument: we should ban cars because accidents happen.",
    "Design a rate limiter for a public API and discuss the trade-offs of token bucket vs sliding window.",
    "Answer in exactly 3 bullet points, without jargon: what is inflation?",
    "Return a JSON object with keys 'city' and 'country' for the Eiffel Tower. Do not add any text.",
    "List at least five renewable energy sources in a table with one advantage each.",
    "In 50 words or fewer, summarise the plot of Hamlet.",
    "Give me a recipe for vegan pancakes.",
    "Which gear should I take on a week of hiking in the Alps in September?",
    "Can you help me write an email asking my landlord to fix the heating?",
    "Explain quantum entanglement to a ten-year-old.",
    "What are the side effects of ibuprofen?",
    "Suggest names for a coffee shop run by cats.",
    "How does a transformer neural network use attention? Derive the scaled dot-product formula.",
    "Bonjour, peux-tu m'expliquer la photosynthèse en deux phrases ?",
    _LONG_CODE,
    _LONG_ESSAY,
)


def run(env: Env) -> list[Goal]:
    from inferscale.analysis import Analyzer, approx_tokens
    from inferscale.embeddings import Embedder

    class TimedEmbedder(Embedder):
        spent = 0.0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return super().embed(texts)
            finally:
                self.spent += time.perf_counter() - t0

    # The shipped backend against the torch one, interleaved, each with its own cold memo.
    variants = {"onnx-int8": "onnx-int8", "torch": "torch"}
    rounds = 1 if env.quick else 3
    total: dict[str, list[float]] = {v: [] for v in variants}
    embed: list[float] = []
    by_len: dict[str, list[float]] = {"short (<= 20 tok)": [], "medium (21-100 tok)": [],
                                      "long (> 100 tok)": []}
    for r in range(rounds):
        analyzers = {v: Analyzer(TimedEmbedder(backend=b)) for v, b in variants.items()}
        for a in analyzers.values():  # loads the model (first round) and embeds the domain prototypes
            for w in range(3):
                a.analyze(f"warm-up prompt {r}-{w}: what is two plus two?")
        order = list(PROMPTS) if r % 2 == 0 else list(reversed(PROMPTS))
        for i, prompt in enumerate(order):
            text = prompt if r == 0 else f"{prompt} (variant {r})"  # never embedded before
            for v in rotated(list(variants), i):
                analyzer = analyzers[v]
                emb = analyzer._embedder
                emb.spent = 0.0
                t0 = time.perf_counter()
                analyzer.analyze(text)
                dt = (time.perf_counter() - t0) * 1000
                total[v].append(dt)
                if v == "onnx-int8":
                    embed.append(emb.spent * 1000)
                    n = approx_tokens(text)
                    key = ("short (<= 20 tok)" if n <= 20 else "medium (21-100 tok)" if n <= 100
                           else "long (> 100 tok)")
                    by_len[key].append(dt)

    main = total["onnx-int8"]
    print(f"\n### 4. Complexity analysis time (`Analyzer.analyze`, {len(PROMPTS)} distinct prompts "
          f"x {rounds} "
          f"round(s), MiniLM warm, embedding memo cold, backend onnx-int8 as shipped)\n")
    rows = [("all prompts", len(main), ms(p50(main)), ms(p95(main)), ms(max(main)))]
    rows += [(k, len(v), ms(p50(v)), ms(p95(v)), ms(max(v))) for k, v in by_len.items() if v]
    rest = [t - e for t, e in zip(main, embed, strict=True)]
    other = total["torch"]
    rows += [("  of which embedding (MiniLM)", len(embed), ms(p50(embed)), ms(p95(embed)), ms(max(embed))),
             ("  of which regex + scoring", len(rest), ms(p50(rest)), ms(p95(rest)), ms(max(rest))),
             ("info: all prompts with the torch backend", len(other), ms(p50(other)), ms(p95(other)),
              ms(max(other)))]
    print(table(["prompts", "n", "p50 ms", "p95 ms", "max ms"], rows))
    return [Goal("4. analysis time per prompt (p50)", f"<= {GOAL_MS:g} ms", f"{p50(main):.2f} ms "
                 f"(p95 {p95(main):.2f})", p50(main) <= GOAL_MS,
                 f"embedding is {p50(embed):.2f} ms of it (p50); torch backend p50 {p50(other):.2f}, "
                 f"p95 {p95(other):.2f}")]


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
