"""Feedback round trip: stored with the request, shown as quality over time, used in training."""

from __future__ import annotations

from typing import Any

from inferscale.monitor.feedback import FeedbackStore
from inferscale.routing.training import feedback_labels
from tests.support.fakes import assert_one_line_error, fake_model


def test_feedback_round_trip(make_engine: Any, cli: Any) -> None:
    engine = make_engine(fake_model("cheap", "solver-sum"), fake_model("other", "solver-sum_rev"))
    res = engine.ask("Spell the word 'pebble' backwards.", models=["cheap"])
    proc = cli("feedback", res.request_id, "bad", "--answer", "elbbep")
    assert proc.returncode == 0 and "feedback recorded" in proc.stdout, proc.stderr
    ok = engine.ask("What is 40 plus 2?", models=["cheap"])
    assert cli("feedback", ok.request_id, "good").returncode == 0
    store = FeedbackStore(engine.database)
    [fb] = store.for_request(res.request_id)
    assert (fb.rating, fb.answer, fb.model, fb.source) == ("bad", "elbbep", None, "cli")
    rows = store.quality_over_time()
    assert [(r["model"], r["good"], r["bad"]) for r in rows] == [("cheap", 1, 1)]
    assert rows[0]["quality"] == 0.5 and rows[0]["strategy"] == "single"
    # A model card's rating names the model; it must be one that answered.
    store.add(ok.request_id, "good", model="cheap", source="playground")
    labels = {(lb.prompt, lb.label) for lb in feedback_labels(engine.database)}
    assert ("Spell the word 'pebble' backwards.", 0.0) in labels and ("What is 40 plus 2?", 1.0) in labels
    line = assert_one_line_error(cli("feedback", "no-such-request", "good"))
    assert "unknown request id 'no-such-request'" in line
    assert "good or bad" in assert_one_line_error(cli("feedback", ok.request_id, "meh"))
    try:
        store.add(ok.request_id, "good", model="other")
    except Exception as exc:  # noqa: BLE001
        assert "did not answer" in str(exc)
    else:
        raise AssertionError("feedback for a model that did not answer was accepted")
    assert len(store.for_request(ok.request_id)) == 2  # nothing lost by the refused ones
