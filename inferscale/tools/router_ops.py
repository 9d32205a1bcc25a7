"""What `inferscale router train | calibrate | eval` do, as functions the dashboard can call too."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import Analyzer
from ..config_store import TunablesStore
from ..db import Database
from ..embeddings import Embedder
from ..errors import ConfigError
from ..routing import artefact
from ..routing.artefact import METHODS, RouterModel
from ..routing.evaluation import Curve, Items, calibrate_cost, calibrate_share, decide_batch, evaluate
from ..routing.training import TrainingError, experiment_labels, feedback_labels, in_train, train


def known_experiments(db: Database) -> list[str]:
    try:
        return [r[0] for r in db.db.execute("SELECT DISTINCT experiment FROM experiment_results ORDER BY 1")]
    except Exception:  # noqa: BLE001 - no experiments table yet: no experiments
        return []


def _check_experiments(db: Database, names: list[str]) -> None:
    have = known_experiments(db)
    missing = [n for n in names if n not in have]
    if missing:
        raise ConfigError(f"unknown experiment {missing[0]!r}; stored: {', '.join(have) or 'none'}")


def train_and_store(home: Path, db: Database, embedder: Embedder, experiments: list[str] | None = None,
                    method: str | None = None) -> RouterModel:
    if method is not None and method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if experiments:
        _check_experiments(db, experiments)
    labels = experiment_labels(db, experiments) + feedback_labels(db)
    model = train(labels, embedder.embed, method, experiments)
    stored, _ = artefact.save(home, model)
    return stored


def train_json(model: RouterModel) -> dict[str, Any]:
    m = model.meta
    return {"version": model.version, "method": model.method, "prompts": m["prompts"],
            "labels": m["labels"], "models": list(model.models), "experiments": m["experiments"],
            "feedback_labels": m["feedback_labels"], "strong": m["strong"], "weak": m["weak"],
            "selection_brier": m["selection_brier"]}


@dataclass(frozen=True)
class Calibration:
    threshold: float
    strong_share: float
    mean_cost_usd: float
    prompts: int


def calibrate(home: Path, store: TunablesStore, strong_share: float | None = None,
              max_cost_usd: float | None = None) -> Calibration:
    """Set `learned_threshold` from the training prompts (leave-one-out predictions for knn, so a
    prompt never predicts itself) and save it to the tunables."""
    if (strong_share is None) == (max_cost_usd is None):
        raise ConfigError("give exactly one of --strong-share or --max-cost-usd")
    if strong_share is not None and not (math.isfinite(strong_share) and 0 < strong_share < 1):
        raise ConfigError(f"--strong-share must be strictly between 0 and 1, got {strong_share!r}")
    if max_cost_usd is not None and not (math.isfinite(max_cost_usd) and max_cost_usd > 0):
        raise ConfigError(f"--max-cost-usd must be a finite number > 0, got {max_cost_usd!r}")
    model = artefact.load(home)
    pred = model.predict(model.X, exclude_self=model.method == "knn")
    if strong_share is not None:
        t, _ = calibrate_share(model, pred, strong_share)
    else:
        t, _, _ = calibrate_cost(model, pred, max_cost_usd)  # type: ignore[arg-type]
    idx = decide_batch(pred, model.cost, t)
    share = float(np.mean(idx == model.models.index(model.meta["strong"])))
    store.save(store.load().with_value("learned_threshold", repr(float(t))))
    store.save(store.load().with_value("learned_lambda", "0"))  # the threshold rule decides from now
    return Calibration(float(t), share, float(model.cost[idx].mean()), len(pred))


def heldout_items(db: Database, experiment: str, models: tuple[str, ...]) -> Items:
    """The held-out (30%) items of one experiment that have a label and a cost for every model."""
    _check_experiments(db, [experiment])
    rows = db.db.execute(
        "SELECT item_id, prompt, models, score, correct, cost_usd FROM experiment_results"
        " WHERE experiment = ? AND strategy = 'single' AND error IS NULL ORDER BY item_id",
        [experiment]).fetchall()
    col = {m: j for j, m in enumerate(models)}
    by_item: dict[str, dict[str, Any]] = {}
    for item, prompt, ms, score, correct, cost in rows:
        ids = json.loads(ms or "[]")
        value = score if score is not None else correct
        if len(ids) != 1 or ids[0] not in col or value is None or in_train(str(item)):
            continue
        d = by_item.setdefault(str(item), {"prompt": prompt, "y": {}, "c": {}})
        d["y"][ids[0]] = min(1.0, max(0.0, float(value)))
        d["c"][ids[0]] = float(cost or 0.0)
    full = [(i, d) for i, d in by_item.items() if len(d["y"]) == len(models)]
    if not full:
        raise TrainingError(f"experiment {experiment!r} has no held-out item labelled for every router "
                            f"model ({', '.join(models)})")
    return Items(tuple(i for i, _ in full), tuple(d["prompt"] for _, d in full),
                 np.array([[d["y"][m] for m in models] for _, d in full], dtype=np.float32),
                 np.array([[d["c"][m] for m in models] for _, d in full], dtype=np.float64))


def evaluate_experiment(home: Path, db: Database, embedder: Embedder,
                        experiment: str) -> tuple[list[Curve], str, str, int]:
    _check_experiments(db, [experiment])
    model = artefact.load(home)
    items = heldout_items(db, experiment, model.models)
    X = embedder.embed(list(items.prompts))
    analyzer = Analyzer(embedder)
    complexity = np.array([analyzer.analyze(p).score for p in items.prompts])
    curves, strong, weak = evaluate(model, items, X, complexity)
    return curves, strong, weak, len(items.ids)


def eval_json(curves: list[Curve], strong: str, weak: str, n: int) -> dict[str, Any]:
    return {"routers": [{"name": c.name, "apgr": c.apgr, "cpt50": c.cpt50, "cpt80": c.cpt80, "aiq": c.aiq}
                        for c in curves], "strong": strong, "weak": weak, "items": n}
