"""Statistics for experiments: Wilson 95% interval, exact McNemar, the cost–accuracy Pareto front,
RouterBench's AIQ, and pass@k (oracle, and the unbiased estimator for scaling curves)."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for correct/n (None when n = 0): sound at 0/n and n/n, unlike the
    normal approximation."""
    if n <= 0:
        return None
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs (binomial, p = 0.5)."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def pareto(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, accuracy): True when no other point is at most as costly and at least as
    accurate, and strictly better in one of the two."""
    out = []
    for i, (c, a) in enumerate(points):
        dominated = any(
            (c2 <= c and a2 >= a) and (c2 < c or a2 > a)
            for j, (c2, a2) in enumerate(points) if j != i
        )
        out.append(not dominated)
    return out


def aiq(points: Sequence[tuple[float, float]]) -> float | None:
    """RouterBench's AIQ: the area under the non-decreasing convex hull of the (cost, quality)
    points, divided by the cost range (the best quality when every point has the same cost)."""
    pts = sorted((float(c), float(q)) for c, q in points)
    if not pts:
        return None
    lo, hi = pts[0][0], pts[-1][0]
    if hi - lo <= 0:
        return max(q for _, q in pts)
    # Non-decreasing: a costlier point below the best cheaper one is replaced by that best.
    front: list[tuple[float, float]] = []
    for c, q in pts:
        best = max(q, front[-1][1]) if front else q
        front.append((c, best))
    # Upper convex hull (monotone chain) of the front.
    hull: list[tuple[float, float]] = []
    for p in front:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    area = sum((c2 - c1) * (q1 + q2) / 2 for (c1, q1), (c2, q2) in zip(hull, hull[1:], strict=False))
    return area / (hi - lo)


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are right (Chen et al. 2021)."""
    if k <= 0 or n <= 0:
        raise ValueError("n and k must be positive")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
