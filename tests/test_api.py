"""The JSON API of the real app, served by uvicorn on 127.0.0.1 and called over HTTP."""
from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)
from schemathesis.generation import GenerationMode

from eval.load_test import stored_swipes
from tests.app_server import running_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("api")) as app:
        yield app


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def new_person(client, seed_from: int | None = None, name: str | None = None) -> dict:
    """POST /api/people -> {"user_id", "token", "headers"} (the Authorization header to send)."""
    body = {k: v for k, v in (("seed_from", seed_from), ("name", name)) if v is not None}
    reply = client.post("/api/people", json=body)
    assert reply.status_code == 201, reply.text
    created = reply.json()
    return {**created, "headers": {"Authorization": f"Bearer {created['token']}"}}


@pytest.fixture(scope="module")
def p196(client) -> dict:
    """A person who started from MovieLens user 196."""
    return new_person(client, seed_from=196)


def chat(client, person, session, message) -> dict:
    reply = client.post("/api/chat", json={"session_id": session, "message": message}, headers=person["headers"])
    assert reply.status_code == 200, reply.text
    return reply.json()


def metric_samples(client) -> dict[tuple, float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def test_healthz_reports_models_and_parser(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ready" and body["parser"] == "offline"
    assert body["models"] and body["load_seconds"] > 0


def test_chat_answers_with_explained_cards(client, p196):
    body = chat(client, p196, "api-chat", "a funny sci-fi movie")
    assert body["act"] == "recommend" and body["trace_id"]
    assert set(body["intent"]["genres"]) == {"Comedy", "Sci-Fi"}
    assert len(body["items"]) >= 5
    for item in body["items"]:
        assert item["title"] and item["explanation"] and {"Comedy", "Sci-Fi"} & set(item["genres"])
        assert set(item["evidence"]) >= {"profile_items", "genres"}
    refined = chat(client, p196, "api-chat", "no horror please")
    assert refined["act"] == "refine" and "Sci-Fi" in refined["intent"]["genres"]


def test_recommend_follows_the_design_contract(client):
    reply = client.post("/api/recommend", json={"query": "a 90s thriller", "n": 3},
                        headers=new_person(client, seed_from=42)["headers"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["intent"]["genres"] == ["Thriller"]
    assert len(body["items"]) == 3
    for item in body["items"]:
        assert {"item_id", "title", "year", "genres", "explanation"} <= set(item)
        assert "Thriller" in item["genres"] and 1990 <= item["year"] <= 1999


def test_a_disliked_movie_never_comes_back_and_swipes_are_logged(client, server):
    carol = new_person(client, name="Carol")
    first = chat(client, carol, "s1", "a comedy")
    disliked, liked = first["items"][0], first["items"][1]
    for item, action, rank in ((disliked, "dislike", 1), (liked, "like", 2)):
        reply = client.post("/api/feedback", json={
            "session_id": "s1", "item_id": item["item_id"], "action": action,
            "trace_id": first["trace_id"], "rank": rank, "query": "a comedy"}, headers=carol["headers"])
        assert reply.status_code == 200, reply.text
        assert reply.json()["recorded"]["user_id"] == carol["user_id"]  # the pseudonymous id, never the name

    again = chat(client, carol, "s2", "a comedy")
    assert disliked["item_id"] not in {i["item_id"] for i in again["items"]}
    assert any(p["item_id"] == liked["item_id"] for i in again["items"] for p in i["evidence"]["profile_items"]), \
        "the liked movie becomes evidence for the next picks"

    mine = [r for r in stored_swipes(server.state) if r.user_id == carol["user_id"]]
    assert [(r.item_id, r.action, r.rank, r.trace_id, r.query) for r in mine] == [
        (disliked["item_id"], "dislike", 1, first["trace_id"], "a comedy"),
        (liked["item_id"], "like", 2, first["trace_id"], "a comedy")]


def test_a_person_can_undo_their_own_swipe(client, server):
    dana, eve = new_person(client), new_person(client)
    first = chat(client, dana, "undo", "a comedy")
    item = first["items"][0]["item_id"]
    swipe = {"session_id": "undo", "item_id": item, "action": "dislike", "trace_id": first["trace_id"], "rank": 1}
    assert client.post("/api/feedback", json=swipe, headers=dana["headers"]).status_code == 200
    # someone else's undo touches only their own (empty) swipes
    reply = client.post("/api/feedback/undo", json={"item_id": item}, headers=eve["headers"])
    assert reply.status_code == 200 and reply.json() == {"undone": None, "item_id": item}
    assert client.get("/api/users/me/profile", headers=dana["headers"]).json()["dislikes"] == [item]

    reply = client.post("/api/feedback/undo", json={"item_id": item}, headers=dana["headers"])
    assert reply.status_code == 200 and reply.json() == {"undone": "dislike", "item_id": item}
    assert client.get("/api/users/me/profile", headers=dana["headers"]).json()["dislikes"] == []
    assert not [r for r in stored_swipes(server.state) if r.user_id == dana["user_id"]]
    assert client.post("/api/feedback/undo", json={"item_id": item}, headers=dana["headers"]).json()["undone"] is None
    assert client.post("/api/feedback/undo", json={"item_id": item}).status_code == 401


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 404   # only what /docs loads


def test_profiles_hold_only_their_owners_data(client, movielens, p196):
    alice, bob = new_person(client), new_person(client)
    assert client.post("/api/feedback", json={"session_id": "s", "item_id": 50, "action": "like"},
                       headers=alice["headers"]).status_code == 200
    mine = client.get(f"/api/users/{alice['user_id']}/profile", headers=alice["headers"]).json()
    assert mine == client.get("/api/users/me/profile", headers=alice["headers"]).json()
    assert mine["likes"] == [50] and mine["dislikes"] == []
    assert [(r["item_id"], r["title"], r["source"], r["swipe"]) for r in mine["ratings"]] == [
        (50, movielens.movies[50].title, "swipe", "like")]

    assert client.get("/api/users/me/profile", headers=bob["headers"]).json() == {
        "user_id": bob["user_id"], "known": False, "seed_from": None, "ratings": [], "likes": [], "dislikes": []}

    own = movielens.ratings[movielens.ratings["user_id"] == 196]
    profile = client.get("/api/users/me/profile", headers=p196["headers"]).json()
    assert profile["seed_from"] == 196 and {r["item_id"]: r["rating"] for r in profile["ratings"]
                                            if r["source"] == "movielens"} == dict(
        zip(own["item_id"].tolist(), own["rating"].tolist()))


@pytest.mark.parametrize("method, path, body, status, names", [
    ("post", "/api/chat", {"session_id": "s"}, 422, "message"),
    ("post", "/api/chat", {"session_id": "s", "message": "x" * 2001}, 422, "message"),
    ("post", "/api/chat", {"session_id": "", "message": "hi"}, 422, "session_id"),
    ("post", "/api/chat", {"session_id": "s", "message": "hi", "colour": 1}, 422, "colour"),
    # the token says who: a user_id in the body is a mistake, not a way to act as someone
    ("post", "/api/chat", {"user_id": "196", "session_id": "s", "message": "hi"}, 422, "user_id"),
    ("post", "/api/recommend", {"query": "comedy", "n": 0}, 422, "n:"),
    ("post", "/api/feedback", {"session_id": "s", "item_id": 50, "action": "love"}, 422, "action"),
    ("post", "/api/feedback", {"session_id": "s", "item_id": 99999, "action": "like"}, 400, "not in the catalog"),
    # strict types: a boolean, a padded string or a huge number is not an id
    ("post", "/api/feedback", {"session_id": "s", "item_id": True, "action": "like"}, 422, "item_id"),
    ("post", "/api/feedback", {"session_id": "s", "item_id": "0050", "action": "like"}, 422, "item_id"),
    ("post", "/api/feedback", {"session_id": "s", "item_id": 50, "action": "like", "rank": 10**30}, 422, "rank"),
    ("post", "/api/feedback", {"session_id": "s", "item_id": 50, "action": "like", "trace_id": "x"}, 422, "trace_id"),
    ("post", "/api/people", {"seed_from": True}, 422, "seed_from"),
    ("post", "/api/people", {"seed_from": " 196"}, 422, "seed_from"),
    ("post", "/api/people", {"seed_from": 5000}, 422, "seed_from"),
    ("post", "/api/people", {"name": "x" * 65}, 422, "name"),
])
def test_bad_input_gets_a_4xx_that_names_the_problem(client, p196, method, path, body, status, names):
    reply = client.request(method.upper(), path, json=body, headers=p196["headers"])
    assert reply.status_code == status, reply.text
    assert names in reply.json()["error"]


def test_unusual_text_is_answered_not_crashed_on(client, p196):
    for query in ("a film for my ¹² year old", "\u0016\u00b9_\u00bb*\u0013 ½ ٣ comedies", "🎬🍿 " * 50):
        reply = client.post("/api/recommend", json={"query": query}, headers=p196["headers"])
        assert reply.status_code == 200, (query, reply.text)


def test_malformed_json_and_oversized_bodies(client, p196):
    json_headers = {"content-type": "application/json", **p196["headers"]}
    reply = client.post("/api/chat", content=b'{"session_id": "s",', headers=json_headers)
    assert reply.status_code == 422 and "body: not valid JSON" in reply.json()["error"]
    huge = json.dumps({"session_id": "s", "message": "x" * 70_000}).encode()
    reply = client.post("/api/chat", content=huge, headers=json_headers)
    assert reply.status_code == 413 and "65536 bytes" in reply.json()["error"]

    def chunks():  # no Content-Length: the limit must hold on a streamed body too
        for _ in range(20):
            yield b"x" * 8192

    reply = client.post("/api/chat", content=chunks(), headers=json_headers)
    assert reply.status_code == 413
    reply = client.get("/api/users/me/profile", headers={"X-Junk": "x" * 9000, **p196["headers"]})
    assert reply.status_code == 431, reply.text


def test_metrics_move_with_traffic(client):
    seven = new_person(client, seed_from=7)
    before = metric_samples(client)
    body = chat(client, seven, "api-metrics", "a western")
    assert client.post("/api/feedback", json={"session_id": "api-metrics", "action": "like",
                                              "item_id": body["items"][0]["item_id"], "trace_id": body["trace_id"]},
                       headers=seven["headers"]).status_code == 200
    after = metric_samples(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("agent_requests_total", endpoint="/api/chat", status="200") == 1
    assert moved("agent_requests_total", endpoint="/api/feedback", status="200") == 1
    assert moved("agent_request_latency_seconds_count", endpoint="/api/chat", step="total") == 1
    assert moved("recommendations_served_total") == len(body["items"])
    assert moved("feedback_total", action="like") == 1
    # the offline parser never falls back, so the counter has no series yet, only its declaration
    assert "# TYPE parser_fallbacks_total counter" in client.get("/metrics").text


# ------------------------------------------------------------------------------- fuzzing
OPERATIONS = [("POST", "/api/people"), ("GET", "/api/people/me/export"), ("DELETE", "/api/people/me"),
              ("POST", "/api/chat"), ("POST", "/api/recommend"), ("POST", "/api/feedback"),
              ("POST", "/api/feedback/undo"),
              ("GET", "/api/users/{user_id}/profile"), ("GET", "/healthz"), ("GET", "/metrics")]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_the_schema_documents_every_operation(api_schema):
    assert {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()} == set(OPERATIONS)


@pytest.mark.parametrize("method, path, mode", [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if p.startswith("/api/")])  # the ones with inputs
def test_fuzzed_requests_never_get_a_server_error(api_schema, client, method, path, mode):
    """~30 generated requests per operation and mode, valid and invalid by the schema, with a valid
    token: no 5xx, and every response (401/403/429 included) is one the schema declares."""
    operation = api_schema[path][method]
    person = new_person(client, seed_from=196)
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def no_server_error(case):
        if method == "DELETE":  # deleting the person would leave the rest of the examples nobody to act as
            case.headers = {**(case.headers or {}), **new_person(client)["headers"]}
        else:
            case.headers = {**(case.headers or {}), **person["headers"]}
        response = case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                                  response_schema_conformance, content_type_conformance,
                                                  response_headers_conformance])
        statuses.append(response.status_code)

    no_server_error()
    if mode == GenerationMode.POSITIVE and "{user_id}" not in path:  # a generated id is someone else's: 403
        assert any(200 <= s < 300 for s in statuses), statuses  # the token was sent: not only 401s


# ------------------------------------------------------------------------------- lifecycle
def test_loading_then_ready_then_shutdown_loses_no_acknowledged_swipe(tmp_path):
    with running_app(tmp_path, wait=False) as app:
        first = None
        while first is None:
            try:
                first = httpx.get(f"{app.url}/healthz", timeout=5)
            except httpx.TransportError:
                assert app.proc.poll() is None, app.log_tail()
                time.sleep(0.05)
        assert first.status_code == 503 and first.json()["status"] == "loading"
        early = httpx.post(f"{app.url}/api/people", json={})
        assert early.status_code == 503 and early.headers["retry-after"] and "loading" in early.json()["error"]
        app.wait_ready()
        with httpx.Client(base_url=app.url, timeout=30) as c:
            writers = [new_person(c, seed_from=w + 1) for w in range(4)]

        acknowledged: list[str] = []
        stop = threading.Event()

        def swiper(writer: int) -> None:
            with httpx.Client(base_url=app.url, timeout=30) as c:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    trace = f"{writer}-{i}"
                    try:
                        reply = c.post("/api/feedback", json={"session_id": "s", "item_id": i % 1682 + 1,
                                                              "action": "like", "query": trace},
                                       headers=writers[writer]["headers"])
                    except httpx.TransportError:
                        return  # the server has gone: only answered swipes count
                    if reply.status_code == 200:
                        acknowledged.append(trace)

        threads = [threading.Thread(target=swiper, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        while len(acknowledged) < 40:
            time.sleep(0.05)
        app.proc.send_signal(signal.SIGTERM)
        # uvicorn finishes the requests in flight, then re-raises the signal: exit status -SIGTERM
        assert app.proc.wait(timeout=60) in (0, -signal.SIGTERM), app.log_tail()
        assert "Application shutdown complete" in app.log_tail()
        stop.set()
        for t in threads:
            t.join()
        logged = {r.query for r in stored_swipes(app.state)}
        assert set(acknowledged) <= logged
