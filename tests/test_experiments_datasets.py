"""Datasets and scorers: determinism, answer-free verifiers, JSONL validation, scorer resolution.
Packaged benchmarks are checked on structure and counts only (their items are held out)."""

from __future__ import annotations

import json

import pytest

from inferscale.experiments import datasets, scorers
from inferscale.experiments.datasets import DatasetError, Item


def test_verifiable_is_deterministic_and_prefix_stable():
    a = datasets.load("verifiable", limit=12, seed=3)
    b = datasets.load("verifiable", limit=12, seed=3)
    assert [(i.id, i.prompt, i.expected) for i in a.items] == [(i.id, i.prompt, i.expected) for i in b.items]
    longer = datasets.load("verifiable", limit=20, seed=3)
    assert [i.prompt for i in longer.items[:12]] == [i.prompt for i in a.items]
    other = datasets.load("verifiable", limit=12, seed=4)
    assert [i.prompt for i in other.items] != [i.prompt for i in a.items]
    assert {i.id.split("-")[0] for i in a.items} == {"equation", "arithmetic", "sort", "convert"}


def test_verifiers_accept_right_answers_and_reject_wrong_ones_without_the_expected_answer():
    ds = datasets.load("verifiable", limit=40, seed=0)
    for item in ds.items:
        assert item.verifier(item.expected) == 1.0, item.id
        assert item.verifier(f"The answer is {item.expected}.") == 1.0, item.id
        assert item.verifier("no idea") == 0.0
        # The verifier holds no copy of `expected`: it checks the task's own data.
        if item.id.startswith("sort"):
            nums = [int(x) for x in item.expected.split(", ")]
            assert item.verifier(", ".join(map(str, reversed(nums)))) == 0.0
        else:
            assert item.verifier(str(float(item.expected) + 1)) == 0.0


def _jsonl(tmp_path, lines):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("line, needle", [
    ('[1, 2]', "line 2: not a JSON object"),
    ('{"id": "b"}', 'line 2: field "prompt"'),
    ('{"prompt": "p", "colour": 1}', "line 2: unknown field 'colour'"),
    ('{prompt', "line 2: not valid JSON"),
    ('{"prompt": "q", "id": "a"}', 'line 2: field "id"'),
])
def test_jsonl_errors_name_the_line_and_field(tmp_path, line, needle):
    p = _jsonl(tmp_path, ['{"id": "a", "prompt": "one?", "expected": "1"}', line])
    with pytest.raises(DatasetError, match=needle.replace("(", r"\(")):
        datasets.load(str(p))


def test_missing_expected_is_refused_when_the_scorer_needs_it(tmp_path):
    p = _jsonl(tmp_path, ['{"prompt": "one?", "expected": "1"}', '{"prompt": "two?"}'])
    ds = datasets.load(str(p))
    with pytest.raises(scorers.ScorerError, match='line 2: field "expected" is missing'):
        scorers.validate(ds.items, None, ds.name)
    scorers.validate(ds.items, "judge", ds.name)  # a judge needs no expected answer
    p2 = _jsonl(tmp_path, ['{"prompt": "x", "expected": "1", "scorer": "telepathy"}'])
    with pytest.raises(scorers.ScorerError, match="line 1: field \"scorer\": unknown scorer 'telepathy'"):
        scorers.validate(datasets.load(str(p2)).items, None, "d.jsonl")


def test_limit_and_seed_pick_the_same_file_items(tmp_path):
    p = _jsonl(tmp_path, [json.dumps({"prompt": f"q{i}", "expected": str(i)}) for i in range(30)])
    a = datasets.load(str(p), limit=5, seed=7)
    assert [i.id for i in a.items] == [i.id for i in datasets.load(str(p), limit=5, seed=7).items]
    assert [i.id for i in datasets.load(str(p), limit=5).items] == ["1", "2", "3", "4", "5"]
    with pytest.raises(DatasetError, match="--limit must be a positive integer"):
        datasets.load(str(p), limit=0)
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        datasets.load("nope")


def test_scorer_resolution_order():
    item = Item("1", "p", expected="42")
    assert scorers.resolve(item, None) == "numeric"
    assert scorers.resolve(Item("1", "p", expected="Paris"), None) == "normalized"
    assert scorers.resolve(Item("1", "p", expected="x", default_scorer="numbers"), None) == "numbers"
    assert scorers.resolve(Item("1", "p", expected="x", default_scorer="numbers"), "exact") == "exact"
    assert scorers.resolve(Item("1", "p", expected="x", scorer="regex", default_scorer="numbers"), "exact") == "regex"


@pytest.mark.parametrize("name, answer, expected, score", [
    ("exact", "Paris", "Paris", 1), ("exact", "paris", "Paris", 0),
    ("normalized", "  The  PARIS! ", "paris", 1), ("normalized", "Lyon", "paris", 0),
    ("numeric", "so x = 1,234.0", "1234", 1), ("numeric", "x is 12", "13", 0), ("numeric", "none", "3", 0),
    ("numeric:0.01", "99.5", "100", 1),
    ("numbers", "3,5, 9", "3, 5, 9", 1), ("numbers", "9, 5, 3", "3, 5, 9", 0),
    ("choice", "The answer is (C).", "C", 1), ("choice", "B", "C", 0),
    ("regex", "colour: blue-ish", r"blue|green", 1), ("regex", "red", r"^blue$", 0),
    ("contains", "It is in Lower  Saxony.", "lower saxony", 1), ("contains", "Bavaria", "saxony", 0),
])
def test_scorers(name, answer, expected, score):
    got = scorers.build(name).score(answer, Item("i", "p", expected=expected))
    assert got.score == score and got.reason


def test_unknown_scorer_is_an_error():
    with pytest.raises(scorers.ScorerError, match="unknown scorer 'vibes'"):
        scorers.build("vibes")


@pytest.mark.parametrize("name, count, scorer", [
    ("gsm8k", 1319, "numeric"), ("arc-agi-2", None, "arc-grid"), ("humaneval", 164, "code")])
def test_packaged_datasets_load_with_structure(name, count, scorer):
    ds = datasets.load(name, limit=5, seed=1)
    assert len(ds.items) == 5 and len({i.id for i in ds.items}) == 5
    assert all(i.prompt.strip() and i.default_scorer == scorer for i in ds.items)
    assert [i.id for i in ds.items] == [i.id for i in datasets.load(name, limit=5, seed=1).items]
    full = datasets.load(name)
    if count is not None:
        assert len(full.items) == count
    if name == "arc-agi-2":
        assert ds.has_verifier and all(callable(i.verifier) for i in ds.items)
        assert all(isinstance(json.loads(i.expected), list) for i in ds.items)
        assert len(full.items) >= 120  # evaluation tasks, one item per test pair
    if name == "humaneval":
        assert all(i.expected is None and i.payload["tests"] and i.payload["entry_point"] for i in ds.items)
    if name == "gsm8k":
        assert all(i.expected and i.expected.lstrip("-").replace(".", "").isdigit() for i in ds.items)
