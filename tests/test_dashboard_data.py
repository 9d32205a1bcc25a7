"""Unit tests for the dashboard's data layer: chart queries, seeding, form helpers, probe, CLI."""

from __future__ import annotations

import dataclasses
import json
import queue
import sqlite3
from typing import Any

import pandas as pd
import pytest

from dashboard.data import (
    apply_tunables,
    spec_from_form,
    submit_ask,
    timeline_frame,
    to_raw,
    tunable_fields,
)
from inferscale.errors import ConfigError
from inferscale.monitor import queries
from inferscale.orchestration.runner import run_sync
from inferscale.providers.probe import probe_model
from inferscale.settings import Tunables
from inferscale.tools.seed import TABLES, clear_synthetic, seed_synthetic
from inferscale.types import StepTiming
from tests.support.dashboard import dashboard_models
from tests.support.fakes import KEY_VAR

NOW = 1_800_000_000.0


@pytest.fixture
def engine(make_engine: Any) -> Any:
    return make_engine(*dashboard_models())


def window(**kw: Any) -> queries.Window:
    return queries.Window(NOW - 10 * 86400, NOW + 1, **kw)


def test_seed_marks_every_row_synthetic_and_clear_removes_them(engine: Any) -> None:
    counts = seed_synthetic(engine.database, 3000, days=5, now=NOW)
    assert counts["requests"] == counts["routing_decisions"] == 3000
    assert counts["model_calls"] > 1000 and counts["cache_events"] > 9000
    db = engine.database.db
    for t in TABLES:
        assert db.execute(f"SELECT COUNT(*), MIN(synthetic) FROM [{t}]").fetchone() == (counts[t], 1)
    lo, hi = db.execute("SELECT MIN(ts), MAX(ts) FROM requests").fetchone()
    assert NOW - 5 * 86400 <= lo < hi <= NOW
    models = {r[0] for r in db.execute("SELECT DISTINCT model FROM model_calls")}
    assert models <= {s.id for s in engine.registry.list()}  # the home's own model ids
    assert clear_synthetic(engine.database) == counts
    assert all(engine.monitor.count(t) == 0 for t in TABLES)


def test_chart_rollups_agree_with_raw_totals(engine: Any) -> None:
    seed_synthetic(engine.database, 4000, days=7, now=NOW)
    frames = queries.load_charts(engine.settings.db_path, window())
    db = engine.database.db
    n, cost, saved = db.execute("SELECT COUNT(*), SUM(cost_usd), SUM(saved_usd) FROM requests").fetchone()
    co = frames["cost_over_time"]
    assert co["requests"].sum() == n
    assert co["cost_usd"].sum() == pytest.approx(cost) and co["saved_usd"].sum() == pytest.approx(saved)
    assert len(co) <= queries.MAX_BUCKETS and co["t"].is_monotonic_increasing
    assert frames["requests_per_strategy"]["requests"].sum() == n
    calls, errors = db.execute("SELECT COUNT(*), SUM(error_class IS NOT NULL) FROM model_calls").fetchone()
    per_model = frames["requests_per_model"]
    assert per_model["calls"].sum() == calls and per_model["errors"].sum() == errors
    assert frames["latency_histogram"]["calls"].sum() == calls - errors
    hr = frames["hit_rate_over_time"]
    hits, lookups = db.execute("SELECT SUM(hit), COUNT(*) FROM cache_events").fetchone()
    assert hr["hits"].sum() == hits and hr["lookups"].sum() == lookups
    assert hr["hit_rate"].between(0, 1).all()
    levels = frames["cache_levels"].set_index("level")
    assert levels["hits"].sum() == hits and (levels["hits"] + levels["misses"] == levels["lookups"]).all()
    assert levels.loc["L4", "saved_usd"] == pytest.approx(db.execute(
        "SELECT SUM(saved_usd) FROM cache_events WHERE level = 'L4'").fetchone()[0])
    assert "evictions" in levels.columns
    assert frames["routing_by_domain"]["decisions"].sum() == n
    for name, df in frames.items():  # every chart's data exports as CSV
        assert df.to_csv(index=False).count("\n") == len(df) + 1, name


