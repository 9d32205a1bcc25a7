"""Registry: seeding from data/models.yaml, validated all-or-nothing imports, enable/disable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inferscale import Engine, Settings
from inferscale.errors import ConfigError, UnknownModelError
from inferscale.settings import DEFAULT_MODELS_YAML
from tests.support.fakes import LOCAL_IDS, fake_model


def _rows(engine: Engine) -> list[tuple]:
    """The raw registry table, so a 'nothing changed' check also covers positions and timestamps."""
    return engine.database.db.execute(
        "SELECT id, spec, enabled, position, updated_at FROM models ORDER BY position"
    ).fetchall()


@pytest.fixture
def engine(home: Path) -> Engine:
    return Engine(Settings.from_env(home))


def test_seeded_from_models_yaml(engine: Engine) -> None:
    seed = yaml.safe_load(DEFAULT_MODELS_YAML.read_text())["models"]
    assert [s.id for s in engine.registry.list()] == [m["id"] for m in seed]
    assert [s.id for s in engine.registry.available()] == list(LOCAL_IDS)
    remote = [s for s in engine.registry.list() if not s.is_local]
    assert remote, "the seed file lists remote models"
    for spec in remote:
        assert spec.unavailable_reason() is not None
        assert spec not in engine.registry.available()


def test_seed_is_applied_once(engine: Engine, home: Path) -> None:
    engine.registry.set_enabled("local/gemma-3-270m", False)
    again = Engine(Settings.from_env(home))
    assert again.registry.get("local/gemma-3-270m").enabled is False
    assert [s.id for s in again.registry.available()] == ["local/smollm2-135m-instruct"]


def test_import_merges_and_keeps_earlier_models(engine: Engine, register) -> None:
    before = {s.id for s in engine.registry.list()}
    register(engine, fake_model("fake-a"))
    register(engine, fake_model("fake-b", "const-b", quality_prior=0.7))
    ids = [s.id for s in engine.registry.list()]
    assert before | {"fake-a", "fake-b"} == set(ids)
    assert ids[-2:] == ["fake-a", "fake-b"]  # new models are appended in import order
    assert engine.registry.get("fake-b").quality_prior == 0.7


def test_reimport_updates_in_place(engine: Engine, register) -> None:
    register(engine, fake_model("fake-a", quality_prior=0.3), fake_model("fake-b"))
    order = [s.id for s in engine.registry.list()]
    register(engine, fake_model("fake-a", quality_prior=0.9), replace=True)
    assert [s.id for s in engine.registry.list()] == order
    assert engine.registry.get("fake-a").quality_prior == 0.9


GOOD = "  - {id: new-good, model: openai/echo, enabled: false}\n"

BAD_FILES = {
    "unknown field": (
        "models:\n" + GOOD + "  - {id: bad, model: openai/echo, colour: red, enabled: false}\n",
        ["colour", "unknown field"],
    ),
    "negative price": (
        "models:\n" + GOOD + "  - {id: bad, model: openai/echo, input_price_per_1m: -1, enabled: false}\n",
        ["input_price_per_1m"],
    ),
    "non-finite quality": (
        "models:\n" + GOOD + "  - {id: bad, model: openai/echo, quality_prior: .nan, enabled: false}\n",
        ["quality_prior"],
    ),
    "duplicate id": (
        "models:\n" + GOOD + GOOD,
        ["id", "duplicate", "new-good"],
    ),
    "enabled model without its key": (
        "models:\n" + GOOD
        + "  - {id: bad, model: openai/echo, api_key_env: INFERSCALE_TEST_MISSING_KEY, enabled: true}\n",
        ["api_key_env", "INFERSCALE_TEST_MISSING_KEY"],
    ),
    "a pasted key instead of a variable name": (
        "models:\n" + GOOD + "  - {id: bad, model: openai/echo, api_key_env: sk-abc123, enabled: false}\n",
        ["api_key_env"],
    ),
    "malformed YAML": (
        "models:\n" + GOOD + "  - {id: bad, model: [unclosed\n",
        ["malformed YAML", "line"],
    ),
    "missing models key": (
        "items:\n" + GOOD,
        ["models"],
    ),
    "models is not a list": (
        "models: {id: bad}\n",
        ["models"],
    ),
    "unknown top-level field": (
        "models:\n" + GOOD + "extra: 1\n",
        ["extra"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_import_names_the_field_and_changes_nothing(
    case: str, engine: Engine, register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERSCALE_TEST_MISSING_KEY", raising=False)
    register(engine, fake_model("fake-earlier"))
    before = _rows(engine)
    text, must_name = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as info:
        engine.registry.import_yaml(path)

    message = str(info.value)
    assert "\n" not in message
    for word in must_name:
        assert word in message
    assert _rows(engine) == before  # not even the valid first entry was stored
    assert "new-good" not in {s.id for s in engine.registry.list()}


def test_import_of_missing_file(engine: Engine, tmp_path: Path) -> None:
    before = _rows(engine)
    with pytest.raises(ConfigError, match="no such file"):
        engine.registry.import_yaml(tmp_path / "nope.yaml")
    assert _rows(engine) == before


def test_disable_and_enable(engine: Engine) -> None:
    gemma = "local/gemma-3-270m"
    spec = engine.registry.set_enabled(gemma, False)
    assert spec.enabled is False
    assert gemma not in {s.id for s in engine.registry.available()}
    assert gemma in {s.id for s in engine.registry.list()}
    assert "disabled" in engine.registry.get(gemma).unavailable_reason()

    engine.registry.set_enabled(gemma, True)
    assert gemma in {s.id for s in engine.registry.available()}


def test_enabling_a_model_without_its_key_fails(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _rows(engine)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        engine.registry.set_enabled("gpt-4o-mini", True)
    assert _rows(engine) == before
    assert engine.registry.get("gpt-4o-mini").enabled is False

    monkeypatch.setenv("OPENAI_API_KEY", "set-now")
    assert engine.registry.set_enabled("gpt-4o-mini", True).enabled is True
    assert "gpt-4o-mini" in {s.id for s in engine.registry.available()}


def test_unknown_model_id(engine: Engine) -> None:
    with pytest.raises(UnknownModelError, match="no-such-model"):
        engine.registry.get("no-such-model")
    with pytest.raises(UnknownModelError):
        engine.registry.set_enabled("no-such-model", True)


def test_model_without_key_is_unavailable_until_the_variable_is_set(
    engine: Engine, register, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(engine, fake_model("fake-a"))
    assert "fake-a" in {s.id for s in engine.registry.available()}
    monkeypatch.delenv("FAKE_KEY")
    spec = engine.registry.get("fake-a")
    assert spec.missing_key() == "FAKE_KEY"
    assert "FAKE_KEY" in spec.unavailable_reason()
    assert "fake-a" not in {s.id for s in engine.registry.available()}
