"""The event store's contract, the same on SQLite and on PostgreSQL: people, swipes and the
profile version derived from them, turns, conversations, schema versions, replicas sharing one
database, rollback of failed writes, the import of earlier versions' files, and durability of an
acknowledged swipe when the writer is killed. PostgreSQL comes from ``tests/postgres.py`` (a fresh
schema per test); no models, no app server."""
from __future__ import annotations

import hashlib
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from data import event_store
from data.event_store import (FILE_NAME, SCHEMA_VERSION, EventStore, ProfileState, StoreError, StoreTooNew,
                              legacy_import, open_store)
from data.events import Swipe, Turn, TurnStep
from data.feedback import write_feedback
from data.people import InvalidPerson, InvalidToken, hash_token, is_person_id

ROOT = Path(__file__).resolve().parents[1]
DATABASE_ERRORS = (sqlite3.Error, psycopg.Error)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def open_stores(url):
    """Opens stores on this test's database (as many as a test wants: replicas); closes them after."""
    stores: list[EventStore] = []

    def opener(**options) -> EventStore:
        store = EventStore(url, **options)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        store.close()


@pytest.fixture
def store(open_stores) -> EventStore:
    return open_stores()


def swipe(user: str, item: int, action: str = "like", **fields) -> Swipe:
    return Swipe(user_id=user, session_id="s1", item_id=item, action=action, **fields)


def turn(user: str, trace: str, items: list[int], **fields) -> Turn:
    return Turn(trace_id=trace, user_id=user, session_id="s1", items=items, **fields)


def save(store: EventStore, key: str, user: str, state: str, not_before: float = 0, keep: int = 10, **fields) -> int:
    """Save a conversation as a turn does: at the version it was read at."""
    return store.save_session(key, user, state, store.load_session(key, 0)[1], not_before=not_before, keep=keep,
                              **fields)


def load(store: EventStore, key: str, not_before: float = 0) -> str | None:
    return store.load_session(key, not_before)[0]


# ------------------------------------------------------------------------------------------ people
def test_a_person_is_created_authenticated_and_counted(store):
    ann, ann_token = store.create_person("  Ann ", 196)
    bob, bob_token = store.create_person()
    assert is_person_id(ann.id) and ann.name == "Ann" and ann.seed_from == 196
    assert bob.name is None and bob.seed_from is None and bob.id != ann.id and bob_token != ann_token
    assert store.authenticate(ann_token) == ann == store.person(ann.id)
    assert store.authenticate(bob_token) == bob
    for bad in ("", ann_token[:-1], ann_token + "x", "x" * 43, ann_token.swapcase(), None, 42):
        with pytest.raises(InvalidToken):
            store.authenticate(bad)
    for bad in ("", "   ", "x" * 65, "tab\there"):
        with pytest.raises(InvalidPerson):
            store.create_person(bad)
    assert store.count_people() == 2 and store.person("p_" + "0" * 24) is None


def test_the_sqlite_file_holds_only_a_hash_of_a_token(tmp_path):
    """Neither the database file nor its WAL holds a token: a copy of them lets nobody act as anyone."""
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite3'}")
    try:
        _, token = store.create_person("Ann")
        with sqlite3.connect(tmp_path / "events.sqlite3") as conn:
            rows = conn.execute("SELECT token_sha256 FROM people").fetchall()
        assert rows == [(hashlib.sha256(token.encode()).digest(),)]
        for path in tmp_path.glob("events.sqlite3*"):   # the file, its WAL and shared memory
            assert token.encode() not in path.read_bytes()
    finally:
        store.close()


