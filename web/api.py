"""The JSON API: routes, their request and response models, error handling and middleware.

Every person-scoped route acts on the person of the bearer token (``web.auth``); the agent's work
is the facade's (``agent.service``), whose errors map to statuses through ``web.errors``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import metrics
from agent.dialogue import MAX_MESSAGE_CHARS
from agent.intent import MAX_COUNT, UnusedPart
from agent.service import CineAgent
from agent.settings import Settings
from data.errors import CineAgentError
from data.events import Swipe
from data.people import Person
from web.auth import OPERATOR_COOKIE, OPERATOR_SESSION_S, Forbidden, Operator, bearer_token
from web.docs import install_docs
from web.errors import error_response, headers_of, status_of
from web.gate import Gate
from web.limits import Limits, QueueGuard, RateLimited, RateSettings

log = logging.getLogger("cineagent.web")


class Runtime(CineAgent):
    """What the web layer serves from: the agent's facade, plus the web's own abuse limits, the
    operator credential and the UI's persona list."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.limits = Limits.from_settings(RateSettings(**settings.rates()))
        self.operator = Operator(settings.admin_token.get_secret_value() if settings.admin_token else None, self.store)
        self.persona_choices: list[tuple[str, str]] | None = None   # the UI's, once the models are up
        self.store_probe = StoreProbe(self.store)
        self.ui_blocks = None   # the chat UI's gr.Blocks, once mounted (its queue is guarded in web.limits)

    def create_person(self, name: str | None, seed_from: int | None, client: str = "unknown") -> tuple[Person, str]:
        self.limits.new_person(client)
        return super().create_person(name, seed_from)

    def delete(self, person: Person) -> dict:
        removed = super().delete(person)
        self.limits.forget_person(person.id)
        return removed


