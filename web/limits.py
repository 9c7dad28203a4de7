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

The client address is the TCP peer: behind a reverse proxy every person shares the proxy's, so
raise the per-client limits there (forwarded headers are not trusted: anyone can write them).
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

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

    @classmethod
    def from_settings(cls, s: RateSettings) -> "Limits":
        return cls(TokenBuckets("turns", "person", s.turns_person), TokenBuckets("turns", "client", s.turns_client),
                   TokenBuckets("swipes", "person", s.swipes_person), TokenBuckets("swipes", "client", s.swipes_client),
                   TokenBuckets("new people", "client", s.people_client))

    def turn(self, person: str, client: str) -> None:
        self.turns_client.take(client)
        self.turns_person.take(person)

    def swipe(self, person: str, client: str) -> None:
        self.swipes_client.take(client)
        self.swipes_person.take(person)

    def new_person(self, client: str) -> None:
        self.people_client.take(client)

    def forget_person(self, person: str) -> None:
        self.turns_person.forget(person)
        self.swipes_person.forget(person)
