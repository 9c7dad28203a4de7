"""CineAgent's web entry point: one FastAPI app with the Gradio chat UI at ``/`` and a JSON API.

``cineagent serve`` (or ``python app.py``) runs it with uvicorn. Models load once, in a
background thread started by the app's lifespan: ``/healthz`` answers 503 ``loading`` until they
are ready, then 200. This module is wiring only: turns, swipes and profiles are the agent's
(``agent.dialogue``), the swipe log is ``data.feedback``, the metrics are ``agent.metrics``, the
chat UI is ``web.ui`` and ``/docs`` is ``web.docs``.

Configuration (environment, all optional):

- ``CINEAGENT_PARSER``: ``auto`` (default; the LLM when ``CINEAGENT_LLM_BASE_URL`` is set),
  ``offline`` or ``llm``.
- ``CINEAGENT_MAX_BODY_BYTES``: request bodies above this get 413 (default 65536).
- ``CINEAGENT_SESSION_TTL_S`` / ``CINEAGENT_MAX_SESSIONS``: chat sessions expire after this many
  idle seconds (default 3600) and at most this many are kept, oldest evicted (default 10000).
- ``CINEAGENT_RECENT_TURNS``: turns kept for the Traces tab (default 200).
- ``CINEAGENT_ACCESS_LOG``: ``1`` for uvicorn's line per request (read by ``cineagent serve``).
- ``CINEAGENT_ADMIN_TOKEN``: the operator credential (``web.auth``); unset, operator views are off.
- ``CINEAGENT_RATE_*``: abuse limits on turns, swipes and sign-ups (``web.limits``).

Who may do what is ``web.auth``: every person-scoped route acts on the person of the bearer token
(``data.people``), and MovieLens users are read-only personas a person may start from.
"""
from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a local service
# Turns run on the server's worker threads, and OpenMP (FAISS, torch) gives every new thread the
# process default, read once when the library loads: omp_set_num_threads in agent.runtime reaches
# only the thread that calls it. Left at 2, each search woke a spinning OpenMP helper thread that
# burnt as much CPU as the turn itself (the app CPU per turn that `cineagent bench load` prints).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from fastapi import Depends, FastAPI, Form, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import metrics
from agent.dialogue import MAX_MESSAGE_CHARS, BadRequest, DialogueManager, TurnResult
from agent.intent import MAX_COUNT, UnusedPart
from agent.users import UnknownUser, resolve_user
from data.feedback import FeedbackError, FeedbackLog, FeedbackRecord, iter_feedback, make_record
from data.people import InvalidPerson, InvalidToken, Person, SQLitePeopleStore, is_person_id
from data.store import KeyedLocks, home
from web.auth import OPERATOR_COOKIE, Forbidden, Operator, Unauthorized, bearer_token
from web.docs import install_docs
from web.errors import NotReady, UnknownPersona, UnknownTurn
from web.gate import Gate
from web.limits import Limits, RateLimited, RateSettings
from web.ui import mount as mount_ui

log = logging.getLogger("cineagent.app")


