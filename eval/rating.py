"""The rating protocol: Surprise's 5-fold ``KFold(random_state=0)``, RMSE and MAE.

Folds come from ``data.splits.kfold`` (the same rows as Surprise's KFold on ml-100k in file
order), predictions are clipped to 1..5 as Surprise clips them, and each figure is the mean over
the five folds, as Surprise's ``cross_validate`` reports it. Published on this protocol (Surprise
1.1.x): SVD 0.934, SVD++ 0.919, KNNBaseline 0.931.

A model here is anything with ``fit(ratings, data) -> self`` and ``predict(user_ids, item_ids)``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from data.movielens import MovieLens
from data.splits import kfold
from models.rating import RatingBlend, combine, fit_ridge
from models.svd import RATING_SCALE, SVD

log = logging.getLogger(__name__)


def accuracy(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE (stars) of ``predicted`` (clipped to 1..5 first) against ``actual``."""
    err = np.clip(np.asarray(predicted, dtype=np.float64), *RATING_SCALE) - np.asarray(actual, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


def _mean(per_fold: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([fold[key] for fold in per_fold])) for key in ("rmse", "mae")}


def kfold_rmse(make_model: Callable[[], object], data: MovieLens) -> dict[str, float]:
    """{"rmse", "mae"}: means over the 5 folds of a fresh ``make_model()`` fit on each fold's train."""
    per_fold = []
    started = time.perf_counter()
    for split in kfold(data.ratings):
        model = make_model().fit(split.train, data)
        per_fold.append(accuracy(model.predict(split.test["user_id"].to_numpy(), split.test["item_id"].to_numpy()),
                                 split.test["rating"].to_numpy()))
    result = _mean(per_fold)
    log.info("kfold %s: rmse %.4f mae %.4f (%.1f s)", getattr(make_model, "__name__", make_model), result["rmse"],
             result["mae"], time.perf_counter() - started)
    return result


@dataclass
class BlendFold:
    """One fold's blend outcome: test truth, each component's and the blend's test predictions."""

    actual: np.ndarray
    components: dict[str, np.ndarray]
    blend: np.ndarray
    holdout: tuple[np.ndarray, np.ndarray]   # (component predictions, ratings) the weights were fit on
    ridge: float


def blend_folds(data: MovieLens, make_blend: Callable[[], RatingBlend] = RatingBlend) -> Iterator[BlendFold]:
    """Fit a blend on each fold's train (weights from its inner holdout) and predict its test."""
    for split in kfold(data.ratings):
        started = time.perf_counter()
        blend = make_blend().fit(split.train, data)
        users, items = split.test["user_id"].to_numpy(), split.test["item_id"].to_numpy()
        components = blend.predict_components(users, items)
        stacked = np.column_stack([components[name] for name in blend.config.components])
        prediction = combine(stacked, blend.intercept, np.array([blend.weights[n] for n in blend.config.components]))
        log.info("%s: blend fit+predict %.1f s (component fits %s)", split.name, time.perf_counter() - started,
                 {k: round(v, 1) for k, v in blend.fit_seconds.items()})
        yield BlendFold(split.test["rating"].to_numpy(), components, prediction, blend.holdout_predictions,
                        blend.config.ridge)


def ablation(folds: list[BlendFold]) -> dict[str, dict[str, float]]:
    """Mean 5-fold figures of the blend refit without each component (weights from the same holdouts)."""
    names = list(folds[0].components)
    result = {}
    for left_out in names:
        keep = [j for j, name in enumerate(names) if name != left_out]
        per_fold = []
        for fold in folds:
            X, y = fold.holdout
            intercept, weights = fit_ridge(X[:, keep], y, fold.ridge)
            stacked = np.column_stack([fold.components[names[j]] for j in keep])
            per_fold.append(accuracy(combine(stacked, intercept, weights), fold.actual))
        result[left_out] = _mean(per_fold)
    return result


def rating_report(data: MovieLens) -> dict:
    """{"svd_default": {rmse, mae}, "best": {name, rmse, mae}, "models": {name: {rmse, mae}}}.

    ``models`` holds Surprise-default SVD, the recommender's tuned SVD, every blend component and
    the blend. The blend's ablation (without each component) is logged.
    """
    started = time.perf_counter()
    models = {"svd_default": kfold_rmse(SVD.surprise_defaults, data), "svd": kfold_rmse(SVD, data)}
    folds = list(blend_folds(data))
    for name in folds[0].components:
        models[name] = _mean([accuracy(f.components[name], f.actual) for f in folds])
    models[RatingBlend.name] = _mean([accuracy(f.blend, f.actual) for f in folds])
    for name, figures in ablation(folds).items():
        log.info("blend without %s: rmse %.4f (%+.4f)", name, figures["rmse"],
                 figures["rmse"] - models[RatingBlend.name]["rmse"])
    best = min(models, key=lambda name: models[name]["rmse"])
    log.info("rating report in %.0f s; best %s rmse %.4f", time.perf_counter() - started, best, models[best]["rmse"])
    return {"svd_default": models["svd_default"], "best": {"name": best, **models[best]}, "models": models}
