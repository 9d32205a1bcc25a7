"""Training data and training for the learned router.

Labels come from two places:
  * experiment results (the experiments contract): rows of configs whose strategy is `single` and
    whose `models` list names exactly one model; label = `score` (else `correct`); rows with an
    error are skipped;
  * feedback: good = 1, bad = 0, for the rated model (or the single model that gave the final answer).
Train and eval split an experiment's items the same deterministic way, 70/30 by a hash of the item
id (`in_train`), so `router eval` never scores an item the router was trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..blas import single_thread
from ..db import Database
from ..errors import ConfigError
from .artefact import METHODS, RouterModel

TRAIN_SHARE = 70  # percent of items in the training split
PREVIEW = 80


class TrainingError(ConfigError):
    """Not enough labelled data to train or evaluate a router."""


def in_train(item_id: str) -> bool:
    h = int(hashlib.sha256(str(item_id).encode("utf-8", "surrogatepass")).hexdigest()[:8], 16)
    return h % 100 < TRAIN_SHARE


@dataclass(frozen=True)
class Label:
    item_id: str
    prompt: str
    model: str
    label: float  # in [0, 1]
    cost_usd: float
    experiment: str | None  # None = feedback


def _has_table(db: Database, name: str) -> bool:
    return db.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [name]).fetchone() is not None


def experiment_labels(db: Database, experiments: list[str] | None = None) -> list[Label]:
    """Per item x model labels from single-model configs of stored experiments."""
    if not _has_table(db, "experiment_results"):
        return []
    sql = ("SELECT experiment, item_id, prompt, models, score, correct, cost_usd FROM experiment_results"
           " WHERE strategy = 'single' AND error IS NULL")
    params: list[str] = []
    if experiments:
        sql += f" AND experiment IN ({','.join('?' * len(experiments))})"
        params = experiments
    out = []
    for exp, item, prompt, models, score, correct, cost in db.db.execute(sql, params).fetchall():
        try:
            ids = json.loads(models or "[]")
        except ValueError:
            continue
        value = score if score is not None else correct
        if len(ids) != 1 or value is None or not prompt or not math.isfinite(float(value)):
            continue
        out.append(Label(str(item), prompt, ids[0], min(1.0, max(0.0, float(value))), float(cost or 0.0), exp))
    return out


def feedback_labels(db: Database) -> list[Label]:
    """Feedback as labels: on a model card for that model, on a final answer for the one model that
    produced it (an ensemble's final answer says nothing about one model)."""
    rows = db.db.execute(
        "SELECT f.request_id, f.rating, f.model, r.models, COALESCE(l.prompt, r.prompt_preview), r.cost_usd"
        " FROM feedback f JOIN requests r ON r.id = f.request_id"
        " LEFT JOIN request_log l ON l.request_id = f.request_id ORDER BY f.ts").fetchall()
    out = []
    for rid, rating, model, models, prompt, cost in rows:
        if model is None:
            ids = json.loads(models or "[]")
            if len(ids) != 1:
                continue
            model = ids[0]
        out.append(Label(f"request:{rid}", prompt or "", model, 1.0 if rating == "good" else 0.0,
                         float(cost or 0.0), None))
    return [lb for lb in out if lb.prompt]


@dataclass(frozen=True)
class Matrix:
    """Labels as a prompt x model matrix (NaN = no label), the mean of repeated labels."""

    prompts: tuple[str, ...]
    items: tuple[str, ...]
    models: tuple[str, ...]
    Y: np.ndarray
    cost: np.ndarray  # (m,) mean USD per labelled call


def matrix(labels: list[Label], models: tuple[str, ...] | None = None) -> Matrix:
    models = models or tuple(sorted({lb.model for lb in labels}))
    col = {m: j for j, m in enumerate(models)}
    rows: dict[str, int] = {}
    items: list[str] = []
    sums: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    cost_sum: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for lb in labels:
        if lb.model not in col:
            continue
        i = rows.setdefault(lb.prompt, len(rows))
        if i == len(items):
            items.append(lb.item_id)
        cell = sums[(i, col[lb.model])]
        cell[0] += lb.label
        cell[1] += 1
        c = cost_sum[lb.model]
        c[0] += lb.cost_usd
        c[1] += 1
    Y = np.full((len(rows), len(models)), np.nan, dtype=np.float32)
    for (i, j), (s, n) in sums.items():
        Y[i, j] = s / n
    cost = np.array([cost_sum[m][0] / cost_sum[m][1] if cost_sum[m][1] else 0.0 for m in models])
    return Matrix(tuple(rows), tuple(items), models, Y, cost)


def strong_weak(mx: Matrix) -> tuple[str, str]:
    """The best model (highest mean label) and the cheapest (lowest mean cost, then best)."""
    q = np.nanmean(np.where(np.isnan(mx.Y), np.nan, mx.Y), axis=0)
    strong = int(np.nanargmax(q))
    weak = min(range(len(mx.models)), key=lambda j: (mx.cost[j], -q[j]))
    return mx.models[strong], mx.models[weak]


def fit(mx: Matrix, X: np.ndarray, method: str, seed: int = 0) -> RouterModel:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    prior = np.nan_to_num(np.nanmean(mx.Y, axis=0), nan=0.5).astype(np.float32)
    base = dict(method=method, models=mx.models, X=X.astype(np.float32), Y=mx.Y, prior=prior,
                cost=mx.cost, previews=tuple(p[:PREVIEW] for p in mx.prompts))
    if method == "knn":
        return RouterModel(**base)
    with single_thread():
        P, U, b = _fit_mf(X.astype(np.float32), mx.Y, prior, seed)
    return RouterModel(**base, P=P, U=U, b=b)


def _fit_mf(X: np.ndarray, Y: np.ndarray, prior: np.ndarray, seed: int, d: int = 32, epochs: int = 200,
            lr: float = 0.03, l2: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch Adam on the cross-entropy of the observed labels."""
    rng = np.random.default_rng(seed)
    n, dim = X.shape
    m = Y.shape[1]
    mask = (~np.isnan(Y)).astype(np.float32)
    y = np.nan_to_num(Y).astype(np.float32)
    P = (rng.standard_normal((dim, d)) / math.sqrt(dim)).astype(np.float32)
    U = (rng.standard_normal((m, d)) * 0.1).astype(np.float32)
    p0 = np.clip(prior, 1e-3, 1 - 1e-3)
    b = np.log(p0 / (1 - p0)).astype(np.float32)
    params = [P, U, b]
    mom = [np.zeros_like(p) for p in params]
    vel = [np.zeros_like(p) for p in params]
    denom = max(float(mask.sum()), 1.0)
    for t in range(1, epochs + 1):
        Z = X @ P
        logits = Z @ U.T + b
        g = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30))) - y) * mask / denom  # dL/dlogits
        gU = g.T @ Z + l2 * U
        gb = g.sum(axis=0)
        gP = X.T @ (g @ U) + l2 * P
        for i, grad in enumerate((gP, gU, gb)):
            mom[i] = 0.9 * mom[i] + 0.1 * grad
            vel[i] = 0.999 * vel[i] + 0.001 * grad * grad
            params[i] -= lr * (mom[i] / (1 - 0.9 ** t)) / (np.sqrt(vel[i] / (1 - 0.999 ** t)) + 1e-8)
    return P, U, b


def brier(model: RouterModel, X: np.ndarray, Y: np.ndarray) -> float:
    pred = model.predict(X)
    have = ~np.isnan(Y)
    return float(np.mean((pred[have] - Y[have]) ** 2)) if have.any() else float("nan")


def _val_split(item: str) -> bool:
    return int(hashlib.sha256(f"val:{item}".encode()).hexdigest()[:8], 16) % 5 == 0


def train(labels: list[Label], embed: Callable[[list[str]], np.ndarray], method: str | None = None,
          experiments: list[str] | None = None) -> RouterModel:
    """Train on the training split. Without `method`, both are fitted on 80% of it and the one with
    the lower Brier score on the other 20% is kept (measured, per training set)."""
    labels = [lb for lb in labels if lb.experiment is None or in_train(lb.item_id)]
    if not labels:
        raise TrainingError("no labelled prompts: run an experiment with single-model configs "
                            "(or give feedback on answers) first")
    mx = matrix(labels)
    if len(mx.models) < 2:
        raise TrainingError(f"training needs labels for at least 2 models, found {len(mx.models)}"
                            + (f" ({mx.models[0]})" if mx.models else ""))
    t0 = time.perf_counter()
    X = embed(list(mx.prompts))
    t_embed = time.perf_counter() - t0
    measured: dict[str, float] = {}
    if method is None:
        val = np.array([_val_split(i) for i in mx.items])
        if val.sum() >= 5 and (~val).sum() >= 5:
            sub = Matrix(tuple(p for p, v in zip(mx.prompts, val, strict=True) if not v),
                         tuple(i for i, v in zip(mx.items, val, strict=True) if not v),
                         mx.models, mx.Y[~val], mx.cost)
            for meth in METHODS:
                measured[meth] = brier(fit(sub, X[~val], meth), X[val], mx.Y[val])
            method = min(measured, key=lambda k: (measured[k], k != "knn"))
        else:
            method = "knn"
    t1 = time.perf_counter()
    model = fit(mx, X, method)
    strong, weak = strong_weak(mx)
    meta = {
        "created_at": time.time(), "prompts": len(mx.prompts), "labels": int((~np.isnan(mx.Y)).sum()),
        "experiments": sorted({lb.experiment for lb in labels if lb.experiment}),
        "feedback_labels": sum(lb.experiment is None for lb in labels),
        "strong": strong, "weak": weak, "selection_brier": measured,
        "quality": {m: float(q) for m, q in zip(mx.models, np.nanmean(mx.Y, axis=0), strict=True)},
        "cost_usd": {m: float(c) for m, c in zip(mx.models, mx.cost, strict=True)},
        "embed_s": round(t_embed, 3), "fit_s": round(time.perf_counter() - t1, 3),
        "filter": experiments or [],
    }
    return RouterModel(**{**model.__dict__, "meta": meta})
