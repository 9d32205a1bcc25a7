"""inferscale: route prompts across several LLMs, combine them, cache and measure everything.

    from inferscale import Engine, Settings
    engine = Engine(Settings.from_env())
    print(engine.ask("What is the capital of France?").answer)

Nothing heavy happens at import: models, litellm and the database load on first use.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Engine", "Settings", "Tunables"]

if TYPE_CHECKING:
    from .orchestration.engine import Engine
    from .settings import Settings, Tunables


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from .orchestration.engine import Engine

        return Engine
    if name in ("Settings", "Tunables"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(name)
