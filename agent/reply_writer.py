"""With an LLM configured, the LLM may word the reply and each card's reason, from the cards and
their evidence only; a validator rejects anything not in that evidence and the template answer
stands instead.

One call (``ReplyWriter.awrite``, awaited: the event loop is not held while the model writes):

1. The cards go to the model as facts: title, year, genres, and the claims the template reason
   makes (the liked movies EASE leans on, the titles whose neighbours ranked it, the genres asked
   for it has), plus the request in a few words. ``with_structured_output(WrittenReply,
   method="function_calling")``: llama.cpp servers turn a forced tool call into constrained JSON.
2. ``validate`` checks every word that could be a claim: each reason belongs to a shown card;
   any catalog title in the text must be that card's (or, in the reply, any card's) or one its
   evidence cites; any genre word must be one of that card's genres (the reply: of the cards or
   the request); any year must be that card's year; nothing may be empty or run long.
3. Anything wrong (endpoint down, timeout, bad JSON, a rejected claim) returns the template reply
   and reasons, with the reason recorded; the dialogue manager traces both paths.

Where the caller listens (``streaming_to(callback)``: the chat UI), the call streams: the tool call's JSON arrives token by token, and as the ``reply`` field grows
the callback gets its text so far (``Drafts``). A draft is never more than the final check would
allow of it: only whole words (the last one may still be growing), only while they pass the same
claim checks as the finished reply (a draft naming a movie, genre or year outside the evidence is
held back, and nothing later is shown until the text passes again), and never over the length
limit. The finished call is validated as a whole one is, and the caller shows the returned
``Written`` in place of the drafts: the LLM's reply when it passed, else the template's.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.utils.json import parse_partial_json
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.llm_parser import LLMSettings, _failure_code, _ms, _usage
from agent.replies import PLURAL
from agent.session import Card
from agent.titles import TitleIndex, tokenize
from data.movielens import GENRES

MAX_REPLY_CHARS = 240
MAX_REASON_CHARS = 200
SYSTEM = (
    "You write the short reply of a movie recommender and one reason per movie. Use only the facts "
    "given: never name a movie, person, genre or year that is not in them, and never claim anything "
    "else about a movie. The reply is one sentence about the request, without listing the movies. "
    "Each reason is one short sentence for that movie, built from its facts.")
# genre words a reason could claim: MovieLens names and their plain forms ("sci-fi", "romantic")
_GENRE_WORDS = {w: g for g in GENRES for w in {g.lower(), PLURAL[g]}} | {
    "scary": "Horror", "romantic": "Romance", "funny": "Comedy", "animated": "Animation", "kids": "Children's",
    "family": "Children's", "noir": "Film-Noir", "sci fi": "Sci-Fi", "science fiction": "Sci-Fi"}
_GENRE_WORDS |= {(w[:-1] + "ies" if w.endswith("y") else w + "s"): g for w, g in list(_GENRE_WORDS.items())}  # plurals
_GENRE_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _GENRE_WORDS), key=len, reverse=True)) + r")\b", re.I)
_NUMBER = re.compile(r"\b\d+\b")
_BEFORE_LAST_WORD = re.compile(r"\S*$")    # what a draft leaves out: the word still being written


class Reason(BaseModel):
    model_config = ConfigDict(extra="ignore")

    item_id: int = Field(description="the movie's id from the facts")
    reason: str = Field(description="one short sentence from that movie's facts")


class WrittenReply(BaseModel):
    """The reply and a reason per movie, written from the given facts only."""

    model_config = ConfigDict(extra="ignore")

    reply: str = Field(description="one short sentence about the request")
    reasons: list[Reason] = Field(default_factory=list)

    @field_validator("reasons", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [] if value is None else value


@dataclass
class Written:
    """What the turn shows: the LLM's words when they passed validation, else the template's."""

    text: str
    reasons: dict[int, str]
    written_by: str                     # "llm" or "template"
    rejected: list[str] = field(default_factory=list)   # why the LLM's words were not used
    details: dict = field(default_factory=dict)


def facts(cards: Sequence[Card]) -> list[dict]:
    """What the model may say about each card: nothing outside these."""
    return [{"item_id": c.item_id, "title": c.title, "year": c.year, "genres": c.genres,
             "you_liked": [p["title"] for p in c.evidence.get("profile_items", [])],
             "people_who_like_also_like_it": c.evidence.get("referenced_titles", []),
             "asked_genres_it_has": c.evidence.get("genres", []),
             "asked_genres_it_lacks": c.evidence.get("missing_genres", [])} for c in cards]


def reply_scope(cards: Sequence[Card], titles: TitleIndex,
                request_genres: Sequence[str]) -> tuple[set[int], set[str], set[int]]:
    """What a reply about these cards may name: (titles, genres, years)."""
    return ({c.item_id for c in cards} | {i for c in cards for i in _cited_ids(c, titles)},
            {g for c in cards for g in c.genres} | set(request_genres),
            {c.year for c in cards if c.year})


def validate(written: WrittenReply, cards: Sequence[Card], titles: TitleIndex, request_genres: Sequence[str]) -> list[str]:
    """Every claim of ``written`` that its cards' evidence does not back (empty: all are backed)."""
    problems: list[str] = []
    by_id = {c.item_id: c for c in cards}
    all_titles, all_genres, all_years = reply_scope(cards, titles, request_genres)
    reply = written.reply.strip()
    if not reply or len(reply) > MAX_REPLY_CHARS:
        problems.append(f"reply: empty or over {MAX_REPLY_CHARS} characters")
    problems += [f"reply: {p}" for p in _claims(reply, titles, all_titles, all_genres, all_years)]
    seen: set[int] = set()
    for reason in written.reasons:
        card = by_id.get(reason.item_id)
        if card is None:
            problems.append(f"reason for {reason.item_id}: not a shown card")
            continue
        if reason.item_id in seen:
            problems.append(f"reason for {reason.item_id}: given twice")
        seen.add(reason.item_id)
        text = reason.reason.strip()
        if not text or len(text) > MAX_REASON_CHARS:
            problems.append(f"reason for {card.title}: empty or over {MAX_REASON_CHARS} characters")
        allowed = {card.item_id} | _cited_ids(card, titles)
        problems += [f"reason for {card.title}: {p}" for p in
                     _claims(text, titles, allowed, set(card.genres), {card.year} if card.year else set())]
    return problems


