"""The JSON API in-process (ASGI, no server): what start-up says, that the settings apply, that a
failed write is a clear 503 that leaves nothing behind, and that a restarted process continues
everything from the store."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from agent.settings import Settings, SettingsError
from eval.load_test import scratch_home
from tests.app_server import ensure_artifacts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    test_home = Path(os.environ["CINEAGENT_HOME"])
    ensure_artifacts(test_home)
    return scratch_home(tmp_path_factory.mktemp("service") / "home", test_home)


@pytest.fixture()
def in_home(state, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(state))
    return state


def serve(settings: Settings, load: bool = True):
    """(runtime, ASGI client) for a fresh process-like runtime over the scratch home."""
    from web.api import Runtime, build_api

    runtime = Runtime(settings)
    if load:
        runtime.load()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api(runtime)), base_url="http://test")
    return runtime, client


async def person(client) -> dict[str, str]:
    reply = await client.post("/api/people", json={"seed_from": 196})
    assert reply.status_code == 201, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


@pytest.mark.anyio
async def test_healthz_says_loading_then_ready_never_500(in_home):
    runtime, client = serve(Settings(parser="offline"), load=False)
    async with client:
        reply = await client.get("/healthz")
        assert reply.status_code == 503 and reply.json() == {"status": "loading", "store": "ok"}
        assert (await client.post("/api/people", json={})).status_code == 503
        runtime.load()
        reply = await client.get("/healthz")
        assert reply.status_code == 200 and reply.json()["status"] == "ready"
        assert isinstance(reply.json()["load_seconds"], float)


@pytest.mark.anyio
async def test_the_session_ttl_setting_applies(in_home):
    """CINEAGENT_SESSION_TTL_S, read by the settings object: a conversation idle longer is gone."""
    _, client = serve(Settings(parser="offline", session_ttl_s=1e-3))
    async with client:
        me = await person(client)
        first = await client.post("/api/chat", json={"session_id": "t", "message": "a comedy"}, headers=me)
        assert first.json()["act"] == "recommend"
        again = await client.post("/api/chat", json={"session_id": "t", "message": "show me more"}, headers=me)
        assert again.json()["intent"]["genres"] != ["Comedy"], "the expired conversation was continued"


def test_settings_come_from_the_environment_and_name_a_bad_value(monkeypatch):
    monkeypatch.setenv("CINEAGENT_MAX_SESSIONS", "7")
    monkeypatch.setenv("CINEAGENT_SESSION_TTL_S", "12.5")
    settings = Settings.from_env()
    assert (settings.max_sessions, settings.session_ttl_s) == (7, 12.5)
    monkeypatch.setenv("CINEAGENT_MAX_SESSIONS", "0")
    with pytest.raises(SettingsError, match="CINEAGENT_MAX_SESSIONS"):
        Settings.from_env()


@pytest.mark.anyio
async def test_a_failed_write_is_a_503_and_leaves_nothing(in_home, monkeypatch):
    """A full disk while a swipe is written: 503 saying nothing was saved; the store and the
    profile are as before; once there is room again the same swipe goes through."""
    runtime, client = serve(Settings(parser="offline"))
    async with client:
        me = await person(client)
        turn = (await client.post("/api/chat", json={"session_id": "d", "message": "a comedy"}, headers=me)).json()
        item = turn["items"][0]["item_id"]
        before = runtime.store.count_swipes()
        real = runtime.store._sqlite

        class FullDisk:
            """The store's connection, except that the swipe's insert finds the disk full."""

            def __init__(self, db):
                self.db = db

            def execute(self, sql, *args):
                if sql.startswith("INSERT INTO swipes"):
                    raise sqlite3.OperationalError("database or disk is full")
                return self.db.execute(sql, *args)

            @property
            def in_transaction(self):
                return self.db.in_transaction

        monkeypatch.setattr(runtime.store, "_sqlite", lambda: FullDisk(real()))
        swipe = {"session_id": "d", "item_id": item, "action": "like", "trace_id": turn["trace_id"], "rank": 1}
        reply = await client.post("/api/feedback", json=swipe, headers=me)
        assert reply.status_code == 503 and "nothing was saved" in reply.json()["error"], reply.text
        assert reply.headers["retry-after"]
        monkeypatch.setattr(runtime.store, "_sqlite", real)
        assert runtime.store.count_swipes() == before
        assert item not in (await client.get("/api/users/me/profile", headers=me)).json()["likes"]
        assert (await client.post("/api/feedback", json=swipe, headers=me)).status_code == 200
        assert item in (await client.get("/api/users/me/profile", headers=me)).json()["likes"]


@pytest.mark.anyio
async def test_a_restarted_process_continues_people_swipes_and_conversations(in_home):
    """Nothing lives only in a process: a second runtime over the same store (a restart, or another
    replica) knows the person, their swipe and their conversation."""
    _, client = serve(Settings(parser="offline"))
    async with client:
        me = await person(client)
        first = (await client.post("/api/chat", json={"session_id": "r", "message": "a comedy, no romance"},
                                   headers=me)).json()
        disliked = first["items"][0]["item_id"]
        assert (await client.post("/api/feedback", headers=me, json={
            "session_id": "r", "item_id": disliked, "action": "dislike", "trace_id": first["trace_id"]})).status_code == 200
    _, restarted = serve(Settings(parser="offline"))
    async with restarted:
        more = (await restarted.post("/api/chat", json={"session_id": "r", "message": "show me more"},
                                     headers=me)).json()
        assert more["act"] == "more" and more["intent"]["genres"] == ["Comedy"]
        assert "Romance" in more["intent"]["exclude_genres"]
        assert not {c["item_id"] for c in more["items"]} & {c["item_id"] for c in first["items"]}
        profile = (await restarted.get("/api/users/me/profile", headers=me)).json()
        assert profile["dislikes"] == [disliked]


@pytest.mark.anyio
async def test_two_messages_sent_at_once_to_one_conversation_are_both_kept(in_home):
    """The second waits for the first and reads the conversation the first saved (read before the
    wait, it was answered from a stale copy and overwrote the first's save)."""
    import asyncio

    runtime, client = serve(Settings(parser="offline"))
    async with client:
        me = await person(client)
        first, second = await asyncio.gather(
            client.post("/api/chat", json={"session_id": "c", "message": "a horror movie"}, headers=me),
            client.post("/api/chat", json={"session_id": "c", "message": "show me more"}, headers=me))
        assert first.status_code == second.status_code == 200
        assert second.json()["act"] == "more" and second.json()["intent"]["genres"] == ["Horror"]
        assert not {c["item_id"] for c in first.json()["items"]} & {c["item_id"] for c in second.json()["items"]}
        person_id = (await client.get("/api/users/me/profile", headers=me)).json()["user_id"]
        saved = runtime.store.sessions_of(person_id)
        assert len(saved) == 1 and '"turns": 2' in saved[0]
        assert [t.message for t in runtime.store.turns(person_id)] == ["a horror movie", "show me more"]


@pytest.mark.anyio
async def test_a_message_that_is_not_valid_text_is_a_clear_error(in_home):
    """A lone surrogate (the UI and the CLI can pass one; the API's JSON refuses it) is refused
    before anything is read or saved, with words for the person."""
    from agent.dialogue import BadRequest

    runtime, client = serve(Settings(parser="offline"))
    async with client:
        await client.aclose()
    with pytest.raises(BadRequest, match="not valid text"):
        await runtime.chat("196", "s", "a comedy \ud800 please")
