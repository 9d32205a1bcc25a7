"""`inferscale eval` against the loopback fake server, with models whose right and wrong answers
follow a known pattern, so every figure is asserted exactly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from inferscale.cli import main
from tests.support.fakes import assert_one_line_error, fake_model

PRICE = {"input_price_per_1m": 0, "output_price_per_1m": 1000}  # $0.001 per one-token answer
CONFIGS = """\
configs:
  - {name: even, strategy: single, models: [even]}
  - {name: odd-cheap, strategy: single, models: [odd-cheap]}
  - {name: sure, strategy: single, models: [sure]}
  - name: sc
    strategy: self-consistency
    models: [nth4]
    options: {n: 4, early_stop: false}
"""


def _models():
    return [fake_model("even", "parity-even", **PRICE),
            fake_model("odd-cheap", "parity-odd", input_price_per_1m=0, output_price_per_1m=500),
            fake_model("sure", "nth-1", input_price_per_1m=0, output_price_per_1m=3000),
            fake_model("nth4", "nth-4-a", **PRICE),
            fake_model("f3", "parity-fail3", **PRICE)]


def _dataset(tmp_path, n=10):
    p = tmp_path / "items.jsonl"
    p.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"item {i}: say {i}", "expected": str(i)}) + "\n"
                         for i in range(n)), encoding="utf-8")
    return p


def _run(capsys, *args):
    code = main(["eval", *args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def _rows(home, name):
    conn = sqlite3.connect(home / "inferscale.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(
            "SELECT * FROM experiment_results WHERE experiment = ? ORDER BY config, seq", [name])]
    finally:
        conn.close()


@pytest.fixture
def setup(make_engine, tmp_path):
    make_engine(*_models())
    cfg = tmp_path / "configs.yaml"
    cfg.write_text(CONFIGS, encoding="utf-8")
    return _dataset(tmp_path), cfg


def test_exact_figures(setup, capsys, home):
    data, cfg = setup
    proc = _run(capsys, str(data), "--configs", str(cfg), "--baseline", "even", "--name", "exact",
                "--concurrency", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"experiment", "dataset", "items", "status", "configs", "aiq"}
    assert (out["experiment"], out["dataset"], out["items"], out["status"]) == ("exact", "items.jsonl", 10, "done")
    by = {c["config"]: c for c in out["configs"]}
    assert list(by) == ["even", "odd-cheap", "sure", "sc"]
    keys = {"config", "strategy", "models", "n", "correct", "errors", "accuracy", "ci95", "cost_usd",
            "cost_per_item_usd", "cost_per_correct_usd", "latency_p50_ms", "latency_p95_ms",
            "calls_per_item", "pareto", "vs_baseline", "pass_at_k"}
    assert all(set(c) == keys for c in out["configs"])
    even, odd, sure, sc = by["even"], by["odd-cheap"], by["sure"], by["sc"]
    assert (even["n"], even["correct"], even["errors"], even["accuracy"]) == (10, 5, 0, 0.5)
    assert even["ci95"] == pytest.approx([0.2365931, 0.7634069], abs=1e-6)
    assert even["cost_usd"] == pytest.approx(0.010) and even["cost_per_item_usd"] == pytest.approx(0.001)
    assert even["cost_per_correct_usd"] == pytest.approx(0.002) and even["calls_per_item"] == 1.0
    assert (odd["correct"], odd["cost_per_item_usd"]) == (5, pytest.approx(0.0005))
    assert (sure["correct"], sure["accuracy"], sure["cost_per_item_usd"]) == (10, 1.0, pytest.approx(0.003))
    assert sure["ci95"] == pytest.approx([0.7224672, 1.0], abs=1e-6)
    # Self-consistency: one sample in four is right, so the vote is always wrong but the oracle
    # (any sample right) always passes: selected accuracy and pass@k are reported apart.
    assert (sc["correct"], sc["accuracy"], sc["pass_at_k"], sc["calls_per_item"]) == (0, 0.0, 1.0, 4.0)
    assert sc["cost_per_item_usd"] == pytest.approx(0.004)
    assert even["pass_at_k"] is None
    assert [c["pareto"] for c in out["configs"]] == [False, True, True, False]
    assert even["vs_baseline"] is None
    assert odd["vs_baseline"] == {"gained": 5, "lost": 5, "p_value": 1.0}
    assert sure["vs_baseline"] == {"gained": 5, "lost": 0, "p_value": pytest.approx(0.0625)}
    assert sc["vs_baseline"] == {"gained": 0, "lost": 5, "p_value": pytest.approx(0.0625)}
    assert out["aiq"] == pytest.approx((0.0025 * 0.75 + 0.001) / 0.0035)
    rows = _rows(home, "exact")
    assert len(rows) == 40 and len({(r["config"], r["item_id"]) for r in rows}) == 40
    even_rows = {r["item_id"]: r for r in rows if r["config"] == "even"}
    assert [even_rows[f"q{i}"]["correct"] for i in range(10)] == [1, 0] * 5
    assert all(json.loads(r["models"]) == ["even"] and json.loads(r["answered_by"]) == ["even"]
               for r in even_rows.values())
    assert "[eval]" in proc.stderr and "sc 10/10" in proc.stderr


def test_items_whose_every_call_failed_are_errors_not_wrong(make_engine, tmp_path, capsys, home):
    make_engine(*_models())
    proc = _run(capsys, str(_dataset(tmp_path)), "--strategies", "single", "--models", "f3",
                "--name", "errs", "--json")
    c = json.loads(proc.stdout)["configs"][0]
    # N % 3 == 0 (q0, q3, q6, q9) fail with HTTP 500 on every attempt; the rest are right.
    assert (c["n"], c["errors"], c["correct"], c["accuracy"]) == (10, 4, 6, 1.0)
    assert c["cost_usd"] == pytest.approx(0.006) and c["cost_per_item_usd"] == pytest.approx(0.0006)
    errs = sorted(r["item_id"] for r in _rows(home, "errs") if r["error"])
    assert errs == ["q0", "q3", "q6", "q9"]
    assert all(r["correct"] is None and r["score"] is None for r in _rows(home, "errs") if r["error"])
    # A failed item's call is still counted: one call, no cost (the provider answered HTTP 500).
    assert all((r["calls"], r["cost_usd"]) == (1, 0.0) for r in _rows(home, "errs") if r["error"])


def test_a_failed_item_that_was_billed_counts_its_cost(make_engine, tmp_path, capsys, home):
    # A provider that bills the prompt and answers nothing: the item fails, the money is spent.
    make_engine(fake_model("blank", "blank", input_price_per_1m=1000, output_price_per_1m=0))
    proc = _run(capsys, str(_dataset(tmp_path, n=3)), "--strategies", "single", "--models", "blank",
                "--name", "billed", "--json")
    c = json.loads(proc.stdout)["configs"][0]
    rows = _rows(home, "billed")
    assert c["errors"] == 3 and all(r["error"] and r["calls"] == 1 for r in rows)
    calls = sqlite3.connect(home / "inferscale.db").execute(
        "SELECT SUM(cost_usd) FROM model_calls WHERE model = 'blank'").fetchone()[0]
    assert calls > 0  # what the monitor recorded for those calls
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(calls) == pytest.approx(c["cost_usd"])


def test_budget_stops_the_experiment_cleanly_and_resume_finishes_it(setup, capsys, home):
    data, _ = setup
    proc = _run(capsys, str(data), "--strategies", "single", "--models", "even", "--budget-usd", "0.003",
                "--concurrency", "1", "--name", "b", "--no-cache", "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["status"] == "stopped (budget)"
    assert out["configs"][0]["n"] == 3  # three $0.001 items, then the budget is spent
    assert "stopped (budget)" in proc.stderr
    proc = _run(capsys, str(data), "--strategies", "single", "--models", "even", "--concurrency", "1",
                "--name", "b", "--no-cache", "--resume", "--json")
    out = json.loads(proc.stdout)
    assert out["status"] == "done" and out["configs"][0]["n"] == 10 and out["configs"][0]["correct"] == 5
    assert "resuming: 3 results stored, running 7" in proc.stderr


def test_the_cache_is_scoped_per_experiment_and_config(setup, capsys, server):
    data, _ = setup
    # Two configs of the same model: without a per-config namespace the second would be served
    # the first one's cached answers.
    cfg = data.parent / "same.yaml"
    cfg.write_text("configs:\n  - {name: a, strategy: single, models: [nth4]}\n"
                   "  - {name: b, strategy: single, models: [nth4]}\n", encoding="utf-8")
    _run(capsys, str(data), "--configs", str(cfg), "--name", "ns1", "--concurrency", "1")
    assert server.calls["nth-4-a"] == 20
    _run(capsys, str(data), "--configs", str(cfg), "--name", "ns2", "--concurrency", "1")
    assert server.calls["nth-4-a"] == 40  # a new experiment is never served the old one's answers


def test_verifier_auto_guides_best_of_n_and_tree_search(make_engine):
    """Through the runner API: a dataset whose verifier recomputes the answer from the prompt."""
    from inferscale.experiments import report
    from inferscale.experiments.datasets import Dataset, Item
    from inferscale.experiments.runner import ExperimentSpec, RunConfig, prepare, run_experiment
    from inferscale.experiments.store import ExperimentStore
    from inferscale.orchestration.runner import run_sync

    engine = make_engine(fake_model("bon", "nth-4-b", **PRICE), fake_model("ts", "nth-4-c", **PRICE))

    def says(n: int):
        return lambda answer: 1.0 if answer.strip() == str(n) else 0.0

    items = tuple(Item(f"v{i}", f"item {i}: say {i}", expected=str(i), verifier=says(i)) for i in range(6))
    ds = Dataset("said", items, has_verifier=True)
    spec = ExperimentSpec("ver", "said", (
        RunConfig("bon", "best-of-n", ("bon",), {"n": 4, "early_stop": False}),
        RunConfig("tree", "tree-search", ("ts",), {"budget": 4, "parallel": 1})), verifier="auto", concurrency=1)
    prepare(engine, spec, ds, resume=False)
    status = run_sync(run_experiment(engine, spec, ds))
    summary = report.summarize(spec, ExperimentStore(engine.database).results("ver"), len(items), status)
    by = {c["config"]: c for c in summary["configs"]}
    assert by["bon"]["accuracy"] == 1.0 and by["bon"]["pass_at_k"] == 1.0
    assert by["bon"]["calls_per_item"] == 4.0  # the verifier makes no model calls
    assert by["tree"]["accuracy"] == 1.0 and by["tree"]["pass_at_k"] == 1.0
    assert by["tree"]["calls_per_item"] == 4.0  # the 4th node is right and stops the search
    stored = ExperimentStore(engine.database).get("ver")["spec"]
    assert stored["verifier"] == "auto"


def test_kill_9_mid_run_then_resume_runs_only_what_is_missing(make_engine, tmp_path, home, server):
    make_engine(fake_model("slow", "slow-150"))
    p = tmp_path / "slow.jsonl"
    p.write_text("".join(json.dumps({"id": f"s{i}", "prompt": f"item {i}", "expected": f"echo: item {i}"}) + "\n"
                         for i in range(24)), encoding="utf-8")
    args = [sys.executable, "-m", "inferscale", "eval", str(p), "--strategies", "single", "--models", "slow",
            "--scorer", "exact", "--concurrency", "2", "--name", "k9", "--json"]
    proc = subprocess.Popen(args, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (home / "inferscale.db").exists() and len(_safe_rows(home, "k9")) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _safe_rows(home, "k9")
    assert 6 <= len(before) < 24, "the run should have been killed mid-way"
    calls_before = server.calls["slow-150"]
    res = subprocess.run(args + ["--resume"], env=dict(os.environ), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert f"resuming: {len(before)} results stored, running {24 - len(before)}" in res.stderr
    after = _rows(home, "k9")
    assert sorted(r["item_id"] for r in after) == sorted(f"s{i}" for i in range(24))  # none missing, none twice
    assert {r["item_id"]: r["ts"] for r in after if r["item_id"] in {b["item_id"] for b in before}} == \
        {b["item_id"]: b["ts"] for b in before}  # stored results are kept, not re-run
    assert server.calls["slow-150"] - calls_before <= 24 - len(before)
    out = json.loads(res.stdout)
    assert out["status"] == "done" and out["configs"][0]["correct"] == 24


def _safe_rows(home, name):
    try:
        return _rows(home, name)
    except sqlite3.OperationalError:  # the table is not created yet
        return []


@pytest.mark.parametrize("extra, needle", [
    (["--strategies", "telepathy"], "unknown strategy 'telepathy'"),
    (["--models", "no-such-model"], "no-such-model"),
    (["--scorer", "vibes"], "unknown scorer 'vibes'"),
    (["--verifier", "oracle"], "unknown verifier 'oracle'"),
    (["--verifier", "auto"], "has no verifier"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--limit", "-3"], "--limit must be a positive integer"),
    (["--budget-usd", "nan"], "--budget-usd must be a finite number"),
    (["--budget-usd", "-1"], "--budget-usd must be a finite number"),
    (["--baseline", "nobody"], "--baseline 'nobody' is not a config"),
    (["--name", "exact"], "already exists"),
    (["--options", "n=3", "--strategies", "single"], "no strategy of single has that option"),
])
def test_bad_input_is_one_line_and_loses_nothing(setup, capsys, home, extra, needle):
    data, cfg = setup
    assert _run(capsys, str(data), "--strategies", "single", "--models", "even", "--name", "exact").returncode == 0
    stored = _rows(home, "exact")
    args = [str(data), *extra]
    if "--strategies" not in extra and "--models" not in extra:
        args += ["--strategies", "single", "--models", "even"]
    elif "--strategies" not in extra:
        args += ["--strategies", "single"]
    if "--name" not in extra:
        args += ["--name", "other"]
    line = assert_one_line_error(_run(capsys, *args))
    assert needle in line, line
    assert _rows(home, "exact") == stored


@pytest.mark.parametrize("body, needle", [
    ("configs:\n  - {name: a, strategy: single, colour: red}\n", "configs.yaml line 2: unknown field 'colour'"),
    ("configs:\n  - name: a\n    strategy: single\n    temperature: 2\n",
     "configs.yaml line 4: unknown field 'temperature'"),
    ("experiments: []\n", "configs.yaml line 1: unknown field 'experiments'"),
    ("configs:\n  - {name: a}\n", "configs.yaml line 2: field 'strategy' is missing"),
    ("configs:\n  - {name: a, strategy: single, options: {tau: 1}}\n", "strategy option tau"),
])
def test_configs_yaml_errors_name_file_line_and_field(make_engine, tmp_path, capsys, body, needle):
    make_engine(*_models())
    cfg = tmp_path / "configs.yaml"
    cfg.write_text(body, encoding="utf-8")
    line = assert_one_line_error(_run(capsys, str(_dataset(tmp_path)), "--configs", str(cfg)))
    assert needle in line, line


def test_jsonl_errors_through_the_cli(make_engine, tmp_path, capsys):
    make_engine(*_models())
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "fine", "expected": "1"}\n"just a string"\n', encoding="utf-8")
    line = assert_one_line_error(_run(capsys, str(p), "--models", "even"))
    assert "bad.jsonl line 2: not a JSON object" in line
    p.write_text('{"prompt": "fine", "expected": "1"}\n{"prompt": "no answer"}\n', encoding="utf-8")
    line = assert_one_line_error(_run(capsys, str(p), "--models", "even"))
    assert 'bad.jsonl line 2: field "expected" is missing' in line
    line = assert_one_line_error(_run(capsys, "no-such-dataset", "--models", "even"))
    assert "unknown dataset 'no-such-dataset'" in line


def test_the_judge_scorer_counts_its_calls_and_cost(make_engine, tmp_path, capsys, home):
    make_engine(*_models(), fake_model("grader", "const-8", input_price_per_1m=0, output_price_per_1m=2000))
    p = tmp_path / "open.jsonl"
    p.write_text("".join(json.dumps({"id": f"o{i}", "prompt": f"item {i}: describe {i}"}) + "\n" for i in range(3)),
                 encoding="utf-8")
    proc = _run(capsys, str(p), "--strategies", "single", "--models", "sure", "--scorer", "judge:grader",
                "--name", "judged", "--json")
    assert proc.returncode == 0, proc.stderr
    c = json.loads(proc.stdout)["configs"][0]
    assert (c["n"], c["correct"], c["accuracy"]) == (3, 3, 1.0)  # 8/10 from the grader each time
    assert c["cost_per_item_usd"] == pytest.approx(0.003)  # the config's own cost, judge apart
    rows = _rows(home, "judged")
    assert [(r["score"], r["scorer_calls"], r["reason"]) for r in rows] == [(0.8, 1, "judge 8/10")] * 3
    assert sum(r["scorer_cost_usd"] for r in rows) == pytest.approx(0.006)
