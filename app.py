"""CineAgent's web entry point: one FastAPI app with the Gradio chat UI at ``/`` and a JSON API.

``cineagent serve`` (or ``python app.py``) runs it with uvicorn. Models load once, in a
background thread started by the app's lifespan: ``/healthz`` answers 503 ``loading`` until they
are ready, then 200. This module is wiring only: turns, swipes and profiles are the agent's
(``agent.dialogue``), the swipe log is ``data.feedback``, the metrics are ``agent.metrics``.

Configuration (environment, all optional):

- ``CINEAGENT_PARSER``: ``auto`` (default; the LLM when ``CINEAGENT_LLM_BASE_URL`` is set),
  ``offline`` or ``llm``.
- ``CINEAGENT_MAX_BODY_BYTES``: request bodies above this get 413 (default 65536).
- ``CINEAGENT_SESSION_TTL_S`` / ``CINEAGENT_MAX_SESSIONS``: chat sessions expire after this many
  idle seconds (default 3600) and at most this many are kept, oldest evicted (default 10000).
- ``CINEAGENT_RECENT_TURNS``: turns kept for the Traces tab (default 200).
- ``CINEAGENT_TURN_SLOTS``: turns computed at once on threads (UI turns, API turns that call the
  LLM), the rest wait their turn (default 2 x CPUs). API turns with the offline parser run on the
  event loop, one at a time (``Runtime.turns_inline``).
- ``CINEAGENT_ACCESS_LOG``: ``1`` for uvicorn's line per request (read by ``cineagent serve``).
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
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, Iterator, Literal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a local service
# Turns run on the server's worker threads, and OpenMP (FAISS, torch) gives every new thread the
# process default, read once when the library loads: omp_set_num_threads in agent.runtime reaches
# only the thread that calls it. Left at 2, each search woke a spinning OpenMP helper thread that
# burnt as much CPU as the turn itself (the app CPU per turn that `cineagent bench load` prints).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gradio as gr
from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import metrics
from agent.dialogue import MAX_MESSAGE_CHARS, BadRequest, DialogueManager, TurnResult
from agent.intent import MAX_COUNT
from agent.users import UnknownUser, resolve_user
from data.feedback import FeedbackError, FeedbackLog, FeedbackRecord, make_record

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
    # turns run on threads (the UI's, and API turns that call the LLM) take a slot: a few at once
    # keep the cores busy, more only add contention and tail latency (see ``Runtime.turns_inline``)
    turn_slots: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1)

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
class NotReady(RuntimeError):
    """The models are still loading (or failed to load); the message says which."""


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


class Runtime:
    """What the app serves from: the agent once loaded, the swipe log, recent turns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.feedback_log = FeedbackLog()
        self.turns = RecentTurns(settings.recent_turns)
        self.agent: DialogueManager | None = None
        self.error: str | None = None
        self.created = time.monotonic()
        self.load_seconds: float | None = None
        self._turn_slots = threading.BoundedSemaphore(settings.turn_slots)

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        """Build the agent from the current artifacts (runs in a background thread)."""
        from agent.runtime import load_agent
        from agent.session import SessionStore

        started = time.monotonic()
        try:
            sessions = SessionStore(self.settings.max_sessions, self.settings.session_ttl_s)
            self.agent = load_agent(parser=self.settings.parser, sessions=sessions)
        except Exception as exc:  # noqa: BLE001 - reported by /healthz and every API call
            log.exception("loading the models failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        # everything loaded so far lives as long as the process: moved out of the collector's view,
        # a full collection scans only what turns create (before, it scanned ~600k objects in
        # ~340 ms, timed with gc.callbacks: a pause every in-flight request waited out)
        gc.collect()
        gc.freeze()
        self.load_seconds = time.monotonic() - started
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
        """Log the swipe durably, then fold it into the person's profile and vectors at once."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        if item_id not in agent.data.movies:
            raise BadRequest(f"item {item_id} is not in the catalog (MovieLens item ids "
                             f"{min(agent.data.movies)}-{max(agent.data.movies)})")
        record = make_record(user_id=person.key, session_id=session_id, item_id=item_id, action=action,
                             trace_id=trace_id, rank=rank, query=query)
        # the log first: it is the durable record the profile can always be rebuilt from
        self.feedback_log.append(record)
        agent.feedback(person.key, item_id, liked=action == "like", trace_id=trace_id)
        metrics.observe_feedback(action)
        return record

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
        return {"user_id": person.key, "known": person.known, "ratings": items,
                "likes": sorted(i for i in swipes if i not in disliked), "dislikes": sorted(disliked)}


# ---------------------------------------------------------------------------------------- API models
UserKey = Annotated[int | str, Field(description="a MovieLens user id (1-943) or a new person's name",
                                     examples=["196", "alice"])]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class ChatRequest(Body):
    user_id: UserKey
    session_id: str = Field(min_length=1, max_length=128, description="refinements accumulate within a session")
    message: str = Field(max_length=MAX_MESSAGE_CHARS)


class RecommendRequest(Body):
    user_id: UserKey
    query: str = Field(max_length=MAX_MESSAGE_CHARS, examples=["a funny sci-fi like Men in Black, nothing scary"])
    n: int | None = Field(default=None, ge=1, le=MAX_COUNT,
                          description="at most this many items (the request's own count, else 10, bounds it)")


class FeedbackRequest(Body):
    user_id: UserKey
    session_id: str = Field(min_length=1, max_length=128)
    item_id: int = Field(ge=1, description="MovieLens item id of the swiped card")
    action: Literal["like", "dislike"]
    trace_id: str | None = Field(default=None, max_length=128, description="the turn that showed the card")
    rank: int | None = Field(default=None, ge=1, description="1-based position of the card in that turn")
    query: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


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
    parser: str | None
    fallback_reason: str | None
    trace_id: str
    session_id: str


class RecommendResponse(BaseModel):
    intent: dict[str, Any]
    items: list[CardOut]
    text: str
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
    ratings: list[ProfileItem]
    likes: list[int]
    dislikes: list[int]


class ErrorBody(BaseModel):
    error: str
    details: list[dict[str, Any]] | None = None


ERRORS = {400: {"model": ErrorBody, "description": "the request cannot be served as sent"},
          404: {"model": ErrorBody, "description": "unknown user"},
          413: {"model": ErrorBody, "description": "request body too large"},
          422: {"model": ErrorBody, "description": "invalid fields; `details` lists each"},
          503: {"model": ErrorBody, "description": "models loading or failed to load"}}


# ---------------------------------------------------------------------------------------- API
async def agent_ready(request: Request) -> Runtime:
    """Dependency of the agent's routes: 503 until the models are loaded (async: a sync dependency
    would cost each request one more trip through the thread pool)."""
    runtime: Runtime = request.app.state.runtime
    runtime.require()
    return runtime


Ready = Annotated[Runtime, Depends(agent_ready)]


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

    api = FastAPI(title="CineAgent", version="0.1.0", lifespan=lifespan,
                  description="Conversational movie recommendations on MovieLens 100k. The chat UI is at `/`.")
    api.state.runtime = runtime
    install_error_handlers(api)
    api.add_middleware(RequestMetrics)
    api.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)  # outermost of the two

    @api.post("/api/chat", response_model=ChatResponse, responses=ERRORS, tags=["agent"])
    async def chat(body: ChatRequest, rt: Ready) -> dict:
        """One chat turn: text plus recommendation cards with their evidence."""
        result = await rt.chat(body.user_id, body.session_id, body.message, channel="api")
        return {**result.as_dict(), "session_id": result.session_id}

    @api.post("/api/recommend", response_model=RecommendResponse, responses=ERRORS, tags=["agent"])
    async def recommend(body: RecommendRequest, rt: Ready) -> dict:
        """One stand-alone request (its own session): the parsed intent and the ranked items."""
        result = await rt.chat(body.user_id, f"recommend-{uuid.uuid4().hex}", body.query, channel="api")
        # a one-off request: its session must not push live conversations out of the bounded store
        rt.require().sessions.discard(result.session_id, result.user.key)
        items = [c.as_dict() for c in result.cards][: body.n]
        return {"intent": result.intent.model_dump(mode="json"), "items": items, "text": result.text,
                "trace_id": result.trace_id}

    @api.post("/api/feedback", response_model=FeedbackResponse, responses=ERRORS, tags=["agent"])
    def feedback(body: FeedbackRequest, rt: Ready) -> dict:
        """A like/dislike swipe: logged durably, then folded into the person's profile at once."""
        return {"recorded": rt.swipe(body.user_id, body.session_id, body.item_id, body.action, body.trace_id,
                                     body.rank, body.query)}

    @api.get("/api/users/{user_id}/profile", response_model=ProfileResponse, responses=ERRORS, tags=["agent"])
    def profile(user_id: Annotated[str, Path(min_length=1, max_length=64)], rt: Ready) -> dict:
        """This person's own ratings and swipes (never anyone else's), with titles."""
        return rt.profile(user_id)

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


