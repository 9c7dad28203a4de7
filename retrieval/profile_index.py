"""Per-user FAISS profile indexes: the items a person rated or swiped, searchable by a request.

A profile is a small table item id -> rating (MovieLens ratings for known users, swipes on top:
like = 5, dislike = 1). It is persisted as one JSON file per user under
``$CINEAGENT_HOME/profiles`` (atomic writes) and indexed in memory with one FAISS inner-product
index per user over the catalog's text vectors of the items they *liked* (rating >= 4). Each
index holds one user's items only, so a search can never return another user's data.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import faiss
import numpy as np

from data.store import KeyedLocks, home, write_json_atomic

log = logging.getLogger(__name__)

LIKE_RATING, DISLIKE_RATING = 5, 1
LIKED_THRESHOLD = 4  # a MovieLens rating of 4-5 is what the person liked


@dataclass(frozen=True)
class ProfileHit:
    item_id: int
    score: float   # cosine between the request and the item's text
    rating: int    # what the person gave it (5 for a like)


def _file_name(user_key: str) -> str:
    # hashed: user keys are free text for new users ("alice"), never a path
    return hashlib.sha256(user_key.encode()).hexdigest()[:32] + ".json"


class ProfileStore:
    """Profiles of every user: base ratings + swipes, with a FAISS index per user (LRU-cached)."""

    def __init__(self, item_vectors: np.ndarray, item_ids: np.ndarray, base_ratings: Mapping[str, Mapping[int, int]],
                 directory: Path | None = None, cache_size: int = 2048) -> None:
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self._pos = {int(i): p for p, i in enumerate(self.item_ids)}
        self.base = base_ratings
        self.directory = Path(directory) if directory else home() / "profiles"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._indexes: OrderedDict[str, tuple[faiss.Index, np.ndarray]] = OrderedDict()
        # swipes read from disk once per user, then kept current by record_swipe (this process is
        # the profiles' only writer); a turn consults them a dozen times
        self._swipes: dict[str, dict[int, int]] = {}
        # person key -> the MovieLens persona whose ratings their profile starts from (read-only:
        # a person's swipes go to their own table, never to the persona's)
        self._seeds: dict[str, str] = {}
        self._cache_size = cache_size
        self._lock = threading.RLock()  # the in-memory tables; never held across a disk write
        self._writers = KeyedLocks()    # one person's swipes are written one at a time, in order

    # ---------------------------------------------------------------- profile table
    def _swipes_path(self, user_key: str) -> Path:
        return self.directory / _file_name(user_key)

    def swipes(self, user_key: str) -> dict[int, int]:
        cached = self._swipes.get(user_key)
        if cached is None:
            cached = self._swipes[user_key] = self._read_swipes(user_key)
        return dict(cached)

    def _read_swipes(self, user_key: str) -> dict[int, int]:
        path = self._swipes_path(user_key)
        if not path.exists():
            return {}
        try:
            state = json.loads(path.read_text())
        except ValueError:
            log.warning("unreadable profile file %s; treating as empty", path)
            return {}
        if state.get("user") != user_key:  # a hash collision would otherwise mix two people
            return {}
        return {int(k): int(v) for k, v in state["ratings"].items()}

    def ratings(self, user_key: str) -> dict[int, int]:
        """Everything known about the person: base ratings (their own, or their persona's) overridden
        by swipes."""
        base = self.base.get(self._seeds.get(user_key, user_key), {})
        return {**{int(k): int(v) for k, v in base.items()}, **self.swipes(user_key)}

    def seed(self, user_key: str, persona_key: str) -> None:
        """Start ``user_key``'s profile from ``persona_key``'s base ratings (the persona is not changed)."""
        if persona_key not in self.base:
            raise KeyError(f"{persona_key} has no base ratings to start from")
        with self._lock:
            if self._seeds.get(user_key) != persona_key:
                self._seeds[user_key] = persona_key
                self._indexes.pop(user_key, None)

    def seeded_from(self, user_key: str) -> str | None:
        return self._seeds.get(user_key)

    def delete(self, user_key: str) -> bool:
        """Forget a person: their swipe file, seed and cached index. True if a file was removed."""
        with self._writers(user_key):
            path = self._swipes_path(user_key)
            removed = path.exists()
            path.unlink(missing_ok=True)
            with self._lock:
                self._swipes.pop(user_key, None)
                self._seeds.pop(user_key, None)
                self._indexes.pop(user_key, None)
            return removed

    def record_swipe(self, user_key: str, item_id: int, liked: bool) -> dict[int, int]:
        """Add a like/dislike, durably; the index is rebuilt on next search. Returns the new ratings.

        The file is written (and fsynced) under this person's writer lock only: other people's
        turns, which search their own profiles, never wait for the disk. The new table replaces
        the old one in memory once it is on disk."""
        if int(item_id) not in self._pos:
            raise KeyError(f"item {item_id} is not in the catalog")
        with self._writers(user_key):
            swipes = self.swipes(user_key)
            swipes[int(item_id)] = LIKE_RATING if liked else DISLIKE_RATING
            write_json_atomic(self._swipes_path(user_key), {"user": user_key, "ratings": {str(k): v for k, v in swipes.items()}})
            with self._lock:
                self._swipes[user_key] = swipes
                self._indexes.pop(user_key, None)
            return self.ratings(user_key)

    def remove_swipe(self, user_key: str, item_id: int) -> dict[int, int] | None:
        """Take back a like/dislike, durably (an undo): the new ratings, or None if there was none."""
        with self._writers(user_key):
            swipes = self.swipes(user_key)
            if swipes.pop(int(item_id), None) is None:
                return None
            write_json_atomic(self._swipes_path(user_key), {"user": user_key, "ratings": {str(k): v for k, v in swipes.items()}})
            with self._lock:
                self._swipes[user_key] = swipes
                self._indexes.pop(user_key, None)
            return self.ratings(user_key)

    def disliked(self, user_key: str) -> set[int]:
        return {i for i, r in self.swipes(user_key).items() if r == DISLIKE_RATING}

    # ---------------------------------------------------------------- FAISS per user
    def _index(self, user_key: str) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
        """(FAISS index, liked item ids, their ratings) of one user, rows aligned; LRU-cached."""
        with self._lock:
            if user_key in self._indexes:
                self._indexes.move_to_end(user_key)
                return self._indexes[user_key]
            liked = sorted((i, r) for i, r in self.ratings(user_key).items() if r >= LIKED_THRESHOLD and i in self._pos)
            ids = np.array([i for i, _ in liked], dtype=np.int64)
            index = faiss.IndexFlatIP(self.item_vectors.shape[1])
            if len(ids):
                index.add(self.item_vectors[[self._pos[int(i)] for i in ids]])
            self._indexes[user_key] = (index, ids, np.array([r for _, r in liked], dtype=np.int64))
            if len(self._indexes) > self._cache_size:
                self._indexes.popitem(last=False)
            return self._indexes[user_key]

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
