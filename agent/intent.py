"""The typed interpretation of one request, shared by both parsers and the dialogue manager."""
from __future__ import annotations

from enum import Enum

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
    exclude_genres: list[str] = Field(default_factory=list, description="genres the person does not want")
    titles: list[int] = Field(default_factory=list, description="referenced movies, as MovieLens item ids")
    years: YearRange | None = None
    keywords: list[str] = Field(default_factory=list, description="free-text mood / keywords")
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    explain_rank: int | None = Field(default=None, ge=1, description="1-based card the person asks about")

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
        return not (self.genres or self.exclude_genres or self.titles or self.years or self.keywords)


class ParseResult(BaseModel):
    """A parser's answer plus how it was obtained (recorded on the turn's trace)."""

    intent: Intent
    parser: str                      # "offline" or "llm"
    fallback_reason: str | None = None  # set when the LLM parser failed and offline answered
    details: dict = Field(default_factory=dict)


class IntentParser:
    """Interface of both parsers: ``parse(text, previous) -> ParseResult``."""

    name = "base"

    def parse(self, text: str, previous: Intent | None = None) -> ParseResult:
        raise NotImplementedError
