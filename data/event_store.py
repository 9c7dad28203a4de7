"""The event store: the one source of truth for people, swipes, turns and conversations.

One class over two databases:

- **SQLite** (default): ``$CINEAGENT_HOME/cineagent.sqlite3`` in WAL mode, so several processes
  on one machine (``cineagent serve --workers N``) share it safely; a connection per thread.
- **PostgreSQL** when ``CINEAGENT_DATABASE_URL`` is set (``postgresql://...``): any number of
  replicas on any hosts share it; a bounded psycopg connection pool per process.

Every write is one transaction, so a crash leaves it applied or not at all. A swipe is
acknowledged only once committed durably (SQLite ``synchronous=FULL``: fsynced). A person's
profile is derived from their swipes (``profile_state``), never stored beside them, so the two can
never disagree. The schema is versioned (``MIGRATIONS``); a database written by a newer CineAgent
is refused with a clear message rather than misread.
"""
from __future__ import annotations

import json
import logging
import secrets
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from data.errors import CineAgentError
from data.events import DISLIKE_RATING, LIKE_RATING, Swipe, Turn
from data.people import (ID_HEX_CHARS, ID_PREFIX, MAX_NAME_CHARS, TOKEN_BYTES, InvalidPerson, InvalidToken, Person, hash_token,
                         is_person_id, looks_like_token)
from data.store import home

log = logging.getLogger(__name__)

FILE_NAME = "cineagent.sqlite3"
DEFAULT_MAX_TURNS = 100_000   # turn events kept; the oldest go first
DEFAULT_MAX_TURNS_PERSON = 1_000   # a person's turn events kept; their oldest go first
PRUNE_EVERY = 1024            # turn inserts between two prunes (per process)

# One list of steps per schema version. {id}, {blob} and {real} are spelt per database.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE people (
            id TEXT PRIMARY KEY,
            token_sha256 {blob} NOT NULL UNIQUE,
            name TEXT,
            seed_from INTEGER,
            created {real} NOT NULL)""",
        """CREATE TABLE swipes (
            seq {id},
            ts TEXT NOT NULL,
            user_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            item_id INTEGER NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('like', 'dislike')),
            trace_id TEXT,
            rank INTEGER,
            query TEXT)""",
        "CREATE INDEX swipes_user ON swipes (user_id, seq)",
        """CREATE TABLE turns (
            seq {id},
            trace_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            ts TEXT NOT NULL,
            items TEXT NOT NULL,
            event TEXT NOT NULL)""",
        "CREATE INDEX turns_user ON turns (user_id)",
        """CREATE TABLE sessions (
            key TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            touched {real} NOT NULL,
            state TEXT NOT NULL)""",
        "CREATE INDEX sessions_user ON sessions (user_id)",
        "CREATE INDEX sessions_touched ON sessions (touched)",
    ],
    # a conversation's row counts its saves (from 1: 0 means no row): a save based on an older read
    # is refused
    2: ["ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 1"],
    # per-person reads: a person's latest swipe on an item (a retried swipe is one event), their
    # newest turns and conversations (each person's own bounds); operator sign-ins that sign-out revokes
    3: ["CREATE INDEX swipes_user_item ON swipes (user_id, item_id, seq)",
        "CREATE INDEX turns_user_seq ON turns (user_id, seq)",
        "DROP INDEX turns_user",
        "CREATE INDEX sessions_user_touched ON sessions (user_id, touched)",
        "DROP INDEX sessions_user",
        """CREATE TABLE operator_sessions (
            id_sha256 {blob} PRIMARY KEY,
            expires {real} NOT NULL)"""],
    # shadow mode: the challenger's ranking of a turn, written after the reply (``add_shadow``);
    # on the turn's own row, so it goes with the turn (a person's deletion, the bounds, the export)
    4: ["ALTER TABLE turns ADD COLUMN shadow TEXT"],
}
SCHEMA_VERSION = max(MIGRATIONS)
DIALECTS = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL"},
    "postgresql": {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION"},
}


class StoreError(CineAgentError):
    """The event store cannot be used as configured; the message says what to do."""


class StoreTooNew(StoreError):
    pass


class StoreUnavailable(StoreError):
    """A read or write failed (disk full, database down): nothing was applied; retry later."""


class ConversationMoved(StoreError):
    """Another request saved this conversation after this one read it (two messages at once to
    one conversation, through different processes); this turn was not saved."""

    def __init__(self) -> None:
        super().__init__("this conversation moved on in another request at the same moment; nothing of this "
                         "message was saved: send it again")


@dataclass(frozen=True)
class ProfileState:
    """A person's swipes as their profile sees them, and the version of those events.

    ``version`` is (swipe count, last sequence number): a new swipe raises the second, an undo
    lowers the first, so along one person's history no two states share a version."""

    ratings: dict[int, int]     # item -> 5 (like) or 1 (dislike), the latest swipe per item
    version: tuple[int, int]


