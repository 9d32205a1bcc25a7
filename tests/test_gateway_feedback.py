"""POST /v1/feedback against a real uvicorn on 127.0.0.1: round trip into the feedback store, 404 for
unknown (and other tenants') request ids, 400 naming the bad field, 401 without a valid key."""

from __future__ import annotations

import httpx
import pytest

from inferscale.monitor.feedback import FeedbackStore
from tests.support.fakes import fake_model
from tests.support.gateway import Gateway

MODELS = [fake_model("fake-echo", "echo", input_price_per_1m=1000.0), fake_model("fake-yes", "const-yes")]


@pytest.fixture
def gw(make_engine):
    g = Gateway(make_engine(*MODELS, max_attempts=1))
    yield g
    g.stop()


def answered(gw: Gateway, key: str, prompt: str) -> str:
    """A request the gateway answered for `key`; returns its request id."""
    raw = gw.client(key).chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": prompt}])
    return raw.headers["x-inferscale-request-id"]


def post(gw: Gateway, key: str | None, body: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(gw.url + "/v1/feedback", json=body, headers=headers, timeout=30)


def error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert "\n" not in body["error"]["message"]
    return body["error"]


def test_feedback_round_trip_is_stored_with_the_request(gw) -> None:
    key = gw.key("team-a")
    rid = answered(gw, key, "which planet has the most moons?")
    r = post(gw, key, {"request_id": rid, "rating": "bad", "answer": "Saturn, at last count"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["object"] == "inferscale.feedback" and rec["request_id"] == rid
    assert (rec["rating"], rec["answer"], rec["model"], rec["source"]) == (
        "bad", "Saturn, at last count", None, "gateway")
    assert rec["ts"] > 0
    # One member's answer can be rated too, as on the Playground's model cards.
    card = post(gw, key, {"request_id": rid, "rating": "good", "model": "fake-echo"})
    assert card.status_code == 200 and card.json()["model"] == "fake-echo"
    store = FeedbackStore(gw.engine.database)
    stored = store.for_request(rid)
    assert [(f.rating, f.answer, f.model, f.source) for f in stored] == [
        ("bad", "Saturn, at last count", None, "gateway"), ("good", None, "fake-echo", "gateway")]
    assert stored[0].ts == rec["ts"]
    rows = store.quality_over_time()
    assert [(q["model"], q["good"], q["bad"]) for q in rows] == [("fake-echo", 1, 1)]


def test_unknown_request_id_is_404_in_the_gateway_error_shape(gw) -> None:
    key = gw.key("team-a")
    r = post(gw, key, {"request_id": "no-such-request", "rating": "good"})
    assert r.status_code == 404
    e = error(r)
    assert e["message"] == "unknown request id 'no-such-request'"
    assert (e["param"], e["code"], e["type"]) == ("request_id", "request_not_found", "not_found_error")


def test_bad_bodies_are_400_naming_the_field_and_store_nothing(gw) -> None:
    key = gw.key("team-a")
    rid = answered(gw, key, "how long is a light year?")
    cases = [
        ({"request_id": rid, "rating": "meh"}, "rating"),
        ({"request_id": rid}, "rating"),
        ({"rating": "good"}, "request_id"),
        ({"request_id": rid, "rating": "good", "answer": 42}, "answer"),
        ({"request_id": rid, "rating": "good", "anwser": "typo"}, "anwser"),
        ({"request_id": rid, "rating": "good", "model": "fake-yes"}, "model"),  # did not answer it
    ]
    for body, field in cases:
        r = post(gw, key, body)
        assert r.status_code == 400, (body, r.text)
        e = error(r)
        assert e["param"] == field and e["type"] == "invalid_request_error", (body, e)
    assert "good" in error(post(gw, key, {"request_id": rid, "rating": "meh"}))["message"]
    assert "did not answer" in error(post(gw, key, {"request_id": rid, "rating": "good",
                                                    "model": "fake-yes"}))["message"]
    bad_json = httpx.post(gw.url + "/v1/feedback", content=b"{not json",
                          headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert bad_json.status_code == 400 and error(bad_json)["code"] == "invalid_json"
    assert FeedbackStore(gw.engine.database).for_request(rid) == []


def test_feedback_needs_a_valid_active_key(gw) -> None:
    key = gw.key("team-a")
    rid = answered(gw, key, "what colour is the sky on Mars?")
    body = {"request_id": rid, "rating": "good"}
    assert error(post(gw, None, body))["code"] == "missing_api_key"
    assert post(gw, None, body).status_code == 401
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    r = post(gw, forged, body)
    assert r.status_code == 401 and error(r)["code"] == "invalid_api_key" and forged not in r.text
    gw.keys.revoke("team-a")
    r = post(gw, key, body)
    assert r.status_code == 401 and error(r)["code"] == "revoked_api_key"
    assert FeedbackStore(gw.engine.database).for_request(rid) == []


def test_a_key_cannot_rate_another_tenants_request(gw) -> None:
    a, b = gw.key("alpha"), gw.key("beta", budget_usd=1e-9)
    rid = answered(gw, a, "name a river in Africa")
    r = post(gw, b, {"request_id": rid, "rating": "bad", "answer": "not yours to correct"})
    # The same answer as an unknown id: beta learns nothing about which ids exist.
    assert r.status_code == 404 and error(r)["message"] == f"unknown request id {rid!r}"
    # Nor a request made outside the gateway (no tenant: the local user's).
    local = gw.engine.ask("a question asked on the command line", models=["fake-echo"]).request_id
    assert post(gw, a, {"request_id": local, "rating": "good"}).status_code == 404
    assert FeedbackStore(gw.engine.database).all() == []
    # Feedback spends nothing: a key whose budget is spent still rates its own requests.
    own = answered(gw, b, "name a river in Asia")
    assert post(gw, b, {"request_id": own, "rating": "good"}).status_code == 200
    spent = httpx.post(gw.base_url + "/chat/completions", headers={"authorization": f"Bearer {b}"},
                       json={"model": "fake-echo", "messages": [{"role": "user", "content": "again"}]})
    assert spent.status_code == 429
    assert post(gw, b, {"request_id": own, "rating": "bad"}).status_code == 200
    assert [f.request_id for f in FeedbackStore(gw.engine.database).all()] == [own, own]


def test_a_new_key_reusing_a_revoked_keys_name_cannot_rate_the_old_keys_requests(gw) -> None:
    old = gw.key("crew")
    before = answered(gw, old, "which bird migrates the farthest?")
    gw.keys.revoke("crew")
    new = gw.key("crew")  # the same name, so the same `tenant` on the rows
    after = answered(gw, new, "which fish swims the fastest?")
    r = post(gw, new, {"request_id": before, "rating": "bad", "answer": "rated by a later key"})
    assert r.status_code == 404 and error(r)["message"] == f"unknown request id {before!r}"
    assert post(gw, new, {"request_id": after, "rating": "good"}).status_code == 200
    assert [f.request_id for f in FeedbackStore(gw.engine.database).all()] == [after]


def test_without_auth_any_request_can_be_rated(make_engine) -> None:
    g = Gateway(make_engine(*MODELS), auth=False)
    try:
        rid = g.engine.ask("a question from the shell", models=["fake-echo"]).request_id
        r = post(g, None, {"request_id": rid, "rating": "good"})
        assert r.status_code == 200 and r.json()["source"] == "gateway"
        assert post(g, None, {"request_id": "missing", "rating": "good"}).status_code == 404
    finally:
        g.stop()


def test_feedback_sent_the_moment_the_answer_arrives_finds_its_request(gw) -> None:
    import threading

    key = gw.key("quick")
    gate = threading.Event()
    gw.engine.writer.submit(gate.wait, 30)  # the request's row is still queued when the answer arrives
    rid = answered(gw, key, "how long do tortoises live?")
    assert gw.engine.writer.pending > 1
    threading.Timer(0.3, gate.set).start()
    r = post(gw, key, {"request_id": rid, "rating": "good"})
    assert r.status_code == 200, r.text
    assert [f.rating for f in FeedbackStore(gw.engine.database).for_request(rid)] == ["good"]
