"""Measure any Recommender on a split through its interface only (score_all -> top-k)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from data.movielens import MovieLens
from eval.metrics import ranking_report
from models.base import Recommender, top_n_batch


def recommend_batch(model: Recommender, users: list[int], k: int = 10, batch: int = 256) -> dict[int, list[int]]:
    """Top-k item ids per user with the user's training items removed (vectorised by batch)."""
    out: dict[int, list[int]] = {}
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = model.score_all(chunk).astype(np.float64, copy=True)
        for row, u in enumerate(chunk):
            scores[row, model.seen(u)] = -np.inf
        top = top_n_batch(scores, k)
        for row, u in enumerate(chunk):
            out[u] = model.item_ids[top[row]].tolist()
    return out


def evaluate_ranking(model: Recommender, train: pd.DataFrame, test: pd.DataFrame, data: MovieLens,
                     k: int = 10) -> dict[str, float]:
    """P@k, R@k, nDCG@k, MAP, coverage@k, novelty, diversity of ``model`` (already fit on ``train``)."""
    relevant = {int(u): set(g.tolist()) for u, g in test.groupby("user_id")["item_id"]}
    users = [u for u in relevant if model.knows(u)]
    recs = recommend_batch(model, users, k)
    popularity = train["item_id"].value_counts().to_dict()
    genre_vectors = dict(zip(data.item_ids.tolist(), data.genre_matrix))
    return ranking_report(recs, relevant, k, n_catalog=len(data.item_ids), popularity=popularity,
                          item_vectors=genre_vectors)
