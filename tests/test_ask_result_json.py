"""`AskResult.from_json` is the exact inverse of `to_json`, for fresh results and cache hits."""

from __future__ import annotations

from inferscale.types import AskResult, MemberResult
from tests.support.fakes import fake_model


def test_from_json_inverts_to_json_for_a_miss_and_a_hit(make_engine, server) -> None:
    engine = make_engine(fake_model("a", "const-42"), fake_model("b", "fail-500"))
    fresh = engine.ask("Which number comes to mind first?", strategy="ensemble", models=["a", "b"])
    hit = engine.ask("Which number comes to mind first?", strategy="ensemble", models=["a", "b"])
    assert fresh.cache is None and hit.cache is not None and hit.cache.level == "L4"
    for result in (fresh, hit):
        data = result.to_json()
        back = AskResult.from_json(data)
        assert back.to_json() == data
        assert all(isinstance(m, MemberResult) for m in back.members)  # records, not dicts
        assert [m.error for m in back.members] == [m.error for m in result.members]
        assert back.cache == result.cache and back.detail == result.detail