# ---------------------------------------------------------------------------------------- UI
TURN_COLUMNS = ["time", "trace_id", "channel", "user", "message", "act", "parser", "items", "total_ms", "outcome"]
STEP_COLUMNS = ["trace_id", "step", "kind", "duration_ms", "error"]
CSS = """
.card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 6px 10px; margin-bottom: 4px;}
.card .like-btn, .card .dislike-btn {max-width: 9em; transition: none;}  /* a new turn shows at once */
#parser-note {font-size: 0.9em; opacity: 0.85;}
"""


def banner(runtime: Runtime) -> tuple[str, gr.Timer]:
    """Models/parser status line; the timer stops polling once the models are up (or failed)."""
    if runtime.status == "loading":
        return f"**Loading models…** ({time.monotonic() - runtime.created:.0f} s)", gr.Timer(active=True)
    if runtime.status == "failed":
        return f"**The models failed to load:** {runtime.error}", gr.Timer(active=False)
    if runtime.agent.parser.name == "offline":
        note = ("**No LLM is configured** (set `CINEAGENT_LLM_BASE_URL` to use one): the offline parser "
                "(genre lexicon, sentence embeddings, fuzzy title matching) is reading your requests.")
    else:
        note = "**An LLM reads your requests**; if it fails or times out, the offline parser answers instead."
    return f"{note} Models `{runtime.model_version}`.", gr.Timer(active=False)


