"""One SQLite file per home, opened through sqlite-utils, migrated on open, WAL mode.

Connections are per thread: Streamlit and the tests call the engine from several threads, and a
sqlite3 connection must not be shared across them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from .errors import InferscaleError
from .monitor.migrations import apply_migrations


class DatabaseFileError(InferscaleError):
    """The SQLite file cannot be opened as a database (corrupt, not SQLite, unreadable)."""


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
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
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA foreign_keys=ON")
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
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
