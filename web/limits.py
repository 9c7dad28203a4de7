"""Abuse limits: token buckets per person and per client address, for turns, swipes and sign-ups.

A bucket holds up to ``per_minute`` tokens and refills continuously at ``per_minute`` a minute, so
a person may burst a minute's worth and then goes at the steady rate. A refused action costs
nothing and says when to retry (``RateLimited.retry_after_s``, sent as ``Retry-After``). Buckets
live in each server process (with ``serve --workers N`` or replicas, a limit applies per process:
N processes allow up to N times the rate); at most ``max_keys`` are kept per
limit, least recently used dropped first, so a flood of fresh keys cannot exhaust memory (a dropped
bucket starts full again, which only errs toward letting a real person in).

Configuration (environment; ``0`` turns a limit off):

- ``CINEAGENT_RATE_TURNS_PERSON`` (default 30) / ``CINEAGENT_RATE_TURNS_CLIENT`` (default 120):
  chat and recommend turns (and data exports, which cost more) a minute, per person / per client.
- ``CINEAGENT_RATE_SWIPES_PERSON`` (default 120) / ``CINEAGENT_RATE_SWIPES_CLIENT`` (default 600):
  likes and dislikes a minute.
- ``CINEAGENT_RATE_PEOPLE_CLIENT`` (default 10): people created a minute per client address.
- ``CINEAGENT_RATE_EXPORTS_PERSON`` (default 6): data exports a minute per person (they cost more
  than a turn; they count as turns too).
- ``CINEAGENT_RATE_OPERATOR_SIGNINS_CLIENT`` (default 5): operator sign-in attempts a minute per
  client address.

The client address is the TCP peer, unless it is a proxy named in ``CINEAGENT_TRUSTED_PROXIES``:
then it is the address that proxy forwards (``X-Forwarded-For``). Nobody else's forwarded headers
are believed: anyone can write them.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from data.errors import CineAgentError

MAX_KEYS = 100_000
ENV_PREFIX = "CINEAGENT_RATE_"


class RateLimited(CineAgentError):
    """Too many actions of one kind; retry after ``retry_after_s`` seconds."""

    def __init__(self, what: str, scope: str, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"too many {what} from this {scope}: retry in {self.retry_after_s} s")


class TokenBuckets:
    """One bucket per key; ``take(key)`` spends a token or raises ``RateLimited``."""

    def __init__(self, what: str, scope: str, per_minute: int, max_keys: int = MAX_KEYS, clock=time.monotonic) -> None:
        self.what, self.scope = what, scope
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0     # tokens a second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def take(self, key: str) -> None:
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited(self.what, self.scope, (1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)


class RateSettings(BaseModel):
    """Limits a minute (0 = off): ``CINEAGENT_RATE_*``, read by ``agent.settings.Settings``."""

    model_config = ConfigDict(extra="forbid")

    turns_person: int = Field(default=30, ge=0)
    turns_client: int = Field(default=120, ge=0)
    swipes_person: int = Field(default=120, ge=0)
    swipes_client: int = Field(default=600, ge=0)
    people_client: int = Field(default=10, ge=0)
    exports_person: int = Field(default=6, ge=0)
    operator_signins_client: int = Field(default=5, ge=0)


def limits_off_env() -> dict[str, str]:
    """Environment that turns every limit off: for benchmarks and tests, which send requests
    far faster than any person."""
    return {f"{ENV_PREFIX}{name.upper()}": "0" for name in RateSettings.model_fields}


@dataclass
class Limits:
    """The app's limits: ``turn``, ``swipe`` and ``new_person`` raise ``RateLimited`` when spent.

    The client's bucket is checked first, then the person's: a person spread over many addresses
    is held by their own limit, many people behind one address by the address's."""

    turns_person: TokenBuckets
    turns_client: TokenBuckets
    swipes_person: TokenBuckets
    swipes_client: TokenBuckets
    people_client: TokenBuckets
    exports_person: TokenBuckets
    operator_signins_client: TokenBuckets

    @classmethod
    def from_settings(cls, s: RateSettings) -> "Limits":
        return cls(TokenBuckets("turns", "person", s.turns_person), TokenBuckets("turns", "client", s.turns_client),
                   TokenBuckets("swipes", "person", s.swipes_person), TokenBuckets("swipes", "client", s.swipes_client),
                   TokenBuckets("new people", "client", s.people_client),
                   TokenBuckets("exports", "person", s.exports_person),
                   TokenBuckets("operator sign-ins", "client", s.operator_signins_client))

    def turn(self, person: str, client: str) -> None:
        self.turns_client.take(client)
        self.turns_person.take(person)

    def swipe(self, person: str, client: str) -> None:
        self.swipes_client.take(client)
        self.swipes_person.take(person)

    def new_person(self, client: str) -> None:
        self.people_client.take(client)

    def export(self, person: str, client: str) -> None:
        """An export: its own limit, and a turn's (it costs more than one)."""
        self.exports_person.take(person)
        self.turn(person, client)

    def operator_signin(self, client: str) -> None:
        self.operator_signins_client.take(client)

    def forget_person(self, person: str) -> None:
        self.turns_person.forget(person)
        self.swipes_person.forget(person)
        self.exports_person.forget(person)