def card_markdown(rank: int, card: dict) -> str:
    year = f" ({card['year']})" if card["year"] else ""
    return f"**{rank}. {card['title']}**{year} · _{', '.join(card['genres'])}_\n\n{card['explanation']}"


def evidence_markdown(card: dict) -> str:
    """The "why" detail: the profile items, genres and sources behind the pick."""
    ev, lines = card["evidence"], []
    for p in ev.get("profile_items", []):
        lines.append(f"- you rated **{p['title']}** {p['your_rating']}; its EASE weight toward this pick is {p['weight']:.3f}")
    if ev.get("genres"):
        lines.append(f"- matches the genres you asked for: {', '.join(ev['genres'])}")
    for name, rank in ev.get("sources", {}).items():
        lines.append(f"- ranked #{rank} by `{name}`")
    if ev.get("referenced_titles"):
        lines.append(f"- close to {', '.join(ev['referenced_titles'])}, which you mentioned")
    lines.append(f"- fused score {card['score']:.3f}")
    return "\n".join(lines)


def reply_markdown(result: TurnResult) -> str:
    notes = "".join(f"\n\n_{n}_" for n in result.notices)
    picks = "".join(f"\n{i}. {c.title}" + (f" ({c.year})" if c.year else "") for i, c in enumerate(result.cards, 1))
    return f"{result.text}{notes}\n{picks}" if picks else f"{result.text}{notes}"


def describe_user(runtime: Runtime, key: str) -> str:
    agent = runtime.require()
    person = resolve_user(key, agent.data)
    rated = len(agent.profiles.ratings(person.key))
    kind = "MovieLens user" if person.known else "new user"
    return f"Chatting as **{person.key}** ({kind}, {rated} ratings and swipes on record)."