def test_latency_percentiles_are_within_a_bin_of_exact(engine: Any) -> None:
    seed_synthetic(engine.database, 3000, days=3, now=NOW)
    pct = queries.load_charts(engine.settings.db_path, window())["latency_percentiles"]
    db = engine.database.db
    for row in pct.itertuples():
        lat = [r[0] for r in db.execute(
            "SELECT latency_ms FROM model_calls WHERE model = ? AND error_class IS NULL ORDER BY 1",
            [row.model])]
        exact = {p: lat[max(0, -(-len(lat) * p // 100) - 1)] for p in (50, 95)}
        assert row.calls == len(lat)
        assert row.p50_ms == pytest.approx(exact[50], rel=0.03)
        assert row.p95_ms == pytest.approx(exact[95], rel=0.03)


def test_window_and_synthetic_filters(engine: Any) -> None:
    seed_synthetic(engine.database, 500, days=1, now=NOW)
    engine.ask("one real request", models=["fake-echo"])
    path = engine.settings.db_path
    real_only = queries.Window(0, 4e10, include_synthetic=False)
    assert queries.load_charts(path, real_only)["cost_over_time"]["requests"].sum() == 1
    empty = queries.load_charts(path, queries.Window(0, 1000))
    assert all(df.empty for df in empty.values())
    assert queries.Window(0, 3600).bucket_s == 300
    assert queries.Window(0, 30 * 86400).bucket_s == 6 * 3600
    with pytest.raises(ValueError):
        queries.Window(10, 10)
    conn = queries.connect(path)
    with pytest.raises(sqlite3.OperationalError):  # charts can never write
        conn.execute("DELETE FROM requests")
    s = queries.summary(conn, queries.Window(0, 4e10))
    assert s["requests"] == 501 and s["synthetic"] == 500
    real = queries.recent_requests(conn, 5, include_synthetic=False)
    assert real["prompt"].tolist() == ["one real request"]


def test_tunable_fields_cover_every_field_and_round_trip() -> None:
    tun = Tunables()
    specs = tunable_fields(tun, {"default_router": ("complexity", "fixed")})
    assert [f.name for f in specs] == [f.name for f in dataclasses.fields(Tunables)]
    kinds = {f.name: f.kind for f in specs}
    assert kinds["complexity_thresholds"] == "floats" and kinds["budget_usd"] == "optional"
    assert kinds["cache_enabled"] == "bool" and kinds["max_tokens"] == "int"
    assert kinds["default_router"] == "choice"
    raw = {f.name: to_raw(f, f.value) for f in specs}
    assert apply_tunables(tun, raw) == tun  # unchanged form → unchanged settings
    changed = apply_tunables(tun, {**raw, "max_tokens": "24", "budget_usd": "0.01"})
    assert changed.max_tokens == 24 and changed.budget_usd == 0.01
    with pytest.raises(ConfigError, match="ascending"):
        apply_tunables(tun, {**raw, "complexity_thresholds": "0.8,0.2"})


def test_spec_from_form_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from_form({"id": "m", "model": "openai/x", "api_base": " ", "api_key_env": "",
                           "input_price_per_1m": None, "output_price_per_1m": float("nan"),
                           "tags": "chat, code", "context_window": 1024, "enabled": False})
    assert spec.api_base is None and spec.api_key_env is None and spec.tags == ("chat", "code")
    assert spec.output_price_per_1m is None
    with pytest.raises(ConfigError, match="quality_prior"):
        spec_from_form({"id": "m", "model": "openai/x", "quality_prior": 1.5})
    monkeypatch.delenv("SOME_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError, match="SOME_UNSET_VAR is not set"):
        spec_from_form({"id": "m", "model": "openai/x", "api_key_env": "SOME_UNSET_VAR", "enabled": True})


def test_timeline_is_sequential() -> None:
    tl = timeline_frame([StepTiming("analysis", 5.0), StepTiming("cache", 1.0), StepTiming("routing", 2.0)])
    assert tl["start_ms"].tolist() == [0.0, 5.0, 6.0]
    assert timeline_frame([]).empty


def test_submit_ask_streams_events_to_a_queue(engine: Any) -> None:
    events: queue.Queue = queue.Queue()
    result = submit_ask(engine, "stream me", events, models=["fake-echo"]).result(timeout=120)
    kinds = []
    while not events.empty():
        kinds.append(events.get().kind)
    assert result.answer == "echo: stream me"
    assert kinds.count("step") == 5 and "started" in kinds and "finished" in kinds
    assert "token" in kinds  # the fake server streams


def test_probe_reports_latency_or_the_provider_error(engine: Any) -> None:
    ok = run_sync(probe_model(engine.registry.get("fake-echo"), engine.settings))
    assert ok.ok and ok.latency_ms > 0 and ok.answer
    bad = run_sync(probe_model(engine.registry.get("fake-fail"), engine.settings))
    assert not bad.ok and "Authentication" in (bad.error or "")
    missing = run_sync(probe_model(engine.registry.get("gpt-4o"), engine.settings))
    assert not missing.ok and missing.error == "environment variable OPENAI_API_KEY is not set"
    with pytest.raises(ValueError):
        run_sync(probe_model(engine.registry.get("fake-echo"), engine.settings, max_tokens=50))


def test_probe_never_echoes_the_key(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, "sk-secret-never-shown")
    bad = run_sync(probe_model(engine.registry.get("fake-fail"), engine.settings))
    assert "sk-secret-never-shown" not in json.dumps(dataclasses.asdict(bad))


def test_cli_seed_command(cli: Any, tmp_path: Any) -> None:
    target = tmp_path / "seeded-home"
    proc = cli("seed", "--requests", "2500", "--home", str(target), "--days", "2")
    assert proc.returncode == 0, proc.stderr
    assert "requests 2,500" in proc.stdout
    conn = queries.connect(target / "inferscale.db")
    assert conn.execute("SELECT COUNT(*), MIN(synthetic) FROM requests").fetchone() == (2500, 1)
    conn.close()
    proc = cli("seed", "--clear", "--home", str(target))
    assert proc.returncode == 0 and "requests 2,500" in proc.stdout
    bad = cli("seed", "--requests", "-5", "--home", str(target))
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


def test_frames_are_small_whatever_the_row_count(engine: Any) -> None:
    seed_synthetic(engine.database, 20_000, days=30, now=NOW)
    frames = queries.load_charts(engine.settings.db_path, queries.Window(NOW - 31 * 86400, NOW + 1))
    assert all(isinstance(df, pd.DataFrame) and len(df) < 2000 for df in frames.values())