def _cited_ids(card: Card, titles: TitleIndex) -> set[int]:
    cited = {p["item_id"] for p in card.evidence.get("profile_items", [])}
    for name in card.evidence.get("referenced_titles", []):
        found = titles.lookup(name)
        if found is not None:
            cited.add(found)
    return cited


def _claims(text: str, titles: TitleIndex, allowed_titles: set[int], genres: set[str], years: set[int]) -> list[str]:
    problems = []
    tokens = tokenize(text)
    rest = text
    for match in titles.find(tokens):
        if match.item_id not in allowed_titles:
            named = " ".join(t.raw for t in tokens[match.start:match.end])
            problems.append(f"names a movie outside the evidence ({named!r}, item {match.item_id})")
        # a title's own words claim nothing ("Star Wars" is not a war film, "Seven" not a number)
        first, last = tokens[match.start].start, tokens[match.end - 1].end
        rest = rest[:first] + " " * (last - first) + rest[last:]
    for word in _GENRE_PATTERN.findall(rest):
        if _GENRE_WORDS[word.lower()] not in genres:
            problems.append(f"claims a genre it does not have ({word!r})")
    for number in _NUMBER.findall(rest):
        if int(number) not in years:
            problems.append(f"states a number not in the evidence ({number})")
    return problems


# ------------------------------------------------------------------------------------ streaming
_listener: ContextVar[Callable[[str], None] | None] = ContextVar("cineagent_reply_listener", default=None)


@contextmanager
def streaming_to(callback: Callable[[str], None]) -> Iterator[None]:
    """While open, a reply the writer words in this context (and in tasks started from it) streams:
    ``callback`` gets each new draft of the reply text (see ``Drafts``), then the turn ends as usual."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


class Drafts:
    """The reply's drafts as its JSON streams in: each one the longest text so far that could be
    shown without showing more than the final check would pass of it.

    ``feed(arguments_so_far, done)`` returns the new draft, or None when there is nothing new to
    show: the reply has not begun, has not grown by a whole word, or its words so far fail the
    reply's claim checks (a title, genre or year outside the evidence) or its length limit."""

    def __init__(self, cards: Sequence[Card], titles: TitleIndex, request_genres: Sequence[str]) -> None:
        self.titles = titles
        self.allowed_titles, self.genres, self.years = reply_scope(cards, titles, request_genres)
        self.shown = ""
        self.held = False     # a draft failed the checks: nothing more is shown until one passes

    def feed(self, arguments: str, done: bool = False) -> str | None:
        try:
            partial = parse_partial_json(arguments) if arguments else None
        except Exception:  # noqa: BLE001 - half a JSON document that cannot be read yet
            return None
        reply = partial.get("reply") if isinstance(partial, dict) else None
        if not isinstance(reply, str):
            return None
        # the reply is finished once another key follows it (or the call is done); until then its
        # last word may still grow ("Sci" -> "Sci-Fi"), so only the words before it are drafts
        finished = done or len(partial) > 1
        text = reply.strip() if finished else _BEFORE_LAST_WORD.sub("", reply).strip()
        if not text or text == self.shown or not text.startswith(self.shown) or len(text) > MAX_REPLY_CHARS:
            return None
        self.held = bool(_claims(text, self.titles, self.allowed_titles, self.genres, self.years))
        if self.held:
            return None
        self.shown = text
        return text


