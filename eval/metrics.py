"""Top-k ranking metrics with Microsoft Recommenders' definitions (binary relevance).

For each user with at least one test item: hits are the top-k recommended items found in the
user's test set (every test item is relevant).
- precision@k = hits / k
- recall@k    = hits / |test items|
- ndcg@k      = sum(1/log2(rank+1) over hits) / sum(1/log2(rank+1), rank=1..min(k, |test|))
- map         = sum(precision@rank over hits) / |test items|   (their ``map``, no min(k, .) cap)
All are averaged over users. Beyond accuracy:
- coverage@k  = distinct recommended items / catalog size
- novelty     = mean -log2(popularity share of recommended item), popularity from train
- diversity   = mean intra-list distance (1 - cosine of genre vectors) within each top-k list
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np


def user_metrics(recommended: Sequence[int], relevant: set, k: int = 10) -> dict[str, float]:
    """Metrics for one user's ranked list (item ids, best first) against their relevant set."""
    recs = list(recommended)[:k]
    hits = np.array([item in relevant for item in recs], dtype=bool)
    n_rel = len(relevant)
    if n_rel == 0:
        raise ValueError("a user with no relevant items cannot be scored")
    ranks = np.flatnonzero(hits) + 1
    dcg = float(np.sum(1.0 / np.log2(ranks + 1)))
    idcg = float(np.sum(1.0 / np.log2(np.arange(1, min(k, n_rel) + 1) + 1)))
    precisions = np.arange(1, len(ranks) + 1) / ranks
    return {
        f"precision@{k}": hits.sum() / k,
        f"recall@{k}": hits.sum() / n_rel,
        f"ndcg@{k}": dcg / idcg,
        "map": float(precisions.sum() / n_rel),
    }


def ranking_report(recommendations: Mapping[int, Sequence[int]], relevant: Mapping[int, set], k: int = 10,
                   n_catalog: int | None = None, popularity: Mapping[int, float] | None = None,
                   item_vectors: Mapping[int, np.ndarray] | None = None) -> dict[str, float]:
    """Average ``user_metrics`` over users present in both maps, plus beyond-accuracy figures."""
    users = [u for u in relevant if u in recommendations and relevant[u]]
    if not users:
        raise ValueError("no user has both recommendations and relevant items")
    rows = [user_metrics(recommendations[u], relevant[u], k) for u in users]
    report = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    report["users"] = len(users)
    if n_catalog:
        distinct = {i for u in users for i in list(recommendations[u])[:k]}
        report[f"coverage@{k}"] = len(distinct) / n_catalog
    if popularity:
        total = sum(popularity.values())
        report["novelty"] = float(np.mean([
            np.mean([-np.log2(max(popularity.get(i, 0.0), 1.0) / total) for i in list(recommendations[u])[:k]])
            for u in users
        ]))
    if item_vectors:
        report["diversity"] = float(np.mean([_intra_list_distance([item_vectors[i] for i in list(recommendations[u])[:k]])
                                             for u in users]))
    return report


def _intra_list_distance(vectors: Iterable[np.ndarray]) -> float:
    mat = np.asarray(list(vectors), dtype=np.float64)
    if len(mat) < 2:
        return 0.0
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    unit = mat / np.where(norms == 0, 1.0, norms)
    sim = unit @ unit.T
    n = len(mat)
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))


def rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(errors))))


def mae(errors: np.ndarray) -> float:
    return float(np.mean(np.abs(errors)))
