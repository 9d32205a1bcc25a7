"""`inferscale eval DATASET_OR_FILE …`: a stable contract (others script against `--json`).

Configs come from `--strategies` × `--models` (one per strategy, named after it) or a YAML file
`configs: [{name, strategy, models: [..], options: {..}}]`. Progress goes to stderr; the table (or
with `--json` one object, see report.summarize) to stdout.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InferscaleError

CONFIG_FIELDS = ("name", "strategy", "models", "options")


def register(sub: Any) -> None:
    e = sub.add_parser("eval", help="score strategies × models on a dataset (experiments)")
    e.add_argument("dataset", metavar="DATASET_OR_FILE",
                   help="verifiable, gsm8k, arc-agi-2, humaneval, or a JSONL file")
    e.add_argument("--strategies", help="comma-separated strategies, one config each")
    e.add_argument("--models", help="comma-separated model ids for those configs")
    e.add_argument("--configs", metavar="FILE.yaml", help="configs: [{name, strategy, models, options}]")
    e.add_argument("--options", help="KEY=VALUE,… strategy options for --strategies configs")
    e.add_argument("--scorer", help="scorer for items that name none (exact, normalized, numeric, …)")
    e.add_argument("--verifier", help="auto = the dataset's own answer-free verifier; none")
    e.add_argument("--limit", type=int)
    e.add_argument("--seed", type=int)
    e.add_argument("--concurrency", type=int, default=4)
    e.add_argument("--budget-usd", type=float, help="stop the whole experiment at this spend")
    e.add_argument("--max-calls", type=int, help="stop the whole experiment after this many model calls")
    e.add_argument("--name", help="experiment name (default: dataset + time)")
    e.add_argument("--resume", action="store_true", help="continue --name, running only what is missing")
    e.add_argument("--baseline", metavar="CONFIG", help="config to compare the others with (McNemar)")
    e.add_argument("--no-cache", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_eval)


def _split(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


def parse_options(raw: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in _split(raw):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InferscaleError(f"--options {pair!r} must look like KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def configs_from_flags(strategies: str | None, models: str | None, options: str | None) -> list[Any]:
    from ..orchestration.strategies import STRATEGIES
    from .runner import RunConfig

    names = _split(strategies) or ["single"]
    opts = parse_options(options)
    for s in names:
        if s not in STRATEGIES:
            raise InferscaleError(f"unknown strategy {s!r}; choose one of {', '.join(STRATEGIES)}")
    # An option goes to every strategy that has it (n to self-consistency and best-of-n, not single).
    for key in opts:
        if not any(key in STRATEGIES[s].Config.model_fields for s in names):
            raise InferscaleError(f"--options {key}: no strategy of {', '.join(names)} has that option")
    return [RunConfig(s, s, tuple(_split(models)),
                      {k: v for k, v in opts.items() if k in STRATEGIES[s].Config.model_fields})
            for s in names]


def configs_from_yaml(path: str) -> list[Any]:  # noqa: C901 - one check per field, each naming file and line
    """Parse the configs file; every error names the file, the line and the field."""
    import yaml

    from .runner import RunConfig

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InferscaleError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise InferscaleError(f"{p.name}{line}: not valid YAML") from None

    def at(node: Any) -> str:
        return f"{p.name} line {node.start_mark.line + 1}"

    if not isinstance(root, yaml.MappingNode):
        raise InferscaleError(f"{p.name} line 1: expected a mapping with a 'configs' list")
    top = {k.value: (k, v) for k, v in root.value}
    for key, (knode, _) in top.items():
        if key != "configs":
            raise InferscaleError(f"{at(knode)}: unknown field {key!r} (allowed: configs)")
    if "configs" not in top or not isinstance(top["configs"][1], yaml.SequenceNode):
        raise InferscaleError(f"{p.name} line 1: field 'configs' must be a list")
    out = []
    for i, node in enumerate(top["configs"][1].value):
        if not isinstance(node, yaml.MappingNode):
            raise InferscaleError(f"{at(node)}: configs[{i}] must be a mapping")
        fields = {k.value: (k, v) for k, v in node.value}
        for key, (knode, _) in fields.items():
            if key not in CONFIG_FIELDS:
                raise InferscaleError(f"{at(knode)}: unknown field {key!r} in configs[{i}] "
                                      f"(allowed: {', '.join(CONFIG_FIELDS)})")
        data = yaml.safe_load(yaml.serialize(node))
        if not isinstance(data.get("strategy"), str):
            raise InferscaleError(f"{at(node)}: field 'strategy' is missing in configs[{i}]")
        name = data.get("name", data["strategy"])
        models = data.get("models") or []
        if isinstance(models, str):
            models = _split(models)
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise InferscaleError(f"{at(fields['models'][1])}: field 'models' must be a list of model ids")
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise InferscaleError(f"{at(fields['options'][1])}: field 'options' must be a mapping")
        out.append(RunConfig(str(name), data["strategy"], tuple(models), options))
    if not out:
        raise InferscaleError(f"{p.name}: 'configs' is empty")
    return out


class _Progress:
    """Progress lines on stderr, at most one a second (and the last)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.latest: Any = None

    def flush(self) -> None:
        if self.latest is not None:
            self(self.latest, final=True)

    def __call__(self, p: Any, final: bool = False) -> None:
        self.latest = p
        now = time.monotonic()
        if not final and now - self.last < 1.0:
            return
        self.last = now
        parts = "  ".join(f"{c} {p.done[c]}/{p.total[c]}" for c in p.done)
        eta = "" if p.eta_s is None else f"  ETA {p.eta_s:.0f} s"
        print(f"[eval] {parts}  ${p.spent_usd:.6f}  {p.calls} calls{eta}", file=sys.stderr, flush=True)