# ---------------------------------------------------------------------------------------- settings
class Settings(BaseModel):
    """Serving settings; ``from_env`` reads them from ``CINEAGENT_*`` variables."""

    model_config = ConfigDict(extra="forbid")

    parser: Literal["auto", "offline", "llm"] = "auto"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    session_ttl_s: float = Field(default=3600.0, gt=0)
    max_sessions: int = Field(default=10_000, ge=1)
    recent_turns: int = Field(default=200, ge=1)

    @classmethod
    def from_env(cls) -> "Settings":
        raw = {name: os.environ[f"CINEAGENT_{name.upper()}"] for name in cls.model_fields
               if f"CINEAGENT_{name.upper()}" in os.environ}
        try:
            return cls(**raw)
        except ValidationError as exc:
            problems = "; ".join(f"CINEAGENT_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"invalid serving configuration: {problems}") from None


# ---------------------------------------------------------------------------------------- runtime
@dataclass
class TurnRecord:
    """One turn as the Traces tab shows it."""

    trace_id: str
    started: float                 # epoch seconds
    channel: str                   # "api" or "ui"
    user: str
    session_id: str
    message: str
    total_ms: float
    outcome: str                   # "ok" or the error shown to the person
    act: str | None = None
    parser: str | None = None
    fallback_reason: str | None = None
    items: int = 0
    steps: list[dict] = field(default_factory=list)   # name, kind, duration_ms, error


class RecentTurns:
    """A thread-safe ring buffer of the latest turns (oldest dropped first)."""

    def __init__(self, size: int) -> None:
        self._turns: deque[TurnRecord] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, record: TurnRecord) -> None:
        with self._lock:
            self._turns.append(record)

    def latest(self) -> list[TurnRecord]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._turns))

    def drop_user(self, user: str) -> None:
        with self._lock:
            kept = [t for t in self._turns if t.user != user]
            self._turns.clear()
            self._turns.extend(kept)


