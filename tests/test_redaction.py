"""A provider echoing the key inside a long error: no run of >= 8 of the key's characters may reach
any output channel, whatever the padding puts the key across a cut (stdout, stderr, database,
Chroma, logs, dashboard pages)."""

from __future__ import annotations

import json
import logging
import secrets
import string
from pathlib import Path
from typing import Any

import pytest

from inferscale.errors import AllModelsFailedError
from inferscale.redact import MASK, clip, redact
from tests.support.dashboard import all_text, app_test, no_exception
from tests.support.fakes import fake_model

RUN = 8


def _key() -> str:
    # 16 characters like a real key's tail; letters and digits so no fragment is an English word.
    alphabet = string.ascii_letters + string.digits
    return "Zq" + "".join(secrets.choice(alphabet) for _ in range(14))


def leaks(text: str, key: str) -> list[str]:
    """Every run of >= RUN consecutive key characters found in `text`."""
    return sorted({key[i:i + RUN] for i in range(len(key) - RUN + 1) if key[i:i + RUN] in text})


def leaks_bytes(data: bytes, key: str) -> list[str]:
    raw = key.encode()
    return sorted({raw[i:i + RUN].decode() for i in range(len(raw) - RUN + 1) if raw[i:i + RUN] in data})


# -- the rule itself ---------------------------------------------------------------------------
def test_the_whole_key_a_fragment_of_it_and_bearer_tokens_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key()
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", key)
    assert key not in redact(f"bad key {key} given")
    # A fragment (what is left when a cut went through the key) is still caught.
    for start in range(len(key) - RUN + 1):
        fragment = key[start:]
        assert leaks(redact("..." + fragment + " rest"), key) == [], fragment
        assert leaks(redact("x" + key[: len(key) - start]), key) == []
    # Any bearer / authorization credential, even for a key nobody registered.
    assert "unregistered-token-123" not in redact("Authorization: Bearer unregistered-token-123")
    assert redact("header 'Authorization': 'Bearer abc.def.ghi'") == f"header 'Authorization': 'Bearer {MASK}'"
    assert "zz-9876543210" not in redact('{"api_key": "zz-9876543210"}')
    assert "sk-proj-abcdefgh12345678" not in redact("key sk-proj-abcdefgh12345678 rejected")
    # Ordinary text is untouched, and redaction is idempotent.
    plain = "the model answered in 120 ms with 5 tokens"
    assert redact(plain) == plain
    once = redact(f"Authorization: Bearer {key}")
    assert redact(once) == once


def test_clip_redacts_before_it_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key()
    monkeypatch.setenv("OTHER_TOKEN", key)
    for pad in range(0, 60):
        text = "p" * pad + key + " tail"
        assert leaks(clip(text, 40), key) == [], pad


# -- the sweep through the real engine ----------------------------------------------------------
@pytest.fixture
def hostile(make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    key = _key()
    monkeypatch.setenv("FAKE_KEY", key)
    engine = make_engine(fake_model("hostile", "keypad"), max_attempts=1)
    return engine, key


def test_padding_sweep_never_leaks_the_key(hostile: tuple[Any, str], server: Any, home: Path,
                                           caplog: pytest.LogCaptureFixture,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    engine, key = hostile
    caplog.set_level(logging.DEBUG)
    messages = []
    for pad in range(0, 401):
        with pytest.raises(AllModelsFailedError) as failure:
            engine.ask(f"pad {pad}", models=["hostile"], use_cache=False)
        messages.append(str(failure.value))
    # The key really went to the provider and came back in its errors.
    auth = {k.lower(): v for k, v in server.last_headers.items()}["authorization"]
    assert key in auth and server.calls["keypad"] == 401
    assert all("InternalServerError" in m for m in messages)
    assert [m for m in messages if leaks(m, key)] == []
    stats = json.dumps(engine.monitor.stats())
    assert leaks(stats, key) == []
    # Every table of the database, read back as text.
    db = engine.database.db
    for table in db.table_names():
        rows = json.dumps([list(r) for r in db.execute(f"SELECT * FROM [{table}]").fetchall()], default=str)
        assert leaks(rows, key) == [], table
    errors = [r[0] for r in db.execute("SELECT error FROM model_calls").fetchall()]
    shown = [e for e in errors if not e.endswith("…")]  # not cut: the header is there whole
    assert len(errors) == 401 and len(shown) > 100
    assert all(MASK in e for e in shown)  # redacted, not dropped
    # Logs and the process's own output.
    assert [r.getMessage() for r in caplog.records if leaks(r.getMessage(), key)] == []
    out, err = capfd.readouterr()
    assert leaks(out + err, key) == []
    # Every file under the home: SQLite (with -wal/-shm) and Chroma's files.
    stored = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert any(p.name == "inferscale.db" for p in stored)
    assert {p.name: leaks_bytes(d, key) for p, d in stored.items() if leaks_bytes(d, key)} == {}


def test_padding_sweep_on_the_command_line(cli: Any, make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key()
    monkeypatch.setenv("FAKE_KEY", key)
    make_engine(fake_model("hostile", "keypad"))
    # Around every cut the error text goes through (provider error 300, CLI 400, request 500).
    for pad, extra in ((0, []), (200, []), (230, ["--json"]), (250, []), (270, ["--json"]), (290, [])):
        for args in (["ask", f"pad {pad}", "--models", "hostile", *extra],):
            proc = cli(*args)
            assert proc.returncode == 2 and "InternalServerError" in proc.stderr
            assert leaks(proc.stdout + proc.stderr, key) == [], (pad, proc.stderr)
    stats = cli("stats", "--json")
    assert stats.returncode == 0 and leaks(stats.stdout, key) == []


def test_padding_sweep_on_the_dashboard(make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key()
    monkeypatch.setenv("FAKE_KEY", key)
    # The provider error is cut at 300 characters, and the key starts 90 + pad characters in: a
    # pad of 195-202 puts 8-15 of its 16 characters before the cut (what leaked before the fix).
    pads = [190, 194, 196, 198, 200, 202, 206, 250]
    probes = [196, 199, 202, 250]
    make_engine(fake_model("hostile", "keypad"), *[fake_model(f"hostile-{p}", f"keypad-{p}") for p in probes])
    at = app_test("playground")
    for pad in pads:
        at.text_area(key="pg_prompt").input(f"pad {pad}")
        at.multiselect(key="pg_models").set_value(["hostile"])
        at.button(key="pg_submit").click().run(timeout=120)
        no_exception(at)
        shown = all_text(at)
        assert "InternalServerError" in shown and leaks(shown, key) == [], pad
    models = app_test("models")
    for pad in probes:
        models.selectbox(key="models_selected").select(f"hostile-{pad}")
        models.button(key="models_test").click().run(timeout=120)
        no_exception(models)
        shown = all_text(models)
        assert "failed" in shown and leaks(shown, key) == [], pad
    overview = app_test("overview")
    no_exception(overview)
    assert leaks(all_text(overview), key) == []
