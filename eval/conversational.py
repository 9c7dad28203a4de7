"""The conversational protocol: ask each test user for each genre among their test positives.

For every (user, genre) with a test positive (rating >= 4) of that genre, the request is "<genre>
movies"; relevant = that user's test positives of that genre; Recall@10 and nDCG@10 (DESIGN.md).
The full pipeline (the agent's RequestRanker) is compared with each single candidate source under
the same filters, and with popularity-within-genre.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from agent.intent import Intent
from agent.query import RequestEncoder
from agent.ranking import RankerConfig, RequestRanker
from agent.runtime import base_profiles
from agent.users import User
from data.movielens import MovieLens
from data.splits import Split
from eval.metrics import user_metrics
from models.fusion import zscore
from models.train import ModelBundle
from retrieval.catalog import CatalogIndex
from retrieval.profile_index import ProfileStore

log = logging.getLogger(__name__)
POSITIVE = 4


def cases(split: Split, data: MovieLens) -> list[tuple[int, str, set[int]]]:
    """(user, genre, relevant item ids) for every genre among each user's test positives."""
    out = []
    positives = split.test[split.test["rating"] >= POSITIVE]
    for user, items in positives.groupby("user_id")["item_id"]:
        by_genre: dict[str, set[int]] = {}
        for item in items:
            for g in data.movies[int(item)].genres:
                if g != "unknown":
                    by_genre.setdefault(g, set()).add(int(item))
        out.extend((int(user), g, rel) for g, rel in sorted(by_genre.items()))
    return out


def conversational_report(split: Split, bundle: ModelBundle, k: int = 10,
                          config: RankerConfig | None = None, limit: int | None = None) -> dict:
    data = bundle.data
    catalog = CatalogIndex(bundle.item_text_vectors, data.item_ids)
    profiles = ProfileStore(bundle.item_text_vectors, data.item_ids, base_profiles(split.train))
    ranker = RequestRanker(bundle, catalog, profiles, config)
    todo = cases(split, data)[:limit] if limit else cases(split, data)
    encoder = RequestEncoder(catalog, data)
    queries = {g: encoder.vector(Intent(genres=[g])) for g in {g for _, g, _ in todo}}
    rows: dict[str, list[dict]] = {}
    started = time.perf_counter()
    for user_id, genre, relevant in todo:
        user = User(str(user_id), user_id, True)
        intent = Intent(genres=[genre])
        ranking = ranker.rank(user, intent, queries[genre], n=k)
        rows.setdefault("pipeline", []).append(user_metrics([i.item_id for i in ranking.items], relevant, k))
        mask, _ = ranker.allowed(intent, set(profiles.ratings(user.key)))
        singles = _single_sources(bundle, user_id)
        singles["semantic"] = catalog.similarity(queries[genre])
        for name, scores in singles.items():
            ranked = np.where(mask, scores, -np.inf)
            top = np.argsort(-ranked, kind="stable")[:k]
            top = top[np.isfinite(ranked[top])]
            label = "popularity_in_genre" if name == "popularity" else name
            rows.setdefault(label, []).append(user_metrics(data.item_ids[top].tolist(), relevant, k))
    elapsed = time.perf_counter() - started
    report = {name: {f"recall@{k}": float(np.mean([r[f"recall@{k}"] for r in rs])),
                     f"ndcg@{k}": float(np.mean([r[f"ndcg@{k}"] for r in rs]))} for name, rs in rows.items()}
    best_single = max((n for n in report if n != "pipeline"), key=lambda n: report[n][f"ndcg@{k}"])
    return {"cases": len(todo), "seconds": elapsed, "methods": report, "best_single": best_single,
            "pipeline_beats_all_singles": all(report["pipeline"][f"ndcg@{k}"] > report[n][f"ndcg@{k}"]
                                              for n in report if n != "pipeline")}


def _single_sources(bundle: ModelBundle, user_id: int) -> dict[str, np.ndarray]:
    return {name: zscore(model.score_all([user_id]).astype(np.float64))[0] for name, model in bundle.sources.items()}