PEOPLE_ERRORS = (BadRequest, UnknownUser, NotReady, FeedbackError)  # shown to the person, never a crash


def status_of(exc: Exception) -> int:
    return 503 if isinstance(exc, NotReady) else 404 if isinstance(exc, UnknownUser) else 400


@contextmanager
def observed(endpoint: str) -> Iterator[dict]:
    """Count and time a UI action like an API request; the block sets ``outcome["status"]`` (500 if it raises)."""
    outcome, started = {"status": 500}, time.perf_counter()
    try:
        yield outcome
    finally:
        metrics.observe_request(endpoint, outcome["status"], time.perf_counter() - started)


async def ui_chat(runtime: Runtime, user: str, message: str, history: list, session: dict | None):
    """Send one message from the UI -> (chat, cleared box, cards, session, history, status, who)."""
    history, cards, who = list(history or []), [], gr.update()
    with observed("ui/chat") as outcome:
        try:
            key = resolve_user(user, runtime.require().data).key
            if not session or session["user"] != key:
                session = {"user": key, "session_id": uuid.uuid4().hex}
                history = []  # a different person: a fresh conversation
            history.append({"role": "user", "content": message})
            result = await runtime.chat(key, session["session_id"], message, channel="ui")
            history.append({"role": "assistant", "content": reply_markdown(result)})
            cards = [{**c.as_dict(), "rank": i, "trace_id": result.trace_id, "query": message, "user": key,
                      "session_id": session["session_id"]} for i, c in enumerate(result.cards, 1)]
            who = describe_user(runtime, key)
            outcome["status"] = 200
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            history.append({"role": "assistant", "content": f"**Sorry:** {exc}"})
    return history, "", cards, session, history, "", who


def ui_swipe(runtime: Runtime, card: dict, action: str):
    """A Like/Dislike click on one card -> (status line, like button, dislike button)."""
    with observed("ui/feedback") as outcome:
        try:
            runtime.swipe(card["user"], card["session_id"], card["item_id"], action, card["trace_id"], card["rank"],
                          card["query"])
            outcome["status"] = 200
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return f"**Not recorded:** {exc}", gr.update(), gr.update()
    liked = action == "like"
    text = (f"Liked **{card['title']}**: more like it next time." if liked
            else f"Disliked **{card['title']}**: it won't be suggested again.")
    return (text, gr.update(value="Liked" if liked else "Like", variant="primary" if liked else "secondary"),
            gr.update(value="Disliked" if not liked else "Dislike", variant="stop" if not liked else "secondary"))


def trace_tables(runtime: Runtime) -> tuple[list[list], list[list]]:
    """The local trace log (agent.tracing): this server's turns and any other process's (CLI)."""
    from agent.tracing import recent_traces

    channels = {t.trace_id: t.channel for t in runtime.turns.latest()}
    traces = recent_traces(runtime.settings.recent_turns)
    rows = [[time.strftime("%H:%M:%S", time.localtime(t["ts"])), t["trace_id"][:12], channels.get(t["trace_id"], "cli"),
             t["user"], t["message"][:200], t["act"], t["parser"] or "", len(t["items"]), round(t["duration_ms"], 1),
             t["error"] or (f"ok (fallback: {t['fallback_reason']})" if t["fallback_reason"] else "ok")]
            for t in traces]
    steps = [[t["trace_id"][:12], s["name"], s["kind"], s["duration_ms"], s["error"] or ""] for t in traces
             for s in t["steps"]]
    return rows, steps


