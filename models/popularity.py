"""Popularity, overall and within genre: the baseline and the cold-start fallback."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from data.movielens import GENRES, MovieLens
from data.store import atomic_path
from models.base import Recommender, top_n


class Popularity(Recommender):
    """Scores every item by how many training ratings it has; the same list for every user.

    Any user id is served (known or not): that is what makes it the cold-start fallback.
    """

    name = "popularity"
    FILE = "popularity.npz"

    def _fit(self, ratings: pd.DataFrame, data: MovieLens) -> None:
        counts = ratings["item_id"].map(self._item_pos).value_counts()
        self.counts = np.zeros(len(self.item_ids), dtype=np.float64)
        self.counts[counts.index.to_numpy()] = counts.to_numpy()
        self.genre_matrix = data.genre_matrix

    def knows(self, user_id: int) -> bool:
        return True

    def score_all(self, user_ids: Iterable[int]) -> np.ndarray:
        users = list(user_ids)
        return np.broadcast_to(np.log1p(self.counts), (len(users), len(self.counts)))

    def _fold_in(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> None:
        """Nothing to learn per user; the base class records the seen items."""

    def _scores_from(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return np.log1p(self.counts)

    def recommend_in_genres(self, genres: Iterable[str], n: int = 10,
                            exclude: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Most popular items having all of ``genres`` (overall when empty)."""
        wanted = [GENRES.index(g) for g in genres]
        scores = np.log1p(self.counts).copy()
        if wanted:
            scores[self.genre_matrix[:, wanted].min(axis=1) == 0] = -np.inf
        scores[self.item_positions(i for i in exclude if int(i) in self._item_pos)] = -np.inf
        return top_n(scores, n, self.item_ids)

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / self.FILE
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, counts=self.counts, **self._state_index())
        return [path]

    @classmethod
    def load(cls, directory: Path, data: MovieLens) -> "Popularity":
        model = cls()
        with np.load(Path(directory) / cls.FILE) as state:
            model._restore_index(state, data)
            model.counts = state["counts"]
        model.genre_matrix = data.genre_matrix
        return model
