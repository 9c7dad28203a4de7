"""People: who may use the service and how they prove it.

A person gets a random id (``p_`` + 24 hex digits: a pseudonym, never their display name) and a
bearer token from ``secrets``. Only the token's SHA-256 is stored (in the event store,
``data.event_store``): a copy of the database lets nobody act as anyone (tokens carry 256 random
bits, so a fast hash is enough; a slow KDF protects low-entropy passwords, which these are not).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from data.errors import CineAgentError

ID_PREFIX = "p_"
TOKEN_BYTES = 32                 # secrets.token_urlsafe(32): 43 characters
TOKEN_CHARS = 43
ID_HEX_CHARS = 24                # a person id: ID_PREFIX + this many hex digits (96 random bits)
MAX_NAME_CHARS = 64


class PeopleError(CineAgentError, ValueError):
    """Base of the errors about who a person is (token, fields); each message says what to do."""


class InvalidToken(PeopleError):
    """The token is missing, malformed, unknown or revoked."""

    def __init__(self) -> None:
        super().__init__("missing or invalid token: send `Authorization: Bearer <token>` with the token that "
                         "POST /api/people returned (a deleted person's token stops working)")


class InvalidPerson(PeopleError):
    """A field of a new person is unusable; the message names it."""


@dataclass(frozen=True)
class Person:
    id: str                  # the pseudonymous key the agent knows them by
    name: str | None         # display name, stored here only (never in traces or logs)
    seed_from: int | None    # the MovieLens persona their profile started from
    created: float           # epoch seconds

    def as_dict(self) -> dict:
        return asdict(self)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def looks_like_token(token: str) -> bool:
    """The shape ``create`` hands out: checked before any lookup, so junk never reaches the database."""
    return len(token) == TOKEN_CHARS and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


def is_person_id(value: str) -> bool:
    return (len(value) == len(ID_PREFIX) + ID_HEX_CHARS and value.startswith(ID_PREFIX)
            and all(c in "0123456789abcdef" for c in value[len(ID_PREFIX):]))
