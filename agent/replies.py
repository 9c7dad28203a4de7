"""What the agent says: short replies about the request, and honest words about what it could not use.

A reply names what it looked for ("Darker sci-fi, still no horror:") and never repeats the
cards. The wording varies from turn to turn (chosen by the turn number, so a replay is
reproducible). Everything said comes from the request in force, the cards and the parse.
"""
from __future__ import annotations

from agent.intent import Act, Intent, UnusedPart
from data.movielens import MovieLens

PLURAL = {"Action": "action", "Adventure": "adventure", "Animation": "animation", "Children's": "children's",
          "Comedy": "comedy", "Crime": "crime", "Documentary": "documentary", "Drama": "drama",
          "Fantasy": "fantasy", "Film-Noir": "film noir", "Horror": "horror", "Musical": "musical",
          "Mystery": "mystery", "Romance": "romance", "Sci-Fi": "sci-fi", "Thriller": "thriller",
          "War": "war", "Western": "western"}
MOOD_WORDS = {"darker": "darker", "lighter": "lighter", "funnier": "funnier", "less_violent": "less violent"}

OPENERS = ("{what}:", "Here's {what}:", "Try these, {what}:", "Some {what} for you:")
MORE_OPENERS = ("More {what}:", "A few more, {what}:", "Next up, {what}:")
GENERIC = "picks for you"

UNUSED_SAYINGS = {
    "person": "I can't search by actors or directors, so I left out {parts}.",
    "plot": "I don't know plots, so I couldn't use {parts}.",
    "out_of_catalog": "{parts} {verb} not in my catalog (it ends in 1998).",
    "language": "I only understand English so far, so I couldn't read {parts}.",
    "no_movies_in_era": "My catalog ends in 1998, so {parts} can't be matched.",
    "off_topic": "I can only help with movies, not {parts}.",
    "facts": "I only know each movie's title, year and genres, so I can't answer {parts}.",
}


def describe(intent: Intent, data: MovieLens) -> str:
    """The request in a few words: "darker comedy sci-fi movies from the 80s like Alien, still no horror"."""
    genres = [PLURAL[g] for g in intent.genres]
    if intent.genre_match == "any" and len(genres) > 1:  # alternatives: "comedies or horrors"
        genres = [", ".join(genres[:-1]) + " or " + genres[-1]]
    words = [MOOD_WORDS[m] for m in intent.mood] + genres
    head = " ".join(words + ["movies"]) if words or intent.years or intent.titles else ""
    if intent.years:
        head += " " + era(intent.years.start, intent.years.end)
    if intent.titles:
        like = " and ".join(data.movies[t].display_title for t in intent.titles[:3] if t in data.movies)
        head += f" like {like}"
    if not head and intent.keywords:
        head = "picks for “" + " ".join(intent.keywords[:6]) + "”"
    head = head or GENERIC
    tails = []
    if intent.exclude_genres:
        tails.append("no " + " or ".join(PLURAL[g] for g in intent.exclude_genres))
    if intent.exclude_titles:
        tails.append("not " + " or ".join(data.movies[t].display_title for t in intent.exclude_titles[:3]
                                          if t in data.movies))
    if "different" in intent.adjust:
        head = f"something different: {head}" if head != GENERIC else "something different"
    return head + (", " + ", ".join(tails) if tails else "")


def join_words(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def era(start: int | None, end: int | None) -> str:
    """A year window in words: "from the 80s", "from 1995 on", "from before 1980"."""
    if start is not None and end is not None and start % 10 == 0 and end == start + 9:
        return f"from the {str(start)[2:]}s"
    if start is not None and end is not None:
        return f"from {start}–{end}"
    if start is not None:
        return f"from {start} on"
    if end is not None:
        return f"from before {end + 1}"
    return ""


def opener(intent: Intent, data: MovieLens, turn: int, carried: bool) -> str:
    """The reply's first line. ``carried``: earlier constraints still hold ("still no horror")."""
    what = describe(intent, data)
    if carried and intent.exclude_genres:
        what = what.replace(", no ", ", still no ", 1)
    templates = MORE_OPENERS if intent.act == Act.more else OPENERS
    line = templates[turn % len(templates)].format(what=what)
    return line[0].upper() + line[1:]


def unused_sentence(unused: list[UnusedPart]) -> str:
    """One short sentence per kind of thing the message asked that the agent could not use."""
    by_why: dict[str, list[str]] = {}
    for part in unused:
        by_why.setdefault(part.why, []).append(part.text)
    sentences = []
    for why, texts in by_why.items():
        texts = list(dict.fromkeys(texts))
        parts = " and ".join(f"“{t}”" for t in texts[:3])
        sentences.append(UNUSED_SAYINGS[why].format(parts=parts, verb="are" if len(texts) > 1 else "is"))
    return " ".join(sentences)


def partial_note(missing: dict[str, list[str]], wanted: list[str]) -> str:
    """Which cards have only some of the wanted genres (``missing``: title -> genres it lacks)."""
    if not missing:
        return ""
    titles = list(missing)
    shown = ", ".join(titles[:3]) + (" and others" if len(titles) > 3 else "")
    return (f"Only a few movies are {' and '.join(PLURAL[g] for g in wanted)} at once; "
            f"{shown} {'has' if len(titles) == 1 else 'have'} only some of it.")
