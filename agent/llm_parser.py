"""The LLM intent parser: structured output from any OpenAI-compatible endpoint, grounded in the
catalog, with the offline parser answering whenever the LLM cannot.

One call:

1. The versioned prompt (``agent/prompts/intent_v<N>.json``: system prompt + few-shot turns) and
   the message go to ``ChatOpenAI.with_structured_output(RawIntent, method="function_calling")``.
   Function calling, not ``response_format``: llama.cpp servers reject ``json_schema`` response
   formats but turn a forced tool call into grammar-constrained JSON.
2. ``RawIntent`` is what the model may say: free-text genres and titles, plain numbers.
3. ``ground`` turns it into a validated ``Intent``: genres mapped onto the MovieLens vocabulary
   (case, synonyms and slang from ``agent.lexicon``, plurals, typos), titles resolved to item ids
   with the offline parser's ``TitleIndex`` and kept only if the message names them, keywords
   kept only if the message contains them, out-of-range years/counts dropped, unknown acts
   replaced by the default. Everything dropped is listed in ``details["dropped"]``.
4. On any failure (endpoint down, HTTP error, timeout, no/invalid tool call, nothing groundable)
   the offline parser answers within the same call: ``parser="offline"``, ``fallback_reason`` =
   ``"<code>: <message>"`` with code one of ``FALLBACK_CODES``.

Configuration (environment, read into ``agent.settings.Settings``): ``CINEAGENT_LLM_BASE_URL``
(unset = no LLM, the product uses the offline parser), ``CINEAGENT_LLM_MODEL``, ``OPENAI_API_KEY``
(local servers accept any key), ``CINEAGENT_LLM_TIMEOUT_S``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence, get_args

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from rapidfuzz import fuzz, process

from agent import lexicon
from agent.intent import MAX_COUNT, Act, Adjustment, Intent, IntentParser, ParseResult, Slot, UnusedPart, YearRange
from agent.offline_parser import MAX_CHARS, MAX_KEYWORDS, OfflineParser
from agent.prompts import Prompt, PromptError, load_prompt
from agent.steps import Step, recording
from agent.titles import TitleIndex, phrase, title_key, tokenize
from data.movielens import GENRES, MovieLens
from data.errors import CineAgentError

log = logging.getLogger(__name__)

ENV_BASE_URL = "CINEAGENT_LLM_BASE_URL"
DEFAULT_MODEL = "gpt-4o-mini"   # any name works for a single-model local server (llama.cpp ignores it)
LOCAL_API_KEY = "not-needed"    # sent when OPENAI_API_KEY is unset: local servers want some key
DEFAULT_TIMEOUT_S = 10.0        # per request; a parse slower than this is worse than the offline answer
DEFAULT_MAX_TOKENS = 256        # a full RawIntent is ~60-120 tokens; the cap stops runaway lists

GENRE_FUZZY_CUTOFF = 85.0       # rapidfuzz ratio (0-100) for a misspelt genre ("thriler")
GENRE_FUZZY_MIN_CHARS = 4       # shorter genre strings are never fuzzy-matched ("war" vs "way")
IN_MESSAGE_CUTOFF = 80.0        # partial ratio (0-100): a title/keyword must be (nearly) in the message
MAX_TITLE_CHARS = 200           # longer "titles" are prose, not titles
MAX_KEYWORD_CHARS = 40          # longer "keywords" are sentences
FALLBACK_MESSAGE_CHARS = 200    # error text kept in fallback_reason
RAW_RECORD_CHARS = 2000         # model output kept in details for the trace

ACTS = [a.value for a in Act]
FALLBACK_CODES = ("timeout", "connection_error", "http_error", "invalid_output", "ungroundable", "error")
_GENRE_SEPARATORS = re.compile(r"\s*(?:[/,;|&+]|\band\b)\s*")
_TRAILING_YEAR = re.compile(r"\s*\(?\b((?:19|20)\d\d)\)?\s*$")
# words that state a number; a count or explain_rank needs one in the message (models copy them
# from the few-shot examples): digits, and the lexicon's one-word numbers and ordinals
_NUMBER_WORDS = frozenset(k for table in (lexicon.NUMBER_WORDS, lexicon.ORDINALS) for k in table if " " not in k)
_DEICTIC = re.compile(r"\b(it|that|this|those|these|them|that one|this one)\b", re.I)
_GENRE_NOUNS = {"movie", "movies", "film", "films", "flick", "flicks", "genre", "genres", "picture", "pictures"}


# --------------------------------------------------------------------------- settings
class LLMNotConfigured(CineAgentError, RuntimeError):
    """No endpoint configured; the fix is in the message."""


class LLMSettings(BaseModel):
    """Where the LLM is and how long to wait for it. Defaults: ``DEFAULT_MODEL``, key
    ``LOCAL_API_KEY``, ``DEFAULT_TIMEOUT_S`` seconds, ``DEFAULT_MAX_TOKENS`` output tokens,
    temperature 0 (the same message should parse the same way)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1)
    model: str = DEFAULT_MODEL
    api_key: SecretStr = SecretStr(LOCAL_API_KEY)
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=16)
    temperature: float = Field(default=0.0, ge=0, le=2)


