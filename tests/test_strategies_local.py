"""All seven strategies answer on the two real local models (SmolLM2 and Gemma 3 via llama.cpp).

Tiny models give weak answers; these tests check the structure of what each strategy did, never
the wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferscale import Engine, Settings
from inferscale.settings import STRATEGY_NAMES

pytestmark = pytest.mark.local_models

LOCAL = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
# Small enough to run in about a minute on two CPU cores.
OPTIONS = {
    "self-consistency": {"n": 3},
    "best-of-n": {"n": 2},
    "moa": {"layers": 1},
    "tree-search": {"budget": 3, "early_stop": False},
}


@pytest.fixture(scope="module")
def local_engine(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Engine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFERSCALE_MODELS_DIR", str(models_dir))
        engine = Engine(Settings.from_env(tmp_path_factory.mktemp("local-strategies")))
        engine.tunables_store.set("max_tokens", "16")
        yield engine


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_answers_on_the_local_models(local_engine: Engine, strategy: str) -> None:
    result = local_engine.ask("What is 12 plus 30?", strategy=strategy, models=LOCAL, use_cache=False,
                              strategy_options=OPTIONS.get(strategy))
    assert result.answer.strip()
    assert result.strategy == strategy and result.cost_usd > 0
    assert {m.model for m in result.members} <= set(LOCAL) and all(m.role for m in result.members)
    assert result.detail["kind"] == strategy
    assert result.detail["budget"]["calls"] == len(result.members)
    if strategy == "tree-search":
        assert len(result.detail["nodes"]) == 4 and len(result.detail["edges"]) == 3
    stored = local_engine.monitor.count("requests", "id = ? AND status = 'ok'", [result.request_id])
    assert stored == 1


def test_cli_tree_search_on_the_local_models(cli, models_dir: Path) -> None:
    proc = cli("ask", "Name a primary color.", "--strategy", "tree-search", "--models", ",".join(LOCAL),
               "--option", "budget=2", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] and out["detail"]["algorithm"] == "AB-MCTS-A"
