"""Routing policies, one small class each, registered by name."""

from __future__ import annotations

from ..types import Analysis, RoutingDecision
from .base import Router, RouteRequest, finish, fits_context, no_models, prior_scores, with_capability
from .learned import LearnedRouter  # the stored artefact is loaded on first use, not here


class FixedRouter:
    """The models the user named (or `fixed_models` from the tunables), in that order."""

    name = "fixed"

    def score(self, analysis: Analysis) -> float:
        return analysis.score

    def scores(self, req: RouteRequest) -> dict[str, float]:
        return prior_scores(req)

    def decide(self, req: RouteRequest) -> RoutingDecision:
        pool = fits_context(req)
        if req.explicit:
            return finish(req, self.name, list(pool), "models chosen by the user")
        wanted = [s for i in req.tunables.fixed_models for s in pool if s.id == i]
        rest = [s for s in pool if s not in wanted]
        missing = [i for i in req.tunables.fixed_models if i not in {s.id for s in wanted}]
        why = "fixed_models setting" if wanted else "no fixed_models set: registry order"
        if missing:  # removed, disabled or too small since it was set: say so, don't pretend unset
            why += f" ({', '.join(missing)} named in fixed_models but unavailable)"
        return finish(req, self.name, wanted + rest, why)


class CheapestRouter:
    """The cheapest model that has the capability the prompt's domain needs."""

    name = "cheapest"

    def score(self, analysis: Analysis) -> float:
        return analysis.score

    def scores(self, req: RouteRequest) -> dict[str, float]:
        return prior_scores(req)

    def decide(self, req: RouteRequest) -> RoutingDecision:
        pool, why = with_capability(fits_context(req), req.analysis.capability)
        ordered = sorted(pool, key=lambda s: (req.cost(s), -s.quality_prior))
        return finish(req, self.name, ordered, f"cheapest first among {why}")


class QualityRouter:
    """The highest quality prior that has the needed capability."""

    name = "quality"

    def score(self, analysis: Analysis) -> float:
        return analysis.score

    def scores(self, req: RouteRequest) -> dict[str, float]:
        return prior_scores(req)

    def decide(self, req: RouteRequest) -> RoutingDecision:
        pool, why = with_capability(fits_context(req), req.analysis.capability)
        ordered = sorted(pool, key=lambda s: (-s.quality_prior, req.cost(s)))
        return finish(req, self.name, ordered, f"highest quality prior first among {why}")


class ComplexityRouter:
    """Tiers by complexity: n thresholds make n+1 tiers spread over the models from weakest to
    strongest quality prior, so it works for any number of models."""

    name = "complexity"

    def score(self, analysis: Analysis) -> float:
        return analysis.score

    def scores(self, req: RouteRequest) -> dict[str, float]:
        return prior_scores(req)

    def decide(self, req: RouteRequest) -> RoutingDecision:
        if req.explicit:
            return finish(req, self.name, list(fits_context(req)), "models chosen by the user")
        pool, why_cap = with_capability(fits_context(req), req.analysis.capability)
        ladder = sorted(pool, key=lambda s: (s.quality_prior, req.cost(s)))
        th = req.tunables.complexity_thresholds
        score = self.score(req.analysis)
        tier = sum(score >= t for t in th)
        n_tiers = len(th) + 1
        idx = round(tier * (len(ladder) - 1) / (n_tiers - 1)) if n_tiers > 1 else len(ladder) - 1
        # Chosen model first, then the next stronger ones, then weaker: the fallback order.
        ordered = ladder[idx:] + ladder[:idx][::-1]
        why = (
            f"complexity {score:.2f} is tier {tier + 1}/{n_tiers} (thresholds {list(th)}) → "
            f"{ladder[idx].id} ({why_cap}, ordered by quality prior)"
        )
        return finish(req, self.name, ordered, why)


ROUTERS: dict[str, type] = {
    r.name: r for r in (ComplexityRouter, FixedRouter, CheapestRouter, QualityRouter, LearnedRouter)
}


def get_router(name: str) -> Router:
    from ..errors import ConfigError

    cls = ROUTERS.get(name)
    if cls is None:
        raise ConfigError(f"unknown router {name!r}; choose one of {', '.join(ROUTERS)}")
    return cls()


def route(router: Router, req: RouteRequest) -> RoutingDecision:
    if not (req.candidates or req.explicit):
        raise no_models()
    return router.decide(req)