class Runtime:
    """What the app serves from: the agent once loaded, the swipe log, recent turns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.feedback_log = FeedbackLog()
        self.people = SQLitePeopleStore()
        self.limits = Limits.from_settings(RateSettings.from_env())
        self.operator = Operator.from_env()
        # one person's swipes and their deletion, in order (many stripes: people rarely share one)
        self._person_locks = KeyedLocks(1024)
        self.persona_choices: list[tuple[str, str]] | None = None   # the UI's, once the models are up
        self.turns = RecentTurns(settings.recent_turns)
        self.agent: DialogueManager | None = None
        self.error: str | None = None
        self.created = time.monotonic()
        self.load_seconds: float | None = None

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        """Build the agent from the current artifacts (runs in a background thread)."""
        from agent.runtime import load_agent
        from agent.session import SessionStore

        started = time.monotonic()
        try:
            # conversations persist in $CINEAGENT_HOME: a restart (or another process) continues them
            sessions = SessionStore(self.settings.max_sessions, self.settings.session_ttl_s,
                                    path=home() / "sessions.sqlite3")
            agent = load_agent(parser=self.settings.parser, sessions=sessions)
        except Exception as exc:  # noqa: BLE001 - reported by /healthz and every API call
            log.exception("loading the models failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        # everything loaded so far lives as long as the process: moved out of the collector's view,
        # a full collection scans only what turns create (before, it scanned ~600k objects in
        # ~340 ms, timed with gc.callbacks: a pause every in-flight request waited out)
        gc.collect()
        gc.freeze()
        # load_seconds first: /healthz reads it as soon as the agent is there (it once read None)
        self.load_seconds = time.monotonic() - started
        self.agent = agent
        log.info("serving: models %s, parser %s, loaded in %.1f s", self.model_version, self.agent.parser.name,
                 self.load_seconds)

    @property
    def status(self) -> str:
        return "ready" if self.agent is not None else "failed" if self.error else "loading"

    @property
    def model_version(self) -> str | None:
        manifest = self.agent.bundle.manifest if self.agent else None
        return manifest.version if manifest else None

    def require(self) -> DialogueManager:
        if self.agent is None:
            raise NotReady(f"the models failed to load ({self.error}); run `cineagent train`, then restart"
                           if self.error else "the models are still loading; retry in a few seconds")
        return self.agent

    # ------------------------------------------------------------ turns and swipes
    async def chat(self, user: object, session_id: str, message: str, channel: str) -> TurnResult:
        """One turn (API or UI) on the event loop, recorded for the Traces tab and the metrics.

        ``DialogueManager.chat`` is the one path of every turn and never holds the loop for long:
        the LLM call is awaited and MiniLM runs in a worker thread; the rest is ~2.5 ms of pure
        CPU under the GIL (``cineagent bench turn``), which worker threads would only hand off."""
        record, started = self._new_record(user, session_id, message, channel), time.perf_counter()
        try:
            result = await self.require().chat(user, session_id, message)
        except Exception as exc:
            self._record_failure(record, started, exc)
            raise
        return self._record_result(record, started, result)

    def _new_record(self, user: object, session_id: str, message: str, channel: str) -> TurnRecord:
        # a refused turn has no trace of the agent's: it gets an id of its own for the Traces tab
        return TurnRecord(uuid.uuid4().hex, time.time(), channel, str(user), str(session_id), str(message)[:200],
                          0.0, "ok")

    def _record_failure(self, record: TurnRecord, started: float, exc: Exception) -> None:
        record.total_ms, record.outcome = (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"
        self.turns.add(record)

    def _record_result(self, record: TurnRecord, started: float, result: TurnResult) -> TurnResult:
        if is_person_id(result.user.key):
            # what a swipe may later name: this turn, for this person, and these cards only
            self.people.record_turn(result.trace_id, result.user.key, [c.item_id for c in result.cards])
        record.trace_id, record.total_ms = result.trace_id, (time.perf_counter() - started) * 1000
        record.act, record.items = result.act, len(result.cards)
        record.parser = result.parse.parser if result.parse else None
        record.fallback_reason = result.parse.fallback_reason if result.parse else None
        record.steps = [{"name": s.name, "kind": s.kind, "duration_ms": round(s.duration_ms, 2), "error": s.error}
                        for s in result.steps]
        self.turns.add(record)
        metrics.observe_turn(len(result.cards), record.fallback_reason)
        return result

    def swipe(self, user: object, session_id: str, item_id: int, action: str, trace_id: str | None = None,
              rank: int | None = None, query: str | None = None) -> FeedbackRecord:
        """Log the swipe durably, then fold it into the person's profile and vectors at once.

        A ``trace_id`` must be a turn that showed this card to this person (else UnknownTurn):
        only then is the swipe scored on that trace."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        if item_id not in agent.data.movies:
            raise BadRequest(f"item {item_id} is not in the catalog (MovieLens item ids "
                             f"{min(agent.data.movies)}-{max(agent.data.movies)})")
        if trace_id is not None and item_id not in (self.people.shown(trace_id, person.key) or ()):
            raise UnknownTurn(trace_id, item_id)
        record = make_record(user_id=person.key, session_id=session_id, item_id=item_id, action=action,
                             trace_id=trace_id, rank=rank, query=query)
        # under the person's lock, which ``delete`` takes too: a swipe racing their deletion is
        # either removed with the rest or refused, never left behind
        with self._person_locks(person.key):
            if is_person_id(person.key) and self.people.get(person.key) is None:
                raise InvalidToken()
            # the log first: it is the durable record the profile can always be rebuilt from
            self.feedback_log.append(record)
            agent.feedback(person.key, item_id, liked=action == "like", trace_id=trace_id)
        metrics.observe_feedback(action)
        return record

    def undo_swipe(self, user: object, item_id: int) -> str | None:
        """Take back the person's swipe on ``item_id``: out of the log and the profile. Returns the
        action undone, or None when there was no swipe to undo (an undo is idempotent)."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        with self._person_locks(person.key):
            if is_person_id(person.key) and self.people.get(person.key) is None:
                raise InvalidToken()
            action = ("dislike" if item_id in agent.profiles.disliked(person.key) else "like") \
                if item_id in agent.profiles.swipes(person.key) else None
            self.feedback_log.remove_swipe(person.key, item_id)
            if action is None:
                return None
            agent.profiles.remove_swipe(person.key, item_id)
            # the person's folded-in vectors are rebuilt from the profile on their next turn
            # (DialogueManager._ensure_folded); a person left with no swipes and no persona keeps
            # the old fold-in until restart, which only the undone swipe's weight distinguishes
            agent.forget(person.key)
        metrics.observe_feedback(f"undo_{action}")
        return action

    def profile(self, user: object) -> dict:
        """The person's own ratings and swipes, with titles."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        swipes = agent.profiles.swipes(person.key)
        disliked = agent.profiles.disliked(person.key)
        ratings = agent.profiles.ratings(person.key)
        items = [{"item_id": i, "title": agent.data.movies[i].title, "year": agent.data.movies[i].year, "rating": r,
                  "source": "swipe" if i in swipes else "movielens",
                  "swipe": ("dislike" if i in disliked else "like") if i in swipes else None}
                 for i, r in sorted(ratings.items()) if i in agent.data.movies]
        seed = agent.profiles.seeded_from(person.key)
        return {"user_id": person.key, "known": person.known, "seed_from": int(seed) if seed else None,
                "ratings": items, "likes": sorted(i for i in swipes if i not in disliked), "dislikes": sorted(disliked)}

    # ------------------------------------------------------------ people
    def create_person(self, name: str | None, seed_from: int | None, client: str) -> tuple[Person, str]:
        agent = self.require()
        self.limits.new_person(client)
        if seed_from is not None and seed_from not in agent.data.user_id_set:
            ids = agent.data.user_id_set
            raise UnknownPersona(f"seed_from: {seed_from} is not a MovieLens user ({min(ids)}-{max(ids)}); "
                                 "leave it out to start from scratch")
        person, token = self.people.create(name, seed_from)
        self._seed(person)
        return person, token

    def authenticate(self, token: str) -> Person:
        """The person holding ``token`` (raises InvalidToken), their persona seed in place."""
        person = self.people.authenticate(token)
        self._seed(person)
        return person

    def _seed(self, person: Person) -> None:
        # after a restart the profile store learns each person's persona on their first call
        if person.seed_from is not None and self.agent is not None:
            self.agent.profiles.seed(person.id, str(person.seed_from))

    def export(self, person: Person) -> dict:
        """Everything held about the person: who they are, their swipes, profile, live sessions,
        the turns they were shown and those turns' records in the trace log."""
        from agent.tracing import iter_traces

        agent = self.require()
        stored = self.people.export(person.id)
        swipes = [r.model_dump(mode="json") for r in iter_feedback(self.feedback_log.path) if r.user_id == person.id]
        sessions = [{"session_id": s.session_id, "turns": s.turns, "shown": list(s.shown),
                     "standing": s.standing.model_dump(mode="json") if s.standing else None}
                    for s in agent.sessions.of_user(person.id)]
        traces = [t for t in iter_traces() if t.get("user") == person.id]
        return {"person": stored["person"], "profile": self.profile(person.id), "swipes": swipes,
                "sessions": sessions, "turns": stored["turns"], "traces": traces}

    def delete(self, person: Person) -> dict:
        """Forget the person: their token first (so nothing more is done in their name), then their
        swipes, profile, sessions and caches. The trace log keeps their turns under the random
        person id only, which nothing maps to a person any more."""
        agent = self.require()
        with self._person_locks(person.id):
            self.people.delete(person.id)
            removed = {"swipes": self.feedback_log.remove_user(person.id),
                       "sessions": agent.sessions.discard_user(person.id),
                       "profile": agent.profiles.delete(person.id)}
            agent.forget(person.id)
        self.turns.drop_user(person.id)
        self.limits.forget_person(person.id)
        return removed


