"""Replicas sharing one PostgreSQL event store: continuity across replicas, and nothing lost to a kill.

``run_replica_bench`` starts two real app processes (``cineagent serve``, offline parser) on one
fresh database and has ``people`` people chat and swipe, alternating replicas on every request:
each turn goes to one replica, the swipe on its first card to the other, and the next turn back.
It counts errors, swipes acknowledged but missing from the store, and turns that broke a swipe
(a swiped card shown again: a like or dislike makes a film seen, so it must never come back) or
the conversation ("more" repeating a card that an earlier turn, on either replica, showed).

``run_kill_test`` swipes from ``people`` concurrent writers at one replica and ``kill -9``s it
mid-stream; afterwards every acknowledged swipe must be in the store, and a restarted replica's
profile must agree with the store (it has no other source).

Both run against 127.0.0.1 only and are bounded in count and time.
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from eval.load_test import REQUEST_TIMEOUT_S, AppProcess, _percentiles, create_people, scratch_home
from web.limits import limits_off_env

log = logging.getLogger(__name__)

REQUESTS = ("a comedy", "show me more", "something like Toy Story", "more please", "a thriller from the 90s",
            "show me more", "a romantic comedy", "others?")


@contextmanager
def fresh_database(server: str, prefix: str = "cineagent_bench_") -> Iterator[str]:
    """A new, empty database on the server of ``server`` (its URL); dropped afterwards, connections
    or not."""
    import psycopg
    from psycopg import sql

    name = prefix + secrets.token_hex(6)
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def with_database(url: str, database: str) -> str:
    """``url`` naming another database (user, host, port and options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def _replica_env(database_url: str) -> dict[str, str]:
    return {"CINEAGENT_PARSER": "offline", "CINEAGENT_DATABASE_URL": database_url, **limits_off_env()}


def run_replica_bench(server_url: str, people: int = 20, turns: int = 1000, swipes: int = 1000,
                      time_limit_s: float = 480.0, source_home: Path | None = None) -> dict:
    """See the module docstring; ``server_url`` names a PostgreSQL server (a database on it is made)."""
    scratch = Path(tempfile.mkdtemp(prefix="cineagent-replicas-"))
    per_person = max(turns, swipes) // people
    try:
        with fresh_database(server_url) as url, ExitStack() as stack:
            replicas = [stack.enter_context(AppProcess(scratch_home(scratch / f"replica-{r}", source_home),
                                                       env=_replica_env(url))) for r in range(2)]
            ready = [round(r.wait_ready(), 1) for r in replicas]
            headers = create_people(replicas[0].url, [1 + 37 * p % 943 for p in range(people)])
            deadline = time.monotonic() + time_limit_s
            lock = threading.Lock()
            totals = {"turns": 0, "swipes": 0, "errors": 0, "broken_swipes": 0, "repeated_in_more": 0}
            samples: list[str] = []
            acked: list[tuple[str, int, str]] = []
            latencies: dict[str, list[float]] = {"turn": [], "swipe": []}

            def person(p: int) -> None:
                clients = [httpx.Client(base_url=r.url, timeout=REQUEST_TIMEOUT_S, headers=headers[p]) for r in replicas]
                swiped: set[int] = set()
                shown_in_session: set[int] = set()
                rng = random.Random(p)
                try:
                    for i in range(per_person):
                        if time.monotonic() > deadline:
                            return
                        here, there = clients[i % 2], clients[(i + 1) % 2]
                        message = REQUESTS[i % len(REQUESTS)]
                        started = time.perf_counter()
                        reply = here.post("/api/chat", json={"session_id": f"s{p}", "message": message})
                        elapsed = time.perf_counter() - started
                        if reply.status_code != 200:
                            with lock:
                                totals["errors"] += 1
                                samples.append(f"turn HTTP {reply.status_code}: {reply.text[:200]}")
                            continue
                        body = reply.json()
                        cards = [c["item_id"] for c in body["items"]]
                        broken = swiped & set(cards)
                        repeated = shown_in_session & set(cards) if body["act"] == "more" else set()
                        # a "more" page adds to what the conversation showed; any other answer starts it again
                        shown_in_session = (shown_in_session | set(cards)) if body["act"] == "more" else set(cards)
                        with lock:
                            totals["turns"] += 1
                            latencies["turn"].append(elapsed)
                            totals["broken_swipes"] += len(broken)
                            totals["repeated_in_more"] += len(repeated)
                            if broken:
                                samples.append(f"person {p} turn {i}: swiped {sorted(broken)} shown again")
                        if not cards or i >= swipes // people:
                            continue
                        item = cards[rng.randrange(min(3, len(cards)))]
                        action = "like" if rng.random() < 0.6 else "dislike"
                        started = time.perf_counter()
                        reply = there.post("/api/feedback", json={
                            "session_id": f"s{p}", "item_id": item, "action": action, "trace_id": body["trace_id"],
                            "rank": cards.index(item) + 1, "query": f"replicas {p}-{i}"})
                        elapsed = time.perf_counter() - started
                        with lock:
                            if reply.status_code == 200:
                                totals["swipes"] += 1
                                latencies["swipe"].append(elapsed)
                                acked.append((headers[p]["Authorization"], item, f"replicas {p}-{i}"))
                                swiped.add(item)
                            else:
                                totals["errors"] += 1
                                samples.append(f"swipe HTTP {reply.status_code}: {reply.text[:200]}")
                finally:
                    for client in clients:
                        client.close()

            started = time.perf_counter()
            with ThreadPoolExecutor(people) as pool:
                list(pool.map(person, range(people)))
            wall = time.perf_counter() - started
            stored = _stored_queries(url)
            lost = sum(1 for _, _, query in acked if query not in stored)
        return {"replicas": 2, "people": people, "ready_s": ready, "wall_s": round(wall, 1), **totals,
                "lost_swipes": lost, "turn_latency": _percentiles(latencies["turn"]),
                "swipe_latency": _percentiles(latencies["swipe"]), "error_samples": samples[:5],
                "ok": totals["errors"] == 0 and lost == 0 and totals["broken_swipes"] == 0
                and totals["repeated_in_more"] == 0}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stored_queries(url: str) -> set[str]:
    from data.event_store import EventStore

    store = EventStore(url, pool_size=1)
    try:
        return {s.query for s in store.swipes() if s.query}
    finally:
        store.close()


def run_kill_test(server_url: str, people: int = 20, swipes: int = 1000, kill_after: int = 400,
                  time_limit_s: float = 300.0, source_home: Path | None = None) -> dict:
    """See the module docstring: ``kill -9`` after ``kill_after`` acknowledged swipes."""
    scratch = Path(tempfile.mkdtemp(prefix="cineagent-kill-"))
    try:
        with fresh_database(server_url) as url:
            state = scratch_home(scratch / "replica", source_home)
            app = AppProcess(state, env=_replica_env(url)).start()
            try:
                app.wait_ready()
                headers = create_people(app.url, [1 + 53 * p % 943 for p in range(people)])
                shown = []
                with httpx.Client(base_url=app.url, timeout=REQUEST_TIMEOUT_S) as client:
                    for p in range(people):
                        reply = client.post("/api/chat", json={"session_id": "k", "message": "a comedy"},
                                            headers=headers[p])
                        reply.raise_for_status()
                        shown.append((reply.json()["trace_id"], [c["item_id"] for c in reply.json()["items"]]))
                acked: list[str] = []
                failed = 0
                lock = threading.Lock()
                killed = threading.Event()
                deadline = time.monotonic() + time_limit_s

                def writer(p: int) -> None:
                    nonlocal failed
                    trace_id, items = shown[p]
                    with httpx.Client(base_url=app.url, timeout=REQUEST_TIMEOUT_S, headers=headers[p]) as client:
                        for i in range(swipes // people):
                            if time.monotonic() > deadline:
                                return
                            query = f"kill {p}-{i}"
                            try:
                                reply = client.post("/api/feedback", json={
                                    "session_id": "k", "item_id": items[i % len(items)],
                                    # each visit of a card flips the action: the same swipe twice is one
                                    # event (a retry), and every acknowledged swipe here must be its own
                                    "action": "like" if (i // len(items)) % 2 == 0 else "dislike", "trace_id": trace_id,
                                    "rank": i % len(items) + 1, "query": query})
                            except httpx.HTTPError:
                                with lock:
                                    failed += 1
                                if killed.is_set():
                                    return
                                continue
                            with lock:
                                if reply.status_code == 200:
                                    acked.append(query)
                                    if len(acked) == kill_after and not killed.is_set():
                                        killed.set()
                                        os.kill(app.proc.pid, signal.SIGKILL)
                                else:
                                    failed += 1

                with ThreadPoolExecutor(people) as pool:
                    list(pool.map(writer, range(people)))
            finally:
                app.stop()
            stored = _stored_queries(url)
            missing = [q for q in acked if q not in stored]
            # a fresh replica: its profiles can only come from the store
            with AppProcess(scratch_home(scratch / "after", source_home), env=_replica_env(url)) as again:
                again.wait_ready()
                disagree = _profiles_disagree(again.url, headers, url)
        return {"people": people, "acknowledged": len(acked), "failed_or_cut": failed, "killed": killed.is_set(),
                "in_store": len(stored), "missing_acknowledged": len(missing), "profiles_disagreeing": disagree,
                "ok": killed.is_set() and not missing and disagree == 0}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _profiles_disagree(app_url: str, headers: list[dict[str, str]], url: str) -> int:
    """People whose likes/dislikes as the app shows them differ from their swipes in the store."""
    from data.event_store import EventStore
    from data.events import DISLIKE_RATING, LIKE_RATING

    store = EventStore(url, pool_size=1)
    try:
        disagree = 0
        with httpx.Client(base_url=app_url, timeout=REQUEST_TIMEOUT_S) as client:
            for header in headers:
                profile = client.get("/api/users/me/profile", headers=header).json()
                state = store.profile_state(profile["user_id"]).ratings
                likes = sorted(i for i, r in state.items() if r == LIKE_RATING)
                dislikes = sorted(i for i, r in state.items() if r == DISLIKE_RATING)
                disagree += (profile["likes"], profile["dislikes"]) != (likes, dislikes)
        return disagree
    finally:
        store.close()


def format_replicas(report: dict) -> str:
    return (f"2 replicas on PostgreSQL, {report['people']} people alternating replicas: {report['turns']} turns, "
            f"{report['swipes']} swipes in {report['wall_s']} s; {report['errors']} errors, {report['lost_swipes']} "
            f"swipes lost, {report['broken_swipes']} swiped cards shown again, {report['repeated_in_more']} cards "
            f"repeated by 'more'; turn p95 {report['turn_latency']['p95_ms']} ms, swipe p95 "
            f"{report['swipe_latency']['p95_ms']} ms"
            + "".join(f"\n  error: {s}" for s in report["error_samples"]))


def format_kill(report: dict) -> str:
    return (f"kill -9 of a replica after {report['acknowledged']} acknowledged swipes ({report['failed_or_cut']} cut "
            f"off or failed): {report['missing_acknowledged']} acknowledged swipes missing from the store "
            f"({report['in_store']} stored); {report['profiles_disagreeing']} of {report['people']} profiles disagree "
            "with the store after a restart")
