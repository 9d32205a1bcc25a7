"""GET /metrics in Prometheus' text format, read from the monitor tables.

Read from SQLite rather than counted in process memory: with `serve --workers N` every worker
answers scrapes, and each would otherwise report only its own share (prometheus-client's
multiprocess mode needs a shared directory and forbids some metric types). The tables are already
the one record of every request, so the figures agree with `inferscale stats` and the dashboard,
across workers and restarts; they cover every source (gateway, cli, batch, playground), labelled.
Synthetic (seeded demo) rows are left out.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ..db import Database

# Seconds; the gateway adds milliseconds, a model call takes from ~0.1 s to a minute.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MonitorCollector(Collector):
    def __init__(self, database: Database) -> None:
        self._dbh = database

    def collect(self) -> Any:
        db = self._dbh.db
        req = CounterMetricFamily("inferscale_requests", "Requests by source and status",
                                  labels=["source", "status"])
        err = CounterMetricFamily("inferscale_request_errors", "Failed requests by source",
                                  labels=["source"])
        spent = CounterMetricFamily("inferscale_cost_usd", "Dollars spent on model calls",
                                    labels=["source"])
        saved = CounterMetricFamily("inferscale_saved_usd", "Dollars the cache saved", labels=["source"])
        for source, status, n in db.execute(
                "SELECT source, status, COUNT(*) FROM requests WHERE synthetic = 0"
                " GROUP BY source, status").fetchall():
            req.add_metric([source or "api", status], n)
            if status == "error":
                err.add_metric([source or "api"], n)
        for source, cost, sav in db.execute(
                "SELECT source, COALESCE(SUM(cost_usd), 0), COALESCE(SUM(saved_usd), 0) FROM requests"
                " WHERE synthetic = 0 GROUP BY source").fetchall():
            spent.add_metric([source or "api"], cost)
            saved.add_metric([source or "api"], sav)
        yield from (req, err, spent, saved)

        hits = CounterMetricFamily("inferscale_cache_hits", "Cache hits per level", labels=["level"])
        misses = CounterMetricFamily("inferscale_cache_misses", "Cache misses per level", labels=["level"])
        for level, h, m in db.execute("SELECT level, COALESCE(SUM(hit), 0), COALESCE(SUM(1 - hit), 0)"
                                      " FROM cache_events WHERE synthetic = 0 GROUP BY level").fetchall():
            hits.add_metric([level], h)
            misses.add_metric([level], m)
        yield from (hits, misses)

        calls = CounterMetricFamily("inferscale_model_call_errors", "Failed model calls",
                                    labels=["model", "error_class"])
        for model, cls, n in db.execute("SELECT model, error_class, COUNT(*) FROM model_calls"
                                        " WHERE synthetic = 0 AND error_class IS NOT NULL"
                                        " GROUP BY model, error_class").fetchall():
            calls.add_metric([model, cls], n)
        yield calls

        hist = HistogramMetricFamily("inferscale_request_latency_seconds",
                                     "End-to-end latency of answered requests", labels=["source"])
        cols = ", ".join(f"SUM(latency_ms <= {b * 1000:g})" for b in BUCKETS)
        for row in db.execute(f"SELECT source, COUNT(*), COALESCE(SUM(latency_ms), 0), {cols} FROM requests"
                              " WHERE synthetic = 0 AND status = 'ok' GROUP BY source").fetchall():
            source, n, total_ms, *cum = row
            buckets = [(f"{b:g}", c or 0) for b, c in zip(BUCKETS, cum, strict=True)] + [("+Inf", n)]
            hist.add_metric([source or "api"], buckets, total_ms / 1000)
        yield hist


def render(database: Database) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(database))
    return generate_latest(registry)