# ---------------------------------------------------------------------------------------- API models
SessionId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                                       description="refinements accumulate within a session (yours alone)")]
TraceId = Annotated[StrictStr, Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$",
                                     description="the turn that showed the card (its `trace_id`)")]


class Body(BaseModel):
    # a misspelt field is an error, not silently ignored; strict: `true` is not the number 1 and
    # "0196" is not 196
    model_config = ConfigDict(extra="forbid", strict=True)


class PersonRequest(Body):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=64,
                                   description="a display name, kept with the person only (never in traces)")
    seed_from: StrictInt | None = Field(default=None, ge=1, le=943, description=(
        "a MovieLens user id (1-943): the new profile starts with that persona's ratings (a copy: "
        "your swipes never change the persona)"))


class PersonCreated(BaseModel):
    user_id: str
    token: str = Field(description="send as `Authorization: Bearer <token>`; shown once, only its hash is stored")
    name: str | None
    seed_from: int | None


class ChatRequest(Body):
    session_id: SessionId
    message: StrictStr = Field(max_length=MAX_MESSAGE_CHARS)


class RecommendRequest(Body):
    query: StrictStr = Field(max_length=MAX_MESSAGE_CHARS, examples=["a funny sci-fi like Men in Black, nothing scary"])
    n: StrictInt | None = Field(default=None, ge=1, le=MAX_COUNT,
                                description="at most this many items (the request's own count, else 10, bounds it)")


