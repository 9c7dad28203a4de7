"""Per-session dialogue state, bounded in memory: old sessions expire, the oldest go first."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from agent.intent import Act, Intent, YearRange


@dataclass
class Card:
    """One recommended movie as shown to the person, with the evidence behind it."""

    item_id: int
    title: str
    year: int | None
    genres: list[str]
    explanation: str
    score: float
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"item_id": self.item_id, "title": self.title, "year": self.year, "genres": self.genres,
                "explanation": self.explanation, "score": round(self.score, 4), "evidence": self.evidence}


@dataclass
class Session:
    session_id: str
    user_key: str
    standing: Intent | None = None              # constraints accumulated over the conversation
    shown: list[int] = field(default_factory=list)  # every item shown so far: "more" never repeats
    last_cards: list[Card] = field(default_factory=list)
    turns: int = 0
    touched: float = field(default_factory=time.monotonic)


def merge(standing: Intent | None, new: Intent) -> Intent:
    """The constraints in force after this turn.

    recommend replaces the standing request (a new topic), refine and more keep it and layer the
    new constraints on top: added genres/exclusions accumulate, a new year range or count replaces
    the old one, and excluding a genre removes it from the wanted ones.
    """
    if standing is None or new.act in (Act.recommend,):
        return new
    if new.act in (Act.explain, Act.chit_chat, Act.clarify):
        return standing.model_copy(update={"act": new.act})  # the request stands; this turn does something else
    excluded = list(dict.fromkeys(standing.exclude_genres + new.exclude_genres))
    # a genre asked for again after being excluded is wanted again
    excluded = [g for g in excluded if g not in new.genres]
    wanted = [g for g in dict.fromkeys(standing.genres + new.genres) if g not in excluded]
    years = new.years or standing.years
    return Intent(act=new.act, genres=wanted, exclude_genres=excluded,
                  titles=list(dict.fromkeys(standing.titles + new.titles)),
                  years=YearRange(**years.model_dump()) if years else None,
                  keywords=list(dict.fromkeys(standing.keywords + new.keywords)),
                  count=new.count or standing.count)


class SessionStore:
    """Thread-safe map session id -> Session with a TTL and a size bound (LRU eviction)."""

    def __init__(self, max_sessions: int = 10_000, ttl_seconds: float = 3600.0) -> None:
        self.max_sessions = max_sessions
        self.ttl = ttl_seconds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, user_key: str) -> Session:
        """The live session of this user with this id, or a fresh one.

        Keyed by (user, id): another person reusing an id gets a session of their own and cannot
        read or reset this one.
        """
        now = time.monotonic()
        key = f"{user_key}\x00{session_id}"
        with self._lock:
            self._expire(now)
            session = self._sessions.get(key)
            if session is None:
                session = Session(session_id=session_id, user_key=user_key)
                self._sessions[key] = session
            session.touched = now
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def _expire(self, now: float) -> None:
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.touched <= self.ttl:
                break
            self._sessions.popitem(last=False)

    def discard(self, session_id: str, user_key: str) -> None:
        with self._lock:
            self._sessions.pop(f"{user_key}\x00{session_id}", None)

    def of_user(self, user_key: str) -> list[Session]:
        """This person's live sessions (for their data export)."""
        with self._lock:
            return [s for s in self._sessions.values() if s.user_key == user_key]

    def discard_user(self, user_key: str) -> int:
        """Drop every session of this person; returns how many there were."""
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.user_key == user_key]
            for key in keys:
                del self._sessions[key]
            return len(keys)

    def __len__(self) -> int:
        return len(self._sessions)
