"""From stored rows to the `inferscale eval --json` object and the closing table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import stats
from .runner import ExperimentSpec


def config_summary(config: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    errors = sum(1 for r in rows if r["error"] is not None)
    scored = [r for r in rows if r["error"] is None]
    correct = sum(int(r["correct"] or 0) for r in scored)
    cost = sum(r["cost_usd"] or 0.0 for r in rows)
    lat = [r["latency_ms"] for r in scored if r["latency_ms"] is not None]
    applicable = [r["pass_at_k"] for r in scored if r["pass_at_k"] is not None]
    ci = stats.wilson(correct, len(scored))
    return {
        "config": config["name"], "strategy": config["strategy"], "models": list(config["models"]),
        "n": n, "correct": correct, "errors": errors,
        "accuracy": correct / len(scored) if scored else None,
        "ci95": list(ci) if ci else None,
        "cost_usd": cost,
        "cost_per_item_usd": cost / n if n else None,
        "cost_per_correct_usd": cost / correct if correct else None,
        "latency_p50_ms": stats.percentile(lat, 50), "latency_p95_ms": stats.percentile(lat, 95),
        "calls_per_item": sum(r["calls"] or 0 for r in rows) / n if n else None,
        "pareto": False, "vs_baseline": None,
        "pass_at_k": sum(applicable) / len(applicable) if applicable else None,
    }


def paired(base: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items both configs scored: gained = the baseline wrong and this right; lost = the reverse."""
    b = {r["item_id"]: r["correct"] for r in base if r["error"] is None}
    o = {r["item_id"]: r["correct"] for r in other if r["error"] is None}
    common = b.keys() & o.keys()
    gained = sum(1 for i in common if not b[i] and o[i])
    lost = sum(1 for i in common if b[i] and not o[i])
    return {"gained": gained, "lost": lost, "p_value": stats.mcnemar_exact(gained, lost)}


def summarize(spec: ExperimentSpec, rows: Sequence[dict[str, Any]], items: int,
              status: str) -> dict[str, Any]:
    by_config: dict[str, list[dict[str, Any]]] = {c.name: [] for c in spec.configs}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r)
    configs = [config_summary(c.to_json(), by_config[c.name]) for c in spec.configs]
    ranked = [(c["cost_per_item_usd"], c["accuracy"]) for c in configs if c["accuracy"] is not None]
    front = iter(stats.pareto(ranked))
    for c in configs:
        c["pareto"] = bool(next(front)) if c["accuracy"] is not None else False
    if spec.baseline is not None:
        for c in configs:
            if c["config"] != spec.baseline:
                c["vs_baseline"] = paired(by_config[spec.baseline], by_config[c["config"]])
    return {"experiment": spec.name, "dataset": spec.dataset, "items": items, "status": status,
            "configs": configs, "aiq": stats.aiq(ranked)}


def scaling(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy and pass@k against calls per item, for configs of one strategy and model set that
    differ only in n or budget (a sweep): one curve per (strategy, models)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for c in summary["configs"]:
        if c["accuracy"] is None:
            continue
        curves.setdefault(f"{c['strategy']} {'+'.join(c['models'])}", []).append(
            {"config": c["config"], "calls_per_item": c["calls_per_item"], "accuracy": c["accuracy"],
             "pass_at_k": c["pass_at_k"]})
    return [{"curve": k, "points": sorted(v, key=lambda p: p["calls_per_item"] or 0)}
            for k, v in curves.items() if len(v) > 1]


def table(summary: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def usd(v: float | None) -> str:
        return "-" if v is None else f"${v:.6f}"

    head = (f"{'config':20} {'n':>4} {'err':>4} {'accuracy':>9} {'95% CI':>15} {'pass@k':>7} "
            f"{'$/item':>11} {'$/correct':>11} {'p50 ms':>8} {'calls':>6}  pareto  vs baseline")
    lines = [f"experiment {summary['experiment']} on {summary['dataset']} ({summary['items']} items, "
             f"{summary['status']})", head]
    for c in summary["configs"]:
        ci = "-" if c["ci95"] is None else f"[{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]"
        vb = c["vs_baseline"]
        vs = "-" if vb is None else f"+{vb['gained']}/-{vb['lost']} p={vb['p_value']:.3f}"
        p50 = "-" if c["latency_p50_ms"] is None else f"{c['latency_p50_ms']:.0f}"
        calls = "-" if c["calls_per_item"] is None else f"{c['calls_per_item']:.1f}"
        lines.append(f"{c['config'][:20]:20} {c['n']:>4} {c['errors']:>4} {pct(c['accuracy']):>9} {ci:>15} "
                     f"{pct(c['pass_at_k']):>7} {usd(c['cost_per_item_usd']):>11} "
                     f"{usd(c['cost_per_correct_usd']):>11} {p50:>8} {calls:>6}  "
                     f"{'yes' if c['pareto'] else '':6}  {vs}")
    lines.append("AIQ: " + ("-" if summary["aiq"] is None else f"{summary['aiq']:.4f}"))
    return "\n".join(lines)


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, ensure_ascii=False)
