"""Two real app processes on one PostgreSQL store: anyone can be served by either replica, a swipe
through one is honoured by the next turn on the other, a conversation continues across them, and
killing one loses nothing it acknowledged."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.app_server import ensure_artifacts, running_app

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


def test_killing_a_replica_loses_no_acknowledged_swipe(pg_server_url):
    """``kill -9`` while writers are sending swipes (some in flight): every swipe answered 200 is in
    the store, and a new replica's profile of each person is exactly what the store says (there is
    nothing else it could come from). The benchmark's own run, smaller."""
    from eval.replicas import run_kill_test

    ensure_artifacts(Path(os.environ["CINEAGENT_HOME"]))   # the replica serves the test home's models
    report = run_kill_test(pg_server_url, people=4, swipes=120, kill_after=50, time_limit_s=120)
    assert report["killed"] and report["acknowledged"] >= 50, report
    assert report["missing_acknowledged"] == 0 and report["profiles_disagreeing"] == 0, report
