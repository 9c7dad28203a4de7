"""The typed events CineAgent records: one ``Swipe`` per like/dislike, one ``Turn`` per answer.

They are the only record of what people did; profiles, like rates, the Traces tab, the nightly
job and the export are all read from them (``data.event_store``). ``Swipe`` keeps the line schema
of the old ``feedback.jsonl`` (``cineagent feedback export`` writes exactly these keys).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data.errors import CineAgentError

LIKE_RATING, DISLIKE_RATING = 5, 1   # what a like and a dislike weigh in a profile (MovieLens stars)
MAX_QUERY_CHARS = 2000


class FeedbackError(CineAgentError, ValueError):
    """A swipe that cannot be recorded as given; the message names the fields and the fix."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Event(BaseModel):
    # unknown keys are refused so a typo never lands silently in the store
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: datetime = Field(default_factory=_now, description="when, UTC")

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # naive timestamps are ambiguous across machines; events are always UTC
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Swipe(_Event):
    """One like or dislike of a card."""

    user_id: str = Field(min_length=1, max_length=64, description="the person's key: 'p_...', or a persona like '196'")
    session_id: str = Field(min_length=1, max_length=128)
    item_id: int = Field(ge=1, description="MovieLens item id")
    action: Literal["like", "dislike"]
    trace_id: str | None = Field(default=None, max_length=128, description="the turn that showed the card")
    rank: int | None = Field(default=None, ge=1, description="1-based position of the card in that turn")
    query: str | None = Field(default=None, max_length=MAX_QUERY_CHARS, description="the message that produced the card")

    def to_line(self) -> bytes:
        return (self.model_dump_json() + "\n").encode("utf-8")


class TurnStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str
    duration_ms: float
    error: str | None = None


class Turn(_Event):
    """One answered (or refused) message: what was asked, how it was read, what was shown, how long
    each step took. A swipe may name a turn only if this turn showed that card to that person."""

    trace_id: str = Field(min_length=1, max_length=128)
    user_id: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(default="api", max_length=16, description="api, ui or cli")
    message: str = Field(default="", max_length=MAX_QUERY_CHARS)
    outcome: str = Field(default="ok", description="ok, or the error the person was shown")
    act: str | None = None
    parser: str | None = None
    fallback_reason: str | None = None
    parsed: dict | None = Field(default=None, description="the parser's own reading of the message")
    intent: dict | None = Field(default=None, description="the request in force after this turn")
    items: list[int] = Field(default_factory=list, description="the cards shown, in order")
    sources: list[dict[str, int]] = Field(default_factory=list,
                                          description="per card (aligned with items): source -> its rank there")
    unused: list[dict] = Field(default_factory=list)
    steps: list[TurnStep] = Field(default_factory=list)
    total_ms: float = 0.0
    model: str | None = Field(default=None, description="the artifact version that ranked the cards (champion "
                              "or, for a canary person, challenger)")
    shadow: dict | None = Field(default=None, description="shadow mode: the challenger's ranking of this turn, "
                                "added after the reply (model, top, champion, ranks); never shown")


def make_swipe(**fields: object) -> Swipe:
    """Validate a swipe; raise FeedbackError naming each bad field (valid actions: like, dislike)."""
    try:
        return Swipe(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
        raise FeedbackError(f"invalid feedback record ({problems})") from None