class EventStore:
    """People, swipes, turns and sessions in SQLite or PostgreSQL (see the module docstring)."""

    def __init__(self, url: str | None = None, max_turns: int = DEFAULT_MAX_TURNS, pool_size: int = 8,
                 max_turns_person: int = DEFAULT_MAX_TURNS_PERSON) -> None:
        self.url = url or f"sqlite:///{home() / FILE_NAME}"
        self.max_turns = max_turns
        self.max_turns_person = max_turns_person
        self._turn_inserts = 0
        if self.url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._pool = _postgres_pool(self.url, pool_size)
        elif self.url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self.path = Path(self.url[len("sqlite:///"):])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._local = threading.local()
        else:
            raise StoreError(f"CINEAGENT_DATABASE_URL: {self.url.split(':', 1)[0]!r} is not supported; use "
                             "postgresql://user@host:port/database, or leave it unset for SQLite")
        self._migrate()

    def describe(self) -> str:
        """Where the store is, without credentials (for logs and the operator view)."""
        if self.dialect == "sqlite":
            return f"SQLite {self.path}"
        return f"PostgreSQL {_where(self.url)}"

    # ---------------------------------------------------------------- plumbing
    def _sqlite(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT of _tx
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            # a deleted person's rows are overwritten, not left readable in free pages of the file
            db.execute("PRAGMA secure_delete=ON")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self, durable: bool = False, write: bool = True) -> Iterator["_Cursor"]:
        """One transaction; ``durable``: committed to disk before it returns (SQLite fsyncs the
        WAL; PostgreSQL's commit is durable by default); ``write=False``: a read, which on SQLite
        does not take the write lock (WAL serves it beside writers in other processes).
        Failures become StoreUnavailable."""
        try:
            if self.dialect == "sqlite":
                db = self._sqlite()
                # FULL fsyncs each commit; NORMAL survives a killed process, only a power cut may
                # lose the last commits: good enough for turns and sessions, not for swipes
                db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield _Cursor(db, "sqlite")
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:   # a failed COMMIT too: never keep the write lock
                        db.execute("ROLLBACK")
                    raise
            else:
                with self._pool.connection() as conn:   # commits on success, rolls back on error
                    yield _Cursor(conn, "postgresql")
        except Exception as exc:
            if not _unavailable(exc):
                raise
            # the detail (where the store is, the driver's words) is for the operator's log only
            log.warning("event store %s: %s", self.describe(), _short(exc))
            raise StoreUnavailable("the store could not be reached or written just now; nothing was saved, "
                                   "retry in a moment") from exc

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._tx(write=False) as cur:
            return cur.execute(sql, args).fetchall()

    def close(self) -> None:
        if self.dialect == "postgresql":
            self._pool.close()
        else:
            db = getattr(self._local, "db", None)
            if db is not None:
                db.close()
                self._local.db = None

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, one version per transaction; refuse a newer one."""
        with self._tx(durable=True) as cur:
            if self.dialect == "postgresql":
                # replicas starting together: one migrates, the others wait for it here
                cur.execute("SELECT pg_advisory_xact_lock(7377001)")
            cur.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreTooNew(f"{self.describe()} has schema version {current}, written by a newer CineAgent; "
                                  f"this one reads up to version {SCHEMA_VERSION}. Upgrade CineAgent, or point "
                                  "CINEAGENT_HOME / CINEAGENT_DATABASE_URL at another database")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    cur.execute(statement.format(**DIALECTS[self.dialect]))
                cur.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(version),))
                log.info("event store %s: schema now at version %d", self.describe(), version)

    def ping(self, timeout_s: float = 2.0) -> None:
        """A read that must reach the database (``/healthz``): raises StoreUnavailable when it
        cannot. On PostgreSQL a connection is waited for ``timeout_s`` at most (a request waits 30 s)."""
        if self.dialect == "sqlite":
            self._read("SELECT value FROM meta WHERE key = 'schema_version'")
            return
        try:
            with self._pool.connection(timeout=timeout_s) as conn:
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except Exception as exc:
            if not _unavailable(exc):
                raise
            log.warning("event store %s: %s", self.describe(), _short(exc))   # where and why: the log's
            raise StoreUnavailable("the store did not answer") from exc

    def schema_version(self) -> int:
        return int(self._read("SELECT value FROM meta WHERE key = 'schema_version'")[0][0])

    # ---------------------------------------------------------------- people
    def create_person(self, name: str | None = None, seed_from: int | None = None) -> tuple[Person, str]:
        """A new person and their token (returned once; only its hash is kept)."""
        if name is not None:
            name = name.strip()
            if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
                raise InvalidPerson(f"name: 1-{MAX_NAME_CHARS} printable characters, or leave it out")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        person = Person(ID_PREFIX + secrets.token_hex(ID_HEX_CHARS // 2), name, seed_from, time.time())
        with self._tx(durable=True) as cur:
            cur.execute("INSERT INTO people (id, token_sha256, name, seed_from, created) VALUES (?, ?, ?, ?, ?)",
                        (person.id, hash_token(token), person.name, person.seed_from, person.created))
        return person, token

    def authenticate(self, token: str) -> Person:
        if not isinstance(token, str) or not looks_like_token(token):
            raise InvalidToken()
        rows = self._read("SELECT id, name, seed_from, created FROM people WHERE token_sha256 = ?", (hash_token(token),))
        if not rows:
            raise InvalidToken()
        return Person(*rows[0])

    def person(self, person_id: str) -> Person | None:
        rows = self._read("SELECT id, name, seed_from, created FROM people WHERE id = ?", (person_id,))
        return Person(*rows[0]) if rows else None

    def count_people(self) -> int:
        return self._read("SELECT COUNT(*) FROM people")[0][0]

    def delete_person(self, person_id: str) -> dict[str, int]:
        """Forget a person and everything recorded about them, in one transaction; counts per kind."""
        with self._tx(durable=True) as cur:
            # the person's row first: on PostgreSQL this waits for writes in their name under way
            # (they hold it FOR SHARE), and every later one finds them gone
            person = cur.execute("DELETE FROM people WHERE id = ?", (person_id,)).rowcount
            removed = {kind: cur.execute(f"DELETE FROM {kind} WHERE user_id = ?", (person_id,)).rowcount
                       for kind in ("swipes", "sessions", "turns")}
            removed["person"] = person
        return removed

    def _person_exists(self, cur: "_Cursor", person_id: str) -> bool:
        """Inside a write: whether the person exists, their row locked against deletion until commit
        (SQLite's writers are serialised anyway)."""
        lock = " FOR SHARE" if self.dialect == "postgresql" else ""
        return cur.execute(f"SELECT 1 FROM people WHERE id = ?{lock}", (person_id,)).fetchone() is not None

    def export_person(self, person_id: str) -> dict[str, Any]:
        """Everything held about the person (the token hash excepted: it is no one's data)."""
        person = self.person(person_id)
        return {"person": person.as_dict() if person else None,
                "swipes": [s.model_dump(mode="json") for s in self.swipes(person_id)],
                "turns": [t.model_dump(mode="json") for t in self.turns(person_id)],
                "sessions": [json.loads(s) for s in self.sessions_of(person_id)]}

    # ---------------------------------------------------------------- operator sessions
    def add_operator_session(self, key: bytes, expires: float) -> None:
        """A signed-in operator session (by its HMAC); expired ones go at the same time."""
        with self._tx() as cur:
            cur.execute("DELETE FROM operator_sessions WHERE expires < ?", (time.time(),))
            cur.execute("INSERT INTO operator_sessions (id_sha256, expires) VALUES (?, ?)", (key, expires))

    def operator_session_valid(self, key: bytes, now: float) -> bool:
        return bool(self._read("SELECT 1 FROM operator_sessions WHERE id_sha256 = ? AND expires >= ?", (key, now)))

    def delete_operator_session(self, key: bytes) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM operator_sessions WHERE id_sha256 = ?", (key,))

    # ---------------------------------------------------------------- swipes
    def add_swipe(self, swipe: Swipe) -> int:
        """Record a swipe durably; returns its sequence number. A person's swipe lands only while
        they exist (a swipe racing their deletion is refused, never left behind). The same swipe
        again (the person's latest on this item already has this action and trace) is not a new
        event: a client retrying a swipe whose answer it lost records it once."""
        return self.record_swipe(swipe)[0]

    def record_swipe(self, swipe: Swipe) -> tuple[int, Swipe | None]:
        """``add_swipe``, saying whether it was new: (sequence number, None) for a new event,
        (its sequence number, the stored swipe) for a repeat of the person's latest on the item."""
        with self._tx(durable=True) as cur:
            if self.dialect == "postgresql":   # one person's swipes one at a time: two retries are one event
                cur.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("swipe", swipe.user_id),))
            if is_person_id(swipe.user_id) and not self._person_exists(cur, swipe.user_id):
                raise InvalidToken()
            row = cur.execute("SELECT seq, ts, session_id, action, trace_id, rank, query FROM swipes "
                              "WHERE user_id = ? AND item_id = ? ORDER BY seq DESC LIMIT 1",
                              (swipe.user_id, swipe.item_id)).fetchone()
            if row is not None and row[3] == swipe.action and row[4] == swipe.trace_id:
                seq, ts, session_id, action, trace_id, rank, query = row
                return int(seq), Swipe(ts=ts, user_id=swipe.user_id, session_id=session_id, item_id=swipe.item_id,
                                       action=action, trace_id=trace_id, rank=rank, query=query)
            return self._insert_swipe(cur, swipe), None

    def add_swipes(self, swipes: Iterable[Swipe]) -> int:
        """Record many swipes in one durable transaction (imports, simulations); returns the last
        sequence number. Unlike ``add_swipe`` it does not check that people exist."""
        last = 0
        with self._tx(durable=True) as cur:
            for swipe in swipes:
                last = self._insert_swipe(cur, swipe)
        return last

    @staticmethod
    def _insert_swipe(cur: "_Cursor", swipe: Swipe) -> int:
        row = cur.execute("INSERT INTO swipes (ts, user_id, session_id, item_id, action, trace_id, rank, query) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                          (swipe.ts.isoformat(), swipe.user_id, swipe.session_id, swipe.item_id, swipe.action,
                           swipe.trace_id, swipe.rank, swipe.query)).fetchone()
        return int(row[0])

    def undo_swipe(self, user_id: str, item_id: int) -> str | None:
        """Take back the person's swipe on an item (every swipe of theirs on it, so it cannot come
        back from an older one); returns the action undone, None when there was none."""
        with self._tx(durable=True) as cur:
            row = cur.execute("SELECT action FROM swipes WHERE user_id = ? AND item_id = ? ORDER BY seq DESC LIMIT 1",
                              (user_id, int(item_id))).fetchone()
            if row is None:
                return None
            cur.execute("DELETE FROM swipes WHERE user_id = ? AND item_id = ?", (user_id, int(item_id)))
        return row[0]

    def profile_state(self, user_id: str) -> ProfileState:
        """The person's current swipes (latest per item) and their version, in one read."""
        rows = self._read("SELECT seq, item_id, action FROM swipes WHERE user_id = ? ORDER BY seq", (user_id,))
        ratings = {int(item): LIKE_RATING if action == "like" else DISLIKE_RATING for _, item, action in rows}
        return ProfileState(ratings, (len(rows), int(rows[-1][0]) if rows else 0))

    def swipes(self, user_id: str | None = None, upto: int | None = None) -> list[Swipe]:
        """Swipes in the order they were made: one person's, or everyone's; ``upto``: only those at
        or before that position (``swipe_position``), so a training run can read the same ones again."""
        clauses, args = [], []
        if user_id is not None:
            clauses, args = ["user_id = ?"], [user_id]
        if upto is not None:
            clauses.append("seq <= ?")
            args.append(int(upto))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read("SELECT ts, user_id, session_id, item_id, action, trace_id, rank, query "
                          f"FROM swipes {where} ORDER BY seq", tuple(args))
        keys = ("ts", "user_id", "session_id", "item_id", "action", "trace_id", "rank", "query")
        return [Swipe(**dict(zip(keys, row))) for row in rows]

    def swipe_position(self) -> int:
        """The sequence number of the latest swipe (0 when there is none): a training run records it."""
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM swipes")[0][0])

    def seeds(self) -> dict[str, int]:
        """Person id -> the MovieLens user they started from, for everyone who started from one."""
        return {pid: int(seed) for pid, seed in self._read("SELECT id, seed_from FROM people WHERE seed_from IS NOT NULL")}

    def count_swipes(self) -> int:
        return self._read("SELECT COUNT(*) FROM swipes")[0][0]

    # ---------------------------------------------------------------- turns
    def add_turn(self, turn: Turn) -> None:
        """Record a turn (for a person, only while they exist); the oldest beyond ``max_turns`` go."""
        with self._tx() as cur:
            if is_person_id(turn.user_id) and not self._person_exists(cur, turn.user_id):
                return
            self._insert_turn(cur, turn)

    def _insert_turn(self, cur: "_Cursor", turn: Turn) -> None:
        cur.execute("INSERT INTO turns (trace_id, user_id, ts, items, event) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (trace_id) DO NOTHING",
                    (turn.trace_id, turn.user_id, turn.ts.isoformat(), json.dumps(turn.items), turn.model_dump_json()))
        # the person's own bound: a flood of their turns pushes out their oldest, nobody else's
        cur.execute("DELETE FROM turns WHERE user_id = ? AND seq <= (SELECT seq FROM turns WHERE user_id = ? "
                    "ORDER BY seq DESC LIMIT 1 OFFSET ?)", (turn.user_id, turn.user_id, self.max_turns_person))
        self._turn_inserts += 1
        if self._turn_inserts % PRUNE_EVERY == 0:
            cur.execute("DELETE FROM turns WHERE seq <= (SELECT MAX(seq) FROM turns) - ?", (self.max_turns,))

    def shown(self, trace_id: str, user_id: str) -> list[int] | None:
        """The cards the turn showed, if it is this person's turn; None otherwise (whoever's it is)."""
        rows = self._read("SELECT items FROM turns WHERE trace_id = ? AND user_id = ?", (trace_id, user_id))
        return json.loads(rows[0][0]) if rows else None

    def turns(self, user_id: str | None = None, latest: int | None = None) -> list[Turn]:
        """Turns oldest first: one person's or everyone's; ``latest``: only the last so many."""
        where, args = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        limit = f"ORDER BY seq DESC LIMIT {int(latest)}" if latest is not None else "ORDER BY seq DESC"
        rows = self._read(f"SELECT event, shadow FROM turns {where} {limit}", args)
        return [_turn(event, shadow) for event, shadow in reversed(rows)]

    def add_shadow(self, trace_id: str, user_id: str, shadow: dict) -> bool:
        """Attach the challenger's ranking of a turn (shadow mode) to the turn's record; False when
        the turn is not there (pruned, or its person deleted meanwhile)."""
        with self._tx() as cur:
            return cur.execute("UPDATE turns SET shadow = ? WHERE trace_id = ? AND user_id = ?",
                               (json.dumps(shadow), trace_id, user_id)).rowcount > 0

    # ---------------------------------------------------------------- conversations
    def load_session(self, key: str, not_before: float) -> tuple[str | None, int]:
        """(state, version) of a conversation; state None when there is none or it expired (its
        version still counts: the next save replaces the expired row)."""
        rows = self._read("SELECT state, touched, version FROM sessions WHERE key = ?", (key,))
        if not rows:
            return None, 0
        state, touched, version = rows[0]
        return (state if touched >= not_before else None), int(version)

    def save_session(self, key: str, user_id: str, state: str, version: int, not_before: float, keep: int,
                     prune: bool = False, turn: Turn | None = None, keep_person: int | None = None) -> int:
        """Write one conversation's state, read at ``version``, and the turn's event if given, in
        one transaction; returns the new version. Raises ConversationMoved when the stored row is
        no longer at ``version``. A new conversation beyond the person's ``keep_person`` pushes out
        their least recently used one (theirs only). With ``prune``, also drop expired
        conversations and all but the ``keep`` most recently used (callers prune now and then, not
        on every turn)."""
        with self._tx() as cur:
            if is_person_id(user_id) and not self._person_exists(cur, user_id):
                return version   # deleted meanwhile: nothing of theirs is kept
            if version == 0:
                saved = cur.execute("INSERT INTO sessions (key, user_id, touched, state, version) VALUES (?, ?, ?, ?, 1) "
                                    "ON CONFLICT (key) DO NOTHING", (key, user_id, time.time(), state)).rowcount
            else:
                saved = cur.execute("UPDATE sessions SET touched = ?, state = ?, version = version + 1 "
                                    "WHERE key = ? AND version = ?", (time.time(), state, key, version)).rowcount
            if saved != 1:
                raise ConversationMoved()
            if version == 0 and keep_person is not None:
                cur.execute("DELETE FROM sessions WHERE user_id = ? AND key NOT IN (SELECT key FROM sessions "
                            "WHERE user_id = ? ORDER BY touched DESC LIMIT ?)", (user_id, user_id, keep_person))
            if turn is not None:
                self._insert_turn(cur, turn)
            if prune:
                cur.execute("DELETE FROM sessions WHERE touched < ?", (not_before,))
                cur.execute("DELETE FROM sessions WHERE key NOT IN "
                            "(SELECT key FROM sessions ORDER BY touched DESC LIMIT ?)", (keep,))
        return version + 1

    def delete_session(self, key: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM sessions WHERE key = ?", (key,))

    def sessions_of(self, user_id: str) -> list[str]:
        return [r[0] for r in self._read("SELECT state FROM sessions WHERE user_id = ? ORDER BY touched", (user_id,))]

    def count_sessions(self) -> int:
        return self._read("SELECT COUNT(*) FROM sessions")[0][0]


class _Cursor:
    """A cursor that takes SQLite's ``?`` placeholders on both databases (psycopg wants ``%s``)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self._conn, self._pg = conn, dialect == "postgresql"

    def execute(self, sql: str, args: Iterable = ()) -> Any:
        if self._pg:
            # PostgreSQL text cannot hold NUL, which a person's message may: stored as U+FFFD
            args = tuple(a.replace("\x00", "\ufffd") if isinstance(a, str) else a for a in args)
            return self._conn.execute(sql.replace("?", "%s"), args)
        return self._conn.execute(sql, tuple(args))


def _postgres_pool(url: str, size: int):
    try:
        from psycopg_pool import ConnectionPool
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise StoreError("CINEAGENT_DATABASE_URL needs psycopg: pip install 'psycopg[binary]' psycopg-pool") from exc
    # idle connections are closed after 5 minutes; a replica never holds more than `size`
    pool = ConnectionPool(url, min_size=1, max_size=size, max_idle=300, timeout=30, open=False,
                          kwargs={"connect_timeout": 10})
    try:
        pool.open(wait=True, timeout=30)
    except Exception as exc:
        pool.close()
        raise StoreError(f"cannot reach PostgreSQL at {_where(url)}: {_short(exc)}; check "
                         "CINEAGENT_DATABASE_URL and that the server runs") from None
    return pool


def _unavailable(exc: BaseException) -> bool:
    """An error of the database, not of the statement: full disk, locked or damaged file, server
    gone or read-only, a timeout. Mistakes in SQL and broken constraints stay faults (bugs)."""
    if isinstance(exc, sqlite3.DatabaseError):
        return not isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
                                    sqlite3.NotSupportedError))
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    # OperationalError covers the pool's timeout; InternalError a standby's read-only transaction
    return isinstance(exc, (psycopg.OperationalError, psycopg.InternalError))


def _lock_key(kind: str, name: str) -> int:
    """A PostgreSQL advisory lock id (signed 64 bits) for one kind of thing of one name."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{kind}:{name}".encode()).digest()[:8], "big", signed=True)


