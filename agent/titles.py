"""Find the films a request names and resolve them to MovieLens item ids.

Catalog titles are stored the MovieLens way ("Usual Suspects, The", "Godfather: Part II, The",
"Seven (Se7en)"); people type "the usual suspects", "godfather part 2", "Se7en". Both sides go
through one normalisation (``title_key``): lower case, apostrophes and leading articles dropped,
"&" -> "and", number words and roman numerals -> digits, "part" before a number dropped.

Many titles are ordinary words ("Heat", "Kids", "Ran", "Speed", "Ghost", "Home Alone"), so a span
of the request that spells a title is taken as a reference only with evidence:

- a cue before it ("like Heat", "similar to", "I loved", "why did you pick"),
- quotes ("Ran"), or capitals that are not just the start of a sentence ("I watched Heat"),
- or the span is the whole request ("star wars"),
- or it is distinctive on its own: three or more content words, or two with one that is not a
  common word ("pulp fiction", "toy story").

A one-word title must also stand alone in its phrase ("like Alien" yes, "like alien movies" no),
and a one-word title that is also a genre word ("Ghost", "Scream") needs quotes or capitals.
Small typos are forgiven after a cue or inside quotes (``FUZZY_CUTOFF``).
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import pandas as pd
from rapidfuzz import fuzz, process

log = logging.getLogger(__name__)

FUZZY_CUTOFF = 88.0          # rapidfuzz ratio (0-100) for a typed span vs a title, multi-word
FUZZY_CUTOFF_ONE_WORD = 92.0  # a single typed word must be closer still
MAX_SPAN_TOKENS = 10          # longest span tried against the catalog (most titles are shorter)
MAX_FUZZY_STARTS = 4          # cue positions tried with fuzzy matching per message (~0.3 ms each)
COMMON_TITLE_WORD_DF = 3      # a word in at least this many titles counts as common

# Function words: they never make a title distinctive and may start or end a phrase around one.
STOPWORDS = frozenset("""
a an the of in on at to for from with by and or but nor not no so as is are was were be been
it its this that these those i me my you your we our they them he she his her what which who
please pls than then too very just also only more most some any all one ones
""".split())
# Ordinary English words that are titles or parts of two-word titles; with the catalog's own
# frequent words and the lexicon they decide when a two-word title needs evidence.
COMMON_WORDS = frozenset("""
man men woman women boy boys girl girls kid kids child dead death die dying life live living love
lover night day days time times home house world city town street road way star stars war wars
big little small great good bad best true free wild hard heavy dark light black white red blue
green gold golden young old new last first lost alone fire water air sky sea sun moon heat speed
crash contact ghost rock king queen prince princess lady lord mr mrs miss sister brother father
mother son daughter family friend friends party game games story stories dream dreams heart
hearts mind money power blood kiss kill killer killers murder secret secrets truth lies lie face
faces eye eyes head hand hands body soul spirit angel angels devil heaven hell god dog dogs cat
cats horse wolf bird birds fly flying run running fall falling rising walk walking high low long
short deep far near back down out up under over beyond edge end beginning top bottom line lines
point side part half full whole sweet bitter cold hot warm fast slow loud quiet strange
""".split())
_ARTICLES = ("the", "a", "an")
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "twenty": "20",
}
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<article>The|A|An|Les|Le|La|L'|Il|El|Das|Der|Die|Det|Den)$")
_PAREN = re.compile(r"\s*\(([^()]*)\)\s*")


# --------------------------------------------------------------------------- tokenizer
@dataclass(frozen=True)
class Token:
    """One word of a message.

    text: normalised form (lower case, apostrophes removed, "L.A." -> "la", "&" -> "and");
    raw: as typed; start/end: character offsets in the message; boundary_before: clause
    punctuation separates it from the previous word; sentence_start: first word of a sentence;
    hyphen_before: joined to the previous word by a bare hyphen ("sci-fi"); quoted: inside quotes.
    """

    text: str
    raw: str
    start: int
    end: int
    boundary_before: bool = False
    sentence_start: bool = False
    hyphen_before: bool = False
    quoted: bool = False


_TOKEN = re.compile(r"(?:[^\W\d_]\.){2,}|[^\W_]+(?:['’][^\W_]+)*|&")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)|‘([^’]+)’")
_BOUNDARY_CHARS = set(",;:!?()[]{}\"“”…\n")
_SENTENCE_END_CHARS = set(".!?\n")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "mt", "prof"}


def tokenize(text: str) -> list[Token]:
    """Split a message (or a title, or a lexicon phrase) into normalised words."""
    quoted_ranges = [m.span() for m in _QUOTED.finditer(text)]
    tokens: list[Token] = []
    prev_end = 0
    prev_text = ""
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        gap = text[prev_end:match.start()]
        norm = "and" if raw == "&" else raw.lower().replace("’", "'").replace("'", "").replace(".", "")
        stripped = gap.strip()
        period_ends = "." in gap and prev_text not in _ABBREVIATIONS
        dash_clause = bool(re.search(r"\s[-–—]+\s|[–—]", gap))
        boundary = bool(tokens) and (any(c in _BOUNDARY_CHARS for c in gap) or period_ends or dash_clause)
        sentence = not tokens or any(c in _SENTENCE_END_CHARS for c in gap.replace(".", "")) or period_ends
        quoted = any(a <= match.start() < b for a, b in quoted_ranges)
        tokens.append(Token(norm, raw, match.start(), match.end(), boundary, sentence,
                            hyphen_before=bool(tokens) and stripped == "-" and gap == "-", quoted=quoted))
        prev_end, prev_text = match.end(), norm
    return tokens


def phrase(text: str) -> tuple[str, ...]:
    """A lexicon phrase as the tuple of normalised words a message would contain."""
    return tuple(t.text for t in tokenize(text))


# --------------------------------------------------------------------------- normalisation
def title_key(words: Sequence[str]) -> str:
    """Normalised form of a title or of a typed span (already tokenised words)."""
    out = list(words)
    while out and out[0] in _ARTICLES and len(out) > 1:
        out = out[1:]
    mapped = []
    for i, w in enumerate(out):
        w = _NUMBER_WORDS.get(w, w)
        w = _ROMAN.get(w, w) if i > 0 else w
        mapped.append(w)
    mapped = [w for i, w in enumerate(mapped) if not (w == "part" and i + 1 < len(mapped) and mapped[i + 1].isdigit())]
    return " ".join(mapped)


def catalog_variants(title: str) -> list[tuple[int, str]]:
    """(priority, text) forms under which a catalog title can be typed; 0 = the title itself,
    1 = an alternative title in parentheses, 2 = a short form: the part before a colon (when it
    has two words or more) or a leading acronym ("E.T.")."""
    main = _PAREN.sub(" ", title).strip()
    alternatives = [a.strip() for a in _PAREN.findall(title)]
    variants: list[tuple[int, str]] = []

    def front_article(text: str) -> str:
        m = _TRAILING_ARTICLE.match(text)
        return f"{m['article']} {m['body']}" if m else text

    main = front_article(main)
    variants.append((0, main))
    for alt in alternatives:
        if alt and not alt.isdigit():
            variants.append((1, front_article(alt)))
    if ":" in main:
        head = main.split(":", 1)[0]
        if len(phrase(head)) >= 2:
            variants.append((2, head))
    words = tokenize(main)
    if len(words) > 1 and words[0].raw.count(".") >= 2:
        variants.append((2, words[0].raw))  # "E.T. the Extra-Terrestrial" is called "E.T."
    return variants


@dataclass(frozen=True)
class TitleMatch:
    """A film named in the message: its item id and the token span [start, end) that named it."""

    item_id: int
    start: int
    end: int
    score: float        # 100 for an exact match, else the fuzzy ratio
    evidence: str       # "distinctive", "cue", "quoted", "capitals", "whole", "fuzzy"
    year_token: int | None = None  # index of a disambiguating year typed after the title


@dataclass(frozen=True)
class _Entry:
    priority: int
    popularity: int
    item_id: int
    year: int | None


class TitleIndex:
    """All catalog titles under their normalised keys, built once per catalog."""

    def __init__(self, items: pd.DataFrame, popularity: dict[int, int] | None = None,
                 genre_words: Iterable[str] = (), common_words: Iterable[str] = (),
                 filler_words: Iterable[str] = (), cue_phrases: Iterable[Sequence[str]] = (),
                 movie_nouns: Iterable[str] = ()):
        """items: item_id, title, year (the MovieLens items table); popularity: ratings per item
        (breaks ties between films with one title). The rest tune the evidence rules: genre_words:
        one-word genre terms ("ghost", "western"); common_words: more ordinary words (added to
        ``COMMON_WORDS``); filler_words: words that carry no request ("please", "movie"), so a
        title with only these around it is the whole request; cue_phrases: tokenised cues that
        introduce a title ("like", "similar to"); movie_nouns: words that make a one-word title
        before them a description ("alien movies"). All default to none."""
        popularity = popularity or {}
        self._entries: dict[str, list[_Entry]] = {}
        for row in items.itertuples(index=False):
            year = None if pd.isna(row.year) else int(row.year)
            for priority, text in catalog_variants(str(row.title)):
                key = title_key(phrase(text))
                if key:
                    entry = _Entry(priority, int(popularity.get(int(row.item_id), 0)), int(row.item_id), year)
                    self._entries.setdefault(key, []).append(entry)
        for entries in self._entries.values():
            entries.sort(key=lambda e: (e.priority, -e.popularity, e.item_id))
        self._keys = list(self._entries)
        df = Counter(w for key in self._keys for w in set(key.split()))
        self.genre_words = frozenset(genre_words)
        self._fillers = STOPWORDS | frozenset(filler_words)
        self.common = (COMMON_WORDS | STOPWORDS | self.genre_words | frozenset(common_words)
                       | {w for w, n in df.items() if n >= COMMON_TITLE_WORD_DF})
        self.words = frozenset(df)  # every word of every title: real words, never typos
        self._cues = sorted({tuple(c) for c in cue_phrases if c}, key=len, reverse=True)
        self._movie_nouns = frozenset(movie_nouns)
        self.max_tokens = min(MAX_SPAN_TOKENS, max(len(k.split()) for k in self._keys) + 1)
        # longest key (in words) by its first word: most words of a message start no title
        self._longest_from: dict[str, int] = {}
        for key in self._keys:
            first, length = key.split()[0], len(key.split())
            self._longest_from[first] = max(self._longest_from.get(first, 0), length)
        log.debug("title index: %d keys for %d items", len(self._keys), len(items))

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, text: str, year: int | None = None) -> int | None:
        """Item id of the film typed as ``text`` (exact after normalisation), or None."""
        entries = self._entries.get(title_key(phrase(text)))
        return self._pick(entries, year) if entries else None

    @staticmethod
    def _pick(entries: list[_Entry], year: int | None) -> int:
        if year is not None:
            same_year = [e for e in entries if e.year == year]
            if same_year:
                return same_year[0].item_id
        return entries[0].item_id

    # ----------------------------------------------------------------------- spotting in a message
    def find(self, tokens: Sequence[Token], skip: set[int] = frozenset()) -> list[TitleMatch]:
        """Titles named in a tokenised message, left to right, without overlaps."""
        n = len(tokens)
        words = [t.text for t in tokens]
        cased = any(t.raw[:1].islower() for t in tokens) and any(t.raw[:1].isupper() for t in tokens)
        # the words that carry meaning: a title spanning all of them is the whole request
        significant = [i for i, t in enumerate(tokens) if t.text not in self._fillers]
        taken: set[int] = set(skip)
        found: list[TitleMatch] = []

        # 1. exact spans, longest first at each position
        i = 0
        while i < n:
            match = None
            if i not in taken:
                for length in range(min(self._longest_at(words, i), n - i), 0, -1):
                    span = range(i, i + length)
                    if any(j in taken for j in span):
                        continue
                    entries = self._entries.get(title_key(words[i:i + length]))
                    if not entries:
                        continue
                    evidence = self._exact_evidence(tokens, i, i + length, found, cased, significant)
                    if evidence:
                        match = self._resolve(tokens, entries, i, i + length, 100.0, evidence)
                        break
            if match:
                found.append(match)
                taken.update(range(match.start, match.end))
                if match.year_token is not None:
                    taken.add(match.year_token)
                i = match.end
            else:
                i += 1

        # 2. typed with small typos: after a cue, or inside quotes
        for start in self._fuzzy_starts(tokens, found, taken)[:MAX_FUZZY_STARTS]:
            match = self._fuzzy_at(tokens, start, taken)
            if match:
                found.append(match)
                taken.update(range(match.start, match.end))
                if match.year_token is not None:
                    taken.add(match.year_token)
        return sorted(found, key=lambda m: m.start)

    def _longest_at(self, words: Sequence[str], i: int) -> int:
        """Most words a title starting at word ``i`` can span (0: none starts there)."""
        lead = 1 if words[i] in _ARTICLES and i + 1 < len(words) else 0
        first = words[i + lead]
        first = _NUMBER_WORDS.get(first, first)
        longest = max(self._longest_from.get(first, 0), self._longest_from.get(words[i], 0))
        return longest + lead + 1 if longest else 0  # +1: "part" may be typed and dropped

    def _resolve(self, tokens, entries, start, end, score, evidence) -> TitleMatch:
        year_token = None
        j = end
        if j < len(tokens) and re.fullmatch(r"(19|20)\d\d", tokens[j].text):
            candidates = [e for e in entries if e.year == int(tokens[j].text)]
            if candidates:
                year_token = j
        year = int(tokens[year_token].text) if year_token is not None else None
        return TitleMatch(self._pick(entries, year), start, end, score, evidence, year_token)

    def _cue_before(self, tokens: Sequence[Token], start: int, found: list[TitleMatch]) -> bool:
        j = start
        if j > 0 and tokens[j - 1].text in _ARTICLES and not tokens[j - 1].boundary_before:
            j -= 1  # "like the godfather" when the span is "godfather"
        words = [t.text for t in tokens[:j]]
        for cue in self._cues:
            if len(cue) <= len(words) and tuple(words[len(words) - len(cue):]) == cue:
                return True
        # a list of titles: "Alien and Aliens", "Fargo, Heat or Casino"
        if j > 0 and found and found[-1].end in (j, j - 1) and (words[-1] in ("and", "or", "nor") or tokens[j].boundary_before):
            return True
        return False

    def _exact_evidence(self, tokens, start, end, found, cased, significant) -> str | None:
        span = tokens[start:end]
        content = [t for t in span if t.text not in STOPWORDS]
        if not content:
            return None
        one_word = len(content) == 1
        quoted = all(t.quoted for t in span)
        capitals = cased and all(t.raw[:1].isupper() or t.raw[:1].isdigit() for t in content) and (
            not span[0].sentence_start or len(content) >= 2)
        if one_word:
            nxt = tokens[end] if end < len(tokens) else None
            prev = tokens[start - 1] if start > 0 else None
            if not quoted:
                if nxt is not None and not nxt.boundary_before and (
                        nxt.text in self._movie_nouns or (nxt.text not in STOPWORDS and not capitals)):
                    return None  # "alien movies", "rock music": a description, not the film
                if prev is not None and not span[0].boundary_before and prev.text in ("a", "an", "some", "any", "no", "more"):
                    return None  # "a ghost", "some aliens"
            if content[0].text in self.genre_words:
                return "quoted" if quoted else ("capitals" if capitals else None)
        if quoted:
            return "quoted"
        if not one_word and (len(content) >= 3 or any(t.text not in self.common for t in content)):
            return "distinctive"
        if self._cue_before(tokens, start, found):
            return "cue"
        if capitals:
            return "capitals"
        if significant and all(start <= i < end for i in significant):
            return "whole"
        return None

    def _fuzzy_starts(self, tokens, found, taken) -> list[int]:
        starts = []
        for i in range(len(tokens)):
            if i in taken:
                continue
            if tokens[i].quoted and (i == 0 or not tokens[i - 1].quoted or tokens[i].boundary_before):
                starts.append(i)
            elif self._cue_before(tokens, i, found) and tokens[i].text not in STOPWORDS - set(_ARTICLES):
                starts.append(i)
        return starts

    def _fuzzy_at(self, tokens: Sequence[Token], start: int, taken: set[int]) -> TitleMatch | None:
        best: tuple[float, int, list[_Entry]] | None = None
        words = [t.text for t in tokens]
        for end in range(start + 1, min(len(tokens), start + self.max_tokens) + 1):
            if end - 1 in taken or (end - 1 > start and tokens[end - 1].boundary_before and not tokens[end - 1].quoted):
                break
            key = title_key(words[start:end])
            content = [w for w in words[start:end] if w not in STOPWORDS]
            if len(key) < 4 or not content:
                continue
            one_word = len(content) == 1
            if one_word and (content[0] in self.common or content[0] in self.genre_words):
                continue  # a real word is not a typo of a title
            cutoff = FUZZY_CUTOFF_ONE_WORD if one_word else FUZZY_CUTOFF
            hit = process.extractOne(key, self._keys, scorer=fuzz.ratio, score_cutoff=cutoff)
            if hit and (best is None or hit[1] >= best[0]):
                best = (hit[1], end, self._entries[hit[0]])
        if best is None:
            return None
        score, end, entries = best
        return self._resolve(tokens, entries, start, end, float(score), "fuzzy")
