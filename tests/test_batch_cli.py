"""`inferscale batch FILE.jsonl`: output shape, summary and accuracy, bad input, failing models,
and a crash (kill -9) in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inferscale.batch import BatchFileError, read_jsonl
from tests.support.fakes import assert_one_line_error, fake_model


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8")
    return path


def test_batch_json_lines_and_summary(cli, make_engine, server, tmp_path) -> None:
    make_engine(fake_model("forty-two", "const-42"))
    f = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "prompt": "What is 6 times 7?", "expected": 42},
        {"id": "b", "prompt": "What is 40 plus 3?", "expected": "43"},
        {"prompt": "Say a number", "system": "Be brief."},
        "",
        {"id": 7, "prompt": "And 84 halved?", "expected": "42"},
    ])
    proc = cli("batch", str(f), "--models", "forty-two", "--concurrency", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    *results, last = lines
    by_id = {r["id"]: r for r in results}
    assert set(by_id) == {"a", "b", 3, 7}  # a line without an id is known by its line number
    for r in results:  # the `ask --json` shape, plus the id
        assert {"request_id", "answer", "strategy", "routing", "members", "cost_usd", "detail"} <= set(r)
        assert r["answer"] == "42"
    assert by_id["a"]["correct"] is True and by_id["b"]["correct"] is False and "correct" not in by_id[3]
    assert last == {"summary": {**last["summary"], "requests": 4, "answered": 4, "failed": 0,
                                "with_expected": 3, "correct": 2}}
    assert last["summary"]["accuracy"] == pytest.approx(2 / 3)

    text = cli("batch", str(f), "--models", "forty-two")
    assert text.returncode == 0 and "[a] ✓ 42" in text.stdout
    assert "requests: 4   answered: 4   failed: 0" in text.stdout and "accuracy: 66.7% (2/3)" in text.stdout


def test_batch_with_a_strategy_and_failing_models_still_completes(cli, make_engine, server, tmp_path) -> None:
    make_engine(fake_model("down", "fail-500"), fake_model("ok", "const-9"))
    f = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"question {i}"} for i in range(3)])
    proc = cli("batch", str(f), "--models", "down", "--json")
    assert proc.returncode == 0, proc.stderr  # the run completed; the requests failed
    *results, last = [json.loads(x) for x in proc.stdout.splitlines()]
    assert all(r["answer"] is None and "every routed model failed" in r["error"] for r in results)
    assert last["summary"]["failed"] == 3 and last["summary"]["answered"] == 0
    # early_stop off: with it, a slow third sample is cancelled once two agree ({"#9": 2} under load).
    sc = cli("batch", str(f), "--models", "down,ok", "--strategy", "self-consistency", "--option", "n=3",
             "--option", "early_stop=false", "--json")
    *results, last = [json.loads(x) for x in sc.stdout.splitlines()]
    assert last["summary"]["answered"] == 3 and {r["strategy"] for r in results} == {"self-consistency"}
    assert all(r["detail"]["votes"] == {"#9": 3} for r in results)


@pytest.mark.parametrize(("content", "message"), [
    ('{"prompt": "ok"}\n{"prompt": "ok"}\n{"prompt": oops}\n', "line 3: not valid JSON"),
    ('{"prompt": "ok"}\n["a list"]\n', "line 2: expected a JSON object"),
    ('{"system": "no prompt"}\n', 'line 1: "prompt" must be a non-empty string'),
    ('{"prompt": "x", "promt": "typo"}\n', "line 1: unknown key 'promt'"),
    ('{"prompt": "x", "expected": [1]}\n', 'line 1: "expected" must be a string or a number'),
    ('{"prompt": "x", "id": true}\n', 'line 1: "id" must be a string or an integer'),
    ("\n\n", "no requests"),
])
def test_bad_lines_are_one_line_errors_naming_the_line(cli, make_engine, server, tmp_path, content,
                                                       message) -> None:
    make_engine(fake_model("echo", "echo"))
    f = tmp_path / "bad.jsonl"
    f.write_text(content, "utf-8")
    line = assert_one_line_error(cli("batch", str(f), "--models", "echo"))
    assert message in line and "bad.jsonl" in line
    assert sum(server.calls.values()) == 0  # validated before anything ran


def test_batch_reader_errors(tmp_path) -> None:
    with pytest.raises(BatchFileError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "latin.jsonl").write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(BatchFileError, match="line 2: not UTF-8"):
        read_jsonl(tmp_path / "latin.jsonl")


def test_bad_options_fail_before_running(cli, make_engine, server, tmp_path) -> None:
    make_engine(fake_model("echo", "echo"))
    f = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "hi"}])
    assert "unknown model" in assert_one_line_error(cli("batch", str(f), "--models", "nope"))
    assert "concurrency" in assert_one_line_error(cli("batch", str(f), "--concurrency", "0"))
    assert "unknown strategy" in assert_one_line_error(cli("batch", str(f), "--strategy", "magic"))
    assert sum(server.calls.values()) == 0


def test_kill_9_mid_batch_leaves_a_consistent_database(make_engine, server, tmp_path, home) -> None:
    make_engine(fake_model("slow", "slow-150"))
    n = 120
    f = write_jsonl(tmp_path / "in.jsonl",
                    [{"id": f"q{i}", "prompt": f"slow question {i}"} for i in range(n)])
    cmd = [sys.executable, "-m", "inferscale", "batch", str(f), "--models", "slow", "--concurrency", "4",
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ))
    printed = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while len(printed) < 10 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        printed.append(json.loads(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(printed) == 10 and proc.returncode == -signal.SIGKILL

    db_path = home / "inferscale.db"
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())
        interrupted = rows.get("running", 0)
        assert interrupted >= 1 and rows.get("ok", 0) >= len(printed) and set(rows) <= {"ok", "running"}
        _assert_no_half_finished_request_is_complete(db)
        ok_ids = {r for (r,) in db.execute("SELECT id FROM requests WHERE status = 'ok'")}
        assert {p["request_id"] for p in printed} <= ok_ids  # everything reported is really stored

    # Restart: the whole file runs to completion on the same database.
    again = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["answered"] == n and summary["failed"] == 0, \
        [line for line in again.stdout.splitlines() if '"error"' in line][:3]
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        _assert_no_half_finished_request_is_complete(db)
        # The killed process's requests are marked `interrupted` at the next start (none turned
        # into a success, none left `running` forever), and counted by `stats`.
        assert db.execute("SELECT COUNT(*) FROM requests WHERE status = 'running'").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM requests WHERE status = 'interrupted'").fetchone()[0] == interrupted
    stats = subprocess.run([sys.executable, "-m", "inferscale", "stats", "--json"], capture_output=True,
                           text=True, env=dict(os.environ), timeout=120)
    assert json.loads(stats.stdout)["requests_interrupted"] == interrupted
    text = subprocess.run([sys.executable, "-m", "inferscale", "stats"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert f"interrupted {interrupted}" in text.stdout.splitlines()[0]


def _assert_no_half_finished_request_is_complete(db: sqlite3.Connection) -> None:
    # A complete request has its answer, its routing decision and its model calls (or the cache
    # hit that replaced them: the final result's level, or each member's L3 hit — a request the
    # killed run had called the model for is answered from its L3 entry on the restart), written
    # in one transaction; an interrupted one has none of them.
    assert db.execute(
        "SELECT COUNT(*) FROM requests r WHERE status = 'ok' AND (answer IS NULL"
        " OR NOT EXISTS (SELECT 1 FROM routing_decisions d WHERE d.request_id = r.id)"
        " OR (cache_level IS NULL AND NOT EXISTS (SELECT 1 FROM model_calls c WHERE c.request_id = r.id)"
        "     AND NOT EXISTS (SELECT 1 FROM cache_events e WHERE e.request_id = r.id AND e.level = 'L3'"
        "                     AND e.hit = 1)))"
    ).fetchone()[0] == 0
    assert db.execute(
        "SELECT COUNT(*) FROM requests r WHERE status = 'running' AND (answer IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM routing_decisions d WHERE d.request_id = r.id)"
        " OR EXISTS (SELECT 1 FROM model_calls c WHERE c.request_id = r.id))"
    ).fetchone()[0] == 0