# ------------------------------------------------------------------------------------ the writer
class ReplyWriter:
    """Words a turn's reply and reasons with an LLM, validated; the template answers otherwise."""

    def __init__(self, settings: LLMSettings, titles: TitleIndex) -> None:
        self.settings = settings
        self.titles = titles
        chat = ChatOpenAI(base_url=settings.base_url, model=settings.model, api_key=settings.api_key,
                          timeout=settings.timeout_s, max_retries=0, temperature=settings.temperature,
                          extra_body={"max_tokens": max(settings.max_tokens, 512)})
        self._chain = chat.with_structured_output(WrittenReply, method="function_calling", include_raw=True)
        # the same forced tool call, its chunks read as they come (``awrite`` with a listener)
        self._tool = chat.bind_tools([WrittenReply], tool_choice=WrittenReply.__name__, parallel_tool_calls=False)

    def _messages(self, request: str, cards: Sequence[Card]) -> list:
        return [SystemMessage(SYSTEM),
                HumanMessage(f"Request: {request}\nFacts: {json.dumps(facts(cards), ensure_ascii=False)}")]

    async def awrite(self, request: str, cards: Sequence[Card], template_text: str,
                     request_genres: Sequence[str]) -> Written:
        """The reply and reasons as the LLM words them, when they pass ``validate``, else the
        template's; with a listener (``streaming_to``) the reply streams to it as drafts. What it
        returns is checked the same way either way."""
        template = Written(template_text, {c.item_id: c.explanation for c in cards}, "template")
        if not cards:
            return template
        listener = _listener.get()
        details: dict[str, Any] = {"model": self.settings.model, "streamed": listener is not None}
        started = time.perf_counter()
        try:
            if listener is None:
                out = await self._chain.ainvoke(self._messages(request, cards))
            else:
                # the whole call within the timeout, as without streaming (the client's own timeout
                # is per read, and a stream reads often)
                out = await asyncio.wait_for(self._streamed(request, cards, request_genres, listener, details),
                                             self.settings.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever the endpoint does, the template answers
            details["latency_ms"] = _ms(started)
            return _fallback(template, f"{_failure_code(exc)}: {type(exc).__name__}: {exc}", details)
        return self._checked(out, started, details, template, cards, request_genres)

    async def _streamed(self, request: str, cards: Sequence[Card], request_genres: Sequence[str],
                        listener: Callable[[str], None], details: dict) -> dict:
        """The forced tool call streamed: drafts of its reply to ``listener`` as its arguments grow;
        returns what ``with_structured_output(include_raw=True)`` would have."""
        drafts = Drafts(cards, self.titles, request_genres)
        whole: AIMessageChunk | None = None
        arguments, chunks, first_ms = "", 0, None
        started = time.perf_counter()
        async for chunk in self._tool.astream(self._messages(request, cards)):
            whole = chunk if whole is None else whole + chunk
            piece = "".join(c.get("args") or "" for c in chunk.tool_call_chunks if (c.get("index") or 0) == 0)
            if not piece:
                continue
            chunks += 1
            first_ms = first_ms if first_ms is not None else _ms(started)
            arguments += piece
            draft = drafts.feed(arguments)
            if draft is not None:
                listener(draft)
        draft = drafts.feed(arguments, done=True)
        if draft is not None:
            listener(draft)
        # drafts_held: the last draft failed the checks, so the reply's end was never shown as a draft
        details.update({"stream_chunks": chunks, "first_token_ms": first_ms, "drafts_held": drafts.held})
        try:
            # strict=False: a raw newline inside a string is read, as LangChain reads a whole call
            parsed = WrittenReply.model_validate(json.loads(arguments, strict=False)) if arguments else None
            error = None if parsed is not None else "no WrittenReply call"
        except (ValueError, TypeError) as exc:   # bad JSON, or JSON of the wrong shape
            parsed, error = None, f"{type(exc).__name__}: {exc}"
        return {"raw": whole, "parsed": parsed, "parsing_error": error}

    def _checked(self, out: dict, started: float, details: dict, template: Written, cards: Sequence[Card],
                 request_genres: Sequence[str]) -> Written:
        details["latency_ms"] = _ms(started)
        details.update(_usage(out.get("raw")))
        written = out.get("parsed")
        if out.get("parsing_error") is not None or not isinstance(written, WrittenReply):
            return _fallback(template, f"invalid_output: {out.get('parsing_error') or 'no WrittenReply call'}", details)
        problems = validate(written, cards, self.titles, request_genres)
        if problems:
            details["written"] = written.model_dump()
            return Written(template.text, template.reasons, "template", problems, details)
        reasons = {**template.reasons, **{r.item_id: r.reason.strip() for r in written.reasons}}
        return Written(written.reply.strip(), reasons, "llm", [], details)


def _fallback(template: Written, reason: str, details: dict) -> Written:
    return Written(template.text, template.reasons, "template", [" ".join(reason.split())[:200]], details)