def test_deleting_a_person_removes_everything_recorded_about_them_and_nothing_else(store):
    ann, ann_token = store.create_person("Ann")
    bob, _ = store.create_person("Bob")
    for item in (1, 2, 3):
        store.add_swipe(swipe(ann.id, item))
    store.add_swipe(swipe(bob.id, 1, "dislike"))
    store.add_turn(turn(ann.id, "t-ann", [1, 2, 3]))
    store.add_turn(turn(bob.id, "t-bob", [4]))
    save(store, "k-ann", ann.id, '{"a": 1}', not_before=0, keep=10)
    save(store, "k-bob", bob.id, '{"b": 1}', not_before=0, keep=10)

    assert store.delete_person(ann.id) == {"swipes": 3, "sessions": 1, "turns": 1, "person": 1}
    assert store.person(ann.id) is None and store.count_people() == 1
    with pytest.raises(InvalidToken):
        store.authenticate(ann_token)
    assert store.swipes(ann.id) == [] and store.turns(ann.id) == [] and store.sessions_of(ann.id) == []
    assert store.profile_state(ann.id) == ProfileState({}, (0, 0))
    assert store.shown("t-ann", ann.id) is None and load(store, "k-ann", 0) is None
    assert store.export_person(ann.id) == {"person": None, "swipes": [], "turns": [], "sessions": []}
    # the other person is untouched
    assert store.profile_state(bob.id).ratings == {1: 1} and store.shown("t-bob", bob.id) == [4]
    assert load(store, "k-bob", 0) == '{"b": 1}'
    # writes in their name afterwards are refused (swipes) or dropped (turns), never left behind
    with pytest.raises(InvalidToken):
        store.add_swipe(swipe(ann.id, 9))
    store.add_turn(turn(ann.id, "t-late", [9]))
    assert store.swipes(ann.id) == [] and store.turns(ann.id) == []
    assert store.delete_person(ann.id) == {"swipes": 0, "sessions": 0, "turns": 0, "person": 0}


def test_an_export_holds_everything_about_the_person_but_the_token_hash(store):
    ann, token = store.create_person("Ann", 7)
    store.add_swipe(swipe(ann.id, 5, trace_id="t1", rank=2, query="space operas"))
    store.add_turn(turn(ann.id, "t1", [4, 5]))
    save(store, "k", ann.id, '{"history": ["hi"]}', not_before=0, keep=10)
    exported = store.export_person(ann.id)
    assert exported["person"] == ann.as_dict()
    assert [(s["item_id"], s["rank"], s["query"]) for s in exported["swipes"]] == [(5, 2, "space operas")]
    assert [t["trace_id"] for t in exported["turns"]] == ["t1"] and exported["sessions"] == [{"history": ["hi"]}]
    assert hash_token(token).hex() not in repr(exported) and token not in repr(exported)


# ------------------------------------------------------------------------------------------ swipes
def test_swipes_make_the_profile_latest_per_item_and_every_change_moves_its_version(store):
    user = "196"   # a persona: swipes need no person record
    seen: dict[tuple[int, int], dict[int, int]] = {}

    def state() -> ProfileState:
        current = store.profile_state(user)
        # one version never names two different profiles: a cache keyed by it is always right
        assert seen.setdefault(current.version, current.ratings) == current.ratings
        return current

    start = state()
    assert start == ProfileState({}, (0, 0))
    first = store.add_swipe(swipe(user, 10, "like"))
    one = state()
    assert one.ratings == {10: 5} and one.version > start.version
    second = store.add_swipe(swipe(user, 20, "dislike"))
    two = state()
    assert two.ratings == {10: 5, 20: 1} and two.version > one.version and second > first
    store.add_swipe(swipe(user, 10, "dislike"))     # changed their mind: the latest swipe wins
    three = state()
    assert three.ratings == {10: 1, 20: 1} and three.version > two.version

    assert store.undo_swipe(user, 10) == "dislike"
    four = state()
    # every swipe on the item goes: the older like does not come back
    assert four.ratings == {20: 1} and four.version != three.version
    assert store.undo_swipe(user, 10) is None and state().version == four.version   # nothing to undo
    assert store.undo_swipe("someone-else", 20) is None and state() == four          # not theirs to undo
    versions_so_far = set(seen)
    store.add_swipe(swipe(user, 30, "like"))
    five = state()
    assert five.ratings == {20: 1, 30: 5} and five.version not in versions_so_far
    assert store.undo_swipe(user, 20) == "dislike" and state().ratings == {30: 5}


def test_swipes_come_back_as_recorded_in_the_order_they_were_made(store):
    made = [swipe("196", 3, "like", trace_id="t9", rank=1, query="heists"),
            swipe("7", 3, "dislike"),
            swipe("196", 1, "dislike", rank=4)]
    seqs = [store.add_swipe(s) for s in made]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert store.swipes() == made and store.count_swipes() == 3
    assert store.swipes("196") == [made[0], made[2]] and store.swipes("nobody") == []
    assert store.profile_state("7").ratings == {3: 1}


