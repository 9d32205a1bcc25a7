"""Data flows one way: a lower layer never imports a higher one, components of one layer never
import each other, and the core never imports the UI. Read from the source (every import, lazy
ones inside functions included), so it fails on the commit that adds a wrong-way import."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "inferscale"
# Lowest first. A module may import its own group and any group of a lower rank.
LAYERS: list[set[str]] = [
    {"errors", "types", "redact", "limits", "terminal", "blas", "process"},
    {"settings", "inputs", "background", "packages"},
    {"storage"},  # db.py (the runner) + schema.py (the migrations): the storage base
    {"registry", "embeddings"},
    {"config_store"},  # checks model ids in the tunables against the registry
    {"analysis", "cache", "monitor", "providers", "routing"},  # the components
    {"orchestration"},  # the engine and the strategies
    {"batch", "tools", "experiments", "whatif", "gateway"},
    {"loop_cli"},  # feedback, router and what-if commands over tools and whatif
    {"cli", "inferscale"},  # entry points; "inferscale" is the package's __init__
    {"__main__"},  # `python -m inferscale` runs the CLI
]
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}
UI_MODULES = ("streamlit", "dashboard", "pages", "plotly")


def _group(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "inferscale"
    return "storage" if name in ("db", "schema") else name


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                found.append((module, target, node.lineno))
            elif isinstance(node, ast.Import):
                found += [(module, alias.name, node.lineno) for alias in node.names]
    return found


def test_every_module_has_a_layer() -> None:
    groups = {_group(m) for m, _, _ in _imports()}
    assert groups <= set(RANK), f"put these in LAYERS: {sorted(groups - set(RANK))}"


def _wrong_way(imports: list[tuple[str, str, int]]) -> list[str]:
    wrong = []
    for module, target, line in imports:
        if not target.startswith("inferscale"):
            continue
        src, dst = _group(module), _group(target)
        if src != dst and RANK[dst] >= RANK[src]:
            wrong.append(f"{module}:{line} imports {target} "
                         f"({src} rank {RANK[src]} -> {dst} rank {RANK[dst]})")
    return wrong


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = _wrong_way(_imports())
    assert not wrong, "\n".join(wrong)


def test_the_core_never_imports_the_ui() -> None:
    ui = [f"{m}:{line} imports {t}" for m, t, line in _imports() if t.split(".")[0] in UI_MODULES]
    assert not ui, "\n".join(ui)


def test_the_check_catches_the_imports_it_forbids() -> None:
    assert ("inferscale.monitor.store", "inferscale.types", 14) not in _wrong_way(_imports())
    bad = [("inferscale.monitor.store", "inferscale.providers.health", 1),  # component -> component
           ("inferscale.db", "inferscale.monitor.store", 2),  # storage -> component
           ("inferscale.routing.base", "inferscale.orchestration.strategies", 3)]  # down -> up
    assert len(_wrong_way(bad)) == 3
    assert not _wrong_way([("inferscale.cache.levels", "inferscale.cache.scope", 4),
                           ("inferscale.schema", "inferscale.db", 5)])
