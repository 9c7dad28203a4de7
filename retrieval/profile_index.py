"""Per-user FAISS profile indexes: the items a person rated or swiped, searchable by a request.

A profile is a small table item id -> rating: MovieLens ratings (the person's own, or the persona
they started from), with their swipes on top (like = 5, dislike = 1). The swipes are not kept
here: they come from the event store through ``load`` (``data.event_store``), cached per person
with the version of their events, so a swipe recorded by any process is seen on the next
``refresh``. Without ``load`` (offline simulations) swipes live in this process only. Each
person's liked items are indexed in memory with a FAISS inner-product index over the catalog's
text vectors; an index holds one person's items only, so a search never returns another's data.
Every cache here is bounded (least recently used first out).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping

import faiss
import numpy as np
from cachetools import LRUCache

from data.events import DISLIKE_RATING, LIKE_RATING

LIKED_THRESHOLD = 4  # a MovieLens rating of 4-5 is what the person liked


@dataclass(frozen=True)
class ProfileHit:
    item_id: int
    score: float   # cosine between the request and the item's text
    rating: int    # what the person gave it (5 for a like)


class ProfileStore:
    """Profiles of every person: base ratings + swipes, with a FAISS index per person."""

    def __init__(self, item_vectors: np.ndarray, item_ids: np.ndarray, base_ratings: Mapping[str, Mapping[int, int]],
                 load: Callable[[str], tuple[dict[int, int], object]] | None = None, cache_size: int = 2048) -> None:
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self._pos = {int(i): p for p, i in enumerate(self.item_ids)}
        self.base = base_ratings
        self._load = load
        # person -> (version of their events, swipes); a turn consults them a dozen times
        self._swipes: LRUCache = LRUCache(cache_size)
        self._indexes: LRUCache = LRUCache(cache_size)
        # person -> the MovieLens persona whose ratings their profile starts from (read-only: a
        # person's swipes are their own, never the persona's); set again on every authenticated call
        self._seeds: LRUCache = LRUCache(cache_size * 4)
        self._lock = threading.RLock()
        self._local_edits = 0

    # ---------------------------------------------------------------- profile table
    def refresh(self, user_key: str) -> None:
        """Read the person's swipes from the store when their events changed since last read."""
        if self._load is None:
            return
        swipes, version = self._load(user_key)
        with self._lock:
            cached = self._swipes.get(user_key)
            if cached is None or cached[0] != version:
                self._swipes[user_key] = (version, dict(swipes))   # the index, tagged, rebuilds itself

    def _state(self, user_key: str) -> tuple[object, dict[int, int]]:
        """(version, swipes) as one consistent pair; read from the store when not cached."""
        with self._lock:
            cached = self._swipes.get(user_key)
        if cached is None and self._load is not None:
            self.refresh(user_key)
            with self._lock:
                cached = self._swipes.get(user_key)
        return cached if cached is not None else (0, {})

    def version(self, user_key: str) -> tuple[object, str | None]:
        """What the person's profile is built from: the version of their swipes and the persona
        they started from. Caches keyed by it are never older than the profile."""
        return self._state(user_key)[0], self.seeded_from(user_key)

    def swipes(self, user_key: str) -> dict[int, int]:
        return dict(self._state(user_key)[1])

    def ratings(self, user_key: str) -> dict[int, int]:
        """Everything known about the person: base ratings (their own, or their persona's) overridden
        by swipes."""
        return self._ratings(user_key, self.seeded_from(user_key), self._state(user_key)[1])

    def _ratings(self, user_key: str, seed: str | None, swipes: dict[int, int]) -> dict[int, int]:
        base = self.base.get(seed or user_key, {})
        return {**{int(k): int(v) for k, v in base.items()}, **swipes}

    def seed(self, user_key: str, persona_key: str) -> None:
        """Start ``user_key``'s profile from ``persona_key``'s base ratings (the persona is not changed)."""
        if persona_key not in self.base:
            raise KeyError(f"{persona_key} has no base ratings to start from")
        with self._lock:
            if self._seeds.get(user_key) != persona_key:
                self._seeds[user_key] = persona_key

    def seeded_from(self, user_key: str) -> str | None:
        with self._lock:   # cachetools' caches reorder on every read: not safe without the lock
            return self._seeds.get(user_key)

    def forget(self, user_key: str) -> None:
        """Drop what this process caches about a person."""
        with self._lock:
            self._swipes.pop(user_key, None)
            self._seeds.pop(user_key, None)
            self._indexes.pop(user_key, None)

    def record_swipe(self, user_key: str, item_id: int, liked: bool) -> dict[int, int]:
        """A like/dislike in this process (offline simulations); with a store, ``refresh`` instead."""
        if int(item_id) not in self._pos:
            raise KeyError(f"item {item_id} is not in the catalog")
        with self._lock:
            version, swipes = self._swipes.get(user_key, (0, {}))
            swipes = {**swipes, int(item_id): LIKE_RATING if liked else DISLIKE_RATING}
            self._local_edits += 1
            self._swipes[user_key] = (("local", self._local_edits), swipes)   # a version of its own
        return self.ratings(user_key)

    def disliked(self, user_key: str) -> set[int]:
        return {i for i, r in self.swipes(user_key).items() if r == DISLIKE_RATING}

    # ---------------------------------------------------------------- FAISS per user
    def _index(self, user_key: str) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
        """(FAISS index, liked item ids, their ratings) of one user, rows aligned; cached with the
        version of the swipes and the persona it was built from, so it is never older than they are."""
        # read outside the lock: on a cache miss the swipes come from the store, and every other
        # person's turn would wait out that round trip
        version, swipes = self._state(user_key)
        seed = self.seeded_from(user_key)
        with self._lock:
            cached = self._indexes.get(user_key)
        if cached is not None and cached[0] == (version, seed):
            return cached[1]
        liked = sorted((i, r) for i, r in self._ratings(user_key, seed, swipes).items()
                       if r >= LIKED_THRESHOLD and i in self._pos)
        ids = np.array([i for i, _ in liked], dtype=np.int64)
        index = faiss.IndexFlatIP(self.item_vectors.shape[1])
        if len(ids):
            index.add(self.item_vectors[[self._pos[int(i)] for i in ids]])
        built = (index, ids, np.array([r for _, r in liked], dtype=np.int64))
        with self._lock:
            self._indexes[user_key] = ((version, seed), built)
        return built

    def search(self, user_key: str, query: np.ndarray, k: int = 5) -> list[ProfileHit]:
        """This user's ``k`` liked items most similar to ``query``, best first."""
        return self.search_many(user_key, query.reshape(1, -1), k)[0]

    def search_many(self, user_key: str, queries: np.ndarray, k: int = 5) -> list[list[ProfileHit]]:
        """``search`` for each row of ``queries`` in one FAISS call (a turn's ten cards at once)."""
        index, liked, ratings = self._index(user_key)
        if index.ntotal == 0:
            return [[] for _ in range(len(queries))]
        scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, index.ntotal))
        return [[ProfileHit(int(liked[row]), float(score), int(ratings[row])) for score, row in zip(s, r) if row >= 0]
                for s, r in zip(scores.tolist(), rows.tolist())]