def cmd_eval(args: argparse.Namespace) -> int:
    from ..orchestration.engine import Engine
    from ..orchestration.runner import run_sync
    from ..settings import Settings
    from . import datasets, report
    from .runner import ExperimentSpec, prepare, run_experiment
    from .store import ExperimentStore

    if args.limit is not None and args.limit <= 0:
        raise InferscaleError(f"--limit must be a positive integer, got {args.limit}")
    if args.budget_usd is not None and (not math.isfinite(args.budget_usd) or args.budget_usd < 0):
        raise InferscaleError(f"--budget-usd must be a finite number >= 0, got {args.budget_usd}")
    if args.max_calls is not None and args.max_calls <= 0:
        raise InferscaleError(f"--max-calls must be a positive integer, got {args.max_calls}")
    if args.resume and not args.name:
        raise InferscaleError("--resume needs --name NAME")
    if args.configs and args.strategies:
        raise InferscaleError("give --configs FILE.yaml or --strategies, not both")
    configs = configs_from_yaml(args.configs) if args.configs else \
        configs_from_flags(args.strategies, args.models, args.options)
    if args.scorer:
        from .scorers import check_name

        check_name(args.scorer)
    dataset = datasets.load(args.dataset, args.limit, args.seed)
    name = args.name or f"{Path(dataset.name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    spec = ExperimentSpec(
        name=name, dataset=dataset.name, configs=tuple(configs), limit=args.limit, seed=args.seed,
        scorer=args.scorer, verifier=None if args.verifier in (None, "none") else args.verifier,
        budget_usd=args.budget_usd, max_calls=args.max_calls, concurrency=args.concurrency,
        cache=not args.no_cache, baseline=args.baseline, items=len(dataset.items),
    )
    if args.verifier not in (None, "none", "auto"):
        raise InferscaleError(f"unknown verifier {args.verifier!r}: choose auto or none")
    engine = Engine(Settings.from_env())
    spec = prepare(engine, spec, dataset, args.resume)
    store = ExperimentStore(engine.database)
    before = len(store.results(name))
    todo = len(dataset.items) * len(configs) - before
    progress = _Progress()
    print(f"[eval] experiment {name}: {len(dataset.items)} items x {len(configs)} configs"
          + (f"; resuming: {before} results stored, running {todo}" if args.resume else ""),
          file=sys.stderr, flush=True)
    status = run_sync(run_experiment(engine, spec, dataset, on_progress=progress))
    progress.flush()
    rows = store.results(name)
    summary = report.summarize(spec, rows, len(dataset.items), status)
    if status != "done":
        print(f"[eval] {status}: {len(rows)} of {len(dataset.items) * len(configs)} results stored; "
              f"continue with --name {name} --resume", file=sys.stderr, flush=True)
    print(report.dumps(summary) if args.json else report.table(summary), flush=True)
    return 0
