"""The optional judge of L1's borderline band (issue 13): the fake OpenAI-compatible server plays the
judge through litellm's real HTTP path, with the real engine, registry, SQLite, Chroma and MiniLM.

The sentences are this file's own. Two prompts about resting a roast chicken are worded apart enough
that verification asks for 0.85 and they reach about 0.84: borderline. A table for 4 and one for 6
differ in a number: rejected outright, never judged."""

from __future__ import annotations

import json

import pytest

from inferscale.cache.judge import verdict_word
from inferscale.cache.scope import build_query
from inferscale.errors import ConfigError
from inferscale.orchestration.cache_judge import build_judge
from inferscale.settings import Tunables
from inferscale.types import CacheControl
from tests.conftest import DEFAULT_FAKE_KEY
from tests.support.fakes import LOCAL_IDS, assert_one_line_error, fake_model

ECHO = fake_model("fake-echo", "echo")
STORED = "How long should I rest a roast chicken before carving it?"
ASKED = "How many minutes should a roasted chicken sit before I carve it?"  # ~0.84 to STORED: short of 0.85
PRICE = {"input_price_per_1m": 2.0, "output_price_per_1m": 10.0}


def _judge(model_id: str, behaviour: str, **fields) -> dict:
    return fake_model(model_id, behaviour, **{**PRICE, **fields})


def _engine(make_engine, judge: dict | None, **tunables: str):
    engine = make_engine(ECHO, *([judge] if judge else []))
    for key, value in tunables.items():
        engine.tunables_store.set(key, value)
    return engine


def _rows(engine, table: str, request_id: str) -> list[dict]:
    cur = engine.database.db.execute(f"SELECT * FROM {table} WHERE request_id = ?", [request_id])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_the_judge_is_off_by_default(make_engine, server) -> None:
    assert Tunables().semantic_judge_model == ""
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"))  # registered, not configured
    engine.ask(STORED, models=["fake-echo"])
    second = engine.ask(ASKED, models=["fake-echo"])
    assert second.cache is None and second.answer == f"echo: {ASKED}"
    assert server.calls["const-yes"] == 0
    assert [c["model"] for c in _rows(engine, "model_calls", second.request_id)] == ["fake-echo"]
    assert not any("judge" in s.note for s in second.steps)


def test_a_borderline_candidate_is_served_when_the_judge_says_yes(make_engine, server) -> None:
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    first = engine.ask(STORED, models=["fake-echo"])
    served = engine.ask(ASKED, models=["fake-echo"])
    assert server.calls["const-yes"] == 1 and server.calls["echo"] == 1
    out = served.to_json()["cache"]
    assert out["level"] == "L1" and served.answer == first.answer
    assert out["verification"].startswith("confirmed by judge fake-judge: reworded, similarity 0.8")
    assert out["similarity"] < 0.85 and out["judge"] == "fake-judge"
    # The judge saw both requests, and answered in a few tokens at temperature 0.
    sent = server.last_request
    assert STORED in sent["messages"][-1]["content"] and ASKED in sent["messages"][-1]["content"]
    assert sent["max_tokens"] <= 8 and sent["temperature"] == 0
    # Its call is the request's one model call, priced from the registry, and the request's cost.
    (call,) = _rows(engine, "model_calls", served.request_id)
    expected = (call["tokens_in"] * 2.0 + call["tokens_out"] * 10.0) / 1e6
    assert call["model"] == "fake-judge" and call["error_class"] is None and call["attempts"] == 1
    assert call["cost_usd"] == pytest.approx(expected) and expected > 0
    assert served.cost_usd == pytest.approx(expected) and out["judge_cost_usd"] == pytest.approx(expected)
    request = engine.database.db.execute(
        "SELECT cost_usd, cache_level FROM requests WHERE id = ?", [served.request_id]).fetchone()
    assert request[0] == pytest.approx(expected) and request[1] == "L1"
    l1 = [e for e in _rows(engine, "cache_events", served.request_id) if e["level"] == "L1"]
    assert [(e["hit"], e["model"]) for e in l1] == [(1, "fake-judge")]
    assert engine.monitor.stats()["models"]["fake-judge"]["calls"] == 1


