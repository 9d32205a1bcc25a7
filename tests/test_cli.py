"""The `inferscale` command line as a contract, run in a real subprocess: bad input gives a non-zero
exit and exactly one `error:` line on stderr (never a traceback); `--json` output is stable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inferscale import Engine, Settings
from tests.support.fakes import LOCAL_IDS, assert_one_line_error, fake_model, write_registry


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("ask", ""), "empty"),
        (("ask", "   \n\t  "), "empty"),
        (("ask", "hello", "--models", "no-such-model"), "no-such-model"),
        (("ask", "hello", "--strategy", "no-such-strategy"), "no-such-strategy"),
        (("config", "set", "complexity_thresholds", "1.5"), "complexity_thresholds"),
        (("config", "set", "complexity_thresholds", "nan"), "complexity_thresholds"),
        (("config", "set", "complexity_thresholds", "0.9,0.1"), "ascending"),
        (("config", "set", "no_such_key", "1"), "no_such_key"),
        (("models", "enable", "gpt-4o-mini"), "OPENAI_API_KEY"),
        (("models", "enable", "no-such-model"), "no-such-model"),
        (("ask", os.fsdecode(b"caf\xe9 \xff")), "UTF-8"),  # not UTF-8 on the command line
        (("ask",), "prompt"),  # usage errors keep the contract too
        (("bogus",), "bogus"),
        (("stats", "--bad-flag"), "--bad-flag"),
    ],
    ids=lambda v: " ".join(v)[:40] if isinstance(v, tuple) else None,
)
def test_bad_input_is_one_error_line(cli, args: tuple[str, ...], mentions: str) -> None:
    line = assert_one_line_error(cli(*args))
    assert mentions in line


def test_bad_config_value_leaves_config_unchanged(cli, home: Path) -> None:
    assert cli("config", "set", "complexity_thresholds", "0.2,0.9").returncode == 0
    assert_one_line_error(cli("config", "set", "complexity_thresholds", "nan"))
    shown = cli("config", "show")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["complexity_thresholds"] == [0.2, 0.9]


def test_malformed_yaml_import(cli, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {id: x, model: [unclosed\n")
    line = assert_one_line_error(cli("models", "import", str(bad)))
    assert "malformed YAML" in line
    ids = [m["id"] for m in json.loads(cli("models", "--json").stdout)]
    assert "x" not in ids and set(LOCAL_IDS) <= set(ids)


def test_valid_import_merges(cli, server, home: Path, tmp_path: Path) -> None:
    first = write_registry(tmp_path / "a.yaml", [fake_model("fake-a")], server.base_url)
    second = write_registry(tmp_path / "b.yaml", [fake_model("fake-b", "const-b")], server.base_url)
    assert cli("models", "import", str(first)).returncode == 0
    done = cli("models", "import", str(second))
    assert done.returncode == 0, done.stderr
    assert "fake-b" in done.stdout
    ids = [s.id for s in Engine(Settings.from_env(home)).registry.list()]
    assert {"fake-a", "fake-b", *LOCAL_IDS} <= set(ids)


def test_prompt_longer_than_every_context_window(cli, make_engine, home: Path) -> None:
    engine = make_engine(fake_model("fake-tiny", context_window=100),
                         fake_model("fake-small", context_window=150))
    engine.tunables_store.set("max_tokens", "32")
    assert {s.id for s in engine.registry.available()} == {"fake-tiny", "fake-small"}
    long_prompt = " ".join(f"word{i}" for i in range(300))
    line = assert_one_line_error(cli("ask", long_prompt))
    assert "context window" in line


def test_models_json_has_no_key_values(cli, make_engine, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-cli-secret-0123456789"
    monkeypatch.setenv("FAKE_KEY", secret)
    make_engine(fake_model("fake-a"))
    proc = cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)
    assert secret not in proc.stdout and secret not in proc.stderr
    by_id = {m["id"]: m for m in models}
    assert by_id["fake-a"]["api_key_env"] == "FAKE_KEY"
    assert by_id["fake-a"]["key_present"] is True and by_id["fake-a"]["available"] is True
    assert by_id["gpt-4o-mini"]["key_present"] is False and by_id["gpt-4o-mini"]["available"] is False
    assert all("api_key" not in m for m in models)


def test_stats_json_shape(cli, make_engine) -> None:
    engine = make_engine(fake_model("fake-echo", input_price_per_1m=1.0, output_price_per_1m=1.0))
    engine.ask("count me", models=["fake-echo"])
    engine.ask("count me", models=["fake-echo"])  # L4 hit
    proc = cli("stats", "--json")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)

    assert stats["requests"] == 2
    assert stats["cost_usd"] > 0 and stats["saved_usd"] > 0
    assert set(stats["cache"]) == {"L1", "L2", "L3", "L4"}
    for level in stats["cache"].values():
        assert "hit_rate" in level
    assert stats["cache"]["L4"]["hit_rate"] == pytest.approx(0.5)
    model = stats["models"]["fake-echo"]
    assert model["calls"] == 1
    assert 0 < model["latency_p50_ms"] <= model["latency_p95_ms"]


def test_config_show_defaults(cli) -> None:
    proc = cli("config", "show")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["complexity_thresholds"] == [0.35, 0.65]
