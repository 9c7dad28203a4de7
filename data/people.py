"""People: who may use the service, their bearer tokens, and the turns each of them was shown.

A person is created with ``PeopleStore.create`` and gets a random id (``p_`` + 24 hex digits: a
pseudonym, never their display name) and a bearer token from ``secrets``. Only the token's SHA-256
is stored: a copy of the database lets nobody act as anyone (tokens carry 256 random bits, so a
fast hash is enough; a slow KDF protects low-entropy passwords, which these are not).

The store also keeps a bounded record trace id -> (person, item ids shown): a swipe may name a turn
only if that turn showed that card to that person, and a score is attached to a trace only then.

``SQLitePeopleStore`` keeps both in ``$CINEAGENT_HOME/people.sqlite3`` (stdlib sqlite3, WAL, every
write one transaction). The ``PeopleStore`` protocol is what the app uses, so a later event store
(SQLite or PostgreSQL) can take over by implementing the same few methods.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Protocol

from data.store import home
from data.errors import CineAgentError

FILE_NAME = "people.sqlite3"
ID_PREFIX = "p_"
TOKEN_BYTES = 32                 # secrets.token_urlsafe(32): 43 characters
MAX_NAME_CHARS = 64
DEFAULT_MAX_TURNS = 100_000      # trace bindings kept; the oldest go first
PRUNE_EVERY = 1024               # inserts between two prunes of the binding table

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY,
    token_sha256 BLOB NOT NULL UNIQUE,
    name TEXT,
    seed_from INTEGER,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL UNIQUE,
    person TEXT NOT NULL,
    items TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_person ON turns(person);
"""


class PeopleError(CineAgentError, ValueError):
    """Base of the store's errors; each subclass's message says what to do."""


class InvalidToken(PeopleError):
    """The token is missing, malformed, unknown or revoked."""

    def __init__(self) -> None:
        super().__init__("missing or invalid token: send `Authorization: Bearer <token>` with the token that "
                         "POST /api/people returned (a deleted person's token stops working)")


class InvalidPerson(PeopleError):
    """A field of a new person is unusable; the message names it."""


@dataclass(frozen=True)
class Person:
    id: str                  # the pseudonymous key the agent knows them by
    name: str | None         # display name, stored here only (never in traces or logs)
    seed_from: int | None    # the MovieLens persona their profile started from
    created: float           # epoch seconds

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ShownTurn:
    trace_id: str
    items: list[int]
    ts: float


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def looks_like_token(token: str) -> bool:
    """The shape ``create`` hands out: checked before any lookup, so junk never reaches the database."""
    return len(token) == 43 and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


def is_person_id(value: str) -> bool:
    return (len(value) == len(ID_PREFIX) + 24 and value.startswith(ID_PREFIX)
            and all(c in "0123456789abcdef" for c in value[len(ID_PREFIX):]))


class PeopleStore(Protocol):
    """What the app needs of a people store (implemented by ``SQLitePeopleStore``)."""

    def create(self, name: str | None = None, seed_from: int | None = None) -> tuple[Person, str]: ...

    def authenticate(self, token: str) -> Person: ...

    def get(self, person_id: str) -> Person | None: ...

    def delete(self, person_id: str) -> bool: ...

    def export(self, person_id: str) -> dict: ...

    def record_turn(self, trace_id: str, person_id: str, items: Iterable[int]) -> None: ...

    def shown(self, trace_id: str, person_id: str) -> list[int] | None: ...


class SQLitePeopleStore:
    """``PeopleStore`` on one SQLite file in WAL mode; safe across threads (one connection, a lock)."""

    def __init__(self, path: Path | str | None = None, max_turns: int = DEFAULT_MAX_TURNS) -> None:
        self.path = Path(path) if path is not None else home() / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_turns = max_turns
        self._lock = threading.Lock()
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT of _write
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the process dying; only a power cut may lose the last ones
        self._db.execute("PRAGMA synchronous=NORMAL")
        # a deleted person's rows are overwritten, not left readable in free pages of the file
        self._db.execute("PRAGMA secure_delete=ON")
        with self._write() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
        self._inserts = 0

    # ------------------------------------------------------------ plumbing
    class _Tx:
        def __init__(self, store: "SQLitePeopleStore") -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._db

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                self.store._lock.release()

    def _write(self) -> "_Tx":
        return SQLitePeopleStore._Tx(self)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ people
    def create(self, name: str | None = None, seed_from: int | None = None) -> tuple[Person, str]:
        """A new person and their token (returned once; only its hash is kept)."""
        if name is not None:
            name = name.strip()
            if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
                raise InvalidPerson(f"name: 1-{MAX_NAME_CHARS} printable characters, or leave it out")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        person = Person(ID_PREFIX + secrets.token_hex(12), name, seed_from, time.time())
        with self._write() as db:
            db.execute("INSERT INTO people (id, token_sha256, name, seed_from, created) VALUES (?, ?, ?, ?, ?)",
                       (person.id, hash_token(token), person.name, person.seed_from, person.created))
        return person, token

    def authenticate(self, token: str) -> Person:
        if not isinstance(token, str) or not looks_like_token(token):
            raise InvalidToken()
        rows = self._read("SELECT id, name, seed_from, created FROM people WHERE token_sha256 = ?",
                          (hash_token(token),))
        if not rows:
            raise InvalidToken()
        return Person(*rows[0])

    def get(self, person_id: str) -> Person | None:
        rows = self._read("SELECT id, name, seed_from, created FROM people WHERE id = ?", (person_id,))
        return Person(*rows[0]) if rows else None

    def delete(self, person_id: str) -> bool:
        """Remove the person and every turn bound to them, in one transaction."""
        with self._write() as db:
            db.execute("DELETE FROM turns WHERE person = ?", (person_id,))
            return db.execute("DELETE FROM people WHERE id = ?", (person_id,)).rowcount > 0

    def export(self, person_id: str) -> dict:
        """Everything this store holds about the person (the token hash excepted: it is no one's data)."""
        person = self.get(person_id)
        return {"person": person.as_dict() if person else None,
                "turns": [asdict(t) for t in self.turns_of(person_id)]}

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM people")[0][0]

    # ------------------------------------------------------------ turns shown
    def record_turn(self, trace_id: str, person_id: str, items: Iterable[int]) -> None:
        """Bind a turn to its person and the cards it showed (the oldest bindings beyond
        ``max_turns`` are pruned)."""
        payload = json.dumps([int(i) for i in items])
        with self._write() as db:
            # only for someone who still exists: a turn racing its person's deletion leaves nothing
            db.execute("INSERT OR IGNORE INTO turns (trace_id, person, items, ts) "
                       "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM people WHERE id = ?)",
                       (trace_id, person_id, payload, time.time(), person_id))
            self._inserts += 1
            if self._inserts % PRUNE_EVERY == 0:
                db.execute("DELETE FROM turns WHERE seq <= (SELECT MAX(seq) FROM turns) - ?", (self.max_turns,))

    def shown(self, trace_id: str, person_id: str) -> list[int] | None:
        """The items the turn showed, if it is this person's turn; None otherwise (whoever's it is)."""
        rows = self._read("SELECT items FROM turns WHERE trace_id = ? AND person = ?", (trace_id, person_id))
        return json.loads(rows[0][0]) if rows else None

    def turns_of(self, person_id: str) -> list[ShownTurn]:
        rows = self._read("SELECT trace_id, items, ts FROM turns WHERE person = ? ORDER BY seq", (person_id,))
        return [ShownTurn(t, json.loads(i), ts) for t, i, ts in rows]
