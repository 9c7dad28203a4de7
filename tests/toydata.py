"""A tiny MovieLens-shaped dataset whose right answers are known (a two-cluster checkerboard).

Users 1-10 rate items 1-10 (all Sci-Fi) highly; users 11-20 rate items 11-20 (all Romance)
highly. Each user has one item of their own cluster withheld: the top recommendation for a
user should come from their own cluster.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data.movielens import MovieLens

N_ITEMS = 20


def toy_movielens(seed: int = 0) -> tuple[MovieLens, pd.DataFrame, pd.DataFrame]:
    """(data, train, test): test holds one withheld own-cluster item per user."""
    rng = np.random.RandomState(seed)
    rows, test_rows = [], []
    for user in range(1, 21):
        own = list(range(1, 11)) if user <= 10 else list(range(11, 21))
        withheld = own[(user - 1) % 10]
        for item in own:
            row = (user, item, int(rng.choice([4, 5])), 1_000_000 + user * 100 + item)
            (test_rows if item == withheld else rows).append(row)
        other = list(range(11, 21)) if user <= 10 else list(range(1, 11))
        for item in rng.choice(other, 2, replace=False):  # a little cross-cluster noise, rated low
            rows.append((user, int(item), 1, 1_000_000 + user * 100 + int(item)))
    cols = ["user_id", "item_id", "rating", "timestamp"]
    train, test = pd.DataFrame(rows, columns=cols), pd.DataFrame(test_rows, columns=cols)
    items = pd.DataFrame({
        "item_id": np.arange(1, N_ITEMS + 1),
        "title": [f"Space Movie {i}" if i <= 10 else f"Love Story {i}" for i in range(1, N_ITEMS + 1)],
        "year": pd.array([1980 + i for i in range(1, N_ITEMS + 1)], dtype="Int64"),
        "genres": [("Sci-Fi",) if i <= 10 else ("Romance",) for i in range(1, N_ITEMS + 1)],
    })
    users = pd.DataFrame({"user_id": np.arange(1, 21), "age": 20 + np.arange(20), "gender": ["M", "F"] * 10,
                          "occupation": ["student", "engineer"] * 10, "zip_code": ["00000"] * 20})
    data = MovieLens(ratings=pd.concat([train, test], ignore_index=True), items=items, users=users, checksum="toy")
    return data, train, test


def cluster_of(item_id: int) -> int:
    return 0 if item_id <= 10 else 1