class StoreProbe:
    """Whether the event store answers, for ``/healthz``: one read at a time, in a thread of its own
    (never the request pool, which may be full), at most one a second (the answer is reused
    meanwhile), and a read that takes over ``timeout_s`` counts as no answer."""

    def __init__(self, store, timeout_s: float = 2.0, fresh_s: float = 1.0) -> None:
        self.store, self.timeout_s, self.fresh_s = store, timeout_s, fresh_s
        self._pending: asyncio.Future | None = None
        self._answer: tuple[float, str | None] | None = None   # (when, problem or None)

    def _start(self) -> asyncio.Future:
        """The read in a daemon thread (a read stuck on a dead connection never holds up exit)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def run() -> None:
            try:
                answer = self._ping()
            except Exception as exc:  # noqa: BLE001 - a fault of the probe is still no answer
                answer = f"the store check failed: {type(exc).__name__}"
            with contextlib.suppress(RuntimeError):   # the loop closed meanwhile: nobody waits for it
                loop.call_soon_threadsafe(lambda: future.done() or future.set_result(answer))

        threading.Thread(target=run, name="cineagent-store-probe", daemon=True).start()
        return future

    def _ping(self) -> str | None:
        try:
            self.store.ping(self.timeout_s)
            return None
        except CineAgentError as exc:
            return str(exc)

    async def check(self) -> str | None:
        """None when the store answered, else what is wrong (in words for the operator)."""
        now = time.monotonic()
        if self._answer is not None and now - self._answer[0] < self.fresh_s:
            return self._answer[1]
        if self._pending is None or self._pending.done():   # one read at a time
            self._pending = self._start()
        try:
            problem = await asyncio.wait_for(asyncio.shield(self._pending), self.timeout_s + 0.5)
        except asyncio.TimeoutError:
            problem = f"the store did not answer within {self.timeout_s:g} s"
        self._answer = (time.monotonic(), problem)
        return problem


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


class CitedItem(BaseModel):
    item_id: int
    title: str
    your_rating: int


class EvidenceOut(BaseModel):
    """What a card's explanation rests on, in the person's terms. Scores, model names and ranks are
    the operator's (the turn's trace and the Traces tab), so they are not sent."""
    profile_items: list[CitedItem] = Field(description="movies you rated that led to this pick")
    referenced_titles: list[str] = Field(default_factory=list, description="titles you named that it is close to")
    genres: list[str] = Field(default_factory=list, description="the genres you asked for that it has")
    missing_genres: list[str] = Field(default_factory=list, description="the genres you asked for that it lacks")


class CardOut(BaseModel):
    item_id: int
    title: str
    year: int | None
    genres: list[str]
    explanation: str
    evidence: EvidenceOut


class ChatResponse(BaseModel):
    text: str
    act: str
    intent: dict[str, Any]
    items: list[CardOut]
    notices: list[str]
    unused: list[UnusedPart] = Field(description="parts of the message that could not be used, and why "
                                     "(the catalog has no people or plots, ends in 1998, is English only)")
    trace_id: str
    session_id: str


class RecommendResponse(BaseModel):
    intent: dict[str, Any]
    items: list[CardOut]
    text: str
    unused: list[UnusedPart]
    trace_id: str


class FeedbackResponse(BaseModel):
    recorded: Swipe


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
    turns: int
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
          503: _error("models loading or failed to load, or the store is unavailable (nothing was saved)",
                        {"Retry-After": "seconds"})}
PERSON_ERRORS = {**ERRORS,
                 401: _error("missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}),
                 403: _error("the token's person may not act on this data"),
                 429: _error("rate limit: too many turns or swipes", {"Retry-After": "seconds"})}
TURN_ERRORS = {k: v for k, v in PERSON_ERRORS.items() if k != 403}
CHAT_ERRORS = {**TURN_ERRORS, 409: _error("another message to this conversation was saved at the same moment "
                                          "(through another server); nothing of this one was: send it again")}
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
    token = bearer_token(request.headers.get("authorization"))
    if runtime.store.dialect == "postgresql":   # a round trip: in a worker thread, never on the event loop
        return await run_in_threadpool(runtime.authenticate, token)
    return runtime.authenticate(token)   # SQLite: a fraction of a millisecond, less than the thread hop


Me = Annotated[Person, Depends(current_person)]


def scope_client(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def client_of(request: Request) -> str:
    return scope_client(request.scope)


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
        # nothing to flush: every swipe is committed before its request is answered; the pool's
        # connections (PostgreSQL) are closed so the server sees this replica leave at once
        runtime.store.close()

    # /docs is web.docs's: Swagger UI from local files, so the page also works offline
    api = FastAPI(title="CineAgent", version="0.1.0", lifespan=lifespan, docs_url=None,
                  description="Conversational movie recommendations on MovieLens 100k. The chat UI is at `/`.")
    api.state.runtime = runtime
    install_error_handlers(api)
    # innermost: the UI's queue joins, checked and bounded per client (its body already bounded)
    api.add_middleware(QueueGuard, blocks=lambda: runtime.ui_blocks, client_of=scope_client)
    api.add_middleware(RequestMetrics)
    api.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    api.add_middleware(Gate)  # outermost: unused routes and oversized headers never reach the rest

    @api.post("/api/people", response_model=PersonCreated, status_code=201, tags=["people"],
              responses={**ERRORS, 429: PERSON_ERRORS[429]})
    def create_person(body: PersonRequest, request: Request, rt: Ready) -> dict:   # a store write: in a worker thread
        """A new person and their bearer token (shown once). ``seed_from`` starts the profile from a
        MovieLens persona's ratings; without it the person starts from scratch."""
        person, token = rt.create_person(body.name, body.seed_from, client_of(request))
        return {"user_id": person.id, "token": token, "name": person.name, "seed_from": person.seed_from}

    @api.get("/api/people/me/export", response_model=ExportResponse, responses=TURN_ERRORS, tags=["people"])
    def export_me(me: Me, request: Request, rt: Ready) -> dict:
        """Everything held about the token's person: record, profile, swipes, sessions, turns, traces."""
        rt.limits.export(me.id, client_of(request))  # costlier than a turn: a limit of its own, and a turn's
        return rt.export(me)

    @api.delete("/api/people/me", response_model=DeleteResponse, responses=TURN_ERRORS, tags=["people"])
    def delete_me(me: Me, rt: Ready) -> dict:
        """Delete the token's person everywhere; the token stops working at once."""
        return {"deleted": True, **rt.delete(me)}

    @api.post("/api/chat", response_model=ChatResponse, responses=CHAT_ERRORS, tags=["agent"])
    async def chat(body: ChatRequest, me: Me, request: Request, rt: Ready) -> dict:
        """One chat turn: text plus recommendation cards with their evidence."""
        rt.limits.turn(me.id, client_of(request))
        result = await rt.chat(me.id, body.session_id, body.message, channel="api")
        return {**result.as_dict(), "session_id": result.session_id}

    @api.post("/api/recommend", response_model=RecommendResponse, responses=TURN_ERRORS, tags=["agent"])
    async def recommend(body: RecommendRequest, me: Me, request: Request, rt: Ready) -> dict:
        """One stand-alone request (its own session): the parsed intent and the ranked items."""
        rt.limits.turn(me.id, client_of(request))
        result = await rt.recommend(me.id, body.query, body.n, channel="api")
        items = [c.as_dict() for c in result.cards]
        return {"intent": result.intent.model_dump(mode="json"), "items": items, "text": result.text,
                "unused": [u.model_dump() for u in result.unused], "trace_id": result.trace_id}

    @api.post("/api/feedback", response_model=FeedbackResponse, responses=SWIPE_ERRORS, tags=["agent"])
    def feedback(body: FeedbackRequest, me: Me, request: Request, rt: Ready) -> dict:
        """A like/dislike swipe: stored durably (answered only once committed); your next turn, on
        any server, ranks with it."""
        rt.limits.swipe(me.id, client_of(request))
        return {"recorded": rt.swipe(me.id, body.session_id, body.item_id, body.action, body.trace_id,
                                     body.rank, body.query)}

    @api.post("/api/feedback/undo", response_model=UndoResponse, responses=TURN_ERRORS, tags=["agent"])
    def undo_feedback(body: UndoRequest, me: Me, request: Request, rt: Ready) -> dict:
        """Take back your own like/dislike on an item: removed from the store, so from your profile
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

    @api.get("/healthz", tags=["ops"], responses={503: {"description": "loading or failed, or the store does not answer"}})
    async def healthz(request: Request) -> JSONResponse:  # async: never queues behind busy worker threads
        rt: Runtime = request.app.state.runtime
        body: dict[str, Any] = {"status": rt.status}
        if rt.agent is not None:
            body.update(models=rt.model_version, parser=rt.agent.parser.name, load_seconds=round(rt.load_seconds, 2))
        elif rt.error:
            body["error"] = rt.error
        langfuse = _langfuse_status()
        if langfuse is not None:   # said, never a reason for 503: traces are not what the chat needs
            body["langfuse"] = langfuse
        problem = await rt.store_probe.check()
        body["store"] = "ok" if problem is None else "unavailable"
        if problem is not None:
            body["status"] = "unavailable" if rt.agent is not None else body["status"]
            body["store_error"] = problem
        ready = rt.agent is not None and problem is None
        return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "5"})

    @api.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return api


def _langfuse_status() -> dict | None:
    """Langfuse's version and how swipe scores reach it, when this process exports to Langfuse."""
    from agent.tracing import active_tracing

    tracing = active_tracing()
    return tracing.langfuse_status() if tracing is not None else None