# ------------------------------------------------------------------------------------------ turns
def test_turns_show_their_cards_only_to_their_owner_and_come_back_oldest_first(store):
    ann, _ = store.create_person("Ann")
    bob, _ = store.create_person("Bob")
    t1 = turn(ann.id, "t1", [1, 2, 3], message="dark comedies", intent={"genres": ["Comedy"]},
              steps=[TurnStep(name="parse", kind="llm", duration_ms=12.5)], total_ms=40.0)
    t2 = turn(ann.id, "t2", [4, 5])
    t3 = turn("196", "t3", [6], channel="cli")
    for t in (t1, t2, t3):
        store.add_turn(t)
    assert store.shown("t1", ann.id) == [1, 2, 3] and store.shown("t3", "196") == [6]
    for trace, user in (("t1", bob.id), ("t1", "196"), ("t3", ann.id), ("missing", ann.id)):
        assert store.shown(trace, user) is None
    assert store.turns(ann.id) == [t1, t2] and store.turns() == [t1, t2, t3]
    assert store.turns(latest=2) == [t2, t3] and store.turns(ann.id, latest=1) == [t2]
    assert store.turns(bob.id) == [] and store.turns(latest=10) == [t1, t2, t3]
    # a trace is recorded once: a second turn under the same id changes nothing
    store.add_turn(turn(bob.id, "t1", [9]))
    assert store.shown("t1", ann.id) == [1, 2, 3] and store.shown("t1", bob.id) is None and len(store.turns()) == 3


def test_any_text_a_person_sends_can_be_stored(store):
    """PostgreSQL text refuses NUL, which JSON lets a person send: it is stored as U+FFFD, and a
    conversation keyed by any user key and session id round-trips."""
    store.add_turn(turn("196", "n" * 32, [1], message="a comedy\x00 please"))
    assert store.turns("196")[0].message in ("a comedy\x00 please", "a comedy\ufffd please")
    store.add_swipe(swipe("196", 5, query="x\x00y"))
    assert store.swipes("196")[0].query in ("x\x00y", "x\ufffdy")


def test_only_the_latest_turns_are_kept(open_stores, monkeypatch):
    monkeypatch.setattr(event_store, "PRUNE_EVERY", 2)
    store = open_stores(max_turns=3)
    for n in range(6):
        store.add_turn(turn("196", f"t{n}", [n + 1]))
    assert [t.trace_id for t in store.turns()] == ["t3", "t4", "t5"]


# ------------------------------------------------------------------------------------------ sessions
def test_conversations_are_saved_loaded_expired_and_pruned(store):
    save(store, "k1", "196", "one", not_before=0, keep=10)
    assert load(store, "k1", not_before=time.time() - 60) == "one"
    assert load(store, "k1", not_before=time.time() + 60) is None       # older than the TTL
    save(store, "k1", "196", "one, later", not_before=0, keep=10)         # same key: replaced
    assert load(store, "k1", 0) == "one, later" and store.count_sessions() == 1
    assert load(store, "missing", 0) is None

    for key in ("k2", "k3", "k4"):
        time.sleep(0.01)
        save(store, key, "7", key, not_before=0, keep=10)
    assert store.sessions_of("7") == ["k2", "k3", "k4"]       # least recently used first
    time.sleep(0.01)
    save(store, "k5", "7", "k5", not_before=0, keep=3, prune=True)
    assert store.count_sessions() == 3 and store.sessions_of("7") == ["k3", "k4", "k5"]
    assert load(store, "k1", 0) is None and load(store, "k2", 0) is None

    time.sleep(0.01)
    cutoff = time.time()
    time.sleep(0.01)
    save(store, "k6", "7", "k6", not_before=cutoff, keep=10, prune=True)   # expired ones go
    assert store.sessions_of("7") == ["k6"] and store.count_sessions() == 1
    store.delete_session("k6")
    store.delete_session("k6")
    assert store.count_sessions() == 0


def test_a_conversation_saved_elsewhere_since_it_was_read_is_not_overwritten(open_stores):
    """Two replicas read one conversation at once and both answer: the second save is refused
    (ConversationMoved), with its turn event, so neither answer is silently lost."""
    from data.event_store import ConversationMoved

    here, there = open_stores(), open_stores()
    save(here, "k", "196", "first")
    _, read_here = here.load_session("k", 0)
    _, read_there = there.load_session("k", 0)
    assert here.save_session("k", "196", "here", read_here, not_before=0, keep=10,
                             turn=turn("196", "t-here", [1])) == read_here + 1
    with pytest.raises(ConversationMoved, match="send it again"):
        there.save_session("k", "196", "there", read_there, not_before=0, keep=10, turn=turn("196", "t-there", [2]))
    assert load(there, "k") == "here" and there.shown("t-here", "196") == [1]
    assert there.shown("t-there", "196") is None, "the refused turn's event is not kept either"
    there.save_session("new", "196", "b", 0, not_before=0, keep=10)
    with pytest.raises(ConversationMoved):   # two first messages at once: one creates it, the other is refused
        here.save_session("new", "196", "a", 0, not_before=0, keep=10)


