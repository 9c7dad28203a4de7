"""Per-conversation dialogue state: the standing request (explicit slots), the cards shown, and
the operations a turn applies to it (``merge``); kept in the event store when the app has one (a
restart or another replica continues the conversation), else in this process, bounded, with a TTL."""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from agent.intent import Act, Intent, YearRange

if TYPE_CHECKING:
    from data.event_store import EventStore
    from data.events import Turn


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
    version: int = 0                            # the stored row's, when read from a store (0: none yet)


TONES = ("darker", "lighter", "funnier", "less_violent")  # adjustments that stand as a mood
# a new tone drops the ones it contradicts: "darker" after "funnier" is no longer funny
CONTRADICTS = {"darker": {"lighter", "funnier"}, "lighter": {"darker"}, "funnier": {"darker"}, "less_violent": set()}


def _moods(standing: list[str], adjust: list[str]) -> list[str]:
    moods = list(standing)
    for tone in adjust:
        if tone in TONES:
            moods = [m for m in moods if m not in CONTRADICTS[tone] and m != tone] + [tone]
    return moods


def start_over(session: Session) -> None:
    """Forget the conversation so far ("start over", "forget all that"): the request, the cards,
    the film last talked about and the films told as liked; what was shown stays unrepeated."""
    session.standing, session.last_cards, session.focus, session.told_likes = None, [], None, []


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
    # alternatives ("action or comedy") stand until a turn adds genres of its own: then all of them
    mode = new.genre_match if new.genres and not kept("genres", new.genres) else \
        (base.genre_match if not new.genres else "all")
    return Intent(act=new.act, genres=wanted, genre_match=mode if len(wanted) > 1 else "all",
                  exclude_genres=excluded, titles=titles, exclude_titles=rejected,
                  years=YearRange(**years.model_dump()) if years else None,
                  keywords=list(dict.fromkeys(kept("keywords", new.keywords) + new.keywords)),
                  mood=_moods([] if "mood" in relax else base.mood, new.adjust),
                  count=new.count or base.count, adjust=list(new.adjust), card_ref=new.card_ref)


class SessionStore:
    """(person, session id) -> Session, with a TTL and a size bound.

    With an event ``store`` (the app), every conversation lives there: read at the start of each
    turn and written after it, so it survives a restart and continues on any process or replica
    that shares the store; nothing is cached here (another replica may have moved it on). Without
    one (the terminal chat, offline simulations), sessions live in this process, least recently
    used evicted first. Either way a session idle for ``ttl_seconds`` is gone, and at most
    ``max_sessions`` are kept (in the store, pruned every few saves: up to a tenth more between
    two prunes).
    """

    def __init__(self, max_sessions: int = 10_000, ttl_seconds: float = 3600.0, store: "EventStore | None" = None,
                 max_per_person: int | None = None) -> None:
        self.max_sessions = max_sessions
        self.max_per_person = max_per_person   # in the store: a person's new conversation pushes out their own oldest
        self.ttl = ttl_seconds
        self.store = store
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._saves = 0
        self._prune_every = max(1, min(100, max_sessions // 10))

    @property
    def remote(self) -> bool:
        """Whether reading and saving go over the network (PostgreSQL)."""
        return self.store is not None and self.store.dialect == "postgresql"

    def get(self, session_id: str, user_key: str) -> Session:
        """The live session of this user with this id, or a fresh one.

        Keyed by (user, id): another person reusing an id gets a session of their own and cannot
        read or reset this one.
        """
        key = _key(user_key, session_id)
        if self.store is not None:
            stored, version = self.store.load_session(key, time.time() - self.ttl)
            session = _from_json(stored) if stored else Session(session_id=session_id, user_key=user_key)
            session.version = version   # an expired row's too: the next save replaces it
            return session
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = Session(session_id=session_id, user_key=user_key)
            session.touched = now
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def save(self, session: Session, turn: "Turn | None" = None) -> None:
        """Write the session to the store after a turn, with the turn's event in the same
        transaction (in memory it is already current). Raises ConversationMoved when another
        process saved this conversation since it was read."""
        if self.store is None:
            return
        self._saves += 1
        session.version = self.store.save_session(
            _key(session.user_key, session.session_id), session.user_key, _to_json(session), session.version,
            not_before=time.time() - self.ttl, keep=self.max_sessions, prune=self._saves % self._prune_every == 0,
            turn=turn, keep_person=self.max_per_person)

    def _expire(self, now: float) -> None:
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.touched <= self.ttl:
                break
            self._sessions.popitem(last=False)

    def discard(self, session_id: str, user_key: str) -> None:
        key = _key(user_key, session_id)
        if self.store is not None:
            self.store.delete_session(key)
        with self._lock:
            self._sessions.pop(key, None)

    def __len__(self) -> int:
        return self.store.count_sessions() if self.store is not None else len(self._sessions)


def _key(user_key: str, session_id: str) -> str:
    # length-prefixed: unambiguous whatever either part holds, and no NUL (PostgreSQL text refuses it)
    return f"{len(user_key)}:{user_key}/{session_id}"


def _to_json(session: Session) -> str:
    return json.dumps({"session_id": session.session_id, "user_key": session.user_key,
                       "standing": session.standing.model_dump(mode="json") if session.standing else None,
                       "shown": session.shown, "last_cards": [asdict(c) for c in session.last_cards],
                       "focus": session.focus, "told_likes": session.told_likes, "turns": session.turns})


def _from_json(raw: str) -> Session:
    state = json.loads(raw)
    return Session(session_id=state["session_id"], user_key=state["user_key"],
                   standing=Intent.model_validate(state["standing"]) if state["standing"] else None,
                   shown=list(state["shown"]), last_cards=[Card(**c) for c in state["last_cards"]],
                   focus=state["focus"], told_likes=list(state["told_likes"]), turns=int(state["turns"]))
