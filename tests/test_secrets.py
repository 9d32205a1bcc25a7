"""API keys are read from the environment at call time and never written anywhere: not in the
database (nor its -wal/-shm files), not in output, not in log records."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from inferscale.errors import AllModelsFailedError
from tests.support.fakes import fake_model


def test_api_key_is_never_written(
    make_engine, server, home: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    secret = f"sk-inferscale-secret-{uuid.uuid4().hex}"
    marker = f"marker-{uuid.uuid4().hex}"  # proves the scan below really reads what was stored
    monkeypatch.setenv("FAKE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    engine = make_engine(
        fake_model("fake-echo", "echo", input_price_per_1m=1.0, output_price_per_1m=1.0),
        fake_model("fake-401", "fail-401"),
        fake_model("fake-keyecho", "keyecho-401"),
        fake_model("fake-fail", "fail-500"),
        fake_model("fake-malformed", "malformed"),
    )

    results = [
        engine.ask(f"{marker} plain", models=["fake-echo"]),
        engine.ask(f"{marker} plain", models=["fake-echo"]),  # L4 hit
        engine.ask(f"{marker} streamed", models=["fake-echo"], on_event=lambda e: None),
        engine.ask(f"{marker} fallback", strategy="single", models=["fake-401", "fake-keyecho", "fake-echo"]),
        engine.ask(f"{marker} ensemble", strategy="ensemble",
                   models=["fake-echo", "fake-keyecho", "fake-malformed"]),
    ]
    with pytest.raises(AllModelsFailedError) as failure:
        engine.ask(f"{marker} doomed", strategy="ensemble", models=["fake-401", "fake-keyecho", "fake-fail"])
    registry_json = engine.registry.to_json()
    stats_json = json.dumps(engine.monitor.stats())
    # The last request succeeded, so the header below is ours.
    last = engine.ask(f"{marker} last", models=["fake-echo"], use_cache=False)

    # The key did reach the provider, so the absence checks below are meaningful.
    auth = {k.lower(): v for k, v in server.last_headers.items()}.get("authorization", "")
    assert secret in auth
    assert server.calls["keyecho-401"] >= 1 and server.calls["fail-401"] >= 1
    keyecho = next(m for m in results[3].members if m.model == "fake-keyecho")
    assert keyecho.error_class == "AuthenticationError" and "***" in keyecho.error  # redacted echo

    texts = [json.dumps(r.to_json()) for r in [*results, last]]
    texts += [str(failure.value), registry_json, stats_json]
    for text in texts:
        assert secret not in text

    out, err = capfd.readouterr()
    assert secret not in out and secret not in err
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)
    assert secret not in caplog.text

    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "inferscale.db" for p in files)
    stored = {p: p.read_bytes() for p in files}
    assert any(marker.encode() in data for data in stored.values())
    leaks = [p.name for p, data in stored.items() if secret.encode() in data]
    assert leaks == []
