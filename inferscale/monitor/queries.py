"""Read-only chart queries over the monitor tables, returning small pandas DataFrames.

Everything is aggregated in SQL, one scan per table: a "rollup" groups the window's rows by time
bucket, model, strategy or latency bin, and each chart is a pandas sum over the rollup's few hundred
rows, however many requests are logged (100,000 requests → under a second for every chart). The
dashboard wraps these in `st.cache_data`; this module never imports streamlit.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..types import CACHE_LEVELS

# Bucket widths tried in order; the first that gives at most MAX_BUCKETS points wins.
BUCKETS_S = (300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 200
FINE_BINS_PER_DECADE = 100  # latency rollup: percentiles are exact to within ±1.2%
CHART_BINS_PER_DECADE = 10  # latency histogram shown


@dataclass(frozen=True)
class Window:
    """A time range [start, end) in epoch seconds, whether synthetic (seeded) rows count, and
    optionally only one source (cli, batch, playground, gateway…) and one tenant (a key's name)."""

    start: float
    end: float
    include_synthetic: bool = True
    source: str | None = None
    tenant: str | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")

    @property
    def bucket_s(self) -> int:
        span = self.end - self.start
        return next((b for b in BUCKETS_S if span / b <= MAX_BUCKETS), BUCKETS_S[-1])


def _where(conn: sqlite3.Connection, table: str, w: Window) -> tuple[str, list[Any]]:
    """The window's WHERE clause for `table`.

    When the window covers most of the table, a plain scan beats walking the ts index and fetching
    each row from the table (2-3x here), so `+ts` tells SQLite not to use the index.
    """
    lo, hi = conn.execute(f"SELECT MIN(ts), MAX(ts) FROM [{table}]").fetchone()  # two index seeks
    covered = 0.0
    if lo is not None:
        covered = max(0.0, min(hi, w.end) - max(lo, w.start)) / max(hi - lo, 1e-9)
    col = "+ts" if covered > 0.3 else "ts"
    sql = f"{col} >= ? AND {col} < ?" + ("" if w.include_synthetic else " AND synthetic = 0")
    params: list[Any] = [w.start, w.end]
    who = [(c, v) for c, v in (("source", w.source), ("tenant", w.tenant)) if v is not None]
    if who:
        cond = " AND ".join(f"{c} = ?" for c, _ in who)
        # Only `requests` carries source and tenant; the other tables follow their request.
        sql += f" AND {cond}" if table == "requests" else \
            f" AND request_id IN (SELECT id FROM requests WHERE {cond})"
        params += [v for _, v in who]
    return sql, params


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection (charts never write). Cheap enough to open per page render."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=30,
                           check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    try:
        conn.execute("SELECT log10(10)")
    except sqlite3.OperationalError:  # SQLite built without math functions
        conn.create_function("log10", 1, lambda x: math.log10(x) if x and x > 0 else None,
                             deterministic=True)
    return conn


def _frame(conn: sqlite3.Connection, sql: str, params: list[Any]) -> pd.DataFrame:
    cur = conn.execute(sql, params)
    return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


def _times(df: pd.DataFrame, col: str = "t") -> pd.DataFrame:
    df[col] = pd.to_datetime(df[col], unit="s", utc=True)
    return df


# -- overview -----------------------------------------------------------------------------------
def data_range(conn: sqlite3.Connection) -> tuple[float, float] | None:
    """(first, last) request timestamp, or None when nothing is logged."""
    lo, hi = conn.execute("SELECT MIN(ts), MAX(ts) FROM requests").fetchone()
    return None if lo is None else (float(lo), float(hi))


def summary(conn: sqlite3.Connection, w: Window) -> dict[str, Any]:
    """Totals for the overview: requests, cost, savings, latency p50, hit rate per cache level."""
    where, params = _where(conn, "requests", w)
    n, ok, failed, cost, saved, synthetic, n_lat, interrupted = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(status='ok'),0), COALESCE(SUM(status='error'),0),"
        f" COALESCE(SUM(cost_usd),0), COALESCE(SUM(saved_usd),0), COALESCE(SUM(synthetic),0),"
        f" COALESCE(SUM(status='ok' AND latency_ms IS NOT NULL),0), COALESCE(SUM(status='interrupted'),0)"
        f" FROM requests WHERE {where}", params).fetchone()
    p50 = None
    if n_lat:
        p50 = conn.execute(
            f"SELECT latency_ms FROM requests WHERE {where} AND status='ok' AND latency_ms IS NOT NULL"
            f" ORDER BY latency_ms LIMIT 1 OFFSET ?", [*params, (n_lat - 1) // 2]).fetchone()[0]
    levels = {lv: {"hits": 0, "lookups": 0, "hit_rate": None} for lv in CACHE_LEVELS}
    where, params = _where(conn, "cache_events", w)
    for level, hits, lookups in conn.execute(
        f"SELECT level, SUM(hit), COUNT(*) FROM cache_events WHERE {where} GROUP BY level ORDER BY level",
        params,
    ):
        levels[level] = {"hits": hits, "lookups": lookups, "hit_rate": hits / lookups if lookups else None}
    return {
        "requests": n, "ok": ok, "failed": failed, "cost_usd": cost, "saved_usd": saved,
        "latency_p50_ms": p50, "synthetic": synthetic, "cache": levels, "interrupted": interrupted,
    }


def recent_requests(conn: sqlite3.Connection, limit: int = 20, include_synthetic: bool = True,
                    source: str | None = None, tenant: str | None = None) -> pd.DataFrame:
    """The last requests, newest first (the dashboard shows text columns as plain text)."""
    conds = [c for c, on in (("synthetic = 0", not include_synthetic), ("source = ?", source is not None),
                             ("tenant = ?", tenant is not None)) if on]
    params = [v for v in (source, tenant) if v is not None]
    flt = ("WHERE " + " AND ".join(conds)) if conds else ""
    df = _frame(conn, f"""
        SELECT ts AS time, status, source, tenant AS key, prompt_preview AS prompt, strategy, router,
               domain, models, cache_level AS cache, cost_usd, saved_usd, latency_ms, error, synthetic
        FROM requests {flt} ORDER BY ts DESC LIMIT ?""", [*params, limit])
    return _times(df, "time")


def sources_and_tenants(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Every source and every key name seen, for the filters."""
    sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM requests WHERE source IS NOT NULL"
                                          " ORDER BY 1")]
    tenants = [r[0] for r in conn.execute("SELECT DISTINCT tenant FROM requests WHERE tenant IS NOT NULL"
                                          " ORDER BY 1")]
    return sources, tenants


def requests_per_key(conn: sqlite3.Connection, w: Window) -> pd.DataFrame:
    """Requests, failures, spend and savings per gateway key (tenant) in the window."""
    where, params = _where(conn, "requests", w)
    return _frame(conn, f"""
        SELECT tenant AS key, COUNT(*) AS requests, COALESCE(SUM(status = 'error'), 0) AS errors,
               COALESCE(SUM(cache_level IS NOT NULL), 0) AS cache_hits,
               COALESCE(SUM(cost_usd), 0) AS cost_usd, COALESCE(SUM(saved_usd), 0) AS saved_usd
        FROM requests WHERE {where} AND tenant IS NOT NULL GROUP BY tenant ORDER BY requests DESC""", params)


# -- rollups: one scan per table ----------------------------------------------------------------
def requests_rollup(conn: sqlite3.Connection, w: Window) -> pd.DataFrame:
    where, params = _where(conn, "requests", w)
    b = w.bucket_s
    return _frame(conn, f"""
        SELECT CAST(ts AS INTEGER) / {b} * {b} AS t, strategy, COUNT(*) AS requests,
               COALESCE(SUM(status = 'error'), 0) AS errors, COALESCE(SUM(cost_usd), 0) AS cost_usd,
               COALESCE(SUM(saved_usd), 0) AS saved_usd, COALESCE(SUM(latency_ms), 0) AS latency_ms_sum,
               COUNT(latency_ms) AS latency_n
        FROM requests WHERE {where} GROUP BY 1, 2""", params)


def calls_rollup(conn: sqlite3.Connection, w: Window) -> pd.DataFrame:
    """Model calls per (model, fine log-latency bin, ok)."""
    where, params = _where(conn, "model_calls", w)
    k = FINE_BINS_PER_DECADE
    return _frame(conn, f"""
        SELECT model, CAST(floor(log10(MAX(COALESCE(latency_ms, 1), 1)) * {k}) AS INTEGER) AS bin,
               error_class IS NULL AS ok, COUNT(*) AS calls, COALESCE(SUM(tokens_in), 0) AS tokens_in,
               COALESCE(SUM(tokens_out), 0) AS tokens_out, COALESCE(SUM(cost_usd), 0) AS cost_usd
        FROM model_calls WHERE {where} GROUP BY 1, 2, 3""", params)


# -- charts -------------------------------------------------------------------------------------
def hit_rate_over_time(conn: sqlite3.Connection, w: Window) -> pd.DataFrame:
    where, params = _where(conn, "cache_events", w)
    b = w.bucket_s
    df = _frame(conn, f"""
        SELECT CAST(ts AS INTEGER) / {b} * {b} AS t, level, SUM(hit) AS hits, COUNT(*) AS lookups,
               COALESCE(SUM(saved_usd), 0) AS saved_usd, COALESCE(SUM(saved_ms), 0) AS saved_ms
        FROM cache_events WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2""", params)
    df["hit_rate"] = (df["hits"] / df["lookups"]).astype(float)
    return _times(df)


def cache_levels(conn: sqlite3.Connection, w: Window, hit_rate: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cache level: lookups, hits, misses, hit rate, $ and ms saved, and evictions (when the
    cache logs them in `cache_evictions`)."""
    hr = hit_rate_over_time(conn, w) if hit_rate is None else hit_rate
    df = hr.groupby("level", as_index=False)[["lookups", "hits", "saved_usd", "saved_ms"]].sum()
    df.insert(3, "misses", df["lookups"] - df["hits"])
    df.insert(4, "hit_rate", (df["hits"] / df["lookups"].where(df["lookups"] > 0)).astype(float))
    has_log = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cache_evictions'").fetchone()
    ev = pd.DataFrame(columns=["level", "evictions"])
    if has_log:
        ev = _frame(conn, "SELECT level, COUNT(*) AS evictions FROM cache_evictions"
                          " WHERE ts >= ? AND ts < ? GROUP BY level", [w.start, w.end])
    df = df.merge(ev, on="level", how="outer")
    df["evictions"] = df["evictions"].fillna(0).astype(int)
    return df.fillna({"lookups": 0, "hits": 0, "misses": 0, "saved_usd": 0.0, "saved_ms": 0.0})


def cost_over_time(conn: sqlite3.Connection, w: Window, rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    r = requests_rollup(conn, w) if rollup is None else rollup
    df = r.groupby("t", as_index=False)[["requests", "cost_usd", "saved_usd"]].sum().sort_values("t")
    return _times(df.reset_index(drop=True))


def requests_per_strategy(conn: sqlite3.Connection, w: Window,
                          rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    r = requests_rollup(conn, w) if rollup is None else rollup
    df = r.groupby("strategy", as_index=False, dropna=False)[
        ["requests", "errors", "cost_usd", "latency_ms_sum", "latency_n"]].sum()
    df["mean_latency_ms"] = df["latency_ms_sum"] / df["latency_n"].where(df["latency_n"] > 0)
    df = df.drop(columns=["latency_ms_sum", "latency_n"]).sort_values("requests", ascending=False)
    return df.reset_index(drop=True)


def latency_histogram(conn: sqlite3.Connection, w: Window,
                      rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    """Successful call latencies per model in log-spaced bins (10 per decade)."""
    r = calls_rollup(conn, w) if rollup is None else rollup
    ok = r[r["ok"] == 1]
    step = FINE_BINS_PER_DECADE // CHART_BINS_PER_DECADE
    df = (ok.assign(bin=ok["bin"] // step).groupby(["model", "bin"], as_index=False)["calls"].sum())
    k = CHART_BINS_PER_DECADE
    df["latency_ms_from"] = (10.0 ** (df["bin"] / k)).round(1)
    df["latency_ms_to"] = (10.0 ** ((df["bin"] + 1) / k)).round(1)
    return df.drop(columns=["bin"]).reset_index(drop=True)


def latency_percentiles(conn: sqlite3.Connection, w: Window,
                        rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    """p50/p95/max of successful calls per model, from the fine bins (±1.2%: bin midpoints)."""
    r = calls_rollup(conn, w) if rollup is None else rollup
    k = FINE_BINS_PER_DECADE
    rows = []
    for model, g in r[r["ok"] == 1].groupby("model"):
        g = g.groupby("bin")["calls"].sum().sort_index()
        cum, n = g.cumsum().to_numpy(), int(g.sum())
        mid = 10.0 ** ((g.index.to_numpy() + 0.5) / k)

        def q(p: float, cum: np.ndarray = cum, n: int = n, mid: np.ndarray = mid) -> float:
            return round(float(mid[int(np.searchsorted(cum, p * n))]), 1)

        rows.append({"model": model, "calls": n, "p50_ms": q(0.5), "p95_ms": q(0.95),
                     "max_ms": round(float(10.0 ** ((g.index.max() + 1) / k)), 1)})
    return pd.DataFrame(rows, columns=["model", "calls", "p50_ms", "p95_ms", "max_ms"])


def requests_per_model(conn: sqlite3.Connection, w: Window,
                       rollup: pd.DataFrame | None = None) -> pd.DataFrame:
    r = calls_rollup(conn, w) if rollup is None else rollup
    df = r.assign(errors=r["calls"] * (1 - r["ok"])).groupby("model", as_index=False)[
        ["calls", "errors", "tokens_in", "tokens_out", "cost_usd"]].sum()
    return df.sort_values("calls", ascending=False).reset_index(drop=True)


def routing_by_domain(conn: sqlite3.Connection, w: Window) -> pd.DataFrame:
    """Routing decisions per prompt domain and the model placed first."""
    where, params = _where(conn, "routing_decisions", w)
    df = _frame(conn, f"""
        SELECT COALESCE(domain, '?') AS domain, models, policy, COUNT(*) AS decisions,
               SUM(complexity) AS complexity_sum
        FROM routing_decisions WHERE {where} GROUP BY 1, 2, 3""", params)
    # Parse the JSON model list once per distinct value, not once per row.
    first = {m: (_first_model(m)) for m in df["models"].unique()}
    df["model"] = df["models"].map(first)
    df = df.groupby(["domain", "model", "policy"], as_index=False)[["decisions", "complexity_sum"]].sum()
    df["mean_complexity"] = (df["complexity_sum"] / df["decisions"]).round(4)
    df = df.drop(columns=["complexity_sum"]).sort_values(["domain", "decisions"], ascending=[True, False])
    return df.reset_index(drop=True)


def _first_model(models_json: str | None) -> str:
    import json

    try:
        models = json.loads(models_json or "[]")
    except ValueError:
        return "?"
    return str(models[0]) if models else "?"


CHARTS = ("hit_rate_over_time", "cache_levels", "cost_over_time", "latency_histogram", "latency_percentiles",
          "requests_per_model", "requests_per_strategy", "routing_by_domain")


def all_charts(conn: sqlite3.Connection, w: Window) -> dict[str, pd.DataFrame]:
    """Every chart's data for one window: four table scans in all."""
    req, calls, hr = requests_rollup(conn, w), calls_rollup(conn, w), hit_rate_over_time(conn, w)
    return {
        "hit_rate_over_time": hr,
        "cache_levels": cache_levels(conn, w, hr),
        "cost_over_time": cost_over_time(conn, w, req),
        "latency_histogram": latency_histogram(conn, w, calls),
        "latency_percentiles": latency_percentiles(conn, w, calls),
        "requests_per_model": requests_per_model(conn, w, calls),
        "requests_per_strategy": requests_per_strategy(conn, w, req),
        "routing_by_domain": routing_by_domain(conn, w),
        "requests_per_key": requests_per_key(conn, w),
    }


def load_charts(db_path: str | Path, w: Window) -> dict[str, pd.DataFrame]:
    conn = connect(db_path)
    try:
        return all_charts(conn, w)
    finally:
        conn.close()


def default_window(db_path: str | Path, include_synthetic: bool = True) -> Window:
    """All logged data (or the last day when there is none yet)."""
    conn = connect(db_path)
    try:
        rng = data_range(conn)
    finally:
        conn.close()
    now = time.time()
    start = rng[0] if rng else now - 86400
    return Window(start, max(now, rng[1] if rng else now) + 1, include_synthetic)
