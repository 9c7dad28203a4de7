"""Fusion: several recommenders' normalised scores combined with weights learned offline.

Weights are learned on a validation split carved from the training ratings (per user, 80/20),
never on test: the sources are fit on the inner 80%, their per-user z-scored score vectors are
combined, and coordinate ascent picks the weights that maximise validation nDCG@10. The sources
are then refit on all the training ratings and keep those weights.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from data.movielens import MovieLens
from data.splits import stratified
from data.store import write_json_atomic
from models.base import Recommender, positives, top_n_batch

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Recommender]


class FusionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation_ratio: float = 0.8  # share of each user's training ratings kept for the inner fit
    validation_seed: int = 7       # differs from the test split's 42 so the carve is independent
    k: int = 10                    # the cutoff the weights are tuned for
    grid: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)  # per-weight values tried
    rounds: int = 3                # coordinate-ascent sweeps; it settles in two on ML-100k


def zscore(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score, so sources on different scales (ratings, logits, counts) add up."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.where(std == 0, 1.0, std)


def _ndcg_matrix(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean nDCG@k of row-wise rankings against a boolean relevance matrix."""
    top = top_n_batch(scores, k)
    gains = np.take_along_axis(relevant, top, axis=1) / np.log2(np.arange(2, k + 2))
    n_rel = np.minimum(relevant.sum(axis=1), k)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[np.maximum(n_rel, 1) - 1]
    return float(np.mean(gains.sum(axis=1) / ideal))


def learn_weights(source_scores: Mapping[str, np.ndarray], relevant: np.ndarray, config: FusionConfig) -> dict[str, float]:
    """Coordinate ascent over a grid of non-negative weights, maximising nDCG@k."""
    names = list(source_scores)
    stacked = np.stack([source_scores[n] for n in names])  # (sources, users, items), already z-scored and masked
    weights = np.ones(len(names))
    best = _ndcg_matrix(np.tensordot(weights, stacked, axes=1), relevant, config.k)
    for _ in range(config.rounds):
        improved = False
        for s in range(len(names)):
            for value in config.grid:
                trial = weights.copy()
                trial[s] = value
                if not trial.any():
                    continue
                ndcg = _ndcg_matrix(np.tensordot(trial, stacked, axes=1), relevant, config.k)
                if ndcg > best + 1e-6:
                    best, weights, improved = ndcg, trial, True
        if not improved:
            break
    log.info("fusion weights %s (validation ndcg@%d %.4f)", {n: float(w) for n, w in zip(names, weights)}, config.k, best)
    return {n: float(w) for n, w in zip(names, weights)}


class Fusion(Recommender):
    """Weighted sum of z-scored source scores; the sources live inside it after fit."""

    name = "fusion"
    FILE = "fusion.json"
    uses_negatives = True   # passes every row on; each source takes what it can use

    def __init__(self, factories: Mapping[str, SourceFactory] | None = None, config: FusionConfig | None = None) -> None:
        super().__init__()
        self.factories = dict(factories or {})
        self.config = config or FusionConfig()
        self.sources: dict[str, Recommender] = {}
        self.weights: dict[str, float] = {}
        self.validation_ndcg: float | None = None

    def _fit(self, ratings: pd.DataFrame, data: MovieLens) -> None:
        inner = stratified(ratings, self.config.validation_ratio, self.config.validation_seed)
        inner_sources = {name: make().fit(inner.train, data) for name, make in self.factories.items()}
        inner = type(inner)(inner.name, inner.train, positives(inner.test))   # a dislike is never a hit
        users = sorted(set(inner.test["user_id"]) & set(inner.train["user_id"]))
        relevant = np.zeros((len(users), len(self.item_ids)), dtype=bool)
        upos = {u: r for r, u in enumerate(users)}
        relevant[inner.test["user_id"].map(upos).dropna().astype(int).to_numpy(),
                 inner.test.loc[inner.test["user_id"].isin(upos), "item_id"].map(self._item_pos).to_numpy()] = True
        source_scores = {name: self._masked_z(model, users) for name, model in inner_sources.items()}
        self.weights = learn_weights(source_scores, relevant, self.config)
        self.validation_ndcg = _ndcg_matrix(
            sum(w * source_scores[n] for n, w in self.weights.items()), relevant, self.config.k)
        del inner_sources, source_scores
        self.sources = {name: make().fit(ratings, data) for name, make in self.factories.items()}

    @staticmethod
    def _masked_z(model: Recommender, users: list[int]) -> np.ndarray:
        z = zscore(model.score_all(users).astype(np.float64))
        for row, u in enumerate(users):
            z[row, model.seen(u)] = -1e9  # training items are never recommended
        return z

    def knows(self, user_id: int) -> bool:
        return any(m.knows(user_id) for m in self.sources.values())

    def source_scores(self, user_ids: Iterable[int]) -> dict[str, np.ndarray]:
        """Each weighted source's z-scored (users, items) matrix; raises ColdStart for an unknown user."""
        users = list(user_ids)
        return {name: zscore(self.sources[name].score_all(users).astype(np.float64))
                for name, w in self.weights.items() if w > 0}

    def source_scores_for(self, user_id: int, ratings: Mapping[int, float]) -> dict[str, np.ndarray]:
        """``source_scores`` of one person represented by their ratings (see ``scores_for``):
        nothing in any model is written."""
        return {name: zscore(self.sources[name].scores_for(user_id, ratings)[None, :].astype(np.float64))[0]
                for name, w in self.weights.items() if w > 0}

    def score_all(self, user_ids: Iterable[int]) -> np.ndarray:
        parts = self.source_scores(user_ids)
        return sum(self.weights[n] * s for n, s in parts.items())

    def seen(self, user_id: int) -> np.ndarray:
        seen = [m.seen(user_id) for m in self.sources.values()]
        return np.unique(np.concatenate(seen)) if seen else np.empty(0, dtype=np.int64)

    def fold_in(self, user_id: int, ratings: Mapping[int, float]) -> None:
        for model in self.sources.values():
            model.fold_in(user_id, ratings)

    def save(self, directory: Path) -> list[Path]:
        path = Path(directory) / self.FILE
        write_json_atomic(path, {"weights": self.weights, "validation_ndcg": self.validation_ndcg,
                                 "config": self.config.model_dump(mode="json"), "sources": list(self.sources)})
        return [path]

    @classmethod
    def load_with(cls, directory: Path, sources: Mapping[str, Recommender]) -> "Fusion":
        """Rebuild from the saved weights and already-loaded sources."""
        state = json.loads((Path(directory) / cls.FILE).read_text())
        missing = set(state["sources"]) - set(sources)
        if missing:
            raise ValueError(f"fusion artifact needs sources {sorted(missing)} that were not loaded")
        model = cls(config=FusionConfig(**state["config"]))
        model.sources = {n: sources[n] for n in state["sources"]}
        model.weights = state["weights"]
        model.validation_ndcg = state["validation_ndcg"]
        first = next(iter(model.sources.values()))
        model.item_ids, model._item_pos = first.item_ids, first._item_pos
        return model
