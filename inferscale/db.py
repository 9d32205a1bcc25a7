"""One SQLite file per home, opened through sqlite-utils, migrated on open, WAL mode.

The storage base: it knows no component. The schema is `inferscale/schema.py` (ordered migration
functions); `apply_migrations` below runs them. Connections are per thread: Streamlit, the tests
and the engine's worker threads call in from several threads, and a sqlite3 connection must not be
shared across them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from .errors import InferscaleError

Migration = Callable[[sqlite_utils.Database], None]


def apply_migrations(db: sqlite_utils.Database,
                     migrations: Sequence[tuple[str, Migration]] | None = None) -> list[str]:
    """Apply pending migrations in order, each in its own transaction. Returns the names applied."""
    db.conn.execute("PRAGMA journal_mode=WAL")
    db.conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    db.conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    if migrations is None:
        from .schema import MIGRATIONS

        migrations = MIGRATIONS
    applied: list[str] = []
    for name, fn in migrations:
        # Re-check inside the write lock: another process may have migrated meanwhile.
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            done = db.conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if not done:
                fn(db)
                db.conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()]
                )
                applied.append(name)
            db.conn.execute("COMMIT")
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
    return applied


class DatabaseFileError(InferscaleError):
    """The SQLite file cannot be opened as a database (corrupt, not SQLite, unreadable)."""


BUSY_TIMEOUT_S = 60.0  # how long a write waits for the lock (busy_timeout below, in ms)
_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    """The lock this process's write transactions on `path` take before SQLite's. A thread that
    finds SQLite's lock taken sleeps in its busy handler (steps of 1, 2, 5 ... 100 ms) and may find
    it taken again at every retry while other threads keep committing; waiting here, it wakes as
    soon as the holder commits (gateway bench, misses: p99 0.9-1.2 s against 1.4-1.9 s without,
    four runs side by side). Other processes still queue on busy_timeout."""
    with _write_locks_guard:
        return _write_locks.setdefault(str(path.resolve()), threading.RLock())


class Database:
    """One SQLite file: a connection per thread (`db`), write transactions (`tx`), migrated when
    opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = _write_lock(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            apply_migrations(self.db)
        except sqlite3.DatabaseError as exc:
            # "file is not a database" alone does not say which file, nor what to do about it.
            self.close()
            raise DatabaseFileError(f"{path}: {exc} (move the file aside to start a fresh "
                                    "database, or point INFERSCALE_HOME elsewhere)") from None

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            # The delete an INSERT OR REPLACE does then fires delete triggers, which `cache_totals`
            # relies on (sqlite-utils turns it on as well; said here so it never silently goes).
            conn.execute("PRAGMA recursive_triggers=ON")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @contextmanager
    def tx(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction. IMMEDIATE takes the write lock up front, so concurrent writers
        queue on busy_timeout instead of failing with 'database is locked' mid-transaction."""
        db = self.db
        if db.conn.in_transaction:  # nested: a savepoint inside the caller's transaction
            with db.atomic():
                yield db
            return
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_S):  # as SQLite's own wait would fail
            raise sqlite3.OperationalError(f"database is locked (waited {BUSY_TIMEOUT_S:g} s for this "
                                           "process's other writers)")
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.conn.execute("ROLLBACK")
                raise
            else:
                db.conn.execute("COMMIT")
        finally:
            self._write_lock.release()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
