"""Deterministic train/test splits, identical to the published protocols so figures compare.

- stratified: per user, a random 75/25 split with seed 42 (Microsoft Recommenders'
  ``python_stratified_split``: one uniform draw per row, rows ranked within user, first
  ``round(0.75 * n_user)`` to train).
- temporal: per user, the earliest 80% of ratings to train, the latest 20% to test
  (``python_chrono_split``), so no later rating of a user is in train.
- kfold: Surprise's ``KFold(n_splits=5, random_state=0)`` over the ratings in file order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from data.store import atomic_path

PROTOCOLS = ("stratified", "temporal", "kfold")
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


@dataclass(frozen=True)
class Split:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def _per_user_split(ratings: pd.DataFrame, ratio: float, order: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = ratings[COLUMNS].copy()
    frame["_order"] = order
    frame = frame.sort_values(["user_id", "_order"], kind="mergesort")
    grouped = frame.groupby("user_id")
    count = grouped["user_id"].transform("count")
    rank = grouped.cumcount() + 1
    in_train = rank <= (ratio * count).round()
    return frame.loc[in_train, COLUMNS].reset_index(drop=True), frame.loc[~in_train, COLUMNS].reset_index(drop=True)


def stratified(ratings: pd.DataFrame, ratio: float = 0.75, seed: int = 42) -> Split:
    """Per-user random split (Microsoft Recommenders protocol, default 75/25, seed 42)."""
    rng_draw = np.random.RandomState(seed).rand(len(ratings))
    train, test = _per_user_split(ratings, ratio, rng_draw)
    return Split("stratified", train, test)


def temporal(ratings: pd.DataFrame, ratio: float = 0.8) -> Split:
    """Per-user chronological split (default 80/20); ties keep file order."""
    train, test = _per_user_split(ratings, ratio, ratings["timestamp"].to_numpy())
    return Split("temporal", train, test)


def kfold(ratings: pd.DataFrame, n_splits: int = 5, random_state: int = 0) -> Iterator[Split]:
    """Surprise's KFold: shuffle row indices with RandomState(random_state), cut into n folds."""
    indices = np.arange(len(ratings))
    np.random.RandomState(random_state).shuffle(indices)
    # Surprise cuts folds as in its KFold.split: stop = start + n // k (+1 for the first n % k folds)
    start, n, k = 0, len(ratings), n_splits
    for fold in range(k):
        stop = start + n // k + (1 if fold < n % k else 0)
        test_idx = indices[start:stop]
        train_idx = np.concatenate([indices[:start], indices[stop:]])
        yield Split(f"kfold{fold}", ratings.iloc[train_idx][COLUMNS].reset_index(drop=True),
                    ratings.iloc[test_idx][COLUMNS].reset_index(drop=True))
        start = stop


def make(ratings: pd.DataFrame, protocol: str) -> list[Split]:
    if protocol == "stratified":
        return [stratified(ratings)]
    if protocol == "temporal":
        return [temporal(ratings)]
    if protocol == "kfold":
        return list(kfold(ratings))
    raise ValueError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def write(split: Split, out_dir: Path) -> Path:
    """Write ``train.tsv`` / ``test.tsv`` (user, item, rating, timestamp; no header)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train.tsv", split.train), ("test.tsv", split.test)):
        with atomic_path(out_dir / name) as tmp:
            frame[COLUMNS].to_csv(tmp, sep="\t", header=False, index=False)
    return out_dir
