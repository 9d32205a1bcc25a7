"""AppTest: feedback buttons on the Playground, quality from feedback on Performance, the what-if
preview beside the Tuning controls (shown before Save, nothing saved by it)."""

from __future__ import annotations

from typing import Any

import pytest

from inferscale.monitor.feedback import FeedbackStore
from tests.support.dashboard import all_text, app_test, dashboard_models, frame, no_exception


@pytest.fixture
def engine(make_engine: Any) -> Any:
    return make_engine(*dashboard_models())


def test_playground_feedback_on_final_answer_and_model_card(engine: Any) -> None:
    at = app_test("playground")
    at.text_area(key="pg_prompt").input("Say something to rate")
    at.multiselect(key="pg_models").set_value(["fake-echo"])
    at.button(key="pg_submit").click().run()
    no_exception(at)
    [rid] = [r[0] for r in engine.database.db.execute("SELECT id FROM requests").fetchall()]
    short = rid[:12]
    at.text_input(key=f"pg_fb_answer_{short}").input("a better answer")
    at.button(key=f"pg_fb_{short}_0_bad").click().run()
    no_exception(at)
    assert "Recorded: the final answer rated bad" in all_text(at)
    at.button(key=f"pg_fb_{short}_1_good").click().run()
    no_exception(at)
    got = [(f.rating, f.model, f.answer, f.source) for f in FeedbackStore(engine.database).for_request(rid)]
    assert got == [("bad", None, "a better answer", "playground"),
                   ("good", "fake-echo", "a better answer", "playground")]


def test_performance_shows_quality_from_feedback(engine: Any) -> None:
    res = engine.ask("Rate me, please", models=["fake-const"])
    FeedbackStore(engine.database).add(res.request_id, "good")
    FeedbackStore(engine.database).add(res.request_id, "bad", model="fake-const")
    at = app_test("performance")
    no_exception(at)
    df = frame(at, "model", "strategy", "good", "bad", "quality")
    assert list(df["model"]) == ["fake-const"] and int(df["good"][0]) == 1 and int(df["bad"][0]) == 1
    assert float(df["quality"][0]) == 0.5


def test_tuning_preview_shows_whatif_before_saving(engine: Any) -> None:
    at = app_test("tuning")
    no_exception(at)
    assert "request log is empty" in all_text(at)
    for p in ("How do I clean a cast iron pan?", "How should I clean a cast iron pan?",
              "Which mountain is the highest in Africa?", "How do I clean a cast iron pan?"):
        engine.ask(p)
    at = app_test("tuning")
    before = frame(at, "now", "with your change")
    assert list(before["now"]) == list(before["with your change"])  # nothing changed yet
    at.toggle(key="tuning_semantic_enabled").set_value(False)
    at.number_input(key="tuning_semantic_threshold").set_value(0.9)
    at.button(key="tuning_preview").click().run()
    no_exception(at)
    df = frame(at, "now", "with your change").set_index("")
    assert df.loc["L4 (exact) hit rate", "now"] == "25.0%"
    assert df.loc["L1 (semantic) hit rate", "now"] == "25.0%"
    assert df.loc["L1 (semantic) hit rate", "with your change"] == "0.0%"
    assert "semantic_enabled, semantic_threshold" in all_text(at)  # the changed knobs are named
    assert engine.tunables().semantic_threshold == 0.85  # preview never saves
    assert any(getattr(c, "key", None) == "tuning_whatif_curve" for c in at.main) or "hit_rate" in str(at.main)


def test_tuning_whatif_is_replayed_once_per_distinct_input(engine: Any) -> None:
    for p in ("Which fern grows best in shade?", "What fern grows best in the shade?"):
        engine.ask(p)
    at = app_test("tuning")
    no_exception(at)
    first = at.session_state["_whatif_figures"]
    assert first[1].requests == 2
    at.run()  # a rerun that changes nothing reuses the figures
    assert at.session_state["_whatif_figures"] is first
    engine.ask("How tall do sunflowers grow?")  # the log grew: replayed again
    at.run()
    again = at.session_state["_whatif_figures"]
    assert again is not first and again[1].requests == 3
    at.number_input(key="tuning_semantic_threshold").set_value(0.95)
    at.button(key="tuning_preview").click().run()  # another proposal: replayed again
    assert at.session_state["_whatif_figures"][0] != again[0]
