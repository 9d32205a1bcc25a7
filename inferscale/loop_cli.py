"""`inferscale feedback`, `inferscale router train|calibrate|eval` and `inferscale whatif`: closing
the loop from outcomes back to routing and caching. Registered by one line in `cli.build_parser`."""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from typing import Any

from .errors import ConfigError


def _engine() -> Any:
    from .orchestration.engine import Engine
    from .settings import Settings

    return Engine(Settings.from_env())


def _light() -> tuple[Any, Any]:
    """Settings and the database without building a whole engine (no registry seeding, no Chroma)."""
    from .db import Database
    from .settings import Settings

    settings = Settings.from_env()
    settings.ensure_dirs()
    return settings, Database(settings.db_path)


def _embedder(settings: Any) -> Any:
    from .embeddings import Embedder

    return Embedder(backend=settings.embedding_backend)


def cmd_feedback(args: argparse.Namespace) -> int:
    from .monitor.feedback import FeedbackStore

    _, db = _light()
    if args.rating not in ("good", "bad"):
        raise ConfigError(f"rating must be good or bad, got {args.rating!r}")
    fb = FeedbackStore(db).add(args.request_id, args.rating, answer=args.answer, source="cli")
    print(f"feedback recorded: {fb.request_id} {fb.rating}" + (" (with a corrected answer)" if fb.answer else ""))
    return 0


def cmd_router(args: argparse.Namespace) -> int:
    from .config_store import TunablesStore
    from .tools import router_ops as ops

    settings, db = _light()
    if args.action == "train":
        if args.method is not None and args.method not in ("knn", "mf"):
            raise ConfigError(f"unknown method {args.method!r}; choose one of knn, mf")
        names = [n.strip() for n in (args.experiment or "").split(",") if n.strip()] or None
        model = ops.train_and_store(settings.home, db, _embedder(settings), names, args.method)
        out = ops.train_json(model)
        if args.json:
            print(json.dumps(out))
        else:
            sel = out["selection_brier"]
            print(f"trained learned router v{out['version']} ({out['method']}"
                  + (f", chosen by Brier score: {', '.join(f'{k} {v:.4f}' for k, v in sel.items())}" if sel else "")
                  + f") on {out['prompts']} labelled prompts, {out['labels']} labels, "
                  f"{len(out['models'])} models: {', '.join(out['models'])}")
            print(f"strong: {out['strong']}   weak: {out['weak']}   experiments: "
                  f"{', '.join(out['experiments']) or 'none'}   feedback labels: {out['feedback_labels']}")
        return 0
    if args.action == "calibrate":
        for name, v in (("--strong-share", args.strong_share), ("--max-cost-usd", args.max_cost_usd)):
            if v is not None and not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        cal = ops.calibrate(settings.home, TunablesStore(db), args.strong_share, args.max_cost_usd)
        out = {"threshold": cal.threshold, "strong_share": cal.strong_share,
               "mean_cost_usd": cal.mean_cost_usd, "prompts": cal.prompts}
        if args.json:
            print(json.dumps(out))
        else:
            print(f"learned_threshold = {cal.threshold:.4f} (saved): {cal.strong_share:.1%} of the "
                  f"{cal.prompts} training prompts go to the strong model, mean ${cal.mean_cost_usd:.6f} each")
        return 0
    if not args.experiment or "," in args.experiment:
        raise ConfigError("router eval needs exactly one --experiment NAME")
    curves, strong, weak, n = ops.evaluate_experiment(settings.home, db, _embedder(settings), args.experiment)
    if args.json:
        print(json.dumps(ops.eval_json(curves, strong, weak, n)))
        return 0
    print(f"held-out items: {n}   strong: {strong}   weak: {weak}")
    print(f"{'router':<12}{'APGR':>8}{'CPT50':>8}{'CPT80':>8}{'AIQ':>8}")
    for c in curves:
        cpt = [("-" if v is None else f"{v:.2f}") for v in (c.cpt50, c.cpt80)]
        print(f"{c.name:<12}{c.apgr:>8.3f}{cpt[0]:>8}{cpt[1]:>8}{c.aiq:>8.3f}")
    print("quality vs normalised cost (0 = weak, 1 = strong):")
    for c in curves:
        pts = c.points if len(c.points) <= 11 else c.points[:: max(1, len(c.points) // 10)]
        print(f"  {c.name}: " + " ".join(f"({x:.2f}, {q:.2f})" for x, q in pts))
    return 0


def _since(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"--since {raw!r} is not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T12:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def cmd_whatif(args: argparse.Namespace) -> int:
    from .whatif.report import parse_sets, whatif

    since = _since(args.since)
    engine = _engine()
    proposed = parse_sets(engine.tunables(), args.set or [])
    report = whatif(engine, proposed, since=since)
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    print(report.describe())
    return 0


def register(sub: Any) -> None:
    f = sub.add_parser("feedback", help="rate a request's answer good or bad (optionally correct it)")
    f.add_argument("request_id")
    f.add_argument("rating", help="good or bad")
    f.add_argument("--answer", help="the corrected answer")
    f.set_defaults(fn=cmd_feedback)

    r = sub.add_parser("router", help="train, calibrate and evaluate the learned router")
    r.add_argument("action", choices=["train", "calibrate", "eval"])
    r.add_argument("--experiment", help="train: experiment names, comma-separated (default: all); eval: one")
    r.add_argument("--method", help="knn or mf (default: the one with the better held-in measurement)")
    r.add_argument("--strong-share", type=float, help="calibrate: share of prompts for the strong model, in (0, 1)")
    r.add_argument("--max-cost-usd", type=float, help="calibrate: mean cost per prompt to stay under")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_router)

    w = sub.add_parser("whatif", help="replay logged traffic with changed tunables, before saving them")
    w.add_argument("--set", action="append", metavar="KEY=VALUE", help="a proposed tunable, repeatable")
    w.add_argument("--since", help="replay requests from this ISO date/time on (UTC if no zone)")
    w.add_argument("--json", action="store_true")
    w.set_defaults(fn=cmd_whatif)
