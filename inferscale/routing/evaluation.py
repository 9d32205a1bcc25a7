"""Offline evaluation and calibration of routers on labelled items (RouteLLM, RouterBench).

x axis: the cost of the routed traffic normalised between the weak model's (0) and the strong
model's (1) cost on the same items (with two models, the share of calls sent to the strong model).
  PGR(x)  (quality(x) - q_weak) / (q_strong - q_weak), quality made non-decreasing in x;
  APGR    the mean PGR over x in [0, 1];
  CPT(p)  the smallest x at which PGR reaches p (None if it never does);
  AIQ     the area under the upper convex hull of the (x, quality) points (RouterBench).
A router's curve starts at (0, q_weak) and ends at (1, q_strong) when it stops short: one can
always send the rest to the strong model. Single-point routers (cheapest, quality, oracle) are
that point joined to both ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .artefact import RouterModel

GRID = np.linspace(0.0, 1.0, 1001)


def decide_batch(pred: np.ndarray, cost: np.ndarray, threshold: float, lam: float = 0.0) -> np.ndarray:
    """`base.choose` over many prompts at once: index of the chosen model per row."""
    if lam > 0:
        return np.argmax(pred - lam * cost[None, :] * 1000, axis=1)
    order = np.argsort(cost, kind="stable")
    clears = pred[:, order] >= threshold
    first = order[np.argmax(clears, axis=1)]
    return np.where(clears.any(axis=1), first, np.argmax(pred, axis=1))


def _candidates(pred: np.ndarray, n: int = 400) -> np.ndarray:
    vals = np.unique(pred)
    qs = np.unique(np.quantile(vals, np.linspace(0, 1, n))) if len(vals) > n else vals
    return np.unique(np.concatenate([[0.0], qs, np.nextafter(qs, 2.0), [1.0]]).clip(0.0, 1.0))


def calibrate_share(model: RouterModel, pred: np.ndarray, share: float) -> tuple[float, float]:
    """The threshold sending `share` of the prompts to the strong model (RouteLLM's
    calibrate_threshold: a quantile over the training prompts). Returns (threshold, share it gives)."""
    if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share < 1):
        raise ConfigError(f"--strong-share must be strictly between 0 and 1, got {share!r}")
    strong = model.models.index(model.meta["strong"])
    best = (math.inf, 0.5, 0.0)
    for t in _candidates(pred):
        got = float(np.mean(decide_batch(pred, model.cost, float(t)) == strong))
        if abs(got - share) < best[0]:
            best = (abs(got - share), float(t), got)
    return best[1], best[2]


def calibrate_cost(model: RouterModel, pred: np.ndarray, max_cost: float) -> tuple[float, float, float]:
    """The threshold of highest predicted quality whose mean cost per prompt stays <= `max_cost`.
    Returns (threshold, mean cost, mean predicted quality)."""
    if not (isinstance(max_cost, (int, float)) and math.isfinite(max_cost) and max_cost > 0):
        raise ConfigError(f"--max-cost-usd must be a finite number > 0, got {max_cost!r}")
    best = None
    rows = np.arange(len(pred))
    for t in _candidates(pred):
        idx = decide_batch(pred, model.cost, float(t))
        c = float(model.cost[idx].mean())
        q = float(pred[rows, idx].mean())
        if c <= max_cost and (best is None or q > best[2] + 1e-12):
            best = (float(t), c, q)
    if best is None:
        raise ConfigError(f"--max-cost-usd {max_cost:g} is below the cheapest model's mean cost "
                          f"(${float(model.cost.min()):.6g} per prompt)")
    return best


@dataclass(frozen=True)
class Items:
    """Held-out items with a label and a cost for every model of the router."""

    ids: tuple[str, ...]
    prompts: tuple[str, ...]
    Y: np.ndarray  # (n, m) labels
    C: np.ndarray  # (n, m) USD per call


@dataclass(frozen=True)
class Curve:
    name: str
    points: tuple[tuple[float, float], ...]  # (normalised cost x, mean quality), raw, sorted by x
    apgr: float
    cpt50: float | None
    cpt80: float | None
    aiq: float


def _hull_area(pts: list[tuple[float, float]]) -> float:
    pts = sorted(set(pts))
    hull: list[tuple[float, float]] = []
    for p in pts:  # upper hull, left to right (monotone chain)
        while len(hull) >= 2 and (hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1]) - \
                (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0]) >= 0:
            hull.pop()
        hull.append(p)
    xs, raw = zip(*hull, strict=True)
    ys = np.maximum.accumulate(np.array(raw))  # non-decreasing: more budget never has to buy less
    return float(np.interp(GRID, xs, ys).mean())


def curve(name: str, points: list[tuple[float, float]], q_weak: float, q_strong: float) -> Curve:
    pts = sorted({(round(min(max(x, 0.0), 1.0), 6), q) for x, q in points})
    full = [(0.0, q_weak)] + [p for p in pts if p[0] > 0] if pts[0][0] > 0 else pts
    if full[-1][0] < 1.0:
        full = full + [(1.0, max(q_strong, full[-1][1]))]
    xs = np.array([p[0] for p in full])
    qs = np.maximum.accumulate(np.array([p[1] for p in full]))
    q = np.interp(GRID, xs, qs)
    pgr = (q - q_weak) / (q_strong - q_weak)

    def cpt(level: float) -> float | None:
        hit = np.nonzero(pgr >= level - 1e-9)[0]
        return round(float(GRID[hit[0]]), 4) if len(hit) else None

    return Curve(name, tuple(pts), round(float(pgr.mean()), 4), cpt(0.5), cpt(0.8),
                 round(_hull_area(full), 4))


def evaluate(model: RouterModel, items: Items, X: np.ndarray, complexity: np.ndarray,
             seed: int = 0) -> tuple[list[Curve], str, str]:
    """Curves of learned, random, cheapest, quality, complexity and oracle on `items`."""
    strong, weak = model.meta["strong"], model.meta["weak"]
    if strong == weak:
        raise ConfigError(f"{strong} is both the best and the cheapest model on the training split: "
                          "there is nothing to route")
    s, w = model.models.index(strong), model.models.index(weak)
    n = len(items.ids)
    rows = np.arange(n)
    q_s, q_w = float(items.Y[:, s].mean()), float(items.Y[:, w].mean())
    c_s, c_w = float(items.C[:, s].mean()), float(items.C[:, w].mean())
    if not q_s > q_w:
        raise ConfigError(f"on these items the strong model {strong} ({q_s:.2f}) is not better than "
                          f"the weak {weak} ({q_w:.2f}): APGR is undefined")
    if not c_s > c_w:
        raise ConfigError(f"on these items {strong} costs no more than {weak}: record costs to compare")

    def point(idx: np.ndarray) -> tuple[float, float]:
        c = float(items.C[rows, idx].mean())
        return (c - c_w) / (c_s - c_w), float(items.Y[rows, idx].mean())

    pred = model.predict(X)
    learned = [point(decide_batch(pred, model.cost, float(t))) for t in _candidates(pred, 200)]
    u = np.random.default_rng(seed).random(n)
    shares = np.linspace(0, 1, 51)
    rand = [point(np.where(u < p, s, w)) for p in shares]
    cx = [point(np.where(complexity >= t, s, w)) for t in np.unique(np.concatenate([complexity, [1.01]]))]
    order = np.argsort(model.cost, kind="stable")
    good = items.Y[:, order] >= 0.5
    oracle = np.where(good.any(axis=1), order[np.argmax(good, axis=1)], w)
    out = [
        curve("learned", learned, q_w, q_s),
        curve("random", rand, q_w, q_s),
        curve("cheapest", [point(np.full(n, w))], q_w, q_s),
        curve("quality", [point(np.full(n, s))], q_w, q_s),
        curve("complexity", cx, q_w, q_s),
        curve("oracle", [point(oracle)], q_w, q_s),
    ]
    return out, strong, weak
