"""Abuse limits, the operator credential, the bearer header, the open routes and user keys: no
server, no models (people themselves are the event store's: tests/test_event_store.py)."""
from __future__ import annotations

import json
import secrets

import pytest

from web.auth import AdminTokenTooShort, Operator, Unauthorized, bearer_token
from web.gate import allowed
from web.limits import Limits, RateLimited, RateSettings, TokenBuckets, limits_off_env


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


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default(monkeypatch):
    from agent.settings import Settings, SettingsError

    assert Settings.from_env().trusted_proxies is None
    monkeypatch.setenv("CINEAGENT_TRUSTED_PROXIES", " 10.0.0.5, 10.1.0.0/16 ,::1 ")
    assert Settings.from_env().trusted_proxies == "10.0.0.5,10.1.0.0/16,::1"
    monkeypatch.setenv("CINEAGENT_TRUSTED_PROXIES", " ")
    assert Settings.from_env().trusted_proxies is None
    for bad in ("*", "proxy.example", "10.0.0.0/33"):
        monkeypatch.setenv("CINEAGENT_TRUSTED_PROXIES", bad)
        with pytest.raises(SettingsError, match="CINEAGENT_TRUSTED_PROXIES"):
            Settings.from_env()


def test_the_operator_credential(tmp_path):
    from data.event_store import EventStore

    store = EventStore(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with pytest.raises(AdminTokenTooShort):
        Operator("short")
    off = Operator(None, store)
    assert not off.enabled and not off.is_operator({"authorization": "Bearer x"}, {})
    op = Operator("s" * 32, store)
    assert op.check_token("s" * 32) and not op.check_token("s" * 31) and not op.check_token("")
    assert op.is_operator({"authorization": "Bearer " + "s" * 32}, {})
    session = op.open_session()
    assert session != op.open_session() and "s" * 32 not in session
    assert op.is_operator({"host": "127.0.0.1:7860"}, {"cineagent_operator": session})
    assert not op.is_operator({}, {"cineagent_operator": "s" * 32})
    # the cookie counts only from the app's own origin
    assert op.is_operator({"host": "127.0.0.1:7860", "origin": "http://127.0.0.1:7860"}, {"cineagent_operator": session})
    for origin in ("http://127.0.0.1:9999", "null", "http://evil.example", "file://"):
        assert not op.is_operator({"host": "127.0.0.1:7860", "origin": origin}, {"cineagent_operator": session})
    # another token voids it; signing out deletes it
    assert not Operator("t" * 32, store).is_operator({}, {"cineagent_operator": session})
    op.close_session(session)
    assert not op.is_operator({}, {"cineagent_operator": session})
    store.close()


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


def test_the_queue_guard_bounds_unread_results_per_client():
    from types import SimpleNamespace

    from web.limits import QueueGuard

    queue = SimpleNamespace(pending_event_ids_session={}, pending_messages_per_session={})
    blocks = SimpleNamespace(fns={0: SimpleNamespace(fn=len, inputs=[1, 2]), 1: SimpleNamespace(fn=None, inputs=[])},
                             _queue=queue)
    now = [0.0]
    guard = QueueGuard(None, blocks=lambda: blocks, client_of=lambda scope: "c", max_sessions=3, max_unread=4,
                       ttl_s=60, clock=lambda: now[0])

    def join(session: str, client: str = "a", **body):
        answer = guard.check(json.dumps({"fn_index": 0, "data": [1, 2], "session_hash": session, **body}).encode(), client)
        if answer is None:   # what Gradio does with it: an event waiting to be read
            queue.pending_event_ids_session.setdefault(session, set()).add(secrets.token_hex(4))
            queue.pending_messages_per_session[session] = ["result"]
        return answer

    for bad in ({"fn_index": 1}, {"fn_index": 9}, {"fn_index": True}, {"data": [1]}, {"session_hash": "../x"},
                {"event_data": "junk"}):
        assert join("s", **bad)[0] == 422
    assert guard.check(b"not json", "a")[0] == 422 and guard.check(b"[1]", "a")[0] == 422
    assert [join(s) for s in ("s1", "s2", "s3")] == [None] * 3
    assert join("s4")[0] == 429, "a fourth page session with results unread"
    assert join("s1") is None and join("s1")[0] == 429, "four unread results in all"
    assert join("s4", client="b") is None, "another client has bounds of its own"
    queue.pending_event_ids_session.pop("s2")   # s2's result was read: room for one more
    assert join("s5") is None and set(guard._clients["a"]) == {"s1", "s3", "s5"}
    assert join("s7")[0] == 429
    now[0] = 61.0   # nothing joined for the TTL: the unread results are dropped
    assert join("s6") is None and set(guard._clients["a"]) == {"s6"}
    assert "s1" not in queue.pending_messages_per_session and "s1" not in queue.pending_event_ids_session
