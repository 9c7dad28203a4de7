"""People in the event store (tokens hashed, turns bound to their person), abuse limits and the
operator credential: no server, no models."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest

from data.event_store import EventStore
from data.events import Turn
from data.people import InvalidPerson, InvalidToken, is_person_id
from web.auth import AdminTokenTooShort, Operator, Unauthorized, bearer_token
from web.gate import allowed
from web.limits import Limits, RateLimited, RateSettings, TokenBuckets, limits_off_env


@pytest.fixture
def store(tmp_path):
    s = EventStore(f"sqlite:///{tmp_path / 'people.sqlite3'}", max_turns=5)
    yield s
    s.close()


def test_a_token_authenticates_its_person_and_is_stored_only_as_a_hash(store, tmp_path):
    person, token = store.create_person("Ann", 196)
    assert is_person_id(person.id) and person.name == "Ann" and person.seed_from == 196
    assert store.authenticate(token) == person == store.person(person.id)
    for bad in ("", token[:-1], token + "x", token.upper(), "x" * 43, None):
        with pytest.raises(InvalidToken):
            store.authenticate(bad)
    with sqlite3.connect(tmp_path / "people.sqlite3") as conn:
        rows = conn.execute("SELECT * FROM people").fetchall()
    assert token not in repr(rows) and rows[0][1] == hashlib.sha256(token.encode()).digest()
    for path in tmp_path.glob("people.sqlite3*"):
        assert token.encode() not in path.read_bytes()


def test_names_are_bounded(store):
    for bad in ("", "   ", "x" * 65, "tab\there"):
        with pytest.raises(InvalidPerson):
            store.create_person(bad)


def test_a_turn_is_bound_to_its_person_and_the_bindings_are_bounded(store):
    alice, _ = store.create_person()
    bob, _ = store.create_person()
    store.add_turn(Turn(trace_id="a" * 32, user_id=alice.id, session_id="s", items=[1, 2, 3]))
    assert store.shown("a" * 32, alice.id) == [1, 2, 3]
    assert store.shown("a" * 32, bob.id) is None and store.shown("b" * 32, alice.id) is None
    import data.event_store as event_store

    event_store.PRUNE_EVERY, before = 4, event_store.PRUNE_EVERY
    try:
        for i in range(20):
            store.add_turn(Turn(trace_id=f"{i:032x}", user_id=alice.id, session_id="s", items=[i]))
    finally:
        event_store.PRUNE_EVERY = before
    assert len(store.turns(alice.id)) <= 5 + 4


def test_delete_removes_the_person_and_their_turns_and_revokes_the_token(store):
    person, token = store.create_person("Ann")
    store.add_turn(Turn(trace_id="c" * 32, user_id=person.id, session_id="s", items=[7]))
    assert store.export_person(person.id)["turns"][0]["items"] == [7]
    assert store.delete_person(person.id)["person"] == 1 and store.delete_person(person.id)["person"] == 0
    with pytest.raises(InvalidToken):
        store.authenticate(token)
    assert store.person(person.id) is None and store.turns(person.id) == []
    store.add_turn(Turn(trace_id="d" * 32, user_id=person.id, session_id="s", items=[7]))  # finished after the deletion
    assert store.turns(person.id) == []


def test_token_buckets_refill_at_their_rate():
    now = [0.0]
    bucket = TokenBuckets("turns", "person", per_minute=2, clock=lambda: now[0])
    bucket.take("a")
    bucket.take("a")
    with pytest.raises(RateLimited) as refused:
        bucket.take("a")
    assert refused.value.retry_after_s == 30 and "retry in 30 s" in str(refused.value)
    bucket.take("b")   # another key has its own bucket
    now[0] = 30.0
    bucket.take("a")
    off = TokenBuckets("turns", "person", per_minute=0)
    for _ in range(1000):
        off.take("a")


def test_buckets_are_bounded_in_number():
    bucket = TokenBuckets("turns", "client", per_minute=1, max_keys=10)
    for i in range(100):
        bucket.take(str(i))
    assert len(bucket._buckets) == 10


def test_rate_settings_from_the_environment(monkeypatch):
    from agent.settings import Settings, SettingsError

    assert RateSettings(**Settings.from_env().rates()).turns_person == 30
    monkeypatch.setenv("CINEAGENT_RATE_TURNS_PERSON", "5")
    assert RateSettings(**Settings.from_env().rates()).turns_person == 5
    for name, value in limits_off_env().items():
        monkeypatch.setenv(name, value)
    assert all(v == 0 for v in RateSettings(**Settings.from_env().rates()).model_dump().values())
    monkeypatch.setenv("CINEAGENT_RATE_SWIPES_CLIENT", "-1")
    with pytest.raises(SettingsError, match="CINEAGENT_RATE_SWIPES_CLIENT"):
        Settings.from_env()
    limits = Limits.from_settings(RateSettings(turns_person=1, turns_client=100))
    limits.turn("alice", "127.0.0.1")
    with pytest.raises(RateLimited, match="person"):
        limits.turn("alice", "127.0.0.1")
    limits.turn("bob", "127.0.0.1")


def test_the_operator_credential():
    with pytest.raises(AdminTokenTooShort):
        Operator("short")
    off = Operator(None)
    assert not off.enabled and not off.is_operator({"authorization": "Bearer x"}, {})
    op = Operator("s" * 32)
    assert op.check_token("s" * 32) and not op.check_token("s" * 31) and not op.check_token("")
    assert op.is_operator({"authorization": "Bearer " + "s" * 32}, {})
    assert op.is_operator({}, {"cineagent_operator": op.cookie_value()})
    assert op.cookie_value() != "s" * 32 and not op.is_operator({}, {"cineagent_operator": "s" * 32})


def test_bearer_header_parsing():
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Bearer", "Bearer ", "Basic abc", "abc", "Bearer " + "a" * 300):
        with pytest.raises(Unauthorized):
            bearer_token(bad)


def test_only_the_routes_the_app_uses_are_open():
    for path in ("/", "/config", "/api/chat", "/gradio_api/queue/join", "/gradio_api/heartbeat/x", "/assets/a.js"):
        assert allowed(path), path
    for path in ("/gradio_api/upload", "/gradio_api/file=/etc/passwd", "/gradio_api/file/x", "/monitoring",
                 "/gradio_api/run/predict", "/gradio_api/call/x", "//gradio_api/upload", "/login"):
        assert not allowed(path), path


def test_user_keys_have_one_spelling(movielens):
    from agent.users import UnknownUser, resolve_user

    assert resolve_user("196", movielens).key == resolve_user(196, movielens).key == "196"
    for loose in (True, False, "0196", " 196", "196 ", "\t196"):
        with pytest.raises(UnknownUser):
            resolve_user(loose, movielens)