# --------------------------------------------------------------------------- what the LLM fills in
class RawIntent(BaseModel):
    """A movie request as read from one message. Fill in only what the message says."""

    model_config = ConfigDict(extra="ignore")

    # the enum goes into the tool schema (a grammar on llama.cpp) but validation accepts any
    # string, so an endpoint that ignores it still parses and grounding repairs the act
    act: str = Field(default=Act.recommend.value, description="what the person wants",
                     json_schema_extra={"enum": ACTS})
    genres: list[str] = Field(default_factory=list, description="genres wanted")
    exclude_genres: list[str] = Field(default_factory=list, description="genres not wanted")
    titles: list[str] = Field(default_factory=list, description="movie titles named in the message")
    year_start: int | None = Field(default=None, description="earliest release year")
    year_end: int | None = Field(default=None, description="latest release year")
    keywords: list[str] = Field(default_factory=list, description="other words about mood or topic")
    count: int | None = Field(default=None, description="how many movies")
    explain_rank: int | None = Field(default=None, description="which listed movie a why-question is about")
    # operations on the standing request (the dialogue state), as the offline parser reads them too
    exclude_titles: list[str] = Field(default_factory=list, description="titles seen, disliked or rejected")
    replace: bool = Field(default=False, description="the new genres replace the standing ones")
    relax: list[str] = Field(default_factory=list, description="parts of the standing request to drop",
                             json_schema_extra={"items": {"enum": list(get_args(Slot))}})
    adjust: list[str] = Field(default_factory=list, description="relative changes asked for",
                              json_schema_extra={"items": {"enum": list(get_args(Adjustment))}})
    card_ref: int | None = Field(default=None, description="the listed movie pointed at; 0 = that one")

    @field_validator("genres", "exclude_genres", "titles", "keywords", "exclude_titles", "relax", "adjust", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        # weaker models write one string where a list is asked for, or null for none
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value


# --------------------------------------------------------------------------- grounding
class GroundingError(ValueError):
    """The model named genres or titles and none of them exists in the catalog."""


class GenreVocabulary:
    """Maps a genre as a model writes it ("sci fi", "Romantic comedy", "Thriler", "horror films",
    "Action/Adventure") onto MovieLens genres.

    Lookup order: the genre names and the lexicon's phrases (``agent.lexicon.STRONG`` and
    ``WEAK``) after tokenisation, then singular forms, then a fuzzy match (``fuzzy_cutoff``,
    default ``GENRE_FUZZY_CUTOFF``) for strings of at least ``GENRE_FUZZY_MIN_CHARS``; a string
    naming several genres is split at "/", ",", "and"... when it does not match as a whole."""

    def __init__(self, genres: Sequence[str] = GENRES, fuzzy_cutoff: float = GENRE_FUZZY_CUTOFF):
        self.genres = tuple(genres)
        self.fuzzy_cutoff = fuzzy_cutoff
        self._table: dict[str, tuple[str, ...]] = {}
        for g in self.genres:
            self._table[" ".join(phrase(g))] = (g,)
        # genre names first, then the unambiguous slang, then descriptions ("funny")
        for table in (lexicon.STRONG, lexicon.WEAK):
            for text, mapped in table.items():
                mapped = tuple(m for m in mapped if m in self.genres)
                if mapped:
                    self._table.setdefault(" ".join(phrase(text)), mapped)
        self._keys = list(self._table)

    def map(self, text: str) -> tuple[str, ...]:
        """MovieLens genres named by ``text``; () when it names none."""
        found = self._lookup(text)
        if found:
            return found
        parts = [p for p in _GENRE_SEPARATORS.split(text) if p.strip()]
        if len(parts) > 1:
            return tuple(dict.fromkeys(g for p in parts for g in self._lookup(p)))
        return ()

    def _lookup(self, text: str) -> tuple[str, ...]:
        words = list(phrase(text))
        while len(words) > 1 and words[-1] in _GENRE_NOUNS:
            words.pop()  # "horror films" -> "horror"
        key = " ".join(words)
        if not key:
            return ()
        for candidate in (key, *_singulars(key)):
            if candidate in self._table:
                return self._table[candidate]
        if len(key) >= GENRE_FUZZY_MIN_CHARS:
            hit = process.extractOne(key, self._keys, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff)
            if hit:
                return self._table[hit[0]]
        return ()


def _singulars(key: str) -> list[str]:
    if key.endswith("ies"):
        return [key[:-3] + "y"]
    if key.endswith("es"):
        return [key[:-2], key[:-1]]
    if key.endswith("s"):
        return [key[:-1]]
    return []


@dataclass
class Grounded:
    """A validated intent and what was dropped on the way ({"field", "value", "reason"} each)."""

    intent: Intent
    dropped: list[dict] = field(default_factory=list)


def _in_message(value: str, message_key: str) -> bool:
    key = title_key(phrase(value))
    return bool(key) and fuzz.partial_ratio(key, message_key) >= IN_MESSAGE_CUTOFF


def resolve_title(text: str, titles: TitleIndex) -> int | None:
    """Item id of the catalog film a model wrote as ``text`` ("The Usual Suspects", "Heat (1995)",
    "pulp fction"), or None. An exact lookup first; then the title index's own fuzzy matching,
    which it applies to quoted text, accepted only when it covers the whole string."""
    year = None
    m = _TRAILING_YEAR.search(text)
    if m and m.start() > 0:
        year, text = int(m.group(1)), text[:m.start()]
    item_id = titles.lookup(text, year)
    if item_id is not None:
        return item_id
    tokens = tokenize(f'"{text}"')
    matches = titles.find(tokens)
    if len(matches) == 1 and matches[0].start == 0 and matches[0].end == len(tokens):
        return matches[0].item_id
    return None


def ground(raw: RawIntent, text: str, vocabulary: GenreVocabulary, titles: TitleIndex,
           previous: Intent | None = None) -> Grounded:
    """Turn the model's reading of ``text`` into an ``Intent`` that only refers to the catalog.

    - genres/exclude_genres: through ``vocabulary``; unmappable ones are dropped.
    - titles: resolved with ``resolve_title``, and only if the message names them (a small model
      copies titles from its few-shot examples or free-associates sequels).
    - keywords: kept only if they are words of the message; at most ``MAX_KEYWORDS``.
    - years outside 1900-2100 and counts outside 1-``MAX_COUNT`` are dropped, and so are a count
      or ``explain_rank`` when the message states no number; ``explain_rank`` only with act explain.
    - exclude_titles: like titles; relax/adjust: only the slots and adjustments the dialogue state
      knows (relax only with a standing request); card_ref only with an ordinal, or with "it" /
      "that one" for 0, in the message.
    - act: an unknown act becomes ``Act.recommend``; refine without a standing request
      (``previous``) becomes recommend; clarify with constraints becomes recommend; chit_chat
      carries no constraints (anything the model added to it is dropped).

    Raises GroundingError when the model named genres or titles and none of them was grounded:
    its reading is then not worth more than the offline parser's."""
    dropped: list[dict] = []

    def drop(name: str, value: Any, reason: str) -> None:
        dropped.append({"field": name, "value": value, "reason": reason})

    message_key = title_key(phrase(text))
    states_number = any(w.isdigit() or w in _NUMBER_WORDS for w in phrase(text))

    def genres_of(name: str, values: list[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            mapped = vocabulary.map(value)
            if mapped:
                out.extend(mapped)
            else:
                drop(name, value, "not a MovieLens genre")
        return list(dict.fromkeys(out))

    genres = genres_of("genres", raw.genres)
    excluded = genres_of("exclude_genres", raw.exclude_genres)

    def titles_of(name: str, values: list[str]) -> list[int]:
        ids: list[int] = []
        for value in values:
            value = value.strip()
            if not value or len(value) > MAX_TITLE_CHARS:
                drop(name, value[:MAX_TITLE_CHARS], "not a title")
            elif not _in_message(_TRAILING_YEAR.sub("", value) or value, message_key):
                drop(name, value, "not named in the message")
            else:
                item_id = resolve_title(value, titles)
                if item_id is None:
                    drop(name, value, "not in the catalog")
                elif item_id not in ids:
                    ids.append(item_id)
        return ids

    title_ids = titles_of("titles", raw.titles)
    rejected = [t for t in titles_of("exclude_titles", raw.exclude_titles) if t not in title_ids]
    named = len(raw.genres) + len(raw.exclude_genres) + len(raw.titles) + len(raw.exclude_titles)
    if named and not (genres or excluded or title_ids or rejected):
        raise GroundingError(f"none of the {named} genre(s)/title(s) the model named is in the catalog: {dropped}")

    keywords: list[str] = []
    for value in raw.keywords:
        value = " ".join(value.split())
        if not value or len(value) > MAX_KEYWORD_CHARS:
            drop("keywords", value[:MAX_KEYWORD_CHARS], "not a keyword")
        elif not _in_message(value, message_key):
            drop("keywords", value, "not in the message")
        elif value.lower() not in (k.lower() for k in keywords):
            keywords.append(value)
    if len(keywords) > MAX_KEYWORDS:
        drop("keywords", keywords[MAX_KEYWORDS:], f"more than {MAX_KEYWORDS}")
        keywords = keywords[:MAX_KEYWORDS]

    bounds = {}
    for name in ("year_start", "year_end"):
        year = getattr(raw, name)
        if year is not None and not 1900 <= year <= 2100:
            drop(name, year, "outside 1900-2100")
            year = None
        bounds[name] = year
    years = YearRange(start=bounds["year_start"], end=bounds["year_end"]) if any(
        v is not None for v in bounds.values()) else None

    count = raw.count
    if count is not None and not 1 <= count <= MAX_COUNT:
        drop("count", count, f"outside 1-{MAX_COUNT}")
        count = None
    elif count is not None and not states_number:
        drop("count", count, "the message states no number")
        count = None

    def allowed(name: str, values: list[str], valid: tuple[str, ...]) -> list:
        out = []
        for value in values:
            value = str(value).strip().lower().replace(" ", "_").replace("-", "_")
            if value in valid:
                out.append(value)
            else:
                drop(name, value, f"valid: {', '.join(valid)}")
        return list(dict.fromkeys(out))

    relax = allowed("relax", raw.relax, get_args(Slot)) if previous is not None else []
    adjust = allowed("adjust", raw.adjust, get_args(Adjustment))
    if raw.relax and previous is None:
        drop("relax", raw.relax, "no standing request to relax")
    card_ref = raw.card_ref
    deictic = bool(_DEICTIC.search(text))
    if card_ref is not None and not (0 <= card_ref <= MAX_COUNT and (states_number if card_ref else deictic)):
        drop("card_ref", card_ref, "needs an ordinal, or 'that one' / 'it' for 0, in the message")
        card_ref = None

    act_name = raw.act.strip().lower().replace("-", "_").replace(" ", "_")
    if act_name not in ACTS:
        drop("act", raw.act, f"unknown act; valid: {', '.join(ACTS)}")
        act_name = Act.recommend.value
    act = Act(act_name)
    constrained = bool(genres or excluded or title_ids or rejected or years or keywords or adjust or relax
                       or card_ref is not None)
    if act is Act.refine and previous is None:
        drop("act", act.value, "no standing request to refine")
        act = Act.recommend
    elif act is Act.clarify and constrained:
        act = Act.recommend

    rank = raw.explain_rank
    if rank is not None and (act is not Act.explain or not 1 <= rank <= MAX_COUNT or not states_number):
        drop("explain_rank", rank, f"only for act explain, 1-{MAX_COUNT}, with a number in the message")
        rank = None

    if act is Act.chit_chat:
        if constrained or count is not None:
            drop("act", act.value, "chit_chat carries no constraints; they were dropped")
        return Grounded(Intent(act=Act.chit_chat), dropped)
    intent = Intent(act=act, genres=genres, exclude_genres=excluded, titles=title_ids, exclude_titles=rejected,
                    years=years, keywords=keywords, count=count, explain_rank=rank, replace=raw.replace and bool(genres),
                    relax=relax, adjust=adjust, card_ref=card_ref)
    return Grounded(intent, dropped)


# --------------------------------------------------------------------------- the parser
def _failure_code(exc: BaseException) -> str:
    """One of ``FALLBACK_CODES`` for an exception raised while calling the endpoint."""
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.APIStatusError):
        return "http_error"
    if isinstance(exc, (openai.APIResponseValidationError, ValidationError, json.JSONDecodeError)):
        return "invalid_output"
    return "error"


class LLMParser(IntentParser):
    """``parse(text, previous)`` through an LLM, grounded; the offline parser answers on failure."""

    name = "llm"

    def __init__(self, data: MovieLens, offline: OfflineParser | None = None,
                 settings: LLMSettings | None = None, prompt: Prompt | None = None):
        """data: the MovieLens catalog. offline: the fallback parser, whose title index is also
        used for grounding (default: ``OfflineParser(data)``). settings: the endpoint (default:
        ``Settings.from_env().llm()``; raises LLMNotConfigured when that is None). prompt: default
        the latest ``intent`` prompt in ``agent/prompts``."""
        if settings is None:
            from agent.settings import Settings

            settings = Settings.from_env().llm()
        if settings is None:
            raise LLMNotConfigured(f"no LLM endpoint: set {ENV_BASE_URL} (e.g. http://127.0.0.1:8000/v1) "
                                   "or use the offline parser")
        self.settings = settings
        self.offline = offline if offline is not None else OfflineParser(data)
        self.prompt = prompt or load_prompt("intent")
        self.vocabulary = GenreVocabulary()
        self._titles_by_id = dict(zip(data.items["item_id"].astype(int), data.items["title"].astype(str)))
        self._few_shot = self._render_examples(self.prompt)
        self._system = SystemMessage(self.prompt.system.replace("{genres}", ", ".join(GENRES)))
        chat = ChatOpenAI(
            base_url=settings.base_url, model=settings.model, api_key=settings.api_key,
            timeout=settings.timeout_s, max_retries=0, temperature=settings.temperature,
            # "max_tokens" is what llama.cpp, vLLM and Ollama read; langchain would send
            # "max_completion_tokens", which llama-cpp-python's server ignores
            extra_body={"max_tokens": settings.max_tokens},
        )
        self._chain = chat.with_structured_output(RawIntent, method="function_calling", include_raw=True)

    # ----------------------------------------------------------------------- public
    def parse(self, text: str, previous: Intent | None = None) -> ParseResult:
        """The synchronous call (evaluation, warm-up); a turn uses ``aparse``."""
        text = (text if isinstance(text, str) else "")[:MAX_CHARS]
        with self._llm_call(text) as (call, trace):
            try:
                out = self._chain.invoke(self.messages(text, previous))
            except Exception as exc:  # noqa: BLE001 - whatever the endpoint does, the turn is answered
                out = exc
            answer = self._read(out, text, previous, trace, call)
        if isinstance(answer, ParseResult):
            return answer.model_copy(update={"unused": self._unused(text, previous)})
        return self._fallback(text, previous, *answer, trace)

    async def aparse(self, text: str, previous: Intent | None = None) -> ParseResult:
        """``parse`` on an event loop: the LLM call is awaited (LangChain's async client), and the
        offline parser (the unused parts of a good answer, or the whole answer to a failed call)
        runs in a worker thread: it may run MiniLM."""
        text = (text if isinstance(text, str) else "")[:MAX_CHARS]
        with self._llm_call(text) as (call, trace):
            try:
                out = await self._chain.ainvoke(self.messages(text, previous))
            except Exception as exc:  # noqa: BLE001 - whatever the endpoint does, the turn is answered
                out = exc
            answer = self._read(out, text, previous, trace, call)
        if isinstance(answer, ParseResult):
            return answer.model_copy(update={"unused": await asyncio.to_thread(self._unused, text, previous)})
        return await asyncio.to_thread(self._fallback, text, previous, *answer, trace)

    @contextmanager
    def _llm_call(self, text: str) -> Iterator[tuple[Step, dict]]:
        """The LLM call as a generation step of the turn (a span while it is traced), with what
        Langfuse shows of a generation: model, parameters, prompt version, usage."""
        trace: dict[str, Any] = {"prompt_version": self.prompt.version, "model": self.settings.model}
        with recording(None, "llm_call", "generation") as call:
            call.input = {"message": text}
            call.facts = {"model": self.settings.model, "prompt_version": self.prompt.version,
                          "model_parameters": {"temperature": self.settings.temperature,
                                               "max_tokens": self.settings.max_tokens,
                                               "timeout_s": self.settings.timeout_s}}
            trace["_started"] = time.perf_counter()
            yield call, trace

    def _unused(self, text: str, previous: Intent | None) -> list[UnusedPart]:
        """What the catalog cannot hold (people, plots, later films, other languages), found the
        same way whichever parser reads the request: by the offline reading."""
        return self.offline.parse(text, previous).unused

    def _read(self, out: Any, text: str, previous: Intent | None, trace: dict, call: Step) -> ParseResult | tuple[str, str]:
        """The chain's answer (or exception) -> a grounded ParseResult (its ``unused`` left to the
        caller: ``_unused``), or (failure code, message)."""
        trace["latency_ms"] = _ms(trace.pop("_started"))
        if isinstance(out, Exception):
            failure = (_failure_code(out), f"{type(out).__name__}: {out}")
        else:
            raw_message = out.get("raw")
            trace.update(_usage(raw_message))
            trace["raw"] = _raw_record(raw_message)
            call.facts["usage"] = {k: trace[k] for k in ("input_tokens", "output_tokens", "total_tokens") if k in trace}
            call.output = {"raw": trace["raw"]}
            parsed = out.get("parsed")
            if out.get("parsing_error") is not None or not isinstance(parsed, RawIntent):
                failure = ("invalid_output", str(out.get("parsing_error") or _no_tool_call_reason(raw_message)))
            else:
                try:
                    grounded = ground(parsed, text, self.vocabulary, self.offline.titles, previous)
                except GroundingError as exc:
                    failure = ("ungroundable", str(exc))
                else:
                    trace["dropped"] = grounded.dropped
                    call.output = {"intent": grounded.intent.model_dump(mode="json"), "raw": trace["raw"],
                                   "dropped": grounded.dropped}
                    return ParseResult(intent=grounded.intent, parser=self.name, details=trace)
        # the call failed, the turn does not: the generation is marked, the offline parser answers
        call.facts.update(level="ERROR", status_message=f"{failure[0]}: {failure[1]}"[:FALLBACK_MESSAGE_CHARS])
        return failure

    def warm_up(self) -> ParseResult:
        """Parse one greeting so the endpoint has seen the system prompt and examples: a llama.cpp
        server keeps their evaluation, so the first real request is as fast as the rest (SmolLM2-135M
        on one busy CPU core: 7-8 s cold, ~1 s warm; a cold call past the timeout still warms the
        server, which finishes it after the client has given up). Returns the greeting's result."""
        result = self.parse("hello")
        log.info("LLM parser warm-up: %s (%s)", result.parser, result.fallback_reason or "ok")
        return result

    def messages(self, text: str, previous: Intent | None = None) -> list[BaseMessage]:
        """The chat sent for one message: system prompt, few-shot turns, the message."""
        return [self._system, *self._few_shot, HumanMessage(self._render_user(self.prompt, text, self._previous(previous)))]

    # ----------------------------------------------------------------------- helpers
    def _fallback(self, text: str, previous: Intent | None, code: str, message: str, trace: dict) -> ParseResult:
        message = " ".join(message.split())[:FALLBACK_MESSAGE_CHARS]
        log.warning("LLM parser fell back to offline (%s): %s", code, message)
        result = self.offline.parse(text, previous)
        details = dict(result.details)
        details["llm"] = trace
        details["fallback"] = {"reason": code, "message": message}
        return result.model_copy(update={"parser": self.offline.name, "fallback_reason": f"{code}: {message}",
                                         "details": details})

    def _previous(self, previous: Intent | None) -> dict | None:
        """The standing request as the model should see it: titles by name, not item id."""
        if previous is None:
            return None
        shown = previous.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        shown.pop("act", None)
        for key in ("titles", "exclude_titles"):
            if getattr(previous, key):
                shown[key] = [self._titles_by_id.get(i, str(i)) for i in getattr(previous, key)]
        return shown

    @staticmethod
    def _render_user(prompt: Prompt, text: str, previous: dict | None) -> str:
        if previous is None:
            return prompt.user_template.replace("{text}", text)
        return prompt.previous_template.replace("{previous}", json.dumps(previous)).replace("{text}", text)

    @classmethod
    def _render_examples(cls, prompt: Prompt) -> list[BaseMessage]:
        turns: list[BaseMessage] = []
        for k, example in enumerate(prompt.examples):
            try:
                RawIntent.model_validate(example.output)
            except ValidationError as exc:
                raise PromptError(f"{prompt.version}: example {k} output does not fit RawIntent: {exc}") from exc
            turns.append(HumanMessage(cls._render_user(prompt, example.user, example.previous)))
            turns.append(AIMessage(json.dumps(example.output)))
        return turns


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _usage(message: Any) -> dict:
    usage = getattr(message, "usage_metadata", None) or {}
    return {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens"),
            "total_tokens": usage.get("total_tokens")}


def _raw_record(message: Any) -> Any:
    """The model's tool-call arguments (or text) for the trace, truncated."""
    if not isinstance(message, AIMessage):
        return None
    if message.tool_calls:
        return json.dumps(message.tool_calls[0].get("args"))[:RAW_RECORD_CHARS]
    if message.invalid_tool_calls:
        return str(message.invalid_tool_calls[0].get("args"))[:RAW_RECORD_CHARS]
    return str(message.content)[:RAW_RECORD_CHARS]


def _no_tool_call_reason(message: Any) -> str:
    if isinstance(message, AIMessage) and message.invalid_tool_calls:
        bad = message.invalid_tool_calls[0]
        return f"tool call arguments are not valid JSON: {bad.get('error') or bad.get('args')}"
    return "the model answered without calling RawIntent"
