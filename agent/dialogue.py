"""The dialogue manager: one chat turn as a LangGraph graph.

understand (parse, merge) -> (recommend | explain | chit_chat | clarify)

``understand`` parses the message into an Intent (LLM or offline parser): operations on the
conversation's standing request, applied by ``merge`` and resolved against the shown cards
(``_in_context``: card references, eras relative to what was shown, "something different"); the
chosen branch answers, saying what it could not use. Every node records a step (name,
timing, inputs/outputs worth tracing) so the turn can be traced and debugged.

Every turn (API, UI, CLI, evaluation) takes one path, ``DialogueManager.chat``: an ``async def``
that runs the graph with ``ainvoke``. Nothing in it blocks the event loop for long: the LLM call is
awaited, and MiniLM (a phrase not embedded yet, ~9 ms) runs in a worker thread. ``turn`` is the
same coroutine run to completion for callers without an event loop.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import time
import uuid
import weakref
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph

from agent import replies
from agent.explain import EvidenceSource, evidence_for, explain
from agent.intent import Act, Intent, IntentParser, ParseResult, UnusedPart, YearRange
from agent.query import RequestEncoder
from agent.ranking import RankerConfig, Ranking, RequestRanker
from agent.session import Card, Session, SessionStore, merge, start_over
from agent.steps import Step, StepSpans, in_turn, recording
from agent.understand.apply import read_in_context
from agent.users import User, UnknownUser, resolve_user
from models.train import ModelBundle
from retrieval.catalog import CatalogIndex
from retrieval.profile_index import ProfileStore
from data.errors import CineAgentError

if TYPE_CHECKING:
    from agent.understand.reader import TrainedReader
    from agent.reply_writer import ReplyWriter

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000   # longer than any real request; keeps parsing and embedding bounded
DEFAULT_COUNT = 10
MAX_TOLD = 20               # films a person said they like, remembered per conversation


class BadRequest(CineAgentError, ValueError):
    """The message or user cannot be served as sent; the text says what to change."""


@dataclass
class TurnResult:
    text: str
    cards: list[Card]
    act: str
    intent: Intent
    parse: ParseResult | None
    user: User
    session_id: str
    steps: list[Step] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    unused: list[UnusedPart] = field(default_factory=list)  # parts of the message that could not be used
    trace_id: str = ""
    message: str = ""
    started: float = 0.0          # wall clock, epoch seconds
    duration_ms: float = 0.0
    # what the ranker was last asked for this turn's cards (shadow mode asks the challenger the same)
    asked: dict | None = None
    span_id: str = ""             # the turn's root span, when traced

    def as_dict(self) -> dict:
        return {"trace_id": self.trace_id, "text": self.text, "act": self.act, "intent": self.intent.model_dump(mode="json"),
                "items": [c.as_dict() for c in self.cards], "notices": self.notices,
                "unused": [u.model_dump() for u in self.unused],
                "parser": self.parse.parser if self.parse else None,
                "fallback_reason": self.parse.fallback_reason if self.parse else None}


class TracedTurn(Protocol):
    """A turn being traced: the root span is open while the turn runs."""

    trace_id: str              # 32 hex digits, the turn's W3C trace id: swipes score the turn by it
    spans: StepSpans | None    # opens a span per step, under the root

    def finish(self, result: TurnResult) -> None: ...


class TurnTracer(Protocol):
    """Where turns and swipes are traced (agent.tracing implements it; None traces nothing)."""

    def turn(self, user: User, session_id: str, message: str, started: float) -> AbstractContextManager[TracedTurn]:
        """Open the turn's root span (ended, with the error if one escapes, when the block exits)."""

    def record_feedback(self, trace_id: str, user: User, item_id: int, liked: bool) -> None: ...


@dataclass
class _Untraced:
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # still a valid W3C trace id
    spans: None = None

    def finish(self, result: TurnResult) -> None:
        pass