def render_card(card: dict) -> tuple[gr.Button, gr.Button]:
    """One card: title, year, genres, explanation, a "why" fold with the evidence, Like/Dislike."""
    # stable hooks for tests and styling: the item id, and the turn that produced the card
    # a Column, not a Group: Gradio 6 renders a Group's id and classes on two nested divs
    with gr.Column(variant="panel", elem_classes=["card", f"turn-{card['trace_id']}"],
                   elem_id=f"card-{card['item_id']}"):
        gr.Markdown(card_markdown(card["rank"], card), elem_classes=["card-text"])
        with gr.Accordion("Why this pick?", open=False, elem_classes=["card-why"]):
            gr.Markdown(evidence_markdown(card))
        with gr.Row():
            # keyed per turn: a new turn's buttons never inherit an earlier swipe's look
            key = f"{card['trace_id']}-{card['item_id']}"
            like = gr.Button("Like", size="sm", elem_classes=["like-btn"], key=f"like-{key}")
            dislike = gr.Button("Dislike", size="sm", elem_classes=["dislike-btn"], key=f"dislike-{key}")
    return like, dislike


def build_ui(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title="CineAgent") as demo:
        session = gr.State(None)   # {"user", "session_id"}: a new person starts a new session
        history = gr.State([])     # openai-style {"role", "content"} messages
        cards = gr.State([])       # the last turn's cards, with what a swipe must log
        gr.Markdown("## CineAgent\nAsk for movies the way you'd ask a friend: "
                    "*a funny sci-fi like Men in Black, nothing scary*, *a 90s thriller*, *show me more*, "
                    "*why the second one?*")
        note = gr.Markdown(elem_id="parser-note")
        poll = gr.Timer(1.0)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row():
                    user = gr.Textbox(value="196", label="Who's watching?", elem_id="user-box", scale=1,
                                      info="A MovieLens user id (1-943) for personalised picks, or a new name to "
                                           "start from scratch")
                    who = gr.Markdown(elem_id="who")
                chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=340)
                with gr.Row():
                    message = gr.Textbox(show_label=False, placeholder="What would you like to watch?", scale=5,
                                         elem_id="msg", max_length=MAX_MESSAGE_CHARS)
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                status = gr.Markdown(elem_id="swipe-status")

                @gr.render(inputs=cards)
                def show_cards(shown: list[dict]) -> None:
                    for card in shown:
                        like, dislike = render_card(card)
                        for button, action in ((like, "like"), (dislike, "dislike")):
                            button.click(partial(ui_swipe, runtime, card, action), outputs=[status, like, dislike],
                                         api_visibility="private")

            with gr.Tab("Traces", id="traces-tab") as traces_tab:
                gr.Markdown("Recent turns (newest first) and the steps of each: parse, merge, recommend…")
                refresh = gr.Button("Refresh", size="sm", elem_id="refresh-traces")
                turns_table = gr.Dataframe(headers=TURN_COLUMNS, label="Turns", elem_id="turns", interactive=False)
                steps_table = gr.Dataframe(headers=STEP_COLUMNS, label="Steps", elem_id="steps", interactive=False)

        poll.tick(partial(banner, runtime), outputs=[note, poll], api_visibility="private")
        for trigger in (send.click, message.submit):
            trigger(partial(ui_chat, runtime), [user, message, history, session],
                    [chatbot, message, cards, session, history, status, who], api_visibility="private")
        for trigger in (refresh.click, traces_tab.select):
            trigger(partial(trace_tables, runtime), outputs=[turns_table, steps_table], api_visibility="private")
    # turns are CPU-bound on a small machine: a few at once, the rest queue in Gradio
    demo.queue(default_concurrency_limit=4)
    relax_queue_polling(demo)
    return demo


UI_QUEUE_POLL_S = 0.01


def relax_queue_polling(demo: gr.Blocks) -> None:
    """Gradio's queue polls for new UI events every 1 ms on the event loop (6% of a core while
    idle, and under load a wake-up between every two API turns); every 10 ms is as responsive to a
    person and leaves the loop to the API. It is a private attribute: left alone if it moves."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and isinstance(getattr(queue, "sleep_when_free", None), float):
        queue.sleep_when_free = max(queue.sleep_when_free, UI_QUEUE_POLL_S)


# ---------------------------------------------------------------------------------------- app
def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = Runtime(settings or Settings.from_env())
    return gr.mount_gradio_app(build_api(runtime), build_ui(runtime), path="/", css=CSS, footer_links=["gradio"],
                               run_history=False, show_error=True)


app = create_app()

if __name__ == "__main__":
    from cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