def _where(url: str) -> str:
    """Host, port and database of a PostgreSQL URL: never the credentials or the options."""
    return url.split("@", 1)[-1].split("?", 1)[0]


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


LEGACY_FILES = ("feedback.jsonl", "people.sqlite3", "people.sqlite3-wal", "people.sqlite3-shm", "sessions.sqlite3",
                "sessions.sqlite3-wal", "sessions.sqlite3-shm")


def legacy_import(store: EventStore, directory: Path) -> dict[str, int]:
    """Bring swipes and people from the files of earlier versions (``feedback.jsonl``,
    ``people.sqlite3``) into the store, once: the import and its mark in ``meta`` are one
    transaction (several workers starting together import once), and then the old files, with
    the per-person profile files and the old conversations, are removed, so that nobody deleted
    later survives in them."""
    if not any((directory / name).exists() for name in LEGACY_FILES) and not (directory / "profiles").exists():
        return {}
    people_file = directory / "people.sqlite3"
    rows: list[tuple] = []
    if people_file.exists():
        db = sqlite3.connect(people_file)
        try:
            rows = db.execute("SELECT id, token_sha256, name, seed_from, created FROM people").fetchall()
        except sqlite3.Error:
            rows = []
        finally:
            db.close()
    from data.feedback import read_feedback

    swipes = read_feedback(directory / "feedback.jsonl")
    known = {row[0] for row in rows}
    counts = {"swipes": 0, "people": 0, "skipped": 0}
    # one transaction: a crash leaves the import done or not started, never half of it
    with store._tx(durable=True) as cur:
        if cur.execute("SELECT 1 FROM meta WHERE key = 'legacy_imported'").fetchone():
            counts = {}   # imported before (by another worker, or before a crash that kept the files)
        else:
            for row in rows:
                cur.execute("INSERT INTO people (id, token_sha256, name, seed_from, created) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT DO NOTHING", row)
            counts["people"] = len(rows)
            for swipe in swipes:
                if is_person_id(swipe.user_id) and swipe.user_id not in known:
                    counts["skipped"] += 1   # a deleted person's: not brought back
                    continue
                EventStore._insert_swipe(cur, swipe)
                counts["swipes"] += 1
            cur.execute("INSERT INTO meta (key, value) VALUES ('legacy_imported', ?)", (time.strftime("%Y-%m-%dT%H:%M:%S"),))
    for name in LEGACY_FILES:
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "profiles", ignore_errors=True)
    if counts:
        log.info("event store: imported %s from the files of an earlier version in %s and removed them", counts,
                 directory)
    return counts


def open_store(url: str | None = None, pool_size: int = 8) -> EventStore:
    """The store the settings name (PostgreSQL) or the default SQLite file, with earlier
    versions' files imported into a new default store."""
    store = EventStore(url, pool_size=pool_size)
    if store.dialect == "sqlite" and store.path.parent == home():
        legacy_import(store, home())
    return store


def _turn(event: str, shadow: str | None) -> Turn:
    turn = Turn.model_validate_json(event)
    return turn.model_copy(update={"shadow": json.loads(shadow)}) if shadow else turn
