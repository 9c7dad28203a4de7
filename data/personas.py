"""MovieLens users as personas: read-only starting points, described by their tastes.

A new person may start from a persona: their profile begins with a copy of that rater's
ratings. A number says nothing to a visitor (and is never shown), so each persona is described in
plain words by the genres they favour (over-represented among the movies they rated 4-5, against
everyone's 4-5 ratings), the decade they favour when one stands out the same way, and a few films
they gave 5: "Loves horror and sci-fi, especially from the 80s; favourites: Twelve Monkeys, Alien
and Blade Runner".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.movielens import GENRES, MovieLens

MIN_RATINGS = 40    # enough history that "their taste" means something


DECADE_LIFT = 1.5   # a decade is "theirs" when their liked films are this much likelier than everyone's to be from it
# genres as people say them ("loves sci-fi and westerns")
GENRE_WORDS = {"Action": "action", "Adventure": "adventure", "Animation": "animation", "Children's": "children's films",
               "Comedy": "comedy", "Crime": "crime", "Documentary": "documentaries", "Drama": "drama",
               "Fantasy": "fantasy", "Film-Noir": "film noir", "Horror": "horror", "Musical": "musicals",
               "Mystery": "mysteries", "Romance": "romance", "Sci-Fi": "sci-fi", "Thriller": "thrillers",
               "War": "war films", "Western": "westerns", "unknown": "hard-to-place films"}


@dataclass(frozen=True)
class Persona:
    user_id: int                  # the value a persona is chosen by; never shown to a person
    ratings: int
    genres: tuple[str, ...]       # favoured genres, strongest first
    favourites: tuple[str, ...]   # films they rated 5, best known first (as people write the titles)
    decade: int | None = None     # the decade their liked films lean toward, when one stands out

    def taste(self) -> str:
        """Their taste in a few words: "loves horror and sci-fi, especially from the 80s"."""
        if not self.genres:
            return f"loves films from the {self.decade % 100:02d}s" if self.decade else "has an eclectic taste"
        words = [GENRE_WORDS.get(g, g.lower()) for g in self.genres]
        era = f", especially from the {self.decade % 100:02d}s" if self.decade else ""
        return f"loves {' and '.join(words)}{era}"

    def describe(self) -> str:
        films = self.favourites
        named = films[0] if len(films) == 1 else ", ".join(films[:-1]) + " and " + films[-1] if films else ""
        taste = self.taste()
        return f"{taste[0].upper()}{taste[1:]}" + (f"; favourites: {named}" if named else "")


def describe(data: MovieLens, user_id: int, n_genres: int = 2, n_films: int = 3,
             baseline: np.ndarray | None = None, popularity=None, everyone_liked: dict | None = None) -> Persona:
    """``baseline`` (everyone's liked genre shares), ``popularity`` (ratings per item) and
    ``everyone_liked`` (everyone's liked decade shares) are the same for every persona:
    ``featured`` computes them once and passes them in."""
    ratings = data.ratings
    own = ratings[ratings["user_id"] == user_id]
    liked = own[own["rating"] >= 4]["item_id"].tolist()
    if baseline is None:
        baseline = _genre_share(data, ratings[ratings["rating"] >= 4]["item_id"].tolist())
    if popularity is None:
        popularity = ratings["item_id"].value_counts()
    if everyone_liked is None:
        everyone_liked = _decade_share(data, ratings[ratings["rating"] >= 4]["item_id"].tolist())
    share = _genre_share(data, liked)
    lift = share / np.maximum(baseline, 1e-9)
    # a genre counts once it is a real part of their liked films, not one stray documentary
    lift[share * len(liked) < max(3, 0.1 * len(liked))] = 0
    genres = tuple(GENRES[j] for j in np.argsort(-lift, kind="stable")[:n_genres] if lift[j] > 0)
    fives = own[own["rating"] == 5]["item_id"].tolist() or liked
    fives.sort(key=lambda i: -int(popularity.get(i, 0)))
    films = tuple(data.movies[int(i)].display_title for i in fives[:n_films])
    return Persona(int(user_id), len(own), genres, films, _decade(data, liked, everyone_liked))


def featured(data: MovieLens, per_genre: int = 1) -> list[Persona]:
    """A short, varied list to offer: for each genre, the rater (with at least ``MIN_RATINGS``
    ratings) whose liked movies lean most toward it; each rater once, in genre order."""
    ratings = data.ratings
    counts = ratings.groupby("user_id").size()
    eligible = counts[counts >= MIN_RATINGS].index
    liked = ratings[(ratings["rating"] >= 4) & ratings["user_id"].isin(eligible)]
    chosen: list[int] = []
    shares = {int(user): _genre_share(data, group["item_id"].tolist()) for user, group in liked.groupby("user_id")}
    for j in range(len(GENRES)):
        ranked = sorted(shares, key=lambda u: -shares[u][j])
        picked = [u for u in ranked if u not in chosen][:per_genre]
        chosen.extend(picked)
    everyone = ratings[ratings["rating"] >= 4]["item_id"].tolist()
    baseline, decades = _genre_share(data, everyone), _decade_share(data, everyone)
    popularity = ratings["item_id"].value_counts()
    return [describe(data, u, baseline=baseline, popularity=popularity, everyone_liked=decades) for u in chosen]


def _genre_share(data: MovieLens, items: list[int]) -> np.ndarray:
    """The share of ``items`` in each genre (GENRES order), from the catalog's genre matrix."""
    rows = np.searchsorted(data.item_ids, np.asarray(items, dtype=np.int64))
    return data.genre_matrix[rows].sum(axis=0, dtype=np.float64) / max(len(items), 1)


def _decade_share(data: MovieLens, items: list[int]) -> dict[int, float]:
    """The share of ``items`` (with a year) from each decade."""
    years = [data.movies[int(i)].year for i in items if int(i) in data.movies]
    decades = [y // 10 * 10 for y in years if y]
    return {d: decades.count(d) / len(decades) for d in set(decades)} if decades else {}


def _decade(data: MovieLens, liked: list[int], everyone: dict[int, float]) -> int | None:
    """The decade a rater's liked films lean toward: the one most over-represented against
    everyone's liked films, if it is at least ``DECADE_LIFT`` times as common and a real part
    (a quarter) of what they liked."""
    own = _decade_share(data, liked)
    lifted = [(share / everyone[d], d) for d, share in own.items()
              if d in everyone and share >= 0.25 and share * len(liked) >= 5]
    best = max(lifted, default=None)
    return best[1] if best and best[0] >= DECADE_LIFT else None
