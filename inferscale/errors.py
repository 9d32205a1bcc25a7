"""Error classes. Every message is one line that names the problem and, where possible, the fix."""


class InferscaleError(Exception):
    """Base class; the CLI prints `error: <message>` and exits 2 for these."""


class ConfigError(InferscaleError):
    """Invalid settings, tunables or registry entries."""


class InvalidPromptError(InferscaleError):
    """The prompt itself cannot be served (empty, not text, too long)."""


class UnknownModelError(InferscaleError):
    """A model id that is not in the registry."""


class ModelUnavailableError(InferscaleError):
    """A known model that cannot be called right now (disabled, key missing, weights missing)."""


class RoutingError(InferscaleError):
    """No model satisfies the routing constraints (capability, budget, context window)."""


class AllModelsFailedError(InferscaleError):
    """Every routed model (and every fallback) failed for this request. `members` holds each
    call's record (MemberResult), so a caller can say which failed and how (the gateway's 502/504)."""

    def __init__(self, message: str, members: tuple = ()) -> None:
        super().__init__(message)
        self.members = tuple(members)


class BudgetExceededError(InferscaleError):
    """The request's call or dollar budget refused a model call."""


class FailureKind:
    """The error class recorded with a failed model call (`MemberResult.error_class`) when the
    failure is inferscale's own decision rather than a provider error. Provider failures carry the
    class `providers.retry.classify` names (RateLimitError, Timeout, …)."""

    COOLING_DOWN = "ModelCoolingDown"  # skipped: the model is cooling down after repeated failures
    CANCELLED = "Cancelled"  # the strategy stopped early and cancelled the call
    BUDGET = "BudgetExceededError"  # the budget refused the call
    CONTEXT = "ContextWindowExceededError"  # the call cannot fit the model's context window
