"""Who is calling: a person (bearer token) or the operator (``CINEAGENT_ADMIN_TOKEN``).

Every person-scoped route takes the person from ``Authorization: Bearer <token>`` and acts on that
person only. A missing or bad token is 401; naming anyone else is 403, whether or not they exist,
so a response never tells a caller who else is there.

The operator is whoever holds ``CINEAGENT_ADMIN_TOKEN`` (compared with ``hmac.compare_digest``).
Without it configured, operator views (the UI's Traces tab, cross-person listings) are off. In a
browser the operator signs in once at ``/operator``; the cookie then holds an HMAC of the admin
token, never the token itself, so the cookie is worthless once the token is changed.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Mapping
from data.errors import CineAgentError

ADMIN_TOKEN_ENV = "CINEAGENT_ADMIN_TOKEN"
OPERATOR_COOKIE = "cineagent_operator"
MIN_ADMIN_TOKEN_CHARS = 16
MAX_AUTHORIZATION_CHARS = 256    # "Bearer " + a 43-character token; anything far longer is junk


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


class Operator:
    """The operator credential (``CINEAGENT_ADMIN_TOKEN``, from the settings object)."""

    def __init__(self, admin_token: str | None) -> None:
        if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
            raise AdminTokenTooShort(f"{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN_CHARS} characters "
                                     "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
                                     "or unset to turn operator views off")
        self._token = admin_token
        # what the browser keeps: proves the token was shown, without being it
        self._cookie = (hmac.new(admin_token.encode(), b"cineagent-operator-cookie", hashlib.sha256).hexdigest()
                        if admin_token else None)

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check_token(self, candidate: str | None) -> bool:
        if self._token is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self._token.encode())

    def cookie_value(self) -> str:
        if self._cookie is None:
            raise Unauthorized(f"operator views are off: set {ADMIN_TOKEN_ENV} and restart")
        return self._cookie

    def check_cookie(self, candidate: str | None) -> bool:
        if self._cookie is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self._cookie.encode())

    def is_operator(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """An admin bearer token in ``Authorization``, or the operator cookie."""
        if not self.enabled:
            return False
        authorization = headers.get("authorization")
        if authorization and authorization.lower().startswith("bearer ") and \
                self.check_token(authorization[7:].strip()):
            return True
        return self.check_cookie(cookies.get(OPERATOR_COOKIE))
