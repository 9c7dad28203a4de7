"""The one table from the errors people can cause to HTTP statuses, shared by the JSON API and the
chat UI. Every such error is a ``CineAgentError`` whose message says what to do; anything else is
a fault: logged, answered 500 without details."""
from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from agent.dialogue import BadRequest
from agent.errors import NotReady, UnknownPersona, UnknownTurn
from agent.users import UnknownUser
from data.event_store import ConversationMoved, StoreError
from data.events import FeedbackError
from data.people import InvalidPerson, InvalidToken
from web.auth import Forbidden, Unauthorized
from web.limits import RateLimited

# most specific first: the first class an error is an instance of decides
STATUS: list[tuple[type[Exception], int]] = [
    (Unauthorized, 401), (InvalidToken, 401),
    (Forbidden, 403),
    (UnknownUser, 404), (UnknownTurn, 404),
    (ConversationMoved, 409),
    (RateLimited, 429),
    (NotReady, 503), (StoreError, 503),
    (BadRequest, 400), (FeedbackError, 400), (UnknownPersona, 400), (InvalidPerson, 400),
]


def status_of(exc: Exception) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def headers_of(exc: Exception, status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 429:
        return {"Retry-After": str(getattr(exc, "retry_after_s", 1))}
    if status == 503:
        return {"Retry-After": "5"}
    return None


def error_response(status: int, message: str, details: list | None = None, headers: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)