class TurnState(TypedDict, total=False):
    user: User
    session: Session
    message: str
    parse: ParseResult
    intent: Intent
    result: TurnResult
    steps: list[Step]
    avoid: list[int]               # "something different": the cards to move away from
    unused: list[UnusedPart]       # the parse's, plus what the shown cards made impossible


def _timed(name: str, kind: str = "span") -> Callable:
    """Decorate a graph node (sync or async): record it as a Step of the turn (the node fills its
    input/output)."""

    def wrap(fn: Callable) -> Callable:
        if inspect.iscoroutinefunction(fn):
            async def node(self: "DialogueManager", state: TurnState) -> dict:
                with recording(state["steps"], name, kind) as step:
                    return await fn(self, state, step)
        else:
            def node(self: "DialogueManager", state: TurnState) -> dict:
                with recording(state["steps"], name, kind) as step:
                    return fn(self, state, step)

        node.__name__ = fn.__name__
        return node

    return wrap


MOOD_MARGIN = 0.05   # z-score units a list must move along a mood before a reply may claim it (the same
                     # films in another order move it by rounding only)

CHIT_CHAT_REPLIES = (
    (re.compile(r"\b(thanks?|thank you|thx|cheers|ty)\b"), "You're welcome! Ask for more whenever you like."),
    (re.compile(r"\b(hi|hello|hey|hiya|good (morning|afternoon|evening))\b"),
     "Hi! Tell me what you feel like watching: a genre, a mood, a decade, or a movie you loved."),
    (re.compile(r"\b(bye|goodbye|see you|good night)\b"), "Enjoy the movie! Come back any time."),
)
CHIT_CHAT_DEFAULT = ("I can help you find movies: try \"a funny sci-fi like Men in Black, nothing scary\" "
                     "or \"a 90s thriller\".")
CLARIFY_QUESTION = ("What are you in the mood for? A genre, a movie you liked, or a decade helps me pick "
                    "(for example \"a romantic comedy from the 90s\").")


