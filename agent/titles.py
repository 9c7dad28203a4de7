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

A year in parentheses after a title ("Heat (1995)", the way ReDial's interface writes titles) is
part of the title: the words before it are matched against the catalog first, and only a film of
that title AND that year (one year off is the same film, listed a year apart) is taken. Anything
else there is a film the catalog does not have (``OutOfCatalog``), a newer namesake included: The
Heat (2013) is not Heat (1995). A title word inside a longer capitalised name ("Chris Rock",
"Maid in Manhattan", "Avengers: Infinity War") is no reference to that title either.
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
_YEAR = re.compile(r"(19|20)\d\d")
YEAR_SLIP = 1                 # "Heat (1996)" is ML's Heat (1995): listings differ by a year at most
# lower-case words that may stand inside a capitalised title ("Gone with the Wind")
TITLE_JOINERS = frozenset("of the a an and in on at to for from with by vs or de la le".split())
# gaps inside a title that clause punctuation would otherwise end ("Alien: Resurrection", "Face/Off")
_TITLE_GAP = re.compile(r"^\s*(:|/|[-–—])?\s*$")


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
    bracketed: bool = False   # alone in parentheses: "(1995)"


_TOKEN = re.compile(r"(?:[^\W\d_]\.){2,}|[^\W_]+(?:['’][^\W_]+)*|&")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)|‘([^’]+)’")
_BOUNDARY_CHARS = set(",;:!?()[]{}\"“”…\n")
_SENTENCE_END_CHARS = set(".!?\n")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "mt", "prof", "vol"}


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
        bracketed = stripped.endswith("(") and text[match.end():].lstrip().startswith(")")
        tokens.append(Token(norm, raw, match.start(), match.end(), boundary, sentence,
                            hyphen_before=bool(tokens) and stripped == "-" and gap == "-", quoted=quoted,
                            bracketed=bracketed))
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
class OutOfCatalog:
    """A film named with its year ("The Babadook (2014)") that the catalog does not have: tokens
    [start, end) including the year; ``text`` as typed."""

    start: int
    end: int
    text: str
    year: int


@dataclass(frozen=True)
class _Entry:
    priority: int
    popularity: int
    item_id: int
    year: int | None


