"""The `learned` router: per prompt, each model's predicted probability of a good answer (from the
stored artefact, `artefact.py`), then the caller's rule (`base.choose`): the cheapest model whose
prediction clears `learned_threshold`, or with `learned_lambda` > 0 the best quality - lambda x cost.

A missing or unreadable artefact, or a prompt no stored model can serve, routes as `complexity`
does, with the reason shown: a router problem never fails a request.
"""

from __future__ import annotations

import logging

import numpy as np

from ..types import Analysis, RoutingDecision
from .artefact import RouterArtefactError, RouterModel, load_cached
from .base import RouteRequest, choose, finish, fits_context

log = logging.getLogger(__name__)


class LearnedRouter:
    name = "learned"

    def score(self, analysis: Analysis) -> float:
        return analysis.score

    def _model(self, req: RouteRequest) -> RouterModel:
        if req.home is None:
            raise RouterArtefactError("no home given to find the stored router in")
        return load_cached(req.home)

    def scores(self, req: RouteRequest) -> dict[str, float]:
        """Predicted quality of every candidate the stored router knows (others are not scored)."""
        model = self._model(req)
        vec = req.vector()
        if vec is None:
            raise RouterArtefactError("no prompt embedding to score")
        pred = model.predict(vec)[0]
        ids = {s.id for s in (req.explicit or req.candidates)}
        return {m: float(pred[i]) for i, m in enumerate(model.models) if m in ids}

    def decide(self, req: RouteRequest, pred: np.ndarray | None = None) -> RoutingDecision:
        """`pred` (this prompt's row of `RouterModel.predict`) lets a caller that routes many
        logged prompts (the what-if replay) predict them in one batch."""
        from .policies import ComplexityRouter

        if req.explicit:
            return finish(req, self.name, list(fits_context(req)), "models chosen by the user")
        try:
            model = self._model(req)
            pool = fits_context(req)
            vec = req.vector()
            if vec is None:
                raise RouterArtefactError("no prompt embedding to score")
            near = None
            if pred is None:
                pred, near = model.predict_one(vec)
            known = {m: i for i, m in enumerate(model.models)}
            usable = [s for s in pool if s.id in known]
            if not usable:
                raise RouterArtefactError(f"none of the available models ({', '.join(s.id for s in pool)}) "
                                          f"is in the stored router ({', '.join(model.models)})")
        except RouterArtefactError as exc:
            fallback = ComplexityRouter().decide(req)
            return RoutingDecision(
                policy="complexity", models=fallback.models, strategy=fallback.strategy,
                reason=f"learned router unavailable ({exc}); fell back to complexity: {fallback.reason}",
                predicted_cost_usd=fallback.predicted_cost_usd, fallbacks=fallback.fallbacks)
        tun = req.tunables
        scores = {s.id: float(pred[known[s.id]]) for s in usable}
        costs = {s.id: req.cost(s) for s in usable}
        best, why = choose(scores, costs, tun.learned_threshold, tun.learned_lambda)
        others = [known[i] for i in sorted(scores, key=lambda i: -scores[i]) if i != best]
        detail = model.explain(vec, known[best], others, near)
        by_id = {s.id: s for s in usable}
        rest = sorted((s for s in usable if s.id != best), key=lambda s: -scores[s.id])
        unknown = [s for s in pool if s.id not in known]
        ordered = [by_id[best], *rest, *unknown]
        listing = ", ".join(f"{i} {scores[i]:.2f}" for i in sorted(scores, key=lambda i: costs[i]))
        reason = (f"learned {model.method} v{model.version}: predicted quality {listing}; {why}; {detail}"
                  + (f"; not in the router: {', '.join(s.id for s in unknown)}" if unknown else ""))
        return finish(req, self.name, ordered, reason)