@pytest.mark.parametrize(("behaviour", "why"), [
    ("const-no", "judge fake-judge said no"),
    ("const-maybe", "judge fake-judge gave no yes/no answer ('maybe')"),
    ("fail-500", "judge fake-judge failed (InternalServerError)"),
    ("slow-3000", "judge fake-judge failed (Timeout)"),
    ("keyecho-401", "judge fake-judge failed (AuthenticationError)"),
])
def test_anything_but_yes_is_a_miss(make_engine, server, behaviour: str, why: str) -> None:
    engine = _engine(make_engine, _judge("fake-judge", behaviour), semantic_judge_model="fake-judge",
                     semantic_judge_timeout_s="0.5")
    engine.ask(STORED, models=["fake-echo"])
    missed = engine.ask(ASKED, models=["fake-echo"])
    assert missed.cache is None and missed.answer == f"echo: {ASKED}"
    assert server.calls[behaviour] == 1  # one attempt, never retried
    note = next(s.note for s in missed.steps if s.name == "cache")
    assert "L1 miss" in note and why in note, note
    calls = {c["model"]: c for c in _rows(engine, "model_calls", missed.request_id)}
    assert set(calls) == {"fake-judge", "fake-echo"}
    assert (calls["fake-judge"]["error_class"] is None) == behaviour.startswith("const-")
    assert missed.cost_usd == pytest.approx(calls["fake-judge"]["cost_usd"] + calls["fake-echo"]["cost_usd"])
    l1 = [e for e in _rows(engine, "cache_events", missed.request_id) if e["level"] == "L1"]
    assert [(e["hit"], e["model"]) for e in l1] == [(0, "fake-judge")]
    # The key the fake server echoes back is never kept, in any row or message.
    dump = json.dumps([_rows(engine, t, missed.request_id) for t in ("model_calls", "cache_events")])
    assert DEFAULT_FAKE_KEY not in dump + note + json.dumps(missed.to_json())


def test_a_hard_reject_or_a_pair_outside_the_band_never_reaches_the_judge(make_engine, server) -> None:
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    engine.ask("Reserve a table for 4 people at 7pm", models=["fake-echo"])
    other = engine.ask("Reserve a table for 6 people at 7pm", models=["fake-echo"])  # numbers differ
    assert other.cache is None and server.calls["const-yes"] == 0
    engine.ask("What is the weather in Oslo tomorrow?", models=["fake-echo"])  # similarity ~0.1
    assert engine.ask("How do I descale my kettle?", models=["fake-echo"]).cache is None
    assert server.calls["const-yes"] == 0
    # The band's floor is a tunable: above this pair's similarity, the judge is not asked.
    engine.tunables_store.set("semantic_judge_floor", "0.9")
    engine.ask(STORED, models=["fake-echo"])
    assert engine.ask(ASKED, models=["fake-echo"]).cache is None and server.calls["const-yes"] == 0


def test_one_call_per_lookup_on_the_most_similar_borderline_candidate(make_engine, server) -> None:
    CLOSER = "For how long should a roast chicken rest before it is carved?"  # noqa: N806 - ~0.843 to ASKED
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    engine.ask(STORED, models=["fake-echo"])
    # Stored without a lookup (it would be served for the first one).
    engine.ask(CLOSER, models=["fake-echo"], cache=CacheControl(read=False))
    assert engine.levels.semantic.count() == 2
    served = engine.ask(ASKED, models=["fake-echo"])  # both stored prompts are borderline for it
    assert server.calls["const-yes"] == 1
    assert served.to_json()["cache"]["matched_prompt"] == CLOSER


def test_the_judge_on_the_fast_vector_path(make_engine, server) -> None:
    """A lookup without exact vectors finds candidates on the fast graph; a borderline one is still
    judged on exact vectors (as every hit is)."""
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    sem = engine.levels.semantic
    if engine.embedder.fast is None:
        pytest.skip("no fast graph in this models directory")
    sem.put(build_query([{"role": "user", "content": STORED}], scope="t"), {"answer": "rest it"}, 0.01, 5.0)
    judge = build_judge(engine.tunables(), engine.registry, engine.settings)
    r = sem.lookup(build_query([{"role": "user", "content": ASKED}], scope="t"), judge=judge)
    assert r.match is not None and r.match.reason.startswith("confirmed by judge fake-judge")
    assert r.judged is not None and r.judged.call is not None and r.judged.cost_usd > 0
    assert server.calls["const-yes"] == 1


def test_a_judge_that_is_gone_is_a_miss_with_its_reason(make_engine, server) -> None:
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    engine.registry.set_enabled("fake-judge", False)  # disabled after it was set
    engine.ask(STORED, models=["fake-echo"])
    missed = engine.ask(ASKED, models=["fake-echo"])
    assert missed.cache is None and server.calls["const-yes"] == 0
    assert "judge fake-judge failed (ModelUnavailableError" in next(s.note for s in missed.steps if s.name == "cache")


