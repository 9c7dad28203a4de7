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
    focus: int | None = None                    # the card last talked about ("why Fargo?" -> "is it scary?")
    told_likes: list[int] = field(default_factory=list)  # films the person said they like, kept across topics
    turns: int = 0
    touched: float = field(default_factory=time.monotonic)


TONES = ("darker", "lighter", "funnier", "less_violent")  # adjustments that stand as a mood
# a new tone drops the ones it contradicts: "darker" after "funnier" is no longer funny
CONTRADICTS = {"darker": {"lighter", "funnier"}, "lighter": {"darker"}, "funnier": {"darker"}, "less_violent": set()}


def _moods(standing: list[str], adjust: list[str]) -> list[str]:
    moods = list(standing)
    for tone in adjust:
        if tone in TONES:
            moods = [m for m in moods if m not in CONTRADICTS[tone] and m != tone] + [tone]
    return moods


def merge(standing: Intent | None, new: Intent) -> Intent:
    """The request in force after this turn: the turn's operations applied to the standing request.

    - ``recommend`` is a new topic: it replaces the standing request.
    - ``refine`` and ``more`` keep everything and layer this turn on top: wanted genres, titles,
      exclusions and moods accumulate; a new era or count replaces the old one. ``replace``
      ("actually, make it a horror") swaps the slots this turn fills instead of adding to them;
      ``relax`` drops the named slots ("any year is fine"). Excluding a genre or title removes it
      from the wanted ones, and asking for it again lifts the exclusion.
    - ``explain``, ``chit_chat`` and ``clarify`` leave the request standing.

    Relative refinements that need the shown cards (an era relative to them, a card reference)
    are the dialogue manager's: the merged intent carries ``adjust`` and ``card_ref`` for it.
    """
    turn_only = {"act": new.act, "adjust": list(new.adjust), "card_ref": new.card_ref,
                 "explain_rank": new.explain_rank, "replace": False, "relax": []}
    if standing is None or new.act == Act.recommend:
        return new.model_copy(update={**turn_only, "mood": _moods(new.mood, new.adjust)})
    if new.act in (Act.explain, Act.chit_chat, Act.clarify):
        return standing.model_copy(update=turn_only)  # the request stands; this turn does something else
    relax = set(new.relax)
    base = Intent() if "all" in relax else standing

    def kept(slot: str, values: list) -> list:
        """The standing values of a slot, unless this turn relaxes it or replaces it with its own."""
        return [] if slot in relax or (new.replace and values) else list(getattr(base, slot))

    excluded = list(dict.fromkeys(kept("exclude_genres", []) + new.exclude_genres))
    excluded = [g for g in excluded if g not in new.genres]  # asked for again after being excluded
    wanted = [g for g in dict.fromkeys(kept("genres", new.genres) + new.genres) if g not in excluded]
    rejected = list(dict.fromkeys(kept("exclude_titles", []) + new.exclude_titles))
    rejected = [t for t in rejected if t not in new.titles]
    titles = [t for t in dict.fromkeys(kept("titles", new.titles) + new.titles) if t not in rejected]
    years = None if "years" in relax else (new.years or base.years)
    return Intent(act=new.act, genres=wanted, exclude_genres=excluded, titles=titles, exclude_titles=rejected,
                  years=YearRange(**years.model_dump()) if years else None,
                  keywords=list(dict.fromkeys(kept("keywords", new.keywords) + new.keywords)),
                  mood=_moods([] if "mood" in relax else base.mood, new.adjust),
                  count=new.count or base.count, adjust=list(new.adjust), card_ref=new.card_ref)


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
