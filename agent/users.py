"""Who is talking: a MovieLens user id (personalised) or a new person's name (cold start)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from data.movielens import MovieLens
from data.errors import CineAgentError

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.@\- ]{0,63}$")
NEW_USER_BASE = 10_000_000  # model ids for new people start here, far above MovieLens' 1..943


class UnknownUser(CineAgentError, ValueError):
    """The user key names nobody we can serve; the message says what is accepted."""


@dataclass(frozen=True)
class User:
    key: str          # what the person typed: "196" or "alice"
    model_id: int     # the id the recommenders know them by
    known: bool       # a MovieLens user with rating history


def resolve_user(raw: object, data: MovieLens) -> User:
    """Map a user key to a User; numbers must be MovieLens users, names start a new profile.

    Strict: one user has one spelling. ``True`` is not user 1, and ``"0196"`` or ``" 196"`` are
    not user 196 (loose coercion let one key reach another person's profile)."""
    if isinstance(raw, bool):
        raise UnknownUser("a user is a MovieLens user id (1-943) or a name, not true/false")
    key = str(raw) if raw is not None else ""
    if key != key.strip():
        raise UnknownUser(f"user {key!r} has spaces around it: send it without them")
    if key.isdecimal() and key.isascii():
        if key != str(int(key)):
            raise UnknownUser(f"user {key} has leading zeros: send {int(key)}")
        uid = int(key)
        if uid not in data.user_id_set:
            lo, hi = int(data.users["user_id"].min()), int(data.users["user_id"].max())
            raise UnknownUser(f"user {key} is not a MovieLens user ({lo}-{hi}); type a name instead to start as a new user")
        return User(key=str(uid), model_id=uid, known=True)
    if not NAME_PATTERN.match(key):
        raise UnknownUser("a user is a MovieLens user id (1-943) or a name: a letter, then up to 63 letters, digits, "
                          "spaces or _.@-")
    # 60 bits of the digest: two of a million names collide with odds ~1e-6 (fits int64 with the base)
    digest = int(hashlib.sha256(key.lower().encode()).hexdigest()[:15], 16)
    return User(key=key.lower(), model_id=NEW_USER_BASE + digest, known=False)
