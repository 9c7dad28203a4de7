"""Two real app processes on one PostgreSQL store: anyone can be served by either replica, a swipe
through one is honoured by the next turn on the other, a conversation continues across them, and
killing one loses nothing it acknowledged."""
from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.app_server import running_app

pytestmark = pytest.mark.integration


def post(client: httpx.Client, path: str, body: dict, headers: dict) -> dict:
    reply = client.post(path, json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_two_replicas_share_people_swipes_and_conversations(pg_url, tmp_path):
    env = {"CINEAGENT_DATABASE_URL": pg_url}
    with running_app(tmp_path / "a", env=env, wait=False) as a, running_app(tmp_path / "b", env=env, wait=False) as b:
        a.wait_ready()
        b.wait_ready()
        with httpx.Client(base_url=a.url, timeout=60) as on_a, httpx.Client(base_url=b.url, timeout=60) as on_b:
            created = on_a.post("/api/people", json={"seed_from": 196})
            assert created.status_code == 201
            me = {"Authorization": f"Bearer {created.json()['token']}"}
            assert on_b.get("/api/users/me/profile", headers=me).status_code == 200, "B knows A's person"

            first = post(on_a, "/api/chat", {"session_id": "s", "message": "a comedy, no romance"}, me)
            shown = [c["item_id"] for c in first["items"]]
            # B checks the trace against the store: A's turn showed this card to this person
            post(on_b, "/api/feedback", {"session_id": "s", "item_id": shown[0], "action": "dislike",
                                         "trace_id": first["trace_id"], "rank": 1}, me)
            post(on_b, "/api/feedback", {"session_id": "s", "item_id": shown[1], "action": "like",
                                         "trace_id": first["trace_id"], "rank": 2}, me)

            more = post(on_b, "/api/chat", {"session_id": "s", "message": "show me more"}, me)
            assert more["act"] == "more" and more["intent"]["genres"] == ["Comedy"], "B continued A's conversation"
            assert "Romance" in more["intent"]["exclude_genres"]
            assert not set(shown) & {c["item_id"] for c in more["items"]}, "more never repeats across replicas"

            # A's next turn honours the swipes made through B (A had this person's profile cached)
            again = post(on_a, "/api/chat", {"session_id": "s2", "message": "a comedy"}, me)
            assert shown[0] not in {c["item_id"] for c in again["items"]}
            profile = on_a.get("/api/users/me/profile", headers=me).json()
            assert profile["dislikes"] == [shown[0]] and profile["likes"] == [shown[1]]
            assert post(on_a, "/api/feedback/undo", {"item_id": shown[1]}, me)["undone"] == "like"
            assert on_b.get("/api/users/me/profile", headers=me).json()["likes"] == []

            assert on_b.delete("/api/people/me", headers=me).status_code == 200
            assert on_a.post("/api/chat", json={"session_id": "s", "message": "hi"}, headers=me).status_code == 401


def test_killing_a_replica_loses_no_acknowledged_swipe(pg_url, tmp_path):
    """``kill -9`` mid-stream: every swipe answered 200 is in the store; a new replica's profile of
    the person is exactly what the store says (there is nothing else it could come from)."""
    from data.event_store import EventStore

    env = {"CINEAGENT_DATABASE_URL": pg_url}
    with running_app(tmp_path / "a", env=env) as a:
        with httpx.Client(base_url=a.url, timeout=60) as client:
            me = {"Authorization": f"Bearer {client.post('/api/people', json={}).json()['token']}"}
            turn = post(client, "/api/chat", {"session_id": "k", "message": "a western"}, me)
            items = [c["item_id"] for c in turn["items"]]
            acknowledged = []
            for i in range(40):
                if i == 25:
                    os.kill(a.proc.pid, signal.SIGKILL)
                try:
                    reply = client.post("/api/feedback", headers=me, json={
                        "session_id": "k", "item_id": items[i % len(items)], "action": "like" if i % 2 else "dislike",
                        "trace_id": turn["trace_id"], "query": f"kill {i}"})
                except httpx.HTTPError:
                    break
                if reply.status_code == 200:
                    acknowledged.append(f"kill {i}")
    assert len(acknowledged) == 25
    store = EventStore(pg_url, pool_size=1)
    try:
        stored = {s.query for s in store.swipes()}
        assert set(acknowledged) <= stored
        person = next(s.user_id for s in store.swipes())
        expected = store.profile_state(person).ratings
    finally:
        store.close()
    with running_app(tmp_path / "b", env=env) as b, httpx.Client(base_url=b.url, timeout=60) as client:
        profile = client.get("/api/users/me/profile", headers=me).json()
    assert profile["likes"] == sorted(i for i, r in expected.items() if r == 5)
    assert profile["dislikes"] == sorted(i for i, r in expected.items() if r == 1)
