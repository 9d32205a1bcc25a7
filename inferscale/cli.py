"""`inferscale` command line. A stable contract: others script against `--json` output.

Every failure prints one line `error: …` to stderr and exits non-zero; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from .errors import InferscaleError
from .redact import clip, redact
from .terminal import safe


def _engine() -> Any:
    from .orchestration.engine import Engine
    from .settings import Settings

    return Engine(Settings.from_env())


def _options(args: argparse.Namespace) -> dict[str, str] | None:
    from .orchestration.strategies import parse_options

    return parse_options(args.option) if args.option else None


def _model_flag(raw: str | None) -> list[str] | None:
    """`--models a,b` → ids; a flag given with no id (`--models ,`) is an error, not the default route."""
    if raw is None:
        return None
    ids = [m.strip() for m in raw.split(",") if m.strip()]
    if not ids:
        raise InferscaleError(f"--models {raw!r} names no model id (comma-separated ids, see inferscale models)")
    return ids


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine()
    models = _model_flag(args.models)
    result = engine.ask(
        args.prompt,
        system=args.system,
        strategy=args.strategy,
        models=models,
        router=args.router,
        use_cache=not args.no_cache,
        strategy_options=_options(args),
        source="cli",
    )
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return 0
    print(safe(result.answer, multiline=True))
    print()
    r = result.routing
    print(f"strategy: {result.strategy}   models: {', '.join(safe(m) for m in r.models)}   "
          f"cost: ${result.cost_usd:.6f}   latency: {result.latency_ms:.0f} ms"
          + (f"   confidence: {result.confidence:.2f}" if result.confidence is not None else ""))
    print(f"routing: {safe(r.reason)}")
    if result.cache:
        print(f"cache: {result.cache.level} hit (saved ${result.cache.saved_usd:.6f}, "
              f"{result.cache.saved_ms:.0f} ms)")
    for m in result.members:
        status = safe(m.error) if m.error else f"{m.latency_ms:.0f} ms, {m.tokens_in}+{m.tokens_out} tokens"
        role = f" [{m.role}]" if m.role else ""
        cut = " (answer truncated)" if getattr(m, "truncated", False) else ""
        print(f"  - {safe(m.model)}{role}{' (cached)' if m.cached else ''}: {status}{cut}")
    from .orchestration.strategies import describe

    if line := describe(result.detail):
        print(safe(line))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Every line of a JSONL file through the engine; one JSON object per request, then a summary.
    Exit 0 when the run completed, even if some requests failed."""
    from .batch import read_jsonl, run_batch_sync

    items = read_jsonl(args.file)  # validated before anything runs
    models = _model_flag(args.models)
    engine = _engine()

    def show(out: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(out, ensure_ascii=False), flush=True)
            return
        answer = out.get("answer")
        text = " ".join(answer.split())[:100] if answer else f"error: {out.get('error')}"
        mark = "" if "correct" not in out else (" ✓" if out["correct"] else " ✗")
        print(safe(f"[{out['id']}]{mark} {text}"), flush=True)

    summary = run_batch_sync(
        engine, items, strategy=args.strategy,
        models=models,
        concurrency=args.concurrency, strategy_options=_options(args), use_cache=not args.no_cache,
        on_result=show,
    )
    if args.json:
        print(json.dumps({"summary": summary.to_json()}), flush=True)
        return 0
    acc = "-" if summary.accuracy is None else \
        f"{summary.accuracy:.1%} ({summary.correct}/{summary.with_expected})"
    print(f"requests: {summary.requests}   answered: {summary.answered}   failed: {summary.failed}   "
          f"cost: ${summary.cost_usd:.6f}   accuracy: {acc}   wall: {summary.wall_s:.1f} s")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    engine = _engine()
    reg = engine.registry
    if args.action == "import":
        if not args.target:
            raise InferscaleError("models import needs a FILE.yaml")
        specs, changes = reg.plan_import(args.target, replace=args.replace)
        reg.upsert(specs)
        print(f"imported {len(specs)} model(s): {', '.join(safe(s.id) for s in specs)}")
        for line in changes:
            print(f"  replaced {safe(line)}")
        return 0
    if args.action in ("enable", "disable"):
        if not args.target:
            raise InferscaleError(f"models {args.action} needs a model ID")
        spec = reg.set_enabled(args.target, args.action == "enable")
        print(f"{safe(spec.id)}: {'enabled' if spec.enabled else 'disabled'}")
        return 0
    if args.json:
        print(reg.to_json())
        return 0
    for s in reg.list():
        why = s.unavailable_reason()
        state = "available" if why is None else ("disabled" if not s.enabled else f"needs {s.missing_key()}")
        price = (
            "cpu-time" if s.is_local else
            f"${s.input_price_per_1m}/{s.output_price_per_1m} per 1M" if s.input_price_per_1m is not None
            else "litellm cost map"
        )
        print(f"{safe(s.id):32} {safe(s.model):40} {state:24} q={s.quality_prior:.2f} "
              f"ctx={s.context_window:<8} {price}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _engine().monitor.stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"requests: {stats['requests']} (ok {stats['requests_ok']}, failed {stats['requests_failed']}, "
          f"interrupted {stats['requests_interrupted']}, running {stats['requests_running']})")
    print(f"cost: ${stats['cost_usd']:.6f}   saved by cache: ${stats['saved_usd']:.6f}")
    for level, c in stats["cache"].items():
        rate = "-" if c["hit_rate"] is None else f"{c['hit_rate']:.1%}"
        print(f"  {level}: {c['hits']} hits / {c['misses']} misses ({rate})")
    for model, m in stats["models"].items():
        p50 = "-" if m["latency_p50_ms"] is None else f"{m['latency_p50_ms']:.0f}"
        p95 = "-" if m["latency_p95_ms"] is None else f"{m['latency_p95_ms']:.0f}"
        print(f"  {safe(model)}: {m['calls']} calls, {m['errors']} errors, p50 {p50} ms, p95 {p95} ms")
    for model, c in stats.get("cooldowns", {}).items():
        state = f"cooling down for {c['remaining_s']:.0f} s" if c["cooling_down"] else "healthy"
        print(f"  {safe(model)}: {state} ({c['cooldowns']} cooldown(s), last: {safe(c['last_error_class'])})")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    store = _engine().tunables_store
    if args.action == "set":
        if args.key is None or args.value is None:
            raise InferscaleError("config set needs KEY VALUE")
        t = store.set(args.key, args.value)
    elif args.action == "reset":
        t = store.reset()
    else:
        t = store.load()
    for problem in store.stale_references():
        print(f"warning: {safe(problem)}", file=sys.stderr)
    print(json.dumps(t.to_dict(), indent=2))
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Prepare local model files once (assemble Gemma) and check that everything loads."""
    from .embeddings import Embedder, fast_model, verify_fast_model
    from .providers.modelfiles import gemma_path, smollm2_path
    from .settings import Settings

    settings = Settings.from_env()
    settings.ensure_dirs()
    print(f"home: {settings.home}")
    print(f"smollm2: {smollm2_path()}")
    print(f"gemma:   {gemma_path(settings.models_dir)}")
    Embedder(backend=settings.embedding_backend).embed(["warm-up"])
    print(f"embeddings: all-MiniLM-L6-v2 ({settings.embedding_backend}) ok")
    if settings.embedding_backend == "onnx-int8":
        try:
            fast, state = verify_fast_model(settings.models_dir)
            print(f"fast embeddings (L1 candidate search): {fast} ({state})")
        except Exception as exc:  # noqa: BLE001 - only costs speed: exact vectors still work
            print(f"fast embeddings (L1 candidate search): unavailable, exact vectors only ({exc})")
    else:
        maybe_fast = fast_model(settings.models_dir, settings.embedding_backend)
        print(f"fast embeddings (L1 candidate search): {maybe_fast or 'unavailable, exact vectors only'}")
    from .cache.lexicon import Lexicon

    print(f"lexicon (WordNet 3.0, for L1 verification): {Lexicon.open(settings.models_dir).path}")
    _engine()  # creates the database and seeds the registry
    print("database: ok")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    import math

    from .tools.seed import seed_home

    if args.requests < 0:
        raise InferscaleError("--requests must be >= 0")
    if not math.isfinite(args.days) or args.days < 0:
        raise InferscaleError(f"--days must be a finite number >= 0, got {args.days}")
    seed_home(args.home, args.requests, days=args.days, clear=args.clear)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Usage errors keep the one-line contract too (argparse would print the usage block first).
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="inferscale", description="Inference scaling across several LLMs.")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("ask", help="answer one prompt")
    a.add_argument("prompt")
    a.add_argument("--system")
    a.add_argument("--strategy")
    a.add_argument("--models", help="comma-separated model ids")
    a.add_argument("--router")
    a.add_argument("--no-cache", action="store_true")
    a.add_argument("--json", action="store_true")
    a.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="strategy option, repeatable (e.g. --option n=7 --option temperature=0.9)")
    a.set_defaults(fn=cmd_ask)

    b = sub.add_parser("batch", help="answer every prompt of a JSONL file, concurrently")
    b.add_argument("file", help='one JSON object per line: {"prompt": ..., "system"?, "id"?, "expected"?}')
    b.add_argument("--strategy")
    b.add_argument("--models", help="comma-separated model ids")
    b.add_argument("--concurrency", type=int, default=8)
    b.add_argument("--option", action="append", metavar="KEY=VALUE", help="strategy option, repeatable")
    b.add_argument("--no-cache", action="store_true")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_batch)

    m = sub.add_parser("models", help="list, import, enable or disable models")
    m.add_argument("action", nargs="?", choices=["list", "import", "enable", "disable"], default="list")
    m.add_argument("target", nargs="?")
    m.add_argument("--json", action="store_true")
    m.add_argument("--replace", action="store_true",
                   help="import: let the file change models that already exist (and list the changes)")
    m.set_defaults(fn=cmd_models)

    s = sub.add_parser("stats", help="requests, cache hit rates, cost, latency")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_stats)

    c = sub.add_parser("config", help="show, set or reset the tunables")
    c.add_argument("action", nargs="?", choices=["show", "set", "reset"], default="show")
    c.add_argument("key", nargs="?")
    c.add_argument("value", nargs="?")
    c.set_defaults(fn=cmd_config)

    su = sub.add_parser("setup", help="prepare local model files and the database")
    su.set_defaults(fn=cmd_setup)

    sd = sub.add_parser("seed", help="insert synthetic monitor rows (synthetic=1) for demos and load tests")
    sd.add_argument("--requests", type=int, default=10000)
    sd.add_argument("--home", help="INFERSCALE_HOME to seed (default: the environment's)")
    sd.add_argument("--days", type=float, default=30.0, help="spread the rows over the last DAYS")
    sd.add_argument("--clear", action="store_true", help="remove all synthetic rows instead")
    sd.set_defaults(fn=cmd_seed)

    from .tools.cache_eval import register as register_cache_eval
    register_cache_eval(sub)

    from .experiments.cli import register as register_eval

    register_eval(sub)
    __import__("inferscale.gateway.cli", fromlist=["register"]).register(sub)  # serve, keys
    from .loop_cli import register as register_loop

    register_loop(sub)  # feedback, router train|calibrate|eval, whatif
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except InferscaleError as exc:
        # Redacted first, then escaped: a provider's text may carry a key or terminal sequences.
        print(f"error: {safe(redact(str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        print(f"error: {type(exc).__name__}: {safe(clip(str(exc), 400))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
