"""The one recommender interface every model implements and every evaluation uses.

Items are addressed by MovieLens item id at the interface and by *position* in the catalog
(``MovieLens.item_ids``, sorted) inside models, so every model's score vector lines up with every
other's. A subclass implements ``_fit`` and ``_score_users`` (dense scores for a batch of user
positions); the base class owns id mapping, seen-item filtering, top-n and fold-in bookkeeping.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from data.movielens import MovieLens

log = logging.getLogger(__name__)


class ColdStart(LookupError):
    """The model has no representation for this user; ``reason`` says why (for the trace)."""

    def __init__(self, user_id, reason: str = "unknown user"):
        super().__init__(f"user {user_id!r}: {reason}")
        self.user_id = user_id
        self.reason = reason


NEGATIVE_BELOW = 1.0   # a training row rated below 1 star is a swipe-dislike: a negative, not an interaction


def positives(ratings: pd.DataFrame) -> pd.DataFrame:
    """The rows that are interactions (every MovieLens rating, every like), without swipe-dislikes."""
    negative = ratings["rating"] < NEGATIVE_BELOW
    return ratings.loc[~negative] if negative.any() else ratings


class Recommender:
    """Base class. ``fit(ratings, data) -> self``; ``recommend(user, n, exclude) -> (ids, scores)``.

    Training rows rated below ``NEGATIVE_BELOW`` are people's dislikes (``models.feedback``): a
    model that can learn from a negative says so with ``uses_negatives``; the others fit on
    ``positives(ratings)`` only. Either way a disliked item counts as seen (never recommended back)."""

    name = "base"
    uses_negatives = False

    def __init__(self) -> None:
        self.item_ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._item_pos: dict[int, int] = {}
        self._user_pos: dict[int, int] = {}
        self._seen: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, ratings: pd.DataFrame, data: MovieLens) -> "Recommender":
        """Train on ``ratings`` (user_id, item_id, rating, timestamp); ``data`` gives side features."""
        self._index(ratings, data)
        self._fit(ratings if self.uses_negatives else positives(ratings), data)
        return self

    def _index(self, ratings: pd.DataFrame, data: MovieLens) -> None:
        self.item_ids = data.item_ids.astype(np.int64)
        self._item_pos = {int(i): p for p, i in enumerate(self.item_ids)}
        users = np.sort(ratings["user_id"].unique())
        self._user_pos = {int(u): p for p, u in enumerate(users)}
        pos = ratings["item_id"].map(self._item_pos).to_numpy()
        self._seen = {int(u): np.sort(pos[idx]) for u, idx in ratings.groupby("user_id").indices.items()}

    def _fit(self, ratings: pd.DataFrame, data: MovieLens) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    @property
    def user_ids(self) -> list[int]:
        return list(self._user_pos)

    def knows(self, user_id: int) -> bool:
        return int(user_id) in self._user_pos

    def _score_users(self, user_positions: np.ndarray) -> np.ndarray:
        """(len(user_positions), n_items) scores; higher is better."""
        raise NotImplementedError

    def item_positions(self, item_ids: Iterable[int]) -> np.ndarray:
        try:
            return np.fromiter((self._item_pos[int(i)] for i in item_ids), dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"item {exc.args[0]} is not in the catalog") from None

    def score_all(self, user_ids: Iterable[int]) -> np.ndarray:
        """(n_users, n_items) dense scores in catalog order; raises ColdStart for an unknown user."""
        positions = []
        for u in user_ids:
            if int(u) not in self._user_pos:
                raise ColdStart(u, f"not in {self.name}'s training data and not folded in")
            positions.append(self._user_pos[int(u)])
        return self._score_users(np.asarray(positions, dtype=np.int64))

    def score(self, user_id: int, item_ids: Iterable[int] | None = None) -> np.ndarray:
        """Scores of ``item_ids`` (all catalog items, in catalog order, when None) for one user."""
        scores = self.score_all([user_id])[0]
        return scores if item_ids is None else scores[self.item_positions(item_ids)]

    def seen(self, user_id: int) -> np.ndarray:
        """Catalog positions this user has rated (or swiped)."""
        return self._seen.get(int(user_id), np.empty(0, dtype=np.int64))

    def recommend(self, user_id: int, n: int = 10, exclude: Iterable[int] | None = None,
                  filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` (item ids, scores) for one user, best first."""
        scores = self.score(user_id).astype(np.float64, copy=True)
        if filter_seen:
            scores[self.seen(user_id)] = -np.inf
        if exclude is not None:
            ex = [self._item_pos[int(i)] for i in exclude if int(i) in self._item_pos]
            scores[ex] = -np.inf
        return top_n(scores, n, self.item_ids)

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, user_id: int, ratings: Mapping[int, float]) -> None:
        """Give ``user_id`` a representation from ``ratings`` (item id -> 1..5) without retraining.

        Works for new users (cold start) and replaces an existing user's representation.
        """
        pos = self.item_positions(ratings.keys())
        values = np.asarray(list(ratings.values()), dtype=np.float32)
        self._fold_in(int(user_id), pos, values)
        self._seen[int(user_id)] = np.sort(pos)

    def _fold_in(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> None:
        raise NotImplementedError

    def scores_for(self, user_id: int, ratings: Mapping[int, float]) -> np.ndarray:
        """Scores (catalog order) of a person represented by ``ratings`` (item id -> 1..5), computed
        as ``fold_in`` would represent them but written nowhere: a serving process keeps every
        model read-only and caches these per person instead."""
        pos = self.item_positions(ratings.keys())
        values = np.asarray(list(ratings.values()), dtype=np.float32)
        return self._scores_from(int(user_id), pos, values)

    def _scores_from(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _new_user_position(self, user_id: int) -> int:
        """Position for a folded-in user: reuse an existing one, else append."""
        if user_id not in self._user_pos:
            self._user_pos[user_id] = len(self._user_pos)
        return self._user_pos[user_id]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[Path]:
        """Write the model's files into ``directory``; return them (for the manifest)."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path, data: MovieLens) -> "Recommender":
        raise NotImplementedError

    def _state_index(self) -> dict[str, np.ndarray]:
        """The id maps and seen sets, as arrays for ``np.savez``."""
        users = np.array(sorted(self._user_pos, key=self._user_pos.get), dtype=np.int64)
        seen_users = np.array(sorted(self._seen), dtype=np.int64)
        lengths = np.array([len(self._seen[u]) for u in seen_users], dtype=np.int64)
        flat = np.concatenate([self._seen[u] for u in seen_users]) if len(seen_users) else np.empty(0, np.int64)
        return {"index_users": users, "index_item_ids": self.item_ids, "seen_users": seen_users,
                "seen_lengths": lengths, "seen_flat": flat}

    def _restore_index(self, state: Mapping[str, np.ndarray], data: MovieLens) -> None:
        if not np.array_equal(state["index_item_ids"], data.item_ids):
            raise ValueError(f"{self.name} artifact was trained on a different catalog")
        self.item_ids = data.item_ids.astype(np.int64)
        self._item_pos = {int(i): p for p, i in enumerate(self.item_ids)}
        self._user_pos = {int(u): p for p, u in enumerate(state["index_users"])}
        splits = np.split(state["seen_flat"], np.cumsum(state["seen_lengths"])[:-1]) if len(state["seen_lengths"]) else []
        self._seen = {int(u): s for u, s in zip(state["seen_users"], splits)}


def set_row(array: np.ndarray, row: int, value) -> np.ndarray:
    """Write ``value`` at ``row`` and return the array, growing it by doubling when ``row`` is
    past its end: folding in a stream of new users is amortised O(1) per user instead of a copy
    of the whole array each time. Rows past the used ones stay zero and are never read."""
    if row >= len(array):
        grown = np.zeros((max(row + 1, 2 * len(array)),) + array.shape[1:], dtype=array.dtype)
        grown[: len(array)] = array
        array = grown
    array[row] = value
    return array


def top_n(scores: np.ndarray, n: int, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` finite scores, sorted; vectorised (argpartition), never a Python loop over items."""
    finite = np.isfinite(scores)
    n = int(min(n, finite.sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    masked = np.where(finite, scores, -np.inf)
    idx = np.argpartition(-masked, n - 1)[:n]
    idx = idx[np.argsort(-masked[idx], kind="stable")]
    return item_ids[idx], scores[idx]


def top_n_batch(scores: np.ndarray, n: int) -> np.ndarray:
    """Row-wise top-``n`` catalog positions of a (users, items) matrix, best first."""
    idx = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)
