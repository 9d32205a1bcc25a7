"""A registry that cannot be hijacked, settings checked against it, and terminal-safe output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferscale.errors import ConfigError, UnknownModelError
from inferscale.registry import ModelSpec, Registry
from tests.support.fakes import KEY_VAR, LOCAL_IDS, assert_one_line_error, fake_model, write_registry


def _yaml(tmp_path: Path, entries: list[dict[str, Any]], name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"models": entries}, sort_keys=False), encoding="utf-8")
    return path


def test_local_ids_are_reserved_for_the_local_provider(make_engine: Any, tmp_path: Path, server: Any) -> None:
    engine = make_engine(disable_local=False)
    before = engine.registry.get(LOCAL_IDS[0])
    hijack = _yaml(tmp_path, [{"id": LOCAL_IDS[0], "model": "openai/echo", "api_base": server.base_url,
                               "api_key_env": KEY_VAR}])
    for replace in (False, True):  # not even with --replace
        with pytest.raises(ConfigError, match="reserved for the local provider"):
            engine.registry.import_yaml(hijack, replace=replace)
    assert engine.registry.get(LOCAL_IDS[0]) == before and before.is_local
    with pytest.raises(ConfigError, match="reserved"):
        engine.registry.import_yaml(_yaml(tmp_path, [{"id": "local/new", "model": "openai/echo"}]))


def test_an_import_never_silently_replaces_a_model(cli: Any, make_engine: Any, tmp_path: Path,
                                                   server: Any) -> None:
    engine = make_engine(fake_model("fake-a", quality_prior=0.3))
    path = write_registry(tmp_path / "again.yaml", [fake_model("fake-a", quality_prior=0.9),
                                                    fake_model("fake-new")], server.base_url)
    line = assert_one_line_error(cli("models", "import", str(path)))
    assert "would replace existing model(s) fake-a" in line and "--replace" in line
    assert engine.registry.get("fake-a").quality_prior == 0.3
    with pytest.raises(UnknownModelError):
        engine.registry.get("fake-new")  # all or nothing
    proc = cli("models", "import", str(path), "--replace")
    assert proc.returncode == 0, proc.stderr
    assert "replaced fake-a: quality_prior 0.3 → 0.9" in proc.stdout
    assert engine.registry.get("fake-a").quality_prior == 0.9
    # Re-importing an identical file changes nothing, so it needs no --replace.
    assert cli("models", "import", str(path)).returncode == 0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("api_base", "javascript:alert(1)", "http:// or https:// URL"),
    ("api_base", "file:///etc/passwd", "http:// or https:// URL"),
    ("api_base", "http//no-scheme", "http:// or https:// URL"),
    ("id", "bad\x00id", "printable"),
    ("id", "bad\x1b[2Jid", "printable"),
    ("id", "bad\u202eid", "printable"),
    ("id", " padded", "surrounding spaces"),
    ("id", "x" * 201, "at most 200"),
    ("model", "openai/\x07bell", "printable"),
    ("notes", "line\x1b]0;title\x07", "printable"),
    ("api_key_env", "sk-abc123", "environment variable name"),
    ("api_key_env", "Abc123Def456Ghi789Jkl", "environment variable name"),  # a pasted key, no sk-
    ("api_key_env", "a3f9c2e81b7d4e6fa0c1d2e3", "environment variable name"),
    ("api_key_env", "MY-KEY", "environment variable name"),
    ("api_key_env", "1ABC", "environment variable name"),
])
def test_bad_fields_are_refused(field: str, value: str, message: str) -> None:
    entry = {"id": "fine", "model": "openai/echo", field: value}
    with pytest.raises(ValueError, match=message):
        ModelSpec.model_validate(entry)


def test_good_fields_still_pass() -> None:
    for env in ("OPENAI_API_KEY", "my_key", "_X", "GROQ_API_KEY_2"):
        assert ModelSpec(id="ok", model="openai/x", api_key_env=env).api_key_env == env
    assert ModelSpec(id="ok", model="openai/x", api_base="https://api.example.com/v1").api_base
    assert ModelSpec(id="ok", model="openai/x", notes="two\nlines\tand a tab").notes


def test_unknown_model_errors_list_at_most_ten_ids(make_engine: Any, tmp_path: Path) -> None:
    engine = make_engine()
    many = [{"id": f"bulk-{i:05d}", "model": "openai/echo", "enabled": False} for i in range(2000)]
    engine.registry.import_yaml(_yaml(tmp_path, many))
    with pytest.raises(UnknownModelError) as err:
        engine.registry.get("nope")
    msg = str(err.value)
    total = len(engine.registry.list())
    assert msg.count(", ") == 9 and f"… and {total - 10} more" in msg and len(msg) < 400


def test_settings_naming_models_are_checked_where_they_are_set(cli: Any, make_engine: Any) -> None:
    engine = make_engine(fake_model("fake-echo"))
    store = engine.tunables_store
    for key, value, message in [
        ("fixed_models", "nope,also", "unknown model id 'nope'"),
        ("fixed_models", ",", "no values"),
        ("judge_model", "nope", "unknown model id 'nope'"),
        ("complexity_thresholds", ",", "no values"),
    ]:
        with pytest.raises(ConfigError, match=message):
            store.set(key, value)
        line = assert_one_line_error(cli("config", "set", key, value))
        assert message in line, line
    assert store.load().fixed_models == () and store.load().judge_model == ""
    store.set("fixed_models", "fake-echo")
    store.set("judge_model", "fake-echo")
    assert store.load().fixed_models == ("fake-echo",)
    store.set("fixed_models", "")  # clearing is still allowed
    store.set("fixed_models", "fake-echo")
    # A model disabled after it was set is reported where it is still referenced.
    engine.registry.set_enabled("fake-echo", False)
    proc = cli("config", "show")
    assert proc.returncode == 0 and "warning: fixed_models names 'fake-echo', which is unavailable" in proc.stderr
    assert json.loads(proc.stdout)["fixed_models"] == ["fake-echo"]


def test_flags_are_checked(cli: Any, make_engine: Any, server: Any) -> None:
    make_engine(fake_model("fake-echo"))
    assert "names no model id" in assert_one_line_error(cli("ask", "hi", "--models", ","))
    for days in ("nan", "inf", "-5"):
        assert "--days must be a finite number >= 0" in assert_one_line_error(cli("seed", "--days", days))
    assert sum(server.calls.values()) == 0


def test_terminal_output_escapes_control_characters(cli: Any, make_engine: Any, home: Path) -> None:
    engine = make_engine(fake_model("fake-ansi", "ansi"))
    proc = cli("ask", "show me colours", "--models", "fake-ansi", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\r" not in proc.stdout
    assert "\u202e" not in proc.stdout
    assert "\\x1b[2J" in proc.stdout and "\\u202e" in proc.stdout  # visible, not interpreted
    # A hostile id cannot get in (printable check), and an answer stored raw is escaped on print.
    assert engine.registry.get("fake-ansi")
    listing = cli("models")
    assert listing.returncode == 0 and "\x1b" not in listing.stdout


def test_registry_rows_written_before_the_checks_are_ignored_not_printed(cli: Any, home: Path,
                                                                         make_engine: Any) -> None:
    engine = make_engine()
    spec = ModelSpec(id="legacy", model="openai/echo", enabled=False)
    raw = spec.model_dump_json().replace('"legacy"', '"leg\\u001b[31macy"', 1)
    with engine.database.tx() as db:  # as an older version could have stored it
        db.execute("INSERT INTO models (id, spec, enabled, position, updated_at) VALUES (?, ?, 0, 99, 0)",
                   ["leg\x1b[31macy", raw])
    # No longer valid: left out of the listing and of routing, never printed raw, nothing breaks.
    proc = cli("models")
    assert proc.returncode == 0 and "\x1b" not in proc.stdout and "local/" in proc.stdout
    assert "legacy" not in [s.id for s in Registry(engine.database).list()]
    line = assert_one_line_error(cli("ask", "hi", "--models", "leg\x1b[31macy"))
    assert "\x1b" not in line and "leg\\x1b[31macy" in line
