"""The learned router's stored artefact: per model, the probability of a good answer as a function
of the prompt's MiniLM vector. Two predictors over the same labels:

  knn  the k nearest labelled prompts (cosine), weighted by similarity, shrunk toward the model's
       mean label (RouterBench's kNN baseline);
  mf   a low-rank bilinear model, sigmoid(u_m . (P^T x) + b_m) (RouteLLM's matrix factorisation,
       generalised from a strong/weak pair to any number of models).

Stored under <home>/routers/ as learned-vN.npz (arrays) + learned-vN.json (meta); training writes
N+1 and keeps the earlier versions. Loaded lazily, once per file version.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..blas import single_thread
from ..errors import InferscaleError

METHODS = ("knn", "mf")
K = 16  # neighbours read per prompt
TAU = 0.05  # similarity temperature of the neighbour weights: 0.05 lower similarity = weight / e
SHRINK = 0.2  # weight of the model's mean label, in units of one exact neighbour
PROJECT_ABOVE = 2048  # labelled prompts above which one prompt's neighbours are searched in a projection
CANDIDATES = 16 * K  # prompts whose exact cosine one decision computes: those of the best bounds
PROJECT_DIM = 128
_FILE = re.compile(r"^learned-v(\d+)\.npz$")


class RouterArtefactError(InferscaleError):
    """The stored router is missing or cannot be read."""


@dataclass(frozen=True)
class RouterModel:
    method: str
    models: tuple[str, ...]
    X: np.ndarray  # (n, 384) float32 unit vectors of the labelled prompts
    Y: np.ndarray  # (n, m) float32 labels in [0, 1], NaN = that model has no label for that prompt
    prior: np.ndarray  # (m,) mean label per model
    cost: np.ndarray  # (m,) mean USD per call on the labelled prompts
    previews: tuple[str, ...]  # the labelled prompts, shortened, to name neighbours in reasons
    P: np.ndarray | None = None  # mf: (384, d) projection
    U: np.ndarray | None = None  # mf: (m, d) model factors
    b: np.ndarray | None = None  # mf: (m,) biases
    meta: dict[str, Any] = field(default_factory=dict)  # version, strong, weak, experiments, ...

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise RouterArtefactError(f"unknown router method {self.method!r}; choose one of knn, mf")
        n, m = self.Y.shape
        if self.X.shape[0] != n or m != len(self.models) or m < 2:
            raise RouterArtefactError(f"inconsistent router arrays: X {self.X.shape}, Y {self.Y.shape}, "
                                      f"{len(self.models)} models")
        if self.method == "mf" and (self.P is None or self.U is None or self.b is None):
            raise RouterArtefactError("an mf router needs its factors P, U and b")

    @property
    def version(self) -> int:
        return int(self.meta.get("version", 0))

    # -- prediction -----------------------------------------------------------------------------
    def predict(self, vecs: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """(q, 384) unit vectors -> (q, m) probabilities of a good answer. `exclude_self` leaves each
        training prompt out of its own neighbours (calibration on the training prompts)."""
        with single_thread():
            return self._predict(vecs, exclude_self)

    def predict_one(self, vec: np.ndarray) -> tuple[np.ndarray, Any]:
        """One prompt: its row of `predict` and what `explain` needs (its neighbours for knn).

        Reading 10,000 x 384 floats per prompt costs more than the 2 ms a routing decision may take,
        so with many labelled prompts the neighbours are searched approximately: the CANDIDATES
        nearest in a PCA projection (PROJECT_DIM) get exact cosines, and the k nearest of those
        decide. On 10,000 clustered synthetic prompts (a hard
        case for a projection) predictions differ from the exact ones by 0.02 on average
        (bench/router.py); `predict`, which eval and calibration use, is exact."""
        vec = np.asarray(vec, dtype=np.float32)
        if self.method == "mf":
            return self.predict(vec)[0], None
        with single_thread():
            proj = self._projection()
            if proj is None:
                cand = None
                sims = (self.X @ vec)[None, :]
            else:
                cand = _projected_top(self.X, vec, *proj)
                sims = (self.X[cand] @ vec)[None, :]
            idx, w = self._neighbours(sims)
            s = np.take_along_axis(sims, idx, axis=1)
            if cand is not None:
                idx = cand[idx]
            return self._blend(idx, w)[0], (s, idx, w)

    def _projection(self) -> tuple[np.ndarray, np.ndarray] | None:
        if len(self.X) <= PROJECT_ABOVE:
            return None
        got = self.meta.get("_projection")
        if got is None:  # once per loaded artefact (a frozen record: kept in its meta dict)
            sample = self.X[:: max(1, len(self.X) // 4000)]
            _, _, vt = np.linalg.svd(sample - sample.mean(axis=0), full_matrices=False)
            basis = np.ascontiguousarray(vt[:PROJECT_DIM], dtype=np.float32)
            got = (basis, np.ascontiguousarray(self.X @ basis.T, dtype=np.float32))
            self.meta["_projection"] = got
        return got

    def _predict(self, vecs: np.ndarray, exclude_self: bool) -> np.ndarray:
        vecs = np.atleast_2d(np.asarray(vecs, dtype=np.float32))
        if self.method == "mf":
            assert self.P is not None and self.U is not None and self.b is not None
            z = vecs @ self.P
            return _sigmoid(z @ self.U.T + self.b)
        out = np.empty((len(vecs), len(self.models)), dtype=np.float32)
        for start in range(0, len(vecs), 512):
            sims = vecs[start:start + 512] @ self.X.T
            if exclude_self:
                rows = np.arange(start, start + len(sims))
                sims[np.arange(len(sims)), rows] = -np.inf
            idx, w = self._neighbours(sims)
            out[start:start + len(sims)] = self._blend(idx, w)
        return out

    def _neighbours(self, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = min(K, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sims, idx, axis=1)
        w = np.exp((s - s.max(axis=1, keepdims=True)) / TAU) * np.clip(s.max(axis=1, keepdims=True), 0, 1)
        return idx, np.where(np.isfinite(s), w, 0.0)

    def _blend(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        y = self.Y[idx]  # (q, k, m)
        have = ~np.isnan(y)
        ww = w[..., None] * have
        num = (ww * np.nan_to_num(y)).sum(axis=1) + SHRINK * self.prior
        return num / (ww.sum(axis=1) + SHRINK)

    def explain(self, vec: np.ndarray, chosen: int, others: list[int], near: Any = None) -> str:
        """Which neighbours (knn) or factors (mf) decided for model `chosen` (`near`: from
        `predict_one`, to skip searching again)."""
        vec = np.asarray(vec, dtype=np.float32)
        if self.method == "mf":
            assert self.P is not None and self.U is not None
            z = vec @ self.P
            rival = others[0] if others else chosen
            contrib = z * (self.U[chosen] - self.U[rival])
            top = np.argsort(-np.abs(contrib))[:3]
            vs = f" vs {self.models[rival]}" if rival != chosen else ""
            return "factors that decided" + vs + ": " + ", ".join(f"f{int(i)} {contrib[i]:+.2f}" for i in top)
        if near is None:
            _, near = self.predict_one(vec)
        s, idx, w = near
        order = np.argsort(-w[0])[:3]
        parts = []
        for j in order:
            i = int(idx[0, j])
            y = self.Y[i, chosen]
            verdict = "unlabelled" if np.isnan(y) else ("good" if y >= 0.5 else "bad")
            parts.append(f"{self.previews[i]!r} (sim {float(s[0, j]):.2f}, {self.models[chosen]} {verdict})")
        return "nearest labelled prompts: " + "; ".join(parts)


def _projected_top(X: np.ndarray, vec: np.ndarray, basis: np.ndarray, Xp: np.ndarray) -> np.ndarray:
    """The CANDIDATES rows of X most similar to `vec` in the projection."""
    coarse = Xp @ (basis @ vec)
    if len(X) <= CANDIDATES:
        return np.arange(len(X))
    return np.argpartition(-coarse, CANDIDATES)[:CANDIDATES]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


# -- storage ------------------------------------------------------------------------------------
def routers_dir(home: Path) -> Path:
    return Path(home) / "routers"


def versions(home: Path) -> list[int]:
    d = routers_dir(home)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _FILE.match(p.name)))


def save(home: Path, model: RouterModel) -> tuple[RouterModel, Path]:
    """Write the next version; earlier ones stay. Files appear atomically (rename)."""
    d = routers_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    version = (versions(home) or [0])[-1] + 1
    meta = {**{k: v for k, v in model.meta.items() if not k.startswith("_")}, "version": version,
            "method": model.method, "models": list(model.models)}
    arrays: dict[str, Any] = {"X": model.X, "Y": model.Y, "prior": model.prior, "cost": model.cost,
              "previews": np.array(model.previews, dtype=str)}
    if model.method == "mf":
        arrays |= {"P": model.P, "U": model.U, "b": model.b}
    npz, js = d / f"learned-v{version}.npz", d / f"learned-v{version}.json"
    tmp_js = d / f".learned-v{version}.json.tmp"
    tmp_js.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp_js.replace(js)
    with open(d / f".learned-v{version}.tmp.npz", "wb") as fh:
        np.savez(fh, **arrays)
    (d / f".learned-v{version}.tmp.npz").replace(npz)  # the npz last: its presence marks a version
    return RouterModel(**{**model.__dict__, "meta": meta}), npz


def load(home: Path, version: int | None = None) -> RouterModel:
    have = versions(home)
    if not have:
        raise RouterArtefactError("no trained router under "
                                  f"{routers_dir(home)} (run `inferscale router train`)")
    v = version if version is not None else have[-1]
    d = routers_dir(home)
    try:
        meta = json.loads((d / f"learned-v{v}.json").read_text(encoding="utf-8"))
        with np.load(d / f"learned-v{v}.npz", allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        return RouterModel(
            method=meta["method"], models=tuple(meta["models"]), X=a["X"].astype(np.float32),
            Y=a["Y"].astype(np.float32), prior=a["prior"].astype(np.float32),
            cost=a["cost"].astype(np.float64), previews=tuple(str(p) for p in a["previews"]),
            P=a.get("P"), U=a.get("U"), b=a.get("b"), meta=meta)
    except RouterArtefactError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise RouterArtefactError(f"stored router learned-v{v} is unreadable ({type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:120]}); retrain with `inferscale router train`"
                                  ) from None


_cache: dict[str, tuple[tuple[int, float], RouterModel]] = {}
_lock = threading.Lock()


def current_version(home: Path) -> str:
    """Which stored router `load_cached` reads now ("" = none): its version and when its file was
    written, so a router retrained after the folder was cleared is not taken for the old one."""
    have = versions(home)
    if not have:
        return ""
    try:
        written = (routers_dir(home) / f"learned-v{have[-1]}.npz").stat().st_mtime_ns
    except OSError:
        written = 0
    return f"v{have[-1]}:{written}"


def load_cached(home: Path) -> RouterModel:
    """The newest version, read once per (version, file mtime) per process."""
    have = versions(home)
    if not have:
        return load(home)  # raises with the message
    npz = routers_dir(home) / f"learned-v{have[-1]}.npz"
    try:
        stamp = (have[-1], npz.stat().st_mtime)
    except OSError:
        stamp = (have[-1], 0.0)
    key = str(Path(home).resolve())
    with _lock:
        got = _cache.get(key)
        if got is not None and got[0] == stamp:
            return got[1]
    model = load(home, have[-1])
    with _lock:
        _cache[key] = (stamp, model)
    return model