def test_a_store_of_the_first_schema_is_migrated(url):
    """A database left at schema version 1 gets version 2's column, its conversations kept."""
    from data.event_store import DIALECTS, MIGRATIONS

    first = EventStore(url)
    try:
        with first._tx() as cur:   # back to version 1, as an earlier CineAgent left it
            cur.execute("DROP TABLE meta")
            for table in ("people", "swipes", "turns", "sessions", "operator_sessions"):   # every later table too
                cur.execute(f"DROP TABLE {table}")
            cur.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in MIGRATIONS[1]:
                cur.execute(statement.format(**DIALECTS[first.dialect]))
            cur.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
            cur.execute("INSERT INTO sessions (key, user_id, touched, state) VALUES ('k', '196', 1e12, 'kept')")
    finally:
        first.close()
    upgraded = EventStore(url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION >= 2
        assert upgraded.load_session("k", 0) == ("kept", 1)
        save(upgraded, "k", "196", "saved again")
        assert upgraded.load_session("k", 0) == ("saved again", 2)
    finally:
        upgraded.close()


# ------------------------------------------------------------------------------------------ schema
def test_reopening_is_a_no_op_and_a_newer_schema_is_refused(open_stores):
    store = open_stores()
    assert store.schema_version() == SCHEMA_VERSION
    ann, token = store.create_person("Ann")
    again = open_stores()
    assert again.schema_version() == SCHEMA_VERSION and again.authenticate(token) == ann

    with store._tx(durable=True) as cur:
        cur.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreTooNew) as refused:
        open_stores()
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message and f"up to version {SCHEMA_VERSION}" in message
    assert "newer CineAgent" in message and "Upgrade CineAgent" in message
    assert store.schema_version() == SCHEMA_VERSION + 1 and store.authenticate(token) == ann   # left as it was


def test_stores_opened_at_once_on_a_new_database_migrate_it_once(open_stores):
    opened: list[EventStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_stores())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(opened) == 4
    assert {s.schema_version() for s in opened} == {SCHEMA_VERSION}


def test_an_unknown_database_url_is_refused_with_the_fix():
    with pytest.raises(StoreError, match="'mysql' is not supported; use postgresql://"):
        EventStore("mysql://root@localhost/cineagent")


# ------------------------------------------------------------------------------------------ replicas
def test_two_stores_on_one_database_see_each_others_writes(open_stores):
    a, b = open_stores(), open_stores()
    ann, token = a.create_person("Ann")
    assert b.authenticate(token) == ann and b.count_people() == 1
    b.add_swipe(swipe(ann.id, 11, "like"))
    assert a.profile_state(ann.id) == b.profile_state(ann.id) and a.profile_state(ann.id).ratings == {11: 5}
    assert a.undo_swipe(ann.id, 11) == "like" and b.profile_state(ann.id).ratings == {}
    a.add_turn(turn(ann.id, "t1", [11, 12]))
    assert b.shown("t1", ann.id) == [11, 12]
    save(b, "k", ann.id, "state", not_before=0, keep=10)
    assert load(a, "k", 0) == "state"
    b.delete_person(ann.id)
    assert a.person(ann.id) is None and a.shown("t1", ann.id) is None and load(a, "k", 0) is None