def _series(entries: list[_Entry]) -> bool:
    """The typed words are only the shared short form of several films ("Star Trek" for Star
    Trek: Generations, First Contact...): a series, not one film."""
    return entries[0].priority == 2 and len({e.item_id for e in entries if e.priority == 2}) > 1


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
        self._lead_words = (self._fillers | frozenset(w for c in self._cues for w in c)) - frozenset(_ARTICLES)
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
    def find(self, tokens: Sequence[Token], skip: set[int] = frozenset(), text: str | None = None,
             unknown: list[OutOfCatalog] | None = None) -> list[TitleMatch]:
        """Titles named in a tokenised message, left to right, without overlaps. ``text``: the
        message the tokens come from (to read the punctuation inside "Title: Subtitle (Year)");
        ``unknown``: receives the films named with a year that the catalog does not have."""
        n = len(tokens)
        words = [t.text for t in tokens]
        cased = any(t.raw[:1].islower() for t in tokens) and any(t.raw[:1].isupper() for t in tokens)
        # the words that carry meaning: a title spanning all of them is the whole request
        significant = [i for i, t in enumerate(tokens) if t.text not in self._fillers]
        taken: set[int] = set(skip)
        found: list[TitleMatch] = []

        # 0. "Title (Year)": the year decides, and the words before it are taken either way
        for j, tok in enumerate(tokens):
            if not tok.bracketed or j in taken or not _YEAR.fullmatch(tok.text):
                continue
            taken.add(j)
            run = self._title_run(tokens, j, taken, text)
            if run is None:
                continue
            year = int(tok.text)
            match = self._match_with_year(tokens, words, run[0], j, year)
            start = run[1]
            if match is not None:
                found.append(match)
                taken.update(range(match.start, match.end))
            else:
                taken.update(range(start, j))
                if unknown is not None:
                    end_char = text.find(")", tok.end) + 1 if text is not None else 0
                    raw = text[tokens[start].start:end_char or tok.end] if text is not None else " ".join(
                        t.raw for t in tokens[start:j + 1])
                    unknown.append(OutOfCatalog(start, j + 1, raw, year))

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
                    if evidence and cased and self._inside_longer_name(tokens, i, i + length, text):
                        evidence = None
                    if evidence and _series(entries):
                        evidence = None
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
            if match and cased and self._inside_longer_name(tokens, match.start, match.end, text):
                match = None
            if match:
                found.append(match)
                taken.update(range(match.start, match.end))
                if match.year_token is not None:
                    taken.add(match.year_token)
        return sorted(found, key=lambda m: m.start)

    # ----------------------------------------------------------------------- titles with a year
    def _name_capital(self, token: Token) -> bool:
        """A capitalised word that belongs to a name or title, not just to the sentence: a sentence's
        first word counts only when it is no ordinary word ("Fargo was great", not "Like Seven");
        "I" never does."""
        if not (token.raw[:1].isupper() or token.raw[:1].isdigit()) or token.raw == "I":
            return False
        return not token.sentence_start or token.text not in self.common

    @staticmethod
    def _joined(tokens: Sequence[Token], k: int, text: str | None) -> bool:
        """Token k continues the title of token k-1 (no clause punctuation between, bar ":", "/", dashes)."""
        if not tokens[k].boundary_before:
            return True
        if text is None or tokens[k].sentence_start:
            return False
        return bool(_TITLE_GAP.match(text[tokens[k - 1].end:tokens[k].start]))

    def _title_run(self, tokens: Sequence[Token], j: int, taken: set[int], text: str | None) -> tuple[int, int] | None:
        """(first token, first token without the sentence's own leading words) of the capitalised
        title run that ends before the year at ``j``; None when there is none."""
        k, start = j - 1, None
        while k >= 0 and j - k <= MAX_SPAN_TOKENS + 2 and k not in taken:
            tok = tokens[k]
            capital = tok.raw[:1].isupper() or tok.raw[:1].isdigit()
            if not capital and tok.text not in TITLE_JOINERS:
                break
            if capital:
                start = k
            if not self._joined(tokens, k, text):
                break
            k -= 1
        if start is None:
            return None
        # leading words of the sentence around the title: "LOVED Rudy (1993)", "Like Seven (1995)"
        trimmed = start
        while trimmed < j - 1 and tokens[trimmed].text in self._lead_words and (
                tokens[trimmed].sentence_start or tokens[trimmed].raw.isupper() or tokens[trimmed].raw[:1].islower()):
            trimmed += 1
        return start, trimmed

    def _match_with_year(self, tokens, words, start: int, j: int, year: int) -> TitleMatch | None:
        """The longest catalog title ending right before the year at ``j`` whose year matches."""
        for s in range(start, j):
            entries = self._entries.get(title_key(words[s:j]))
            if not entries:
                continue
            close = [e for e in entries if e.year is not None and abs(e.year - year) <= YEAR_SLIP]
            if close:
                close.sort(key=lambda e: (abs(e.year - year), e.priority, -e.popularity, e.item_id))
                return TitleMatch(close[0].item_id, s, j, 100.0, "year", j)
        return None

    def _inside_longer_name(self, tokens: Sequence[Token], start: int, end: int, text: str | None) -> bool:
        """The capitalised span is part of a longer name: "Chris Rock", "Maid in Manhattan",
        "Avengers: Infinity War" name neither The Rock nor Manhattan nor The Avengers."""
        if not all(t.raw[:1].isupper() or t.raw[:1].isdigit() or t.text in STOPWORDS for t in tokens[start:end]):
            return False
        before, after = start - 1, end
        if before >= 0 and self._joined(tokens, start, text):
            if self._name_capital(tokens[before]) and tokens[before].text not in _ARTICLES:
                return True
            k = before
            while (k > 0 and before - k < 2 and tokens[k].text in TITLE_JOINERS - {"and", "or"}
                   and not tokens[k].raw[:1].isupper() and self._joined(tokens, k, text)):
                k -= 1
                if self._name_capital(tokens[k]):
                    return True  # "Maid in Manhattan", "What We Do in the Shadows"
        if after < len(tokens) and self._joined(tokens, after, text) and not tokens[after].bracketed:
            if self._name_capital(tokens[after]):
                return True
            if (tokens[after].text in TITLE_JOINERS - {"and", "or"} and after + 1 < len(tokens)
                    and not tokens[after].raw[:1].isupper() and self._joined(tokens, after + 1, text)
                    and self._name_capital(tokens[after + 1])):
                return True
        return False

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
            if not quoted and span[0].text in ("a", "an") and not capitals:
                return None  # "not a fan of", "a ghost": a description, not The Fan
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
        if _series(entries):
            return None
        return self._resolve(tokens, entries, start, end, float(score), "fuzzy")
