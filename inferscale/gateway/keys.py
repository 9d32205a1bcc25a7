"""Gateway API keys: `isk_<id>_<secret>`, stored only as a salted hash of the secret.

The id (12 hex characters) is public: it finds the row and names the key's cache partition. The
secret is 32 random bytes (43 URL-safe characters), shown once by `inferscale keys create` and never
written anywhere. A single salted SHA-256 is enough for a 256-bit random secret (nobody can guess
it, so slow hashing buys nothing and would cost every request); the salt keeps two equal secrets
from having equal rows. Budgets and spend live in the same row, so every worker process of
`inferscale serve` charges and checks one shared figure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace

from ..background import WriteBehind
from ..db import Database
from ..errors import InferscaleError

PREFIX = "isk"
_ID = re.compile(r"^[0-9a-f]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyStoreError(InferscaleError):
    """A key operation that cannot be done (unknown name, duplicate name, bad budget)."""


@dataclass(frozen=True)
class ApiKey:
    """One key's public record (never the secret, never its hash)."""

    id: str
    name: str
    budget_usd: float | None
    spent_usd: float
    requests: int
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def namespace(self) -> str:
        """The cache partition of this key: no level serves its entries to another key."""
        return f"key:{self.id}"

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.spent_usd >= self.budget_usd

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "budget_usd": self.budget_usd,
                "spent_usd": self.spent_usd, "requests": self.requests, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "active": self.active}


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not _ID.match(parts[1]) or len(parts[2]) < 32:
        return None
    return parts[1], parts[2]


_COLUMNS = "id, name, budget_usd, spent_usd, requests, created_at, last_used_at, revoked_at"


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._dbh = database
        # Charges handed to a writer and not yet written, per key id: (usd, requests). `verify`
        # adds them, so a budget is enforced on what was spent, not on what was written so far.
        self._unwritten: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, budget_usd: float | None = None) -> tuple[ApiKey, str]:
        """A new key for `name`: (its record, the full key — the only time it exists in clear)."""
        if not _NAME.match(name or ""):
            raise KeyStoreError(f"key name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if budget_usd is not None and not (budget_usd >= 0 and budget_usd != float("inf")):
            raise KeyStoreError(f"--budget-usd must be a finite number >= 0, got {budget_usd}")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        now = time.time()
        with self._dbh.tx() as db:
            if db.execute("SELECT 1 FROM gateway_keys WHERE name = ? AND revoked_at IS NULL",
                          [name]).fetchone():
                raise KeyStoreError(f"an active key named {name!r} exists; revoke it first "
                                f"(inferscale keys revoke {name})")
            db.table("gateway_keys").insert({"id": key_id, "name": name, "salt": salt,
                                       "hash": _digest(salt, secret), "budget_usd": budget_usd,
                                       "spent_usd": 0.0, "requests": 0, "created_at": now})
        return self.get(key_id), f"{PREFIX}_{key_id}_{secret}"

    def get(self, key_id: str) -> ApiKey:
        row = self._dbh.db.execute(f"SELECT {_COLUMNS} FROM gateway_keys WHERE id = ?", [key_id]).fetchone()
        if row is None:
            raise KeyStoreError(f"no key with id {key_id}")
        return ApiKey(*row)

    def list(self) -> list[ApiKey]:
        rows = self._dbh.db.execute(f"SELECT {_COLUMNS} FROM gateway_keys ORDER BY created_at").fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        with self._dbh.tx() as db:
            row = db.execute("SELECT id FROM gateway_keys WHERE name = ? AND revoked_at IS NULL",
                             [name]).fetchone()
            if row is None:
                raise KeyStoreError(f"no active key named {name!r} (see inferscale keys list)")
            db.execute("UPDATE gateway_keys SET revoked_at = ? WHERE id = ?", [time.time(), row[0]])
        return self.get(row[0])

    def verify(self, key: str) -> ApiKey | None:
        """The key this string is (check `active`), or None (malformed, unknown, wrong secret)."""
        parts = split_key(key)
        if parts is None:
            return None
        row = self._dbh.db.execute(f"SELECT salt, hash, {_COLUMNS} FROM gateway_keys WHERE id = ?",
                                   [parts[0]]).fetchone()
        if row is None or not hmac.compare_digest(_digest(row[0], parts[1]), row[1]):
            return None
        found = ApiKey(*row[2:])
        with self._lock:
            usd, n = self._unwritten.get(found.id, (0.0, 0))
        return replace(found, spent_usd=found.spent_usd + usd, requests=found.requests + n) if n else found

    def charge_later(self, writer: WriteBehind, key_id: str, cost_usd: float) -> None:
        """`charge` on the writer (off the event loop, where a write waited for the writer's own
        transactions); until it is written, `verify` counts it."""
        ts = time.time()
        with self._lock:
            usd, n = self._unwritten.get(key_id, (0.0, 0))
            self._unwritten[key_id] = (usd + float(cost_usd), n + 1)

        def write() -> None:
            try:
                self.charge(key_id, cost_usd, ts)
            finally:
                with self._lock:
                    usd, n = self._unwritten[key_id]
                    if n <= 1:
                        del self._unwritten[key_id]
                    else:
                        self._unwritten[key_id] = (usd - float(cost_usd), n - 1)

        writer.submit(write)

    def charge(self, key_id: str, cost_usd: float, ts: float | None = None) -> None:
        """Add one request and its cost to the key (atomic, so concurrent workers never lose one)."""
        with self._dbh.tx() as db:
            db.execute("UPDATE gateway_keys SET spent_usd = spent_usd + ?, requests = requests + 1,"
                       " last_used_at = ? WHERE id = ?", [float(cost_usd), ts or time.time(), key_id])