# ------------------------------------------------------------------------------------------ atomicity
def test_a_failed_write_leaves_nothing_and_the_store_keeps_working(store):
    ann, token = store.create_person("Ann")
    store.add_swipe(swipe(ann.id, 1))

    def snapshot():
        return (store.count_people(), store.swipes(), store.turns(), store.count_sessions())

    before = snapshot()
    with pytest.raises(RuntimeError, match="mid-transaction"):
        with store._tx(durable=True) as cur:
            cur.execute("INSERT INTO swipes (ts, user_id, session_id, item_id, action) VALUES (?, ?, ?, ?, ?)",
                        ("2024-01-01T00:00:00+00:00", ann.id, "s1", 2, "like"))
            cur.execute("DELETE FROM people WHERE id = ?", (ann.id,))
            raise RuntimeError("crash mid-transaction")
    assert snapshot() == before
    with pytest.raises(DATABASE_ERRORS):   # the database refuses the second statement: the first goes too
        with store._tx(durable=True) as cur:
            cur.execute("INSERT INTO swipes (ts, user_id, session_id, item_id, action) VALUES (?, ?, ?, ?, ?)",
                        ("2024-01-01T00:00:00+00:00", ann.id, "s1", 3, "like"))
            cur.execute("INSERT INTO swipes (ts, user_id, session_id, item_id, action) VALUES (?, ?, ?, ?, ?)",
                        ("2024-01-01T00:00:00+00:00", ann.id, "s1", 4, "meh"))
    assert snapshot() == before
    with pytest.raises(DATABASE_ERRORS):   # a turn the database refuses (no trace id) is not recorded
        store.add_turn(turn(ann.id, "t1", [1]).model_copy(update={"trace_id": None}))
    assert snapshot() == before
    # the connection is usable again: nothing is left half-open
    store.add_swipe(swipe(ann.id, 5))
    store.add_turn(turn(ann.id, "t2", [5]))
    assert store.authenticate(token) == ann and store.profile_state(ann.id).ratings == {1: 5, 5: 5}


@pytest.mark.parametrize("write", ["swipe", "turn"])
def test_a_write_racing_the_deletion_of_its_person_is_not_left_behind(open_stores, monkeypatch, write):
    writer, deleter = open_stores(), open_stores()
    ann, _ = writer.create_person("Ann")
    checked, deleted = threading.Event(), threading.Event()
    original = event_store._Cursor.execute

    def pausing(self, sql, args=()):
        result = original(self, sql, args)
        if sql.startswith("SELECT 1 FROM people") and threading.current_thread().name == "writer":
            checked.set()
            deleted.wait(timeout=1.0)   # the person is deleted now, if the store lets that happen
        return result

    monkeypatch.setattr(event_store._Cursor, "execute", pausing)

    def write_once() -> None:
        try:
            if write == "swipe":
                writer.add_swipe(swipe(ann.id, 7))
            else:
                writer.add_turn(turn(ann.id, "t-race", [7]))
        except InvalidToken:
            pass   # refused: as good as never written

    writing = threading.Thread(target=write_once, name="writer")
    writing.start()
    assert checked.wait(10)
    deleting = threading.Thread(target=lambda: (deleter.delete_person(ann.id), deleted.set()))
    deleting.start()
    writing.join(30)
    deleting.join(30)
    assert not writing.is_alive() and not deleting.is_alive()
    assert deleter.person(ann.id) is None
    left = deleter.swipes(ann.id) + deleter.turns(ann.id)
    assert left == []


def test_a_conversation_saved_after_its_person_was_deleted_is_not_kept(store):
    ann, _ = store.create_person("Ann")
    store.delete_person(ann.id)
    try:
        # the turn that was in flight while they were deleted saves its conversation afterwards
        save(store, "k", ann.id, '{"history": ["my address is ..."]}', not_before=0, keep=10)
    except InvalidToken:
        pass
    assert store.sessions_of(ann.id) == [] and store.count_sessions() == 0


# ------------------------------------------------------------------------------------------ legacy files
OLD_PEOPLE_SCHEMA = """
CREATE TABLE people (id TEXT PRIMARY KEY, token_sha256 BLOB NOT NULL UNIQUE, name TEXT, seed_from INTEGER,
                     created REAL NOT NULL);
CREATE TABLE turns (seq INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT NOT NULL UNIQUE, person TEXT NOT NULL,
                    items TEXT NOT NULL, ts REAL NOT NULL);
"""


def _legacy_home(directory: Path, swipes: list[Swipe]) -> tuple[str, str]:
    """The files an earlier version left: people.sqlite3 with one person, feedback.jsonl."""
    person_id, token = "p_" + secrets.token_hex(12), secrets.token_urlsafe(32)
    db = sqlite3.connect(directory / "people.sqlite3")
    db.executescript(OLD_PEOPLE_SCHEMA)
    db.execute("INSERT INTO people VALUES (?, ?, ?, ?, ?)", (person_id, hash_token(token), "Ann", 196, 1.7e9))
    db.execute("INSERT INTO turns (trace_id, person, items, ts) VALUES ('t0', ?, '[1]', 1.7e9)", (person_id,))
    db.commit()
    db.close()
    write_feedback([s.model_copy(update={"user_id": person_id}) if s.user_id == "ann" else s for s in swipes],
                   directory / "feedback.jsonl")
    with open(directory / "feedback.jsonl", "ab") as log:
        log.write(b'{"user_id": "196", "item_id": 4')     # a writer killed mid-line
    return person_id, token