def test_bad_judge_settings_are_refused_with_one_line(make_engine, cli) -> None:
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"))
    store = engine.tunables_store
    for key, value, message in [
        ("semantic_judge_model", "no-such-judge", "semantic_judge_model: unknown model id 'no-such-judge'"),
        ("semantic_judge_model", LOCAL_IDS[1], f"semantic_judge_model: '{LOCAL_IDS[1]}' is a local model"),
        ("semantic_judge_timeout_s", "0", "semantic_judge_timeout_s must be in [0.1, 60], got 0.0"),
        ("semantic_judge_floor", "1.5", "semantic_judge_floor must be in [0, 1], got 1.5"),
    ]:
        with pytest.raises(ConfigError) as err:
            store.set(key, value)
        assert str(err.value).startswith(message) and "\n" not in str(err.value), err.value
    assert store.load().semantic_judge_model == ""  # nothing stored
    store.set("semantic_judge_model", "fake-judge")
    assert store.load().semantic_judge_model == "fake-judge"
    line = assert_one_line_error(cli("config", "set", "semantic_judge_model", LOCAL_IDS[0]))
    assert "semantic_judge_model" in line and "local model" in line
    assert store.load().semantic_judge_model == "fake-judge"  # the refused value changed nothing


def test_only_a_plain_yes_or_no_is_an_answer() -> None:
    assert verdict_word("Yes.") == "yes" and verdict_word(" no ") == "no" and verdict_word("**YES**") == "yes"
    for answer in ("yes and no", "Yes, they are the same", "maybe", "", "yess", "n0"):
        assert verdict_word(answer) is None, answer


def test_cache_eval_asks_the_judge_only_when_told(make_engine, server, cli, tmp_path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in [
        {"a": STORED, "b": ASKED, "same": True},  # borderline: the judge decides
        {"a": "Reserve a table for 4 people at 7pm", "b": "Reserve a table for 6 people at 7pm", "same": False},
    ]) + "\n", encoding="utf-8")
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"))
    assert_one_line_error(cli("cache-eval", "--pairs", str(pairs), "--judge"))  # no judge configured
    engine.tunables_store.set("semantic_judge_model", "fake-judge")
    plain = json.loads(cli("cache-eval", "--pairs", str(pairs), "--json").stdout)
    assert "judge" not in plain and plain["counts"]["true_hits"] == 0 and server.calls["const-yes"] == 0
    details = tmp_path / "details.csv"
    judged = json.loads(cli("cache-eval", "--pairs", str(pairs), "--judge", "--json", "--details",
                            str(details)).stdout)
    assert judged["counts"] == {"true_hits": 1, "false_hits": 0, "missed": 0, "correct_misses": 1}
    assert judged["judge"]["model"] == "fake-judge" and judged["judge"]["calls"] == 1
    assert judged["judge"]["confirmed"] == 1 and judged["judge"]["cost_usd"] > 0
    assert server.calls["const-yes"] == 1  # the number pair never reached it
    assert "confirmed by judge fake-judge" in details.read_text(encoding="utf-8")



def test_a_verdict_is_remembered_unless_the_request_may_not_store(make_engine, server) -> None:
    engine = _engine(make_engine, _judge("fake-judge", "const-yes"), semantic_judge_model="fake-judge")
    engine.ask(STORED, models=["fake-echo"])
    no_store = CacheControl(write=False)
    for n in (1, 2):  # a request that may not store is judged every time
        assert engine.ask(ASKED, models=["fake-echo"], cache=no_store).cache.level == "L1"
        assert server.calls["const-yes"] == n
    first = engine.ask(ASKED, models=["fake-echo"])  # judged, and the verdict kept
    assert server.calls["const-yes"] == 3 and "remembered" not in first.to_json()["cache"]["verification"]
    again = engine.ask(ASKED, models=["fake-echo"])  # an L1 hit writes no L4 entry: L1 again
    out = again.to_json()["cache"]
    assert out["level"] == "L1" and server.calls["const-yes"] == 3
    assert out["verification"].startswith("confirmed by judge fake-judge (remembered): ")
    assert again.cost_usd == 0.0 and out["judge_cost_usd"] == 0.0
    assert _rows(engine, "model_calls", again.request_id) == []  # no call was made


def test_a_failing_judge_cools_down_like_any_model(make_engine, server) -> None:
    engine = make_engine(ECHO, _judge("fake-judge", "fail-503"), cooldown_failures=1)
    engine.tunables_store.set("semantic_judge_model", "fake-judge")
    engine.ask(STORED, models=["fake-echo"])
    no_store = CacheControl(write=False)
    engine.ask(ASKED, models=["fake-echo"], cache=no_store)  # fails once: cooled down
    skipped = engine.ask(ASKED, models=["fake-echo"], cache=no_store)
    assert server.calls["fail-503"] == 1 and skipped.cache is None
    note = next(s.note for s in skipped.steps if s.name == "cache")
    assert "judge fake-judge failed (ModelUnavailableError: fake-judge is cooling down after failures)" in note
