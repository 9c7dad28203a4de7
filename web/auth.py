"""Who is calling: a person (bearer token) or the operator (``CINEAGENT_ADMIN_TOKEN``).

Every person-scoped route takes the person from ``Authorization: Bearer <token>`` and acts on that
person only. A missing or bad token is 401; naming anyone else is 403, whether or not they exist,
so a response never tells a caller who else is there.

The operator is whoever holds ``CINEAGENT_ADMIN_TOKEN`` (compared with ``hmac.compare_digest``).
Without it configured, operator views (the UI's Traces tab, cross-person listings) are off. In a
browser the operator signs in at ``/operator`` (throttled per client address): the cookie then
holds a random session id (256 bits) whose HMAC under the admin token is kept in the event store
with its expiry, so every process and replica knows it, signing out deletes it (a copied cookie
stops working at once), and changing the token voids every session. The cookie counts only on a
request from the app's own origin (``same_origin``): a page on another port of the same host is
same-site, so SameSite alone would send it.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlsplit

from data.errors import CineAgentError

if TYPE_CHECKING:
    from data.event_store import EventStore

ADMIN_TOKEN_ENV = "CINEAGENT_ADMIN_TOKEN"
OPERATOR_COOKIE = "cineagent_operator"
MIN_ADMIN_TOKEN_CHARS = 16
MAX_AUTHORIZATION_CHARS = 256    # "Bearer " + a 43-character token; anything far longer is junk
OPERATOR_SESSION_S = 12 * 3600   # an operator sign-in lasts this long at most


class Unauthorized(CineAgentError):
    """401: no valid credential; the message says which to send."""


class Forbidden(CineAgentError):
    """403: a valid credential, but not for this data."""

    def __init__(self) -> None:
        super().__init__("forbidden: a token acts only on its own person (use /api/people/me/... or your own "
                         "user_id)")


class AdminTokenTooShort(CineAgentError, ValueError):
    """``CINEAGENT_ADMIN_TOKEN`` is set but guessable."""


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; raises Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("missing token: send `Authorization: Bearer <token>` (POST /api/people gives you one)")
    if len(authorization) > MAX_AUTHORIZATION_CHARS:
        raise Unauthorized("malformed Authorization header: expected `Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected `Bearer <token>`")
    return token.strip()


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a request may act with the browser's credentials: no ``Origin`` (not a script's
    cross-origin request: a browser sends it on every POST and every cross-origin fetch or event
    stream; a navigation, a same-origin GET or a client outside a browser may not), or an ``Origin``
    whose host and port are this request's ``Host``. A page on another port of the same host is
    another origin (though the same site, so SameSite cookies still go with it)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host")
    try:
        parts = urlsplit(origin)
        netloc = parts.netloc.lower()
    except ValueError:
        return False
    if not host or parts.scheme not in ("http", "https") or not netloc:
        return False
    default = {"http": ":80", "https": ":443"}[parts.scheme]
    return netloc.removesuffix(default) == host.lower().removesuffix(default)


class Operator:
    """The operator credential (``CINEAGENT_ADMIN_TOKEN``, from the settings object) and the
    operator's signed-in sessions (in the event store, when one is given)."""

    def __init__(self, admin_token: str | None, store: "EventStore | None" = None) -> None:
        if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
            raise AdminTokenTooShort(f"{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN_CHARS} characters "
                                     "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
                                     "or unset to turn operator views off")
        self._token = admin_token
        self._store = store

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check_token(self, candidate: str | None) -> bool:
        if self._token is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self._token.encode())

    def _session_key(self, session_id: str) -> bytes:
        # keyed by the admin token: a new token voids every session signed in with the old one
        return hmac.new(self._token.encode(), b"cineagent-operator-session:" + session_id.encode(), hashlib.sha256).digest()

    def open_session(self) -> str:
        """A new signed-in session: its id for the cookie (only its HMAC is stored)."""
        if self._token is None or self._store is None:
            raise Unauthorized(f"operator views are off: set {ADMIN_TOKEN_ENV} and restart")
        session_id = secrets.token_urlsafe(32)
        self._store.add_operator_session(self._session_key(session_id), time.time() + OPERATOR_SESSION_S)
        return session_id

    def close_session(self, candidate: str | None) -> None:
        """Sign-out: the session is deleted, so the cookie (or any copy of it) stops working."""
        if self._token is not None and self._store is not None and candidate and len(candidate) <= 64:
            self._store.delete_operator_session(self._session_key(candidate))

    def check_cookie(self, candidate: str | None) -> bool:
        if self._token is None or self._store is None or not candidate or len(candidate) > 64:
            return False
        return self._store.operator_session_valid(self._session_key(candidate), time.time())

    def is_operator(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """An admin bearer token in ``Authorization``, or the operator cookie on a request from the
        app's own origin."""
        if not self.enabled:
            return False
        authorization = headers.get("authorization")
        if authorization and authorization.lower().startswith("bearer ") and \
                self.check_token(authorization[7:].strip()):
            return True
        return same_origin(headers) and self.check_cookie(cookies.get(OPERATOR_COOKIE))
