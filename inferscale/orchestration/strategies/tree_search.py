"""`tree-search`: multi-model adaptive branching search (Sakana AI's AB-MCTS-A via `treequest`).

Actions are models. Expanding the root asks a model the question; expanding a node asks a model to
improve that node's answer (the answer and its score are shown to it). Each new node is scored in
[0, 1] by a judge model or the exact-answer verifier; AB-MCTS-A uses the scores to decide, per step,
whether to go wider (a fresh answer) or deeper (a refinement) and with which model. The search stops
after `budget` nodes, when a node reaches `stop_score`, or when the call budget runs out; the best
node is the answer and the whole tree goes into the detail for the Playground to draw.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from ...errors import FailureKind
from ...settings import Tunables, like_tunable
from ...types import MemberResult, Message
from .base import Answer, ExecContext, Strategy, StrategyConfig
from .judge import Scorer, ScorerName

REFINE = (
    "A reviewer scored your previous answer {score}. Think again about the question and write an "
    "improved, correct and complete answer. Reply with the answer only."
)


@dataclass(frozen=True)
class NodeState:
    """What a tree node holds (treequest requires a non-None state for every non-root node)."""

    model: str
    answer: str | None
    score: float | None  # None: the judge gave no usable score (searched as 0)
    call: MemberResult | None
    judge_call: MemberResult | None = None

    @property
    def error(self) -> str | None:
        if self.call is None:
            return f"{FailureKind.BUDGET}: the call budget ran out"
        return self.call.error


class TreeSearchConfig(StrategyConfig):
    budget: int = like_tunable("tree_budget")  # nodes to generate (each costs 1 call, +1 with a judge)
    parallel: int = Field(2, ge=1, le=16)  # expansions asked for and run at once
    temperature: float = like_tunable("sample_temperature")
    scorer: ScorerName = "judge"
    judge_model: str = ""
    expected: str | None = None  # for scorer=exact
    stop_score: float = Field(1.0, ge=0, le=1)
    early_stop: bool = True  # stop once a node reaches stop_score; false = always spend the budget

    @classmethod
    def defaults(cls, t: Tunables) -> dict[str, Any]:
        return {"budget": t.tree_budget, "temperature": t.sample_temperature, "judge_model": t.judge_model}


def refine_messages(conversation: tuple[Message, ...], parent: NodeState) -> list[Message]:
    score = "n/a" if parent.score is None else f"{parent.score * 10:.0f}/10"
    return [*conversation, {"role": "assistant", "content": parent.answer or ""},
            {"role": "user", "content": REFINE.format(score=score)}]


class TreeSearchStrategy(Strategy[TreeSearchConfig]):
    """AB-MCTS-A over the routed models: go wider or deeper, scored by a judge or verifier.

    Detail: {kind, algorithm, actions [model], scorer, judge, nodes [{id, parent, depth, model,
    answer, score, call, judge_call, error}] (root: id -1, parent null), edges [[parent, child]],
    best (node id), stopped ("budget" | "stop_score" | "call_budget"), budget}."""

    name: ClassVar[str] = "tree-search"

    async def answer(self, ctx: ExecContext) -> Answer | None:
        from treequest import ABMCTSA  # scipy behind it: only when a tree search really runs

        cfg = self.config
        scorer = Scorer.build(ctx, cfg.scorer, cfg.judge_model, cfg.expected)
        models = {s.id: s for s in ctx.chosen}
        algo: Any = ABMCTSA()  # treequest's generics do not carry our NodeState through
        state = algo.init_tree()
        state.trial_store = _trial_store()
        made, stopped = 0, "budget"
        while made < cfg.budget:
            state, trials = algo.ask_batch(state, min(cfg.parallel, cfg.budget - made), list(models))
            results = await asyncio.gather(*(
                self._expand(ctx, scorer, models[t.action], t.parent_state, made + i)
                for i, t in enumerate(trials)
            ))
            for trial, node in zip(trials, results, strict=True):
                state = algo.tell(state, trial.trial_id, (node, node.score or 0.0))
            made += len(trials)
            if cfg.early_stop and any(n.score is not None and n.score >= cfg.stop_score for n in results):
                stopped = "stop_score"
                break
            if ctx.budget.exhausted:
                stopped = "call_budget"
                break
        nodes: list[Any] = [n for n in state.tree.get_nodes() if not n.is_root()]
        ok = [n for n in nodes if n.state.answer is not None]
        if not ok:
            return None
        best = max(ok, key=lambda n: (n.state.score or 0.0, -n.expand_idx))
        return Answer(best.state.answer or "", best.state.score, {
            "algorithm": "AB-MCTS-A", "actions": list(models),
            "scorer": scorer.kind, "judge": scorer.judge.id if scorer.judge else None,
            "nodes": [{"id": -1, "parent": None, "depth": 0, "model": None, "answer": None,
                       "score": None, "call": None, "judge_call": None, "error": None}]
            + [self._node(ctx, n) for n in nodes],
            "edges": [[n.parent.expand_idx, n.expand_idx] for n in nodes],
            "best": best.expand_idx, "stopped": stopped,
        })

    async def _expand(self, ctx: ExecContext, scorer: Scorer, spec: Any, parent: NodeState | None,
                      k: int) -> NodeState:
        msgs = refine_messages(ctx.messages, parent) if parent is not None and parent.answer else None
        role = f"node {k + 1}"
        call = await ctx.invoke(spec, role=role, messages=msgs, temperature=self.config.temperature,
                                sample=k)
        if call is None or not call.ok:
            return NodeState(spec.id, None, 0.0, call)  # a failing model earns a low reward
        scored = await scorer.score(ctx, call.answer or "", role=f"{role} judge")
        return NodeState(spec.id, call.answer, scored.score, call, scored.judge_call)

    @staticmethod
    def _node(ctx: ExecContext, node: Any) -> dict[str, Any]:
        s: NodeState = node.state
        return {
            "id": node.expand_idx, "parent": node.parent.expand_idx, "depth": node.depth,
            "model": s.model, "answer": s.answer, "score": s.score,
            "call": ctx.index_of(s.call), "judge_call": ctx.index_of(s.judge_call), "error": s.error,
        }


def _trial_store() -> Any:
    """treequest names trials with `ulid.new()` (the ulid-py package), but `python-ulid`, which the
    `llm` package pulls in, installs the same `ulid` module without `new`. Same store, uuid ids."""
    from treequest.trial import Trial, TrialStore

    class UUIDTrialStore(TrialStore):
        def create_trial(self, node: Any, action: str) -> Trial:
            trial = Trial(trial_id=uuid.uuid4().hex, node_to_expand=node.expand_idx, action=action,
                          parent_state=node.state)
            self.running_trials[trial.trial_id] = trial
            return trial

    return UUIDTrialStore()