class FeedbackRequest(Body):
    session_id: SessionId
    item_id: StrictInt = Field(ge=1, le=1_000_000, description="MovieLens item id of the swiped card")
    action: Literal["like", "dislike"]
    trace_id: TraceId | None = None
    rank: StrictInt | None = Field(default=None, ge=1, le=MAX_COUNT,
                                   description="1-based position of the card in that turn")
    query: StrictStr | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class UndoRequest(Body):
    item_id: StrictInt = Field(ge=1, le=1_000_000, description="MovieLens item id of the swiped card")


class UndoResponse(BaseModel):
    undone: Literal["like", "dislike"] | None = Field(
        description="the swipe taken back, or null when you had none on this item")
    item_id: int


class CardOut(BaseModel):
    item_id: int
    title: str
    year: int | None
    genres: list[str]
    explanation: str
    score: float
    evidence: dict[str, Any]


class ChatResponse(BaseModel):
    text: str
    act: str
    intent: dict[str, Any]
    items: list[CardOut]
    notices: list[str]
    unused: list[UnusedPart] = Field(description="parts of the message that could not be used, and why "
                                     "(the catalog has no people or plots, ends in 1998, is English only)")
    parser: str | None
    fallback_reason: str | None
    trace_id: str
    session_id: str


class RecommendResponse(BaseModel):
    intent: dict[str, Any]
    items: list[CardOut]
    text: str
    unused: list[UnusedPart]
    trace_id: str


class FeedbackResponse(BaseModel):
    recorded: FeedbackRecord


class ProfileItem(BaseModel):
    item_id: int
    title: str
    year: int | None
    rating: int
    source: Literal["movielens", "swipe"]
    swipe: Literal["like", "dislike"] | None


class ProfileResponse(BaseModel):
    user_id: str
    known: bool
    seed_from: int | None = Field(description="the MovieLens persona the profile started from")
    ratings: list[ProfileItem]
    likes: list[int]
    dislikes: list[int]


class ExportResponse(BaseModel):
    person: dict[str, Any]
    profile: ProfileResponse
    swipes: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    traces: list[dict[str, Any]]


class DeleteResponse(BaseModel):
    deleted: bool
    swipes: int
    sessions: int
    profile: bool


class ErrorBody(BaseModel):
    error: str
    details: list[dict[str, Any]] | None = None