def test_an_earlier_versions_files_are_imported_once(tmp_path, monkeypatch):
    old = [swipe("ann", 1, "like", trace_id="t0", rank=1, query="q"), swipe("196", 2, "dislike"),
           swipe("ann", 3, "dislike")]
    person_id, token = _legacy_home(tmp_path, old)
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    store = open_store()
    try:
        assert store.dialect == "sqlite" and store.path == tmp_path / FILE_NAME
        person = store.authenticate(token)
        assert (person.id, person.name, person.seed_from, person.created) == (person_id, "Ann", 196, 1.7e9)
        assert [(s.user_id, s.item_id, s.action) for s in store.swipes()] == [
            (person_id, 1, "like"), ("196", 2, "dislike"), (person_id, 3, "dislike")]
        assert store.swipes(person_id)[0].query == "q" and store.profile_state(person_id).ratings == {1: 5, 3: 1}
        # the old files are gone: a person deleted from now on survives nowhere
        assert not (tmp_path / "feedback.jsonl").exists() and not (tmp_path / "people.sqlite3").exists()
        assert legacy_import(store, tmp_path) == {}
        _legacy_home(tmp_path, old)   # the files back (a backup restored): the mark says it was done
        assert legacy_import(store, tmp_path) == {} and not (tmp_path / "feedback.jsonl").exists()
        store.delete_person(person_id)
    finally:
        store.close()
    again = open_store()
    try:
        assert again.count_swipes() == 1 and again.count_people() == 0, "not imported twice, nobody brought back"
    finally:
        again.close()


def test_workers_starting_together_import_once(tmp_path, monkeypatch):
    """Three processes open the default store at once over an earlier version's files: one imports."""
    _legacy_home(tmp_path, [swipe("196", item) for item in range(1, 201)])
    env = {**os.environ, "CINEAGENT_HOME": str(tmp_path)}
    code = "from data.event_store import open_store; open_store().close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    store = open_store()
    try:
        assert store.count_swipes() == 200
    finally:
        store.close()


def test_an_empty_home_imports_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    store = open_store()
    try:
        assert legacy_import(store, tmp_path) == {} and store.count_swipes() == 0
    finally:
        store.close()


def test_an_import_that_stops_halfway_is_not_taken_for_a_finished_one(tmp_path, monkeypatch):
    """A swipe of someone missing from people.sqlite3 (or a crash) must not leave half an import
    that the next start takes for a finished one."""
    old = [swipe("ann", 1), swipe("p_" + "f" * 24, 2), swipe("196", 3)]
    _legacy_home(tmp_path, old)
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    store = open_store()
    try:
        # the swipes that can be imported are, all of them, and the next start does not import again
        assert [s.item_id for s in store.swipes()] == [1, 3]   # a deleted person's swipe is not brought back
    finally:
        store.close()


# ------------------------------------------------------------------------------------------ crash
WRITER = r"""
import sys
from data.event_store import EventStore
from data.events import Swipe

store = EventStore(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    n += 1
    seq = store.add_swipe(Swipe(user_id="196", session_id="crash", item_id=n, action="like" if n % 2 else "dislike"))
    print(n, seq, flush=True)   # the acknowledgement: add_swipe has returned
"""


def test_every_acknowledged_swipe_survives_its_writer_being_killed(url, tmp_path):
    EventStore(url).close()   # the schema exists before the writer starts
    child = subprocess.Popen([sys.executable, "-c", WRITER, url], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines: list[bytes] = []

    def read() -> None:
        for line in child.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 15
        while len(lines) < 150 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.005)
        time.sleep(secrets.randbelow(20) / 1000)   # kill it at some point inside a write
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
    reader.join(10)
    stderr = child.stderr.read().decode(errors="replace")
    assert child.returncode == -signal.SIGKILL, stderr
    assert lines and lines[0] == b"ready\n", stderr
    acked = {int(item): int(seq) for item, seq in (line.split() for line in lines[1:] if line.endswith(b"\n"))}
    assert len(acked) >= 20, f"the writer acknowledged only {len(acked)} swipes: {stderr}"

    store = EventStore(url)
    try:
        stored = {s.item_id for s in store.swipes("196")}
        assert set(acked) <= stored                                   # none acknowledged is lost
        assert stored - set(acked) <= {max(acked) + 1}                # at most the one in flight, whole
        assert stored == set(range(1, len(stored) + 1))
        count, last = store.profile_state("196").version
        assert count == len(stored) and last >= max(acked.values())
        store.add_swipe(swipe("196", 10_000))                         # and the store works on
    finally:
        store.close()


