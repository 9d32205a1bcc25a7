"""The learned router on real labels: two fake models whose answers are right or wrong by the kind
of prompt (`solver-sum` right only on sums, `solver-sum_rev` right on sums and reversals), labelled
through `Engine.aask` and scored against the expected answers."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pytest

from inferscale.cli import main
from inferscale.types import CacheControl
from tests.support.fakes import assert_one_line_error, fake_model
from tests.support.labels import label, two_kinds

CHEAP = fake_model("cheap", "solver-sum", input_price_per_1m=0.1, output_price_per_1m=0.2, quality_prior=0.3)
STRONG = fake_model("strong", "solver-sum_rev", input_price_per_1m=5.0, output_price_per_1m=15.0,
                    quality_prior=0.9)
EVAL_KEYS = {"routers", "strong", "weak", "items"}
ROUTER_KEYS = {"name", "apgr", "cpt50", "cpt80", "aiq"}


def held_out(item_id: str) -> bool:  # the documented split, recomputed here: 30% by a hash of the id
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) % 100 >= 70


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def labelled(make_engine: Any) -> tuple[Any, list[dict[str, str]]]:
    engine = make_engine(CHEAP, STRONG)
    items = two_kinds(n_sum=48, n_rev=16)
    rows = label(engine, "kinds", items, ["cheap", "strong"])
    kind = {it["id"]: it["kind"] for it in items}
    # The data is what the fake models make it: cheap right exactly on sums, strong on everything.
    assert all(r["correct"] == (kind[r["item_id"]] == "sum") for r in rows if r["config"] == "single-cheap")
    assert all(r["correct"] == 1 for r in rows if r["config"] == "single-strong")
    return engine, items


def test_learned_router_finds_the_split_and_beats_random_and_complexity(labelled: Any, capsys: Any) -> None:
    engine, items = labelled
    test_items = [it for it in items if held_out(it["id"])]
    assert 8 <= len(test_items) <= 32 and any(it["kind"] == "rev" for it in test_items)
    for method in ("knn", "mf"):
        trained = run(capsys, "router", "train", "--method", method, "--json")
        assert trained["method"] == method and trained["models"] == ["cheap", "strong"]
        assert trained["prompts"] == len(items) - len(test_items)  # eval items never trained on
        assert (trained["strong"], trained["weak"]) == ("strong", "cheap")
        out = run(capsys, "router", "eval", "--experiment", "kinds", "--json")
        assert set(out) == EVAL_KEYS and out["items"] == len(test_items)
        assert (out["strong"], out["weak"]) == ("strong", "cheap")
        rows = {r["name"]: r for r in out["routers"]}
        assert list(rows) == ["learned", "random", "cheapest", "quality", "complexity", "oracle"]
        assert all(set(r) == ROUTER_KEYS for r in out["routers"])
        assert rows["learned"]["apgr"] >= 0.8, (method, rows)
        assert 0.35 <= rows["random"]["apgr"] <= 0.65, rows
        assert rows["learned"]["apgr"] > rows["complexity"]["apgr"] and rows["learned"]["apgr"] > rows["random"]["apgr"]
        assert rows["learned"]["cpt80"] is not None and rows["learned"]["cpt80"] < rows["random"]["cpt80"]
    # Default selection is by measurement and is stored, versioned, the earlier versions kept.
    chosen = run(capsys, "router", "train", "--json")
    assert chosen["method"] in ("knn", "mf") and set(chosen["selection_brier"]) == {"knn", "mf"}
    assert chosen["version"] == 3
    assert sorted(p.name for p in (engine.settings.home / "routers").glob("learned-v*.npz")) == [
        "learned-v1.npz", "learned-v2.npz", "learned-v3.npz"]
    # Live routing of held-out prompts: sums to the cheap model, reversals to the strong one.
    for it in test_items:
        res = engine.ask(it["prompt"], router="learned", cache=CacheControl.off())
        want = "cheap" if it["kind"] == "sum" else "strong"
        assert res.routing.models[0] == want, res.routing.reason
        assert res.answer == it["expected"]
        assert "learned" in res.routing.reason and ("nearest labelled prompts" in res.routing.reason
                                                    or "factors that decided" in res.routing.reason)


@pytest.mark.parametrize("share", [0.15, 0.4, 0.6])
def test_calibration_hits_the_asked_strong_share(labelled: Any, capsys: Any, share: float) -> None:
    engine, items = labelled
    run(capsys, "router", "train", "--method", "knn", "--json")
    cal = run(capsys, "router", "calibrate", "--strong-share", str(share), "--json")
    assert abs(cal["strong_share"] - share) <= 0.05, cal
    assert cal["prompts"] == sum(not held_out(it["id"]) for it in items)
    tun = engine.tunables()
    assert math.isclose(tun.learned_threshold, cal["threshold"])
    # Fresh prompts of the same two kinds (never labelled), routed by the engine with the saved
    # threshold, go to the strong model in about that share (150 prompts: sampling error ~4 points).
    fresh = two_kinds(n_sum=112, n_rev=38, seed=99)
    strong = sum(engine.ask(it["prompt"], router="learned", cache=CacheControl.off()).routing.models[0] == "strong"
                 for it in fresh)
    assert abs(strong / len(fresh) - share) <= 0.12, (strong, len(fresh))


def test_calibrating_to_a_cost_stays_under_it(labelled: Any, capsys: Any) -> None:
    run(capsys, "router", "train", "--method", "knn", "--json")
    from inferscale.routing.artefact import load

    model = load(labelled[0].settings.home)
    cap = float(model.cost.min() * 0.5 + model.cost.max() * 0.5)
    cal = run(capsys, "router", "calibrate", "--max-cost-usd", repr(cap), "--json")
    assert cal["mean_cost_usd"] <= cap and 0 < cal["strong_share"] < 1


def test_broken_or_missing_router_falls_back_to_complexity(make_engine: Any) -> None:
    engine = make_engine(CHEAP, STRONG)
    res = engine.ask("What is 3 plus 4?", router="learned")
    assert res.routing.policy == "complexity" and "no trained router" in res.routing.reason
    d = engine.settings.home / "routers"
    d.mkdir()
    (d / "learned-v1.json").write_text('{"method": "knn", "models": ["cheap", "strong"]}')
    (d / "learned-v1.npz").write_bytes(b"not a zip file")
    res = engine.ask("What is 5 plus 4?", router="learned")
    assert res.routing.policy == "complexity" and "unreadable" in res.routing.reason
    assert res.answer == "9" or res.answer == "not sure"  # served all the same


def test_training_needs_two_models_and_labels(make_engine: Any, cli: Any) -> None:
    engine = make_engine(CHEAP, STRONG)
    assert "no labelled prompts" in assert_one_line_error(cli("router", "train"))
    label(engine, "one", two_kinds(3, 2), ["cheap"])
    assert "at least 2 models" in assert_one_line_error(cli("router", "train"))
    assert "unknown method" in assert_one_line_error(cli("router", "train", "--method", "svm"))
    assert "unknown experiment" in assert_one_line_error(cli("router", "train", "--experiment", "nope"))
    assert "no trained router" in assert_one_line_error(cli("router", "calibrate", "--strong-share", "0.3"))
    for bad in ("1.5", "0", "1", "nan", "-0.2"):
        line = assert_one_line_error(cli("router", "calibrate", "--strong-share", bad))
        assert "--strong-share" in line, line
    assert "exactly one" in assert_one_line_error(cli("router", "calibrate"))
    assert "unknown experiment" in assert_one_line_error(cli("router", "eval", "--experiment", "nope"))
    assert "unknown router" in assert_one_line_error(cli("ask", "hi", "--router", "psychic"))
    assert "default_router" in assert_one_line_error(cli("config", "set", "default_router", "psychic"))
    assert "learned_threshold" in assert_one_line_error(cli("config", "set", "learned_threshold", "nan"))


def test_retraining_the_router_keys_its_answers_apart(make_engine: Any) -> None:
    """Answers routed by the learned router are cached under the stored router's version: a retrained
    router (a new version) misses L4 and L1 and routes afresh; the same version hits."""
    import numpy as np

    from inferscale.routing import artefact
    from inferscale.routing.training import Matrix, fit

    engine = make_engine(CHEAP, STRONG)
    prompts = ["What is 7 plus 8?", "How much is 40 plus 2?", "Spell the word 'kettle' backwards.",
               "Write 'ladder' backwards, letter by letter."]
    X = np.asarray(engine.embedder.embed(prompts), dtype=np.float32)

    def train(cheap_right: list[float]) -> str:
        mx = Matrix(tuple(prompts), tuple(f"p{i}" for i in range(len(prompts))), ("cheap", "strong"),
                    np.array([[c, 1.0] for c in cheap_right], dtype=np.float32), np.array([1e-7, 5e-6]))
        artefact.save(engine.settings.home, fit(mx, X, "knn"))
        return artefact.current_version(engine.settings.home)

    q = "What is 12 plus 9?"
    v1 = train([1.0, 1.0, 0.0, 0.0])
    first = engine.ask(q, router="learned")
    assert first.cache is None and first.routing.policy == "learned" and "knn v1" in first.routing.reason
    again = engine.ask(q, router="learned")
    assert again.cache is not None and again.cache.level == "L4"  # the same version: a hit
    other = engine.ask(q, router="complexity")  # another router: its own entry
    assert other.cache is None
    v2 = train([0.0, 0.0, 0.0, 0.0])  # retrained: the cheap model is now never trusted
    assert v2 != v1 and v2.startswith("v2:")
    fresh = engine.ask(q, router="learned")
    assert fresh.cache is None, fresh.cache  # neither L4 nor L1 serves what the previous router routed
    assert "knn v2" in fresh.routing.reason and fresh.routing.models[0] == "strong"
    hit = engine.ask(q, router="learned")
    assert hit.cache is not None and hit.cache.level == "L4"
    assert engine.ask(q, router="complexity").cache.level == "L4"  # other routers are unaffected
