"""People's swipes as training data, and the held-out recent swipes the gate scores.

A swipe is a like (rating 5, ``LIKE_RATING``) or a dislike. In training rows a dislike is rated
``DISLIKE_TRAINING_RATING`` (below 1 star): ``models.base.positives`` drops it for the models that
only learn from interactions (EASE, two-tower, popularity) and SVD reads it as 1 star, a real
negative. Only a person's latest swipe on an item counts (as their profile does).

Each person is a user of the training data: a MovieLens persona ("196") keeps its id and its
swipes override its ratings of the same items; anyone else gets a negative id (never a MovieLens
id, never a serving id: ``agent.users`` gives new people ids from 10,000,000 up) and, when they
started from a persona (``seed_from``), that persona's ratings as their own.

Held-out recent swipes (``split_recent``): each person with at least ``min_swipes`` swipes has
their latest ``share`` of swipes (at least one) held out; the gate represents the person by the
earlier ones, the way serving folds a person in (``Fusion.source_scores_for``), and asks whether
the held-out likes come up in the top 10.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from data.events import DISLIKE_RATING, LIKE_RATING, Swipe
from data.movielens import MovieLens
from data.splits import COLUMNS

DISLIKE_TRAINING_RATING = 0.5   # below models.base.NEGATIVE_BELOW: a negative, not an interaction


@dataclass(frozen=True)
class SwipeTable:
    """Latest swipe per (person, item), oldest first: user_key, user_id, item_id, like, order, timestamp."""

    frame: pd.DataFrame
    seeds: dict[int, int]     # training user id -> the MovieLens user they started from
    position: int             # the event-store position these swipes were read at

    @property
    def people(self) -> int:
        return int(self.frame["user_id"].nunique())


def swipe_table(swipes: Iterable[Swipe], data: MovieLens, seeds: dict[str, int] | None = None,
                position: int = 0) -> SwipeTable:
    rows = [(s.user_id, int(s.item_id), s.action == "like", s.ts.timestamp()) for s in swipes]
    frame = pd.DataFrame(rows, columns=["user_key", "item_id", "like", "timestamp"])
    frame["order"] = np.arange(len(frame))
    frame = frame[frame["item_id"].isin(set(data.item_ids.tolist()))]
    frame = frame.drop_duplicates(["user_key", "item_id"], keep="last")   # the latest swipe per item
    known = set(data.users["user_id"].astype(int).tolist())
    keys = sorted(frame["user_key"].unique())
    ids, seeded = {}, {}
    others = [k for k in keys if not (k.isdigit() and int(k) in known)]
    for k in keys:
        if k.isdigit() and int(k) in known:
            ids[k] = int(k)
    for i, k in enumerate(others):
        ids[k] = -(i + 1)
        if seeds and k in seeds:
            seeded[ids[k]] = int(seeds[k])
    frame["user_id"] = frame["user_key"].map(ids).astype(np.int64)
    frame = frame.sort_values("order", kind="mergesort").reset_index(drop=True)
    return SwipeTable(frame[["user_key", "user_id", "item_id", "like", "order", "timestamp"]], seeded, position)


def split_recent(table: SwipeTable, share: float = 0.2, min_swipes: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier, recent): each person's latest ``share`` of swipes (at least one) held out, for
    people with at least ``min_swipes``; everyone else's swipes are all earlier."""
    frame = table.frame
    count = frame.groupby("user_id")["order"].transform("count")
    rank_from_end = frame.groupby("user_id").cumcount(ascending=False)   # 0 = the latest
    held = np.maximum(1, np.round(share * count)).astype(int)
    recent = (count >= min_swipes) & (rank_from_end < held)
    return frame.loc[~recent].reset_index(drop=True), frame.loc[recent].reset_index(drop=True)


def training_rows(swipes: pd.DataFrame, seeds: dict[int, int], base: pd.DataFrame) -> pd.DataFrame:
    """``base`` (MovieLens ratings) plus the people: their seeds' ratings and their swipes (a swipe
    replaces the same person's rating of the same item)."""
    parts = [base[COLUMNS]]
    swipers = set(swipes["user_id"])
    for person, seed in seeds.items():
        if person in swipers:
            parts.append(base.loc[base["user_id"] == seed, COLUMNS].assign(user_id=person))
    rated = pd.DataFrame({"user_id": swipes["user_id"].to_numpy(np.int64), "item_id": swipes["item_id"].to_numpy(np.int64),
                          "rating": np.where(swipes["like"], float(LIKE_RATING), DISLIKE_TRAINING_RATING),
                          "timestamp": swipes["timestamp"].astype(np.int64)})
    parts.append(rated)
    rows = pd.concat(parts, ignore_index=True)
    rows["rating"] = rows["rating"].astype(np.float64)
    return rows.drop_duplicates(["user_id", "item_id"], keep="last").reset_index(drop=True)


def fold_in_profiles(earlier: pd.DataFrame, seeds: dict[int, int], ratings: pd.DataFrame) -> dict[int, dict[int, float]]:
    """Each person as serving represents them: their persona's ratings, then their swipes (like 5,
    dislike 1, as ``EventStore.profile_state`` gives them)."""
    profiles: dict[int, dict[int, float]] = {}
    by_user = {int(u): g for u, g in ratings.groupby("user_id")}
    for person, group in earlier.groupby("user_id"):
        person = int(person)
        seed = seeds.get(person, person if person > 0 else None)
        profile = {}
        if seed is not None and seed in by_user:
            profile = dict(zip(by_user[seed]["item_id"].astype(int), by_user[seed]["rating"].astype(float)))
        profile.update({int(i): float(LIKE_RATING if like else DISLIKE_RATING)
                        for i, like in zip(group["item_id"], group["like"])})
        profiles[person] = profile
    return profiles


# ---------------------------------------------------------------------------------------- synthetic people
def synthetic_swipes(data: MovieLens, people: int = 1000, swipes_each: int = 10, clusters: int = 8,
                     cluster_size: int = 40, seed: int = 0, prefix: str = "sim", older_only: bool = True) -> list[Swipe]:
    """People whose tastes differ from the MovieLens average, for benchmarks and tests.

    ``clusters`` tastes, each a random set of ``cluster_size`` items drawn from the older half of
    the catalog (by release year, so unlike MovieLens raters' 1990s favourites; ``older_only=False``:
    the whole catalog) and unrelated to co-ratings; each person has one taste. Each person swipes ``swipes_each`` cards in turn: 70%
    drawn from their taste (liked 90% of the time), 30% from the whole catalog (liked 10%)."""
    rng = np.random.default_rng(seed)
    items = data.items.sort_values("item_id")
    years = items["year"].astype("float64").fillna(items["year"].astype("float64").median()).to_numpy()
    ids = items["item_id"].to_numpy(np.int64)
    older = ids[years <= np.median(years)] if older_only else ids
    size = min(cluster_size, len(older))
    tastes = [rng.choice(older, size, replace=False) for _ in range(clusters)]
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out: list[Swipe] = []
    for p in range(people):
        taste = tastes[p % clusters]
        key = f"{prefix}-{p:05d}"
        seen: set[int] = set()
        for s in range(swipes_each):
            own = rng.random() < 0.7
            pool = taste if own else ids
            item = int(rng.choice(pool))
            tries = 0
            while item in seen and tries < 20:
                item, tries = int(rng.choice(pool)), tries + 1
            seen.add(item)
            liked = rng.random() < (0.9 if own else 0.1)
            out.append(Swipe(ts=start + timedelta(minutes=p * swipes_each + s), user_id=key, session_id=f"{key}-s",
                             item_id=item, action="like" if liked else "dislike"))
    return out