def _error(description: str, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return answer


ERRORS = {400: _error("the request cannot be served as sent"),
          413: _error("request body too large"),
          422: _error("invalid fields; `details` lists each"),
          431: _error("request headers too large"),
          503: _error("models loading or failed to load", {"Retry-After": "seconds"})}
PERSON_ERRORS = {**ERRORS,
                 401: _error("missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}),
                 403: _error("the token's person may not act on this data"),
                 429: _error("rate limit: too many turns or swipes", {"Retry-After": "seconds"})}
TURN_ERRORS = {k: v for k, v in PERSON_ERRORS.items() if k != 403}
SWIPE_ERRORS = {**TURN_ERRORS, 404: _error("the trace_id is not a turn of yours that showed this card")}


# ---------------------------------------------------------------------------------------- API
async def agent_ready(request: Request) -> Runtime:
    """Dependency of the agent's routes: 503 until the models are loaded (async: a sync dependency
    would cost each request one more trip through the thread pool)."""
    runtime: Runtime = request.app.state.runtime
    runtime.require()
    return runtime


Ready = Annotated[Runtime, Depends(agent_ready)]
bearer = HTTPBearer(auto_error=False, description="the token from POST /api/people")


async def current_person(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Person:
    """Dependency of person-scoped routes: the bearer token's person, else 401."""
    # parsed here (it says what is wrong with a missing or malformed header); ``credentials`` is only
    # what declares the bearer scheme in the OpenAPI schema
    runtime: Runtime = request.app.state.runtime
    return runtime.authenticate(bearer_token(request.headers.get("authorization")))


Me = Annotated[Person, Depends(current_person)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_api(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        from agent.tracing import setup_tracing
        from eval.nightly import NightlyScheduler

        setup_tracing()   # before the agent is built; a no-op when `cineagent serve` already did it
        scheduler = NightlyScheduler.from_env()   # CINEAGENT_NIGHTLY_AT=02:30 turns it on (off by default)
        if scheduler is not None:
            scheduler.start()
        # load in the background so /healthz can say "loading" instead of the port staying closed
        threading.Thread(target=runtime.load, name="cineagent-loader", daemon=True).start()
        yield
        if scheduler is not None:
            scheduler.stop()
        # nothing to flush on shutdown: every swipe is fsynced before its request is answered

    # /docs is web.docs's: Swagger UI from local files, so the page also works offline
    api = FastAPI(title="CineAgent", version="0.1.0", lifespan=lifespan, docs_url=None,
                  description="Conversational movie recommendations on MovieLens 100k. The chat UI is at `/`.")
    api.state.runtime = runtime
    install_error_handlers(api)
    api.add_middleware(RequestMetrics)
    api.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    api.add_middleware(Gate)  # outermost: unused routes and oversized headers never reach the rest

    @api.post("/api/people", response_model=PersonCreated, status_code=201, tags=["people"],
              responses={**ERRORS, 429: PERSON_ERRORS[429]})
    async def create_person(body: PersonRequest, request: Request, rt: Ready) -> dict:
        """A new person and their bearer token (shown once). ``seed_from`` starts the profile from a
        MovieLens persona's ratings; without it the person starts from scratch."""
        person, token = rt.create_person(body.name, body.seed_from, client_of(request))
        return {"user_id": person.id, "token": token, "name": person.name, "seed_from": person.seed_from}

    @api.get("/api/people/me/export", response_model=ExportResponse, responses=TURN_ERRORS, tags=["people"])
    def export_me(me: Me, request: Request, rt: Ready) -> dict:
        """Everything held about the token's person: record, profile, swipes, sessions, turns, traces."""
        rt.limits.turn(me.id, client_of(request))  # it reads the whole swipe and trace logs: limited like a turn
        return rt.export(me)

    @api.delete("/api/people/me", response_model=DeleteResponse, responses=TURN_ERRORS, tags=["people"])
    def delete_me(me: Me, rt: Ready) -> dict:
        """Delete the token's person everywhere; the token stops working at once."""
        return {"deleted": True, **rt.delete(me)}

    @api.post("/api/chat", response_model=ChatResponse, responses=TURN_ERRORS, tags=["agent"])
    async def chat(body: ChatRequest, me: Me, request: Request, rt: Ready) -> dict:
        """One chat turn: text plus recommendation cards with their evidence."""
        rt.limits.turn(me.id, client_of(request))
        result = await rt.chat(me.id, body.session_id, body.message, channel="api")
        return {**result.as_dict(), "session_id": result.session_id}

    @api.post("/api/recommend", response_model=RecommendResponse, responses=TURN_ERRORS, tags=["agent"])
    async def recommend(body: RecommendRequest, me: Me, request: Request, rt: Ready) -> dict:
        """One stand-alone request (its own session): the parsed intent and the ranked items."""
        rt.limits.turn(me.id, client_of(request))
        result = await rt.chat(me.id, f"recommend-{uuid.uuid4().hex}", body.query, channel="api")
        # a one-off request: its session must not push live conversations out of the bounded store
        rt.require().sessions.discard(result.session_id, result.user.key)
        items = [c.as_dict() for c in result.cards][: body.n]
        return {"intent": result.intent.model_dump(mode="json"), "items": items, "text": result.text,
                "unused": [u.model_dump() for u in result.unused], "trace_id": result.trace_id}

    @api.post("/api/feedback", response_model=FeedbackResponse, responses=SWIPE_ERRORS, tags=["agent"])
    def feedback(body: FeedbackRequest, me: Me, request: Request, rt: Ready) -> dict:
        """A like/dislike swipe: logged durably, then folded into the person's profile at once."""
        rt.limits.swipe(me.id, client_of(request))
        return {"recorded": rt.swipe(me.id, body.session_id, body.item_id, body.action, body.trace_id,
                                     body.rank, body.query)}

    @api.post("/api/feedback/undo", response_model=UndoResponse, responses=TURN_ERRORS, tags=["agent"])
    def undo_feedback(body: UndoRequest, me: Me, request: Request, rt: Ready) -> dict:
        """Take back your own like/dislike on an item: removed from the swipe log and your profile
        (it may be suggested again). Counts against the swipe rate limit."""
        rt.limits.swipe(me.id, client_of(request))
        return {"undone": rt.undo_swipe(me.id, body.item_id), "item_id": body.item_id}

    @api.get("/api/users/{user_id}/profile", response_model=ProfileResponse, responses=PERSON_ERRORS, tags=["agent"])
    def profile(user_id: Annotated[str, Path(min_length=1, max_length=64)], me: Me, rt: Ready) -> dict:
        """The token's person's own ratings and swipes, with titles (``me`` names them too); anyone
        else's is 403, whether they exist or not."""
        if user_id not in ("me", me.id):
            raise Forbidden()
        return rt.profile(me.id)

    install_operator_routes(api, runtime.operator)
    install_docs(api)

    @api.get("/healthz", tags=["ops"], responses={503: {"description": "loading or failed"}})
    async def healthz(request: Request) -> JSONResponse:  # async: never queues behind busy worker threads
        rt: Runtime = request.app.state.runtime
        body: dict[str, Any] = {"status": rt.status}
        if rt.agent is not None:
            body.update(models=rt.model_version, parser=rt.agent.parser.name, load_seconds=round(rt.load_seconds, 2))
        elif rt.error:
            body["error"] = rt.error
        return JSONResponse(body, status_code=200 if rt.agent is not None else 503)

    @api.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return api


OPERATOR_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>CineAgent operator</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h2>CineAgent: operator sign-in</h2>
<p>{message}</p>
<form method="post" action="/operator"><label>Admin token <input type="password" name="token" id="admin-token"
 autocomplete="off" maxlength="256" required></label> <button type="submit" id="operator-login">Sign in</button></form>
<form method="post" action="/operator/logout"><button type="submit">Sign out</button></form>
<p><a href="/">Back to the chat</a></p></body></html>"""


def install_operator_routes(api: FastAPI, operator: Operator) -> None:
    """``/operator``: the operator signs in with ``CINEAGENT_ADMIN_TOKEN`` and gets a cookie (an HMAC
    of the token, HttpOnly, SameSite=Strict) that shows them the UI's Traces tab. Off (404) without
    the token configured. Not in the OpenAPI schema: it is for a person at a browser."""

    def page(message: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(OPERATOR_PAGE.format(message=message), status_code=status,
                            headers={"Cache-Control": "no-store"})

    @api.get("/operator", include_in_schema=False)
    async def operator_form() -> HTMLResponse:
        if not operator.enabled:
            return page("Operator views are off: set CINEAGENT_ADMIN_TOKEN and restart.", 404)
        return page("Sign in to see the Traces tab.")

    @api.post("/operator", include_in_schema=False)
    async def operator_login(token: Annotated[str, Form(max_length=256)]) -> HTMLResponse:
        if not operator.enabled:
            return page("Operator views are off: set CINEAGENT_ADMIN_TOKEN and restart.", 404)
        if not operator.check_token(token):
            return page("That is not the admin token.", 401)
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(OPERATOR_COOKIE, operator.cookie_value(), httponly=True, samesite="strict",
                          max_age=12 * 3600)
        return answer

    @api.post("/operator/logout", include_in_schema=False)
    async def operator_logout() -> RedirectResponse:
        answer = RedirectResponse("/", status_code=303)
        answer.delete_cookie(OPERATOR_COOKIE)
        return answer


def error_response(status: int, message: str, details: list | None = None, headers: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def validation_detail(error: dict) -> dict:
    """One pydantic/FastAPI validation error as {field, problem, type}, in words a client can act on."""
    if error["type"] == "json_invalid":  # loc is ("body", character offset)
        reason = error.get("ctx", {}).get("error", "")
        return {"field": "body", "problem": f"not valid JSON ({reason} at character {error['loc'][-1]})",
                "type": error["type"]}
    field = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
    return {"field": field, "problem": error["msg"], "type": error["type"]}


def install_error_handlers(api: FastAPI) -> None:
    """People's mistakes -> 4xx naming the problem; only genuine faults -> 500 (logged)."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [validation_detail(e) for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return error_response(422, f"invalid request: {summary}", details)

    @api.exception_handler(BadRequest)
    @api.exception_handler(FeedbackError)
    async def bad_request(_: Request, exc: ValueError) -> JSONResponse:
        return error_response(400, str(exc))

    @api.exception_handler(UnknownUser)
    async def unknown_user(_: Request, exc: UnknownUser) -> JSONResponse:
        return error_response(404, str(exc))

    @api.exception_handler(Unauthorized)
    @api.exception_handler(InvalidToken)
    async def unauthorized(_: Request, exc: Exception) -> JSONResponse:
        return error_response(401, str(exc), headers={"WWW-Authenticate": "Bearer"})

    @api.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return error_response(403, str(exc))

    @api.exception_handler(UnknownTurn)
    async def unknown_turn(_: Request, exc: UnknownTurn) -> JSONResponse:
        return error_response(404, str(exc))

    @api.exception_handler(UnknownPersona)
    @api.exception_handler(InvalidPerson)
    async def bad_person(_: Request, exc: ValueError) -> JSONResponse:
        return error_response(400, str(exc))

    @api.exception_handler(RateLimited)
    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return error_response(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @api.exception_handler(NotReady)
    async def not_ready(_: Request, exc: NotReady) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "5"})

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; it has been logged")


# ---------------------------------------------------------------------------------------- middleware
class BodyTooLarge(StarletteHTTPException):
    """Raised while a body streams past the limit; an HTTPException so FastAPI passes it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body too large: the limit is {max_bytes} bytes")


class BodySizeLimit:
    """413 for request bodies over ``max_bytes``: by Content-Length up front, else counted as they stream."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await error_response(413, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # read outside a route (the UI's own handlers): answer here
            if started:
                raise
            await error_response(413, exc.detail)(scope, receive, send)


class RequestMetrics:
    """Count and time every request to a route of this app (the UI's traffic is Gradio's own)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/api/", "/healthz")):
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def recorded_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded_send)
        finally:
            route = scope.get("route")
            # the route template, not the raw path: /api/users/{user_id}/profile is one series
            endpoint = getattr(route, "path", None) or "unmatched"
            metrics.observe_request(endpoint, status, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------- app
def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = Runtime(settings or Settings.from_env())
    return mount_ui(build_api(runtime), runtime)


app = create_app()

if __name__ == "__main__":
    from cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
