"""The Chroma server `serve` starts: its own config (loopback, the collection cache on), what a
query finds right after writes with that cache on, and the plain flags when a config is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from inferscale.cache import chroma_server
from inferscale.cache.chroma_index import ChromaIndex, IndexUnavailable


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.fixture
def server(tmp_path):
    srv = chroma_server.ChromaServer(tmp_path / "chroma").start()
    yield srv
    srv.stop()


def test_the_server_runs_on_its_config_and_queries_see_every_write_at_once(server, tmp_path) -> None:
    config = yaml.safe_load(chroma_server.config_file(tmp_path / "chroma").read_text(encoding="utf-8"))
    assert config["listen_address"] == "127.0.0.1"
    assert server.url.endswith(f":{config['port']}")
    assert config["collections_with_segments_provider"]["cache"]["lru"]["capacity"] > 0
    assert str(chroma_server.config_file(tmp_path / "chroma")) in _cmdline(server.proc.pid)

    ours, other = ChromaIndex(tmp_path / "chroma"), ChromaIndex(tmp_path / "chroma")
    assert ours.query(_unit(1), "a scope", 4) == []  # the collection does not exist yet
    ours.add(["first"], _unit(1)[None], ["a scope"])
    assert ours.remote == server.url
    assert [i for i, _ in ours.query(_unit(1), "a scope", 4)] == ["first"]
    # Another client (another process, in use) writes; the cached collection still sees it.
    other.add(["second"], _unit(2)[None], ["a scope"])
    assert ours.query(_unit(2), "a scope", 1)[0][0] == "second"
    for i in range(120):  # past Chroma's brute-force buffer (100 vectors) into the HNSW graph
        other.add([f"more-{i}"], _unit(100 + i)[None], ["a scope"])
    assert ours.query(_unit(219), "a scope", 1)[0][0] == "more-119"
    ours.delete(["first"])
    assert "first" not in [i for i, _ in other.query(_unit(1), "a scope", 4)]
    assert ours.count() == 121


def test_a_stopped_server_leaves_its_data_and_none_of_its_files(tmp_path) -> None:
    chroma_dir = tmp_path / "chroma"
    srv = chroma_server.ChromaServer(chroma_dir).start()
    ChromaIndex(chroma_dir).add(["kept"], _unit(4)[None], ["a scope"])
    srv.stop()
    assert srv.proc.poll() is not None
    assert not chroma_server.config_file(chroma_dir).exists()
    assert not chroma_server.server_file(chroma_dir).exists()
    again = chroma_server.ChromaServer(chroma_dir).start()
    try:
        assert ChromaIndex(chroma_dir).query(_unit(4), "a scope", 1)[0][0] == "kept"
    finally:
        again.stop()


def test_lookups_racing_a_new_collections_first_write_are_answered_not_skipped(server, tmp_path) -> None:
    """With the collection cache on, Chroma answers a query that arrives while a new collection's
    first upsert runs with "Nothing found on disk"; the index waits it out instead of skipping L1."""
    index = ChromaIndex(tmp_path / "chroma")  # one per process: the writer creates, lookups query
    failures: list[str] = []
    answered = 0
    for round_ in range(12):
        scope, done = f"scope {round_}", threading.Event()

        def ask(scope: str = scope, done: threading.Event = done) -> None:
            nonlocal answered
            while not done.is_set():
                try:
                    index.query(_unit(7), scope, 4)
                    answered += 1
                except IndexUnavailable as exc:
                    failures.append(str(exc))

        asker = threading.Thread(target=ask)
        asker.start()
        index.add([f"{round_}-{i}" for i in range(8)], np.stack([_unit(round_ * 10 + i) for i in range(8)]),
                  [scope] * 8)
        done.set()
        asker.join()
        assert {i for i, _ in index.query(_unit(7), scope, 8)} == {f"{round_}-{i}" for i in range(8)}
    assert answered > 12 and failures == []


def test_a_config_the_server_refuses_falls_back_to_the_plain_flags(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(chroma_server, "server_config", lambda *_: {"port": "not a port"})
    srv = chroma_server.ChromaServer(tmp_path / "chroma").start()
    try:
        argv = _cmdline(srv.proc.pid)
        assert "--path" in argv and str(tmp_path / "chroma") in argv
        index = ChromaIndex(tmp_path / "chroma")
        index.add(["only"], _unit(3)[None], ["a scope"])
        assert index.query(_unit(3), "a scope", 1)[0][0] == "only"
    finally:
        srv.stop()