OPERATOR_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>CineAgent operator</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h2>CineAgent: operator sign-in</h2>
<p>{message}</p>
<form method="post" action="/operator"><label>Admin token <input type="password" name="token" id="admin-token"
 autocomplete="off" maxlength="256" required></label> <button type="submit" id="operator-login">Sign in</button></form>
<form method="post" action="/operator/logout"><button type="submit">Sign out</button></form>
<p><a href="/">Back to the chat</a></p></body></html>"""


def install_operator_routes(api: FastAPI, operator: Operator) -> None:
    """``/operator``: the operator signs in with ``CINEAGENT_ADMIN_TOKEN`` (a few tries a minute per
    client) and gets a cookie holding a random session id (HttpOnly, SameSite=Strict) that shows
    them the UI's Traces tab from the app's own origin; signing out deletes the session. Off (404)
    without the token configured. Not in the OpenAPI schema: it is for a person at a browser."""

    def page(message: str, status: int = 200, headers: dict | None = None) -> HTMLResponse:
        return HTMLResponse(OPERATOR_PAGE.format(message=message), status_code=status,
                            headers={"Cache-Control": "no-store", **(headers or {})})

    @api.get("/operator", include_in_schema=False)
    async def operator_form() -> HTMLResponse:
        if not operator.enabled:
            return page("Operator views are off: set CINEAGENT_ADMIN_TOKEN and restart.", 404)
        return page("Sign in to see the Traces tab.")

    @api.post("/operator", include_in_schema=False)
    def operator_login(token: Annotated[str, Form(max_length=256)], request: Request) -> HTMLResponse:
        if not operator.enabled:
            return page("Operator views are off: set CINEAGENT_ADMIN_TOKEN and restart.", 404)
        runtime: Runtime = request.app.state.runtime
        try:
            runtime.limits.operator_signin(client_of(request))
        except RateLimited as exc:
            return page(f"Too many sign-in attempts: try again in {exc.retry_after_s} s.", 429,
                        {"Retry-After": str(exc.retry_after_s)})
        if not operator.check_token(token):
            return page("That is not the admin token.", 401)
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(OPERATOR_COOKIE, operator.open_session(), httponly=True, samesite="strict",
                          max_age=OPERATOR_SESSION_S)
        return answer

    @api.post("/operator/logout", include_in_schema=False)
    def operator_logout(request: Request) -> RedirectResponse:
        operator.close_session(request.cookies.get(OPERATOR_COOKIE))
        answer = RedirectResponse("/", status_code=303)
        answer.delete_cookie(OPERATOR_COOKIE)
        return answer


def validation_detail(error: dict) -> dict:
    """One pydantic/FastAPI validation error as {field, problem, type}, in words a client can act on."""
    if error["type"] == "json_invalid":  # loc is ("body", character offset)
        reason = error.get("ctx", {}).get("error", "")
        return {"field": "body", "problem": f"not valid JSON ({reason} at character {error['loc'][-1]})",
                "type": error["type"]}
    field = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
    return {"field": field, "problem": error["msg"], "type": error["type"]}


def install_error_handlers(api: FastAPI) -> None:
    """People's mistakes -> 4xx/503 naming the problem (``web.errors.STATUS``); only genuine
    faults -> 500 (logged)."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [validation_detail(e) for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return error_response(422, f"invalid request: {summary}", details)

    @api.exception_handler(CineAgentError)
    async def for_the_person(_: Request, exc: CineAgentError) -> JSONResponse:
        status = status_of(exc)
        if status == 503:
            log.warning("503: %s", exc)
        return error_response(status, str(exc), headers=headers_of(exc, status))

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


