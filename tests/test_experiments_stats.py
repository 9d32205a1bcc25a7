"""Experiment statistics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from inferscale.experiments import stats


def test_wilson_interval_matches_the_closed_form():
    lo, hi = stats.wilson(5, 10)
    assert lo == pytest.approx(0.2365931, abs=1e-6) and hi == pytest.approx(0.7634069, abs=1e-6)
    lo, hi = stats.wilson(10, 10)
    assert lo == pytest.approx(0.7224672, abs=1e-6) and hi == pytest.approx(1.0)
    assert stats.wilson(0, 10)[0] == 0.0
    assert stats.wilson(0, 0) is None


def test_exact_mcnemar_is_the_two_sided_binomial_tail():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert stats.mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert stats.mcnemar_exact(5, 5) == 1.0


def test_pareto_keeps_only_undominated_points():
    pts = [(0.0005, 0.5), (0.001, 0.5), (0.003, 1.0), (0.004, 0.0)]
    assert stats.pareto(pts) == [True, False, True, False]
    assert stats.pareto([(1.0, 0.5), (1.0, 0.5)]) == [True, True]  # ties dominate neither


def test_aiq_is_the_area_under_the_non_decreasing_hull_over_the_cost_range():
    pts = [(0.0005, 0.5), (0.001, 0.5), (0.003, 1.0), (0.004, 0.0)]
    # Hull (0.0005, .5) → (0.003, 1) → (0.004, 1): 0.0025 × 0.75 + 0.001 × 1, over 0.0035.
    assert stats.aiq(pts) == pytest.approx((0.0025 * 0.75 + 0.001) / 0.0035)
    assert stats.aiq([(1.0, 0.4), (1.0, 0.7)]) == 0.7
    assert stats.aiq([]) is None
    # A point under the chord of two others does not lower the hull.
    assert stats.aiq([(0, 0.0), (1, 0.2), (2, 1.0)]) == pytest.approx(0.5)


def test_pass_at_k_unbiased_estimator():
    assert stats.pass_at_k(8, 0, 8) == 0.0
    assert stats.pass_at_k(8, 1, 8) == 1.0
    assert stats.pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert stats.pass_at_k(10, 3, 2) == pytest.approx(1 - math.comb(7, 2) / math.comb(10, 2))
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5


def test_scaling_curves_group_sweeps_of_one_strategy_and_model_set():
    from inferscale.experiments.report import scaling

    def cfg(name, strategy, models, calls, acc, passk):
        return {"config": name, "strategy": strategy, "models": models, "calls_per_item": calls,
                "accuracy": acc, "pass_at_k": passk}

    summary = {"configs": [cfg("sc-8", "self-consistency", ["m"], 8.0, 0.4, 0.7),
                           cfg("sc-2", "self-consistency", ["m"], 2.0, 0.3, 0.4),
                           cfg("single", "single", ["m"], 1.0, 0.2, None)]}
    curves = scaling(summary)
    assert [c["curve"] for c in curves] == ["self-consistency m"]
    assert [p["config"] for p in curves[0]["points"]] == ["sc-2", "sc-8"]