def test_a_commit_that_fails_leaves_nothing_and_the_store_keeps_working(tmp_path):
    """SQLite: a COMMIT the database refuses (disk full, I/O error; here a deferred constraint, the
    one failure a test can cause at will) must not leave the connection inside its transaction,
    holding the write lock for every process."""
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    store, other = EventStore(url), EventStore(url)
    try:
        db = store._sqlite()
        db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
        db.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            with store._tx(durable=True) as cur:
                cur.execute("INSERT INTO swipes (ts, user_id, session_id, item_id, action) VALUES (?, ?, ?, ?, ?)",
                            ("2024-01-01T00:00:00+00:00", "196", "s1", 1, "like"))
                cur.execute("INSERT INTO child VALUES (42)")   # refused only at COMMIT
        assert not db.in_transaction
        assert store.count_swipes() == 0
        store.add_swipe(swipe("196", 2))
        assert [s.item_id for s in other.swipes()] == [2]
    finally:
        store.close()
        other.close()


# ------------------------------------------------------------------------------------------ issue 20
def test_the_same_swipe_again_is_one_event_even_at_the_same_moment(open_stores):
    store = open_stores()
    ann, _ = store.create_person("Ann")
    first = store.add_swipe(swipe(ann.id, 5, trace_id="t1", rank=1))
    again, stored = store.record_swipe(swipe(ann.id, 5, trace_id="t1", rank=1))
    assert again == first and stored is not None and stored.trace_id == "t1" and stored.rank == 1
    # retries through two replicas at once: still one event
    replicas = [open_stores() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda s: s.add_swipe(swipe(ann.id, 6, trace_id="t2")), replicas * 3))
    assert [(s.item_id, s.action) for s in store.swipes(ann.id)] == [(5, "like"), (6, "like")]
    # a change of mind, or the same card from another turn, is an event
    assert store.record_swipe(swipe(ann.id, 5, "dislike", trace_id="t1"))[1] is None
    assert store.record_swipe(swipe(ann.id, 5, "like", trace_id="t1"))[1] is None
    assert store.record_swipe(swipe(ann.id, 5, "like", trace_id="t3"))[1] is None
    assert len(store.swipes(ann.id)) == 5


def test_kept_turns_and_conversations_are_bounded_per_person(open_stores):
    store = open_stores(max_turns_person=10)
    ann, _ = store.create_person("Ann")
    bob, _ = store.create_person("Bob")
    store.add_turn(turn(ann.id, "ann-0", [1]))
    save(store, "ann-conversation", ann.id, "hers", keep=10, keep_person=3)
    for n in range(25):   # bob floods both
        store.add_turn(turn(bob.id, f"bob-{n}", [2]))
        save(store, f"bob-{n}", bob.id, "his", keep=1000, keep_person=3)
    assert [t.trace_id for t in store.turns(bob.id)] == [f"bob-{n}" for n in range(15, 25)]
    assert [t.trace_id for t in store.turns(ann.id)] == ["ann-0"] and store.shown("ann-0", ann.id) == [1]
    assert len(store.sessions_of(bob.id)) == 3 and load(store, "bob-24") == "his" and load(store, "bob-0") is None
    assert load(store, "ann-conversation") == "hers"


def test_operator_sessions_expire_and_are_deleted(store):
    store.add_operator_session(b"k" * 32, time.time() + 60)
    store.add_operator_session(b"old" + b"x" * 29, time.time() - 1)
    assert store.operator_session_valid(b"k" * 32, time.time())
    assert not store.operator_session_valid(b"old" + b"x" * 29, time.time())
    store.delete_operator_session(b"k" * 32)
    assert not store.operator_session_valid(b"k" * 32, time.time())


def test_ping_reaches_the_database(store):
    store.ping()
