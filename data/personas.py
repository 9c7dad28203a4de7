"""MovieLens users as personas: read-only starting points, described by their tastes.

A new person may start from a persona: their profile begins with a copy of that rater's
ratings. A number says nothing to a visitor, so each persona is described by the genres they
favour (over-represented among the movies they rated 4-5, against everyone's 4-5 ratings) and by
a few films they gave 5.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.movielens import GENRES, MovieLens

MIN_RATINGS = 40    # enough history that "their taste" means something


@dataclass(frozen=True)
class Persona:
    user_id: int
    ratings: int
    genres: tuple[str, ...]       # favoured genres, strongest first
    favourites: tuple[str, ...]   # films they rated 5, best known first

    def describe(self) -> str:
        films = "; ".join(self.favourites)
        taste = f"loves {', '.join(self.genres)}" if self.genres else "eclectic taste"
        return (f"MovieLens rater #{self.user_id}: {taste} "
                f"({self.ratings} ratings; favourites: {films})")


def describe(data: MovieLens, user_id: int, n_genres: int = 2, n_films: int = 3,
             baseline: np.ndarray | None = None, popularity=None) -> Persona:
    """``baseline`` (everyone's liked genre shares) and ``popularity`` (ratings per item) are the
    same for every persona: ``featured`` computes them once and passes them in."""
    ratings = data.ratings
    own = ratings[ratings["user_id"] == user_id]
    liked = own[own["rating"] >= 4]["item_id"].tolist()
    if baseline is None:
        baseline = _genre_share(data, ratings[ratings["rating"] >= 4]["item_id"].tolist())
    if popularity is None:
        popularity = ratings["item_id"].value_counts()
    share = _genre_share(data, liked)
    lift = share / np.maximum(baseline, 1e-9)
    # a genre counts once it is a real part of their liked films, not one stray documentary
    lift[share * len(liked) < max(3, 0.1 * len(liked))] = 0
    genres = tuple(GENRES[j] for j in np.argsort(-lift, kind="stable")[:n_genres] if lift[j] > 0)
    fives = own[own["rating"] == 5]["item_id"].tolist() or liked
    fives.sort(key=lambda i: -int(popularity.get(i, 0)))
    films = tuple(data.movies[int(i)].label for i in fives[:n_films])
    return Persona(int(user_id), len(own), genres, films)


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
    baseline = _genre_share(data, ratings[ratings["rating"] >= 4]["item_id"].tolist())
    popularity = ratings["item_id"].value_counts()
    return [describe(data, u, baseline=baseline, popularity=popularity) for u in chosen]


def _genre_share(data: MovieLens, items: list[int]) -> np.ndarray:
    """The share of ``items`` in each genre (GENRES order), from the catalog's genre matrix."""
    rows = np.searchsorted(data.item_ids, np.asarray(items, dtype=np.int64))
    return data.genre_matrix[rows].sum(axis=0, dtype=np.float64) / max(len(items), 1)
