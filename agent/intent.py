"""The typed interpretation of one request, shared by both parsers and the dialogue manager."""
from __future__ import annotations

import asyncio
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.movielens import GENRES

MAX_COUNT = 50


class Act(str, Enum):
    """What the person wants this turn."""

    recommend = "recommend"    # a new request
    refine = "refine"          # narrow/adjust the standing request ("older please", "no horror")
    more = "more"              # next page of the standing request
    explain = "explain"        # "why the second one?"
    chit_chat = "chit_chat"    # greetings, thanks, off-topic
    clarify = "clarify"        # too vague to act on without history


# Relative refinements a person can ask for ("darker", "more recent"): the dialogue manager turns
# each into a concrete adjustment of the standing request (an era relative to what was shown, a
# tone direction in the item vectors), visible in the reply and the trace.
Adjustment = Literal["newer", "older", "darker", "lighter", "funnier", "less_violent", "different"]
# Slots of the standing request a turn can relax ("any year is fine", "doesn't have to be a comedy").
Slot = Literal["genres", "exclude_genres", "titles", "exclude_titles", "years", "mood", "all"]
# Why part of a message could not be used: the catalog has no people, plots or languages, and ends in 1998.
# "facts": a question about films that needs more than titles, years and genres (cast, streaming, what is new).
UnusedWhy = Literal["person", "plot", "out_of_catalog", "language", "no_movies_in_era", "off_topic", "facts"]


class YearRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: int | None = Field(default=None, ge=1900, le=2100)
    end: int | None = Field(default=None, ge=1900, le=2100)

    @model_validator(mode="after")
    def _ordered(self) -> "YearRange":
        if self.start is not None and self.end is not None and self.start > self.end:
            self.start, self.end = self.end, self.start
        return self


class Intent(BaseModel):
    """Genres are MovieLens genre names; titles are MovieLens item ids (grounded, never free text)."""

    model_config = ConfigDict(extra="forbid")

    act: Act = Act.recommend
    genres: list[str] = Field(default_factory=list, description="genres wanted (all of them, MovieLens vocabulary)")
    genre_match: Literal["all", "any"] = Field(
        default="all", description="'all': a blend of the genres ('a romantic comedy'); 'any': alternatives "
                                   "the person named ('action or comedy', 'I like horror, comedy and drama')")
    exclude_genres: list[str] = Field(default_factory=list, description="genres the person does not want")
    titles: list[int] = Field(default_factory=list, description="referenced movies, as MovieLens item ids")
    exclude_titles: list[int] = Field(default_factory=list,
                                      description="movies the person rejects or has seen (item ids): never shown")
    years: YearRange | None = None
    keywords: list[str] = Field(default_factory=list, description="free-text mood / keywords")
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    explain_rank: int | None = Field(default=None, ge=1, description="1-based card the person asks about")
    mood: list[Adjustment] = Field(default_factory=list, description="tone/era directions in force (standing)")
    # operations of this turn on the standing request (never carried over to the next turn)
    replace: bool = Field(default=False, description="this turn's genres replace the standing ones ('actually, a horror')")
    relax: list[Slot] = Field(default_factory=list, description="slots this turn drops ('any year is fine')")
    adjust: list[Adjustment] = Field(default_factory=list, description="relative refinements asked this turn")
    card_ref: int | None = Field(default=None, ge=0,
                                 description="a shown card this turn points at: its 1-based rank, 0 = 'that one / it'")

    @field_validator("genres", "exclude_genres")
    @classmethod
    def _known_genres(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in GENRES]
        if unknown:
            raise ValueError(f"unknown genre(s) {unknown}; valid genres: {', '.join(GENRES)}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _exclusions_win(self) -> "Intent":
        # a genre both wanted and excluded is a contradiction; the explicit exclusion is safer
        self.genres = [g for g in self.genres if g not in self.exclude_genres]
        return self

    @property
    def is_empty(self) -> bool:
        """No constraint at all: nothing to rank by except the person's history."""
        return not (self.genres or self.exclude_genres or self.titles or self.exclude_titles or self.years
                    or self.keywords or self.mood or self.adjust or self.card_ref is not None)


class UnusedPart(BaseModel):
    """A part of the message the agent could not act on, said back to the person and listed in the API."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=200, description="the words as the person wrote them")
    why: UnusedWhy


class ParseResult(BaseModel):
    """A parser's answer plus how it was obtained (recorded on the turn's trace)."""

    intent: Intent
    parser: str                      # "offline" or "llm"
    fallback_reason: str | None = None  # set when the LLM parser failed and offline answered
    unused: list[UnusedPart] = Field(default_factory=list)  # parts of the message that could not be used
    details: dict = Field(default_factory=dict)


class IntentParser:
    """Interface of both parsers: ``parse(text, previous) -> ParseResult``, and ``aparse`` for
    code on an event loop."""

    name = "base"

    def parse(self, text: str, previous: Intent | None = None) -> ParseResult:
        raise NotImplementedError

    async def aparse(self, text: str, previous: Intent | None = None) -> ParseResult:
        """``parse`` in a worker thread: a synchronous parser may run MiniLM (~9 ms) for words it
        cannot place, which must not stall the event loop. Parsers with an async API override this."""
        return await asyncio.to_thread(self.parse, text, previous)