# ---------------------------------------------------------------------------------------- the UI's queue
QUEUE_JOIN_PATH = "/gradio_api/queue/join"
MAX_QUEUE_SESSIONS_CLIENT = 32    # page sessions (Gradio session hashes) with unread results, per client
MAX_UNREAD_CLIENT = 64            # events joined whose results were not read yet, per client
UNREAD_TTL_S = 300.0              # a session that joined nothing this long: its unread results are dropped
SESSION_HASH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class QueueGuard:
    """``POST /gradio_api/queue/join``, checked before Gradio sees it, and bounded per client.

    Gradio runs any event by its index for anyone, keeps every result until the page reads it
    (``/gradio_api/queue/data``), and answered an unknown index or a malformed body with a bare
    500. Here: the body must name an event the page has (``fn_index``), with as many inputs as it
    takes, and a well-formed ``session_hash``; anything else is 422 saying what is wrong. A client
    address may hold at most ``max_sessions`` page sessions with results waiting and
    ``max_unread`` waiting results in all (429 past that); a session that joined nothing for
    ``ttl_s`` has its unread results dropped (a page reads its results as they come: only an
    abandoned or hostile one leaves them)."""

    def __init__(self, app, blocks: Callable[[], Any], client_of: Callable[[dict], str],
                 max_sessions: int = MAX_QUEUE_SESSIONS_CLIENT, max_unread: int = MAX_UNREAD_CLIENT,
                 ttl_s: float = UNREAD_TTL_S, clock=time.monotonic) -> None:
        self.app, self._blocks, self._client_of = app, blocks, client_of
        self.max_sessions, self.max_unread, self.ttl_s, self._clock = max_sessions, max_unread, ttl_s, clock
        self._clients: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()   # client -> hash -> last join

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != QUEUE_JOIN_PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        refused = self.check(body, self._client_of(scope))
        if refused is not None:
            status, text = refused
            headers = {"Retry-After": str(int(min(self.ttl_s, 60)))} if status == 429 else None
            return await JSONResponse({"error": text}, status_code=status, headers=headers)(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def check(self, body: bytes, client: str) -> tuple[int, str] | None:
        """None to let the join through, else (status, what is wrong)."""
        try:
            join = json.loads(body)
        except ValueError:
            return 422, "the queue takes a JSON object: fn_index, data, session_hash"
        if not isinstance(join, dict):
            return 422, "the queue takes a JSON object: fn_index, data, session_hash"
        blocks = self._blocks()
        fns = getattr(blocks, "fns", {}) if blocks is not None else {}
        index = join.get("fn_index")
        fn = fns.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
        if fn is None or getattr(fn, "fn", None) is None:
            return 422, f"fn_index: no event {str(index)[:20]!r} on this page"
        data = join.get("data")
        if not isinstance(data, list) or len(data) != len(fn.inputs):
            return 422, f"data: event {index} takes a list of {len(fn.inputs)} input(s)"
        session_hash = join.get("session_hash")
        if not isinstance(session_hash, str) or not SESSION_HASH.match(session_hash):
            return 422, "session_hash: 1-64 letters, digits, _ or -"
        if not isinstance(join.get("event_data"), (dict, type(None))):
            return 422, "event_data: an object or null"
        return self._admit(client, session_hash, getattr(blocks, "_queue", None))

    def _admit(self, client: str, session_hash: str, queue: Any) -> tuple[int, str] | None:
        pending: dict = getattr(queue, "pending_event_ids_session", None) or {}
        now = self._clock()
        sessions = self._clients.pop(client, None) or OrderedDict()
        self._clients[client] = sessions
        while len(self._clients) > MAX_KEYS:
            self._clients.popitem(last=False)
        for known, joined in list(sessions.items()):
            if pending.get(known) and now - joined > self.ttl_s:
                self._drop(queue, known)   # abandoned: nobody reads these results
            if not pending.get(known):
                del sessions[known]        # everything read: nothing held for this client
        if session_hash not in sessions and len(sessions) >= self.max_sessions:
            return 429, (f"too many page sessions from this client with results not yet read (at most "
                         f"{self.max_sessions}): read them, or retry later")
        if sum(len(pending.get(known, ())) for known in sessions) >= self.max_unread:
            return 429, (f"too many results not yet read from this client (at most {self.max_unread}): "
                         "read them (queue/data), or retry later")
        sessions[session_hash] = now
        return None

    @staticmethod
    def _drop(queue: Any, session_hash: str) -> None:
        queue.pending_event_ids_session.pop(session_hash, None)
        with contextlib.suppress(KeyError):
            del queue.pending_messages_per_session[session_hash]