class DialogueManager:
    """Runs turns for many users and sessions over one set of loaded models."""

    def __init__(self, bundle: ModelBundle, parser: IntentParser, catalog: CatalogIndex, profiles: ProfileStore,
                 sessions: SessionStore | None = None, ranker_config: RankerConfig | None = None,
                 tracer: TurnTracer | None = None, writer: "ReplyWriter | None" = None,
                 reader: "TrainedReader | None" = None) -> None:
        self.bundle = bundle
        self.data = bundle.data
        self.parser = parser
        self.catalog = catalog
        self.profiles = profiles
        # `is None`: an empty store is falsy (it has a length), and `or` dropped the configured one
        self.sessions = sessions if sessions is not None else SessionStore()
        self.ranker = RequestRanker(bundle, catalog, profiles, ranker_config)
        self.tracer = tracer
        self.writer = writer  # with an LLM configured: it may word replies and reasons, validated
        self.reader = reader  # trained from labelled messages: the operation of an offline reading (see agent.understand)
        self.encoder = RequestEncoder(catalog, self.data)
        self.evidence = EvidenceSource(self.ranker)
        counts = self.data.ratings.groupby("item_id")["rating"].agg(["mean", "count"])
        self._rating_stats = {int(i): (float(m), int(c)) for i, m, c in counts.itertuples()}
        years = self.data.items["year"].dropna()
        self._median_year, self._latest_year = int(years.median()), int(years.max())  # "older"/"newer" with nothing shown
        self.graph = self._build_graph()
        self._conversations: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ---------------------------------------------------------------- public API
    async def chat(self, user_key: object, session_id: str, message: str,
                   record: "Callable[[TurnResult], object] | None" = None) -> TurnResult:
        """Answer one message: the one path of every turn. Raises BadRequest / UnknownUser with a
        message for the person (before anything is traced). ``record`` makes the turn's event (the
        app's ``Turn``), stored in the same transaction as the conversation."""
        user, text = self._admit(user_key, session_id, message)
        # a turn awaits (the parse, an embedding): a second message of the same conversation waits
        # for the first here, and reads the conversation only once the first has saved it
        async with self._in_order(user, str(session_id)):
            session = await self._store_io(self._open, user, str(session_id))
            wall, started = time.time(), time.perf_counter()
            steps: list[Step] = []
            # the root span is open for the whole turn; each step opens its span under it as it runs
            with self._traced(user, session.session_id, text, wall) as trace, in_turn(steps, trace.spans):
                if text:
                    state = await self.graph.ainvoke({"user": user, "session": session, "message": text, "steps": steps})
                    result = state["result"]
                else:
                    result = TurnResult("Tell me what you'd like to watch: a genre, a mood, a decade or a movie you "
                                        "liked.", [], Act.clarify.value, session.standing or Intent(act=Act.clarify),
                                        None, user, session.session_id)
                result.steps, result.message, result.started, result.trace_id = steps, text, wall, trace.trace_id
                result.duration_ms = (time.perf_counter() - started) * 1000
                session.turns += 1
                # with a store: the conversation and the turn's event in one transaction
                await self._store_io(self.sessions.save, session, record(result) if record else None)
                trace.finish(result)
        return result

    def turn(self, user_key: object, session_id: str, message: str) -> TurnResult:
        """``chat`` for callers without an event loop (CLI, evaluation, tests): the same coroutine,
        run to completion on this thread's own loop (kept between calls: its worker threads too)."""
        # the task copies the caller's context (an open span, say): it is the turn's too
        return _thread_loop().run_until_complete(self.chat(user_key, session_id, message))

    def _admit(self, user_key: object, session_id: str, message: str) -> tuple[User, str]:
        if not isinstance(message, str):
            raise BadRequest("the message must be text")
        text = message.strip()
        if len(text) > MAX_MESSAGE_CHARS:
            raise BadRequest(f"your message is {len(text)} characters; please keep it under {MAX_MESSAGE_CHARS}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate: no store, trace or log could hold it
            raise BadRequest("the message holds characters that are not valid text; please type it again") from None
        if not session_id or len(str(session_id)) > 128:
            raise BadRequest("a session id of 1-128 characters is required")
        return resolve_user(user_key, self.data), text

    async def _store_io(self, call, *args):
        """A call that reads or writes the store. On a remote store (PostgreSQL) it runs in a worker
        thread: each is a round trip, or a wait for a pooled connection, that would hold every turn
        of the process. On SQLite it runs here: a fraction of a millisecond, where the thread hops
        cost more (20 users x 50 turns, A/B in one sitting: app CPU 5.2-5.5 ms a turn inline,
        6.7-7.4 ms in threads; p95 126-134 ms against 172-189 ms)."""
        if self.sessions.remote:
            return await asyncio.to_thread(call, *args)
        return call(*args)

    def _open(self, user: User, session_id: str) -> Session:
        """The conversation as stored, after reading the swipes made through any process since the
        person's last turn."""
        self.profiles.refresh(user.key)
        return self.sessions.get(session_id, user.key)

    def _in_order(self, user: User, session_id: str) -> asyncio.Lock:
        """The lock that orders one conversation's turns in this process; it lives while a turn
        holds or awaits it (across processes the store refuses a conversation that moved on)."""
        key = f"{user.key}\x00{session_id}"
        lock = self._conversations.get(key)
        if lock is None:
            lock = self._conversations[key] = asyncio.Lock()
        return lock

    def _traced(self, user: User, session_id: str, text: str, wall: float) -> AbstractContextManager[TracedTurn]:
        return self.tracer.turn(user, session_id, text, wall) if self.tracer else nullcontext(_Untraced())

    def feedback(self, user_key: object, item_id: int, liked: bool, trace_id: str | None = None) -> dict[int, int]:
        """A swipe kept in this process only (offline simulations, tests without a store; the app
        records swipes in the event store, ``agent.service``); the next turn scores the person
        from it (the ranker's cache is keyed by their swipes; no model is written)."""
        user = resolve_user(user_key, self.data)
        ratings = self.profiles.record_swipe(user.key, int(item_id), liked)   # in order: under its lock
        if self.tracer and trace_id:
            self.tracer.record_feedback(trace_id, user, int(item_id), liked)
        return ratings

    def forget(self, user_key: str) -> None:
        """Drop what this process caches about a person (their data is deleted elsewhere)."""
        self.ranker.forget(user_key)
        self.profiles.forget(user_key)

    # ---------------------------------------------------------------- graph
    def _build_graph(self):
        graph = StateGraph(TurnState)
        graph.add_node("understand", self._understand)
        graph.add_node("recommend", self._recommend)
        graph.add_node("explain", self._explain)
        graph.add_node("chit_chat", self._chit_chat)
        graph.add_node("clarify", self._clarify)
        graph.add_edge(START, "understand")
        graph.add_conditional_edges("understand", self._route, ["recommend", "explain", "chit_chat", "clarify"])
        for leaf in ("recommend", "explain", "chit_chat", "clarify"):
            graph.add_edge(leaf, END)
        return graph.compile()

    async def _understand(self, state: TurnState) -> dict:
        """Parse, then merge with the session's standing request: two steps of the turn in one graph
        node, because each node costs LangGraph ~0.2 ms of bookkeeping, more than the merge itself."""
        parsed = await self._parse(state)
        return {**parsed, **self._merge({**state, **parsed})}

    @_timed("intent_parse")
    async def _parse(self, state: TurnState, step: Step) -> dict:
        session = state["session"]
        step.input = {"message": state["message"], "parser": self.parser.name}
        parsed = await self.parser.aparse(state["message"], session.standing)  # the LLM call is its own step
        if self.reader is not None and parsed.parser == "offline":
            # MiniLM on a message it has not seen: a worker thread, like the parse
            parsed = await asyncio.to_thread(read_in_context, self.reader, state["message"], parsed, session)
        llm_facts = {k: v for k, v in parsed.details.items()
                     if k in ("prompt_version", "model", "latency_ms", "input_tokens", "output_tokens")}
        step.output = {"intent": parsed.intent.model_dump(mode="json"), "parser": parsed.parser,
                       "fallback_reason": parsed.fallback_reason, **llm_facts,
                       **{k: parsed.details[k] for k in ("op", "op_probs", "rule_reading") if k in parsed.details}}
        return {"parse": parsed}

    @_timed("merge")
    def _merge(self, state: TurnState, step: Step) -> dict:
        if state["parse"].details.get("reset"):
            start_over(state["session"])
        merged = self._merged(state["user"], state["session"], state["parse"].intent)
        merged, readings, avoid, unused = self._in_context(
            merged, state["session"], rejected_card=bool(state["parse"].details.get("rejected_card")))
        session, said, details = state["session"], state["parse"].intent, state["parse"].details
        # films seen and liked ("I've seen Fargo, loved it") are taste, though never shown; merely
        # seen ones are neither taste nor a rejection of what was told before
        liked = list(details.get("seen_liked", []))
        card = self._card_at(session, said.card_ref or 0) if details.get("seen_liked_card") else None
        if card is not None and details.get("rejected_card"):
            liked.append(card.item_id)  # "I've seen that one, great movie"
        dropped = set(said.exclude_titles) - set(details.get("seen", [])) - set(liked)
        session.told_likes = [t for t in dict.fromkeys([*session.told_likes, *said.titles, *liked])
                              if t not in dropped][-MAX_TOLD:]
        step.output = {"act": merged.act.value, "intent": merged.model_dump(mode="json"), "readings": readings}
        return {"intent": merged, "avoid": avoid, "unused": [*state["parse"].unused, *unused]}

    def _in_context(self, intent: Intent, session: Session,
                    rejected_card: bool = False) -> tuple[Intent, list[str], list[int], list[UnusedPart]]:
        """Resolve what only the conversation gives meaning to: card references, eras relative to
        the shown cards, "something different". Returns the request, how each phrase was read (for
        the trace), the cards to move away from, and parts that could not be used."""
        readings, avoid, unused, update = [], [], [], {}
        shown = session.last_cards
        if intent.act in (Act.recommend, Act.refine, Act.more) and intent.card_ref is not None:
            card = self._card_at(session, intent.card_ref)
            if card is None:
                readings.append(f"card {intent.card_ref or 'it'}: no such card shown")
            elif rejected_card:  # "I've seen that one": never again, and the next page
                update["exclude_titles"] = list(dict.fromkeys([*intent.exclude_titles, card.item_id]))
                readings.append(f"card {intent.card_ref or 'it'} -> {card.title} (seen or disliked: excluded)")
            else:
                update["titles"] = list(dict.fromkeys([*intent.titles, card.item_id]))
                update["act"] = Act.refine if intent.act == Act.more else intent.act
                session.focus = card.item_id
                readings.append(f"card {intent.card_ref or 'it'} -> {card.title} (a reference)")
        years = [c.year for c in shown if c.year]
        for direction in ("newer", "older"):
            if direction not in intent.adjust:
                continue
            reference = int(np.median(years)) if years else self._median_year
            if direction == "newer":
                start = reference + 1
                if start > self._latest_year:
                    unused.append(UnusedPart(text="more recent", why="no_movies_in_era"))
                    readings.append(f"newer than {reference}: nothing, the catalog ends in {self._latest_year}")
                    continue
                end = None   # "newer" opens the era upward, whatever bounded it before
            else:
                end, start = reference - 1, None
            update["years"] = YearRange(start=start, end=end)
            readings.append(f"{direction} -> {replies.era(start, end)} (the last picks' median year was {reference})")
        if "different" in intent.adjust and shown:
            avoid = [c.item_id for c in shown]
            update["titles"] = []
            readings.append(f"something different -> away from the last {len(avoid)} picks")
        for tone in intent.adjust:
            if tone in intent.mood:
                readings.append(f"{tone} -> along the {tone} direction of the item vectors, at least as far as "
                                f"the last picks" if shown else f"{tone} -> along the {tone} direction of the item vectors")
        return (intent.model_copy(update=update) if update else intent), readings, avoid, unused

    @staticmethod
    def _card_at(session: Session, ref: int | None) -> Card | None:
        """The card a turn points at: its rank, or for 0 ("it", "that one") the card last talked
        about, or the only one shown."""
        cards = session.last_cards
        if ref:
            return cards[ref - 1] if ref <= len(cards) else None
        focus = next((c for c in cards if c.item_id == session.focus), None)
        return focus or (cards[0] if len(cards) == 1 else None)


    def _merged(self, user: User, session: Session, new: Intent) -> Intent:
        """The request in force once this turn's intent meets the session's standing one."""
        has_history = bool(self.profiles.ratings(user.key))
        if new.act in (Act.more, Act.refine) and session.standing is None:
            new = new.model_copy(update={"act": Act.recommend})  # nothing to page or refine yet
        if new.act == Act.clarify and session.standing is not None:
            new = new.model_copy(update={"act": Act.more})  # "any suggestions?": more of what stands
        elif new.act == Act.clarify and has_history:
            new = new.model_copy(update={"act": Act.recommend})  # their profile answers a vague request
        elif new.act == Act.recommend and new.is_empty and session.standing is not None:
            # nothing asked ("that was a good one"): a comment; the request and its cards stand
            new = new.model_copy(update={"act": Act.chit_chat})
        elif new.act == Act.recommend and new.is_empty and not has_history:
            new = new.model_copy(update={"act": Act.clarify})
        if (new.act == Act.refine and new.titles and not new.genres and session.standing is not None
                and session.standing.genres and not any(set(self.data.movies[t].genres) & set(session.standing.genres)
                                                        for t in new.titles if t in self.data.movies)):
            # films that share none of the wanted genres ("I loved The Godfather" after "Toy Story for
            # my kids") point somewhere else: a new topic, not a narrowing of the old one
            new = new.model_copy(update={"act": Act.recommend})
        if new.act == Act.recommend and new.card_ref is not None and session.standing is not None:
            # "more like the second one" builds on the conversation it points into
            new = new.model_copy(update={"act": Act.refine})
        return merge(session.standing, new)

    @staticmethod
    def _route(state: TurnState) -> str:
        act = state["intent"].act
        if act in (Act.recommend, Act.refine, Act.more):
            return "recommend"
        return act.value

    @_timed("recommend")
    async def _recommend(self, state: TurnState, step: Step) -> dict:
        user, session, intent = state["user"], state["session"], state["intent"]
        query = await self.encoder.avector(intent)  # a phrase not embedded yet: MiniLM in a worker thread
        shown_before = [c.item_id for c in session.last_cards]
        carried = session.standing is not None and intent.act != Act.recommend
        if intent.act != Act.more:
            session.shown = []
        n = intent.count or DEFAULT_COUNT
        exclude = set(session.shown) | self.profiles.disliked(user.key)
        avoid = state.get("avoid") or []
        exclude |= set(avoid)
        unused = list(state.get("unused") or [])
        notices: list[str] = []
        ranking = self._rank(state, intent, query, n, exclude, shown_before, avoid)
        if not ranking.items and intent.years:  # an era with nothing left in it: say so, keep the rest
            era = replies.era(intent.years.start, intent.years.end)
            intent = intent.model_copy(update={"years": None})
            ranking = self._rank(state, intent, query, n, exclude, shown_before, avoid)
            notices.append(f"Nothing fits all of that {era}, so these are from any year.")
        if not ranking.items and (intent.genres or intent.mood or intent.titles):
            intent = intent.model_copy(update={"genres": [], "mood": [], "titles": []})
            ranking = self._rank(state, intent, query, n, exclude, shown_before, avoid)
            notices.append("Nothing fits all of that, so I kept only your exclusions; try fewer constraints.")
        with recording(state["steps"], "explain") as explain_step:
            cards = self._cards(ranking, user, intent, session.told_likes)
            explain_step.output = {"cards": [{"item_id": c.item_id, "cites": [p["item_id"] for p in c.evidence["profile_items"]],
                                              "genres": c.evidence["genres"], "sources": c.evidence["sources"]}
                                             for c in cards]}
        session.standing = intent.model_copy(update={"act": Act.recommend, "adjust": [], "card_ref": None,
                                                     "explain_rank": None})
        session.shown.extend(c.item_id for c in cards)
        session.last_cards = cards
        session.focus = None
        step.input = {"intent": intent.model_dump(mode="json"), "excluded": len(exclude)}
        step.output = {"items": [c.item_id for c in cards], "cold_start_reason": ranking.cold_start_reason,
                       "tones": ranking.tones, "partial": [c.item_id for c in cards if c.evidence["missing_genres"]]}
        if ranking.cold_start_reason and cards:
            notices.append("You're new here, so these lean on what's popular; like or dislike a few and the "
                           "next ones will be more yours.")
        unmet = self._unmet_moods(intent.mood, cards, shown_before)
        step.output["unmet_moods"] = unmet
        said = intent.model_copy(update={"mood": [m for m in intent.mood if m not in unmet]}) if unmet else intent
        text = self._recommend_text(said, cards, session, carried, unused)
        if unmet and cards:
            text += f" I couldn't make these clearly {replies.join_words([replies.MOOD_WORDS[m] for m in unmet])} " \
                    f"than {'the last ones' if shown_before else 'most movies'}."
        if self.writer is not None and cards:
            text = await self._written(state, intent, cards, text, unused)
        asked = {"intent": intent, "query": query, "n": n, "exclude": frozenset(exclude), "shown": shown_before,
                 "avoid": list(avoid), "told": list(session.told_likes), "query_text": self.encoder.text(intent)}
        return {"result": TurnResult(text, cards, intent.act.value, intent, state["parse"], user,
                                     session.session_id, notices=notices, unused=unused, asked=asked)}

    async def _written(self, state: TurnState, intent: Intent, cards: list[Card], template: str,
                       unused: list[UnusedPart]) -> str:
        """The LLM's wording of the reply and reasons when it passes validation, else the template's
        (both traced: the step says which, and why the LLM's was rejected)."""
        with recording(state["steps"], "write_reply", "generation") as step:
            # awaited (the loop is free meanwhile); it streams drafts where the caller listens (the UI)
            written = await self.writer.awrite(replies.describe(intent, self.data), cards, template, list(intent.genres))
            step.input = {"cards": [c.item_id for c in cards], "model": self.writer.settings.model}
            step.output = {"written_by": written.written_by, "rejected": written.rejected,
                           **{k: v for k, v in written.details.items() if k != "written"}}
        if written.written_by != "llm":
            return template
        for card in cards:
            card.evidence["template_reason"] = card.explanation  # the checked claims stay visible
            card.explanation = written.reasons.get(card.item_id, card.explanation)
        # what could not be used is always said, whoever words the rest
        return " ".join(filter(None, [written.text, replies.unused_sentence(unused)]))

    def _rank(self, state: TurnState, intent: Intent, query, n: int, exclude: set[int], shown: list[int],
              avoid: list[int]) -> Ranking:
        return self.ranker.rank(state["user"], intent, query, n=n, exclude=exclude, steps=state["steps"],
                                query_text=self.encoder.text(intent), shown=shown,
                                avoid=avoid, told=state["session"].told_likes)

    @_timed("explain_card")
    def _explain(self, state: TurnState, step: Step) -> dict:
        session, parsed = state["session"], state["parse"].intent
        card = None
        if parsed.titles:
            card = next((c for c in session.last_cards if c.item_id in parsed.titles), None)
        elif parsed.explain_rank and parsed.explain_rank <= len(session.last_cards):
            card = session.last_cards[parsed.explain_rank - 1]
        else:
            card = self._card_at(session, parsed.card_ref or 0)
        if card is None:
            text = ("Which one? Say for example \"why the second one?\" or name the movie." if session.last_cards
                    else "I haven't recommended anything yet: tell me what you'd like to watch.")
            cards = []
        else:
            session.focus = card.item_id
            text = self._about(card, state["message"])
            cards = [card]
        step.output = {"explained": card.item_id if card else None}
        return {"result": TurnResult(text, cards, Act.explain.value, state["intent"], state["parse"], state["user"],
                                     session.session_id, unused=list(state.get("unused") or []))}

    def _about(self, card: Card, question: str) -> str:
        """Answer a question about a shown movie from what the catalog knows, and say what it doesn't."""
        q = question.lower()
        name = f"{card.title} ({card.year})" if card.year else card.title
        genres = ", ".join(replies.PLURAL[g] for g in card.genres if g in replies.PLURAL) or "unlisted genres"
        mean, count = self._rating_stats.get(card.item_id, (0.0, 0))
        if re.search(r"\b(scary|scare|horror|frightening|creepy|gory)\b", q):
            scary = {"Horror", "Thriller"} & set(card.genres)
            answer = (f"{name} is listed as {genres}, so expect some scares." if scary else
                      f"{name} is listed as {genres}, not horror or thriller, so probably not scary.")
        elif re.search(r"\b(who|actors?|stars?|cast|director|directed)\b", q):
            answer = f"I don't have cast or crew for {name}; it is {genres}."
        elif re.search(r"\b(about|plot|story|synopsis)\b", q):
            answer = f"I don't have plot summaries; {name} is {genres}."
        elif re.search(r"\b(good|worth|rated|rating|any good)\b", q) and count:
            answer = f"{name} averages {mean:.1f}/5 from {count} MovieLens ratings."
        else:
            return f"{name}: {card.explanation}"
        return f"{answer} {card.explanation}"

    @_timed("chit_chat")
    def _chit_chat(self, state: TurnState, step: Step) -> dict:
        lowered = state["message"].lower()
        unused = list(state.get("unused") or [])
        text = next((reply for pattern, reply in CHIT_CHAT_REPLIES if pattern.search(lowered)), None)
        if text is None and state["session"].last_cards:  # a comment mid-conversation
            text = "Say \"more\" for more like these, or tell me what to change."
        if unused:  # what could not be used says more than a canned line
            text = f"{replies.unused_sentence(unused)} {text or CHIT_CHAT_DEFAULT}"
        return {"result": TurnResult(text or CHIT_CHAT_DEFAULT, [], Act.chit_chat.value, state["intent"], state["parse"],
                                     state["user"], state["session"].session_id, unused=unused)}

    @_timed("clarify")
    def _clarify(self, state: TurnState, step: Step) -> dict:
        """A request with nothing to go on yet (and no history to use): ask, and meanwhile show
        what most people like, so the person has something to react to ("more like the second")."""
        user, session = state["user"], state["session"]
        unused = list(state.get("unused") or [])
        intent = Intent(act=Act.clarify)
        ranking = self.ranker.favourites(user, DEFAULT_COUNT, self.profiles.disliked(user.key))
        cards = self._cards(ranking, user, intent, session.told_likes)
        session.standing, session.last_cards, session.focus = Intent(), cards, None
        session.shown = [c.item_id for c in cards]
        step.output = {"items": session.shown}
        text = " ".join(filter(None, [replies.unused_sentence(unused), CLARIFY_QUESTION,
                                      "Meanwhile, a few that many people love:" if cards else ""]))
        return {"result": TurnResult(text, cards, Act.clarify.value, state["intent"], state["parse"],
                                     user, session.session_id, unused=unused)}

    # ---------------------------------------------------------------- helpers
    def _cards(self, ranking: Ranking, user: User, intent: Intent, told: list[int] = ()) -> list[Card]:
        liked = self.profiles.ratings(user.key)
        referenced = list(dict.fromkeys([*intent.titles, *told]))
        cards, cited_before = [], {}
        for item in ranking.items:
            movie = self.data.movies[item.item_id]
            evidence = evidence_for(item, liked, self.evidence, list(intent.genres), referenced, list(intent.mood),
                                    cited_before)
            cards.append(Card(item.item_id, movie.display_title, movie.year, list(movie.genres), explain(evidence),
                              item.score, evidence))
        return cards

    def _unmet_moods(self, moods: list[str], cards: list[Card], before: list[int]) -> list[str]:
        """The moods in force that the picks do not show: their mean position along the mood is not
        above the last picks' (or, with nothing shown before, above the catalog's average), so a
        reply never claims "less violent" for a list that is not."""
        position = self.ranker.position
        unmet = []
        for mood in moods:
            scores = self.ranker.tone_scores(mood)
            now = [scores[position[c.item_id]] for c in cards if c.item_id in position]
            then = [scores[position[i]] for i in before if i in position]
            if now and float(np.mean(now)) <= (float(np.mean(then)) if then else 0.0) + MOOD_MARGIN:
                unmet.append(mood)
        return unmet

    def _recommend_text(self, intent: Intent, cards: list[Card], session: Session, carried: bool,
                        unused: list[UnusedPart]) -> str:
        said = replies.unused_sentence(unused)
        if not cards:
            return " ".join(filter(None, [said, "I found nothing that fits all of that. Try dropping a genre, an era "
                                                "or an exclusion."]))
        partial = {c.title: c.evidence["missing_genres"] for c in cards if c.evidence["missing_genres"]}
        lines = [replies.opener(intent, self.data, session.turns, carried),
                 replies.partial_note(partial, list(intent.genres)), said]
        return " ".join(line for line in lines if line)


_loops = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for ``DialogueManager.turn``: made once, reused by every call (a
    plain loop, not ``asyncio.run``: that would make a loop and a thread pool per turn, and
    ``asyncio.Runner`` installs a SIGINT handler per call, ~0.4 ms)."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


__all__ = ["DialogueManager", "TurnResult", "BadRequest", "UnknownUser", "Step"]
