"""Rating protocol and the rating blend: fold parity with Surprise, pinned figures, no leakage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import surprise
from surprise.model_selection import KFold

from data.splits import kfold
from eval.rating import accuracy, kfold_rmse
from models import rating
from models.rating import AutoRec, AutoRecConfig, BlendConfig, RatingBlend, fit_ridge, loss_and_grads
from models.svd import SVD
from tests.toydata import toy_movielens


@pytest.fixture(scope="module")
def toy():
    return toy_movielens()


# --------------------------------------------------------------------------- protocol
def test_accuracy_clips_like_surprise():
    # 6.2 -> 5 (err 0), 0.5 -> 1 (err -1), 3 vs 4 (err -1)
    figures = accuracy(np.array([6.2, 0.5, 3.0]), np.array([5, 2, 4]))
    assert figures["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert figures["mae"] == pytest.approx(2 / 3)


@pytest.mark.integration
def test_kfold_folds_are_surprise_kfold(movielens):
    """data.splits.kfold gives the very rows of Surprise's KFold(n_splits=5, random_state=0)."""
    frame = movielens.ratings[["user_id", "item_id", "rating"]]
    dataset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
    ours = list(kfold(movielens.ratings))
    theirs = list(KFold(n_splits=5, random_state=0).split(dataset))
    assert len(ours) == len(theirs) == 5
    for split, (trainset, testset) in zip(ours, theirs):
        assert list(split.test[["user_id", "item_id", "rating"]].itertuples(index=False, name=None)) == \
            [(int(u), int(i), float(r)) for u, i, r in testset]
        their_train = sorted((int(trainset.to_raw_uid(u)), int(trainset.to_raw_iid(i)), r)
                             for u, i, r in trainset.all_ratings())
        assert sorted(split.train[["user_id", "item_id", "rating"]].itertuples(index=False, name=None)) == their_train


@pytest.mark.integration
def test_svd_default_reproduces_published_figure(movielens):
    """Surprise's published SVD on ml-100k: RMSE 0.934, MAE 0.737 (seeded here: 0.9344 / 0.7367)."""
    figures = kfold_rmse(SVD.surprise_defaults, movielens)
    assert figures["rmse"] == pytest.approx(0.934, abs=0.005)
    assert figures["rmse"] == pytest.approx(0.93440, abs=1e-4)
    assert figures["mae"] == pytest.approx(0.73670, abs=1e-4)


# --------------------------------------------------------------------------- ridge blend
def test_fit_ridge_recovers_known_weights():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = 0.5 + X @ np.array([0.2, 0.0, 0.7])
    intercept, weights = fit_ridge(X, y, alpha=0.0)
    assert intercept == pytest.approx(0.5)
    np.testing.assert_allclose(weights, [0.2, 0.0, 0.7], atol=1e-10)
    _, shrunk = fit_ridge(X, y, alpha=1e4)
    assert np.abs(shrunk).sum() < 0.1 * np.abs(weights).sum()


class _Recorder:
    """A component that predicts from a fixed lookup and records what it was fit on."""

    fits: list[int] = []

    def __init__(self, lookup: dict[tuple[int, int], float], noise: float = 0.0) -> None:
        self.lookup, self.noise = lookup, noise

    def fit(self, ratings: pd.DataFrame, data) -> "_Recorder":
        _Recorder.fits.append(len(ratings))
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        rng = np.random.RandomState(0)
        truth = np.array([self.lookup[(int(u), int(i))] for u, i in zip(user_ids, item_ids)])
        return truth + self.noise * rng.normal(size=len(truth))


def test_blend_weights_follow_the_accurate_component_and_never_see_test(toy, monkeypatch):
    data, train, test = toy
    lookup = {(int(r.user_id), int(r.item_id)): float(r.rating) for r in data.ratings.itertuples()}
    monkeypatch.setitem(rating.COMPONENTS, "oracle", lambda: _Recorder(lookup))
    monkeypatch.setitem(rating.COMPONENTS, "noisy", lambda: _Recorder(lookup, noise=1.5))
    _Recorder.fits = []
    blend = RatingBlend(BlendConfig(components=("oracle", "noisy", "baseline"), holdout=0.3, ridge=0.0)).fit(train, data)
    held = int((np.random.RandomState(0).rand(len(train)) < 0.3).sum())
    # each recorder is fit on the inner part, then refit on the whole training set; test rows never
    assert _Recorder.fits == [len(train) - held] * 2 + [len(train)] * 2
    assert blend.weights["oracle"] == pytest.approx(1.0, abs=1e-6)
    assert abs(blend.weights["noisy"]) < 1e-6 and abs(blend.weights["baseline"]) < 1e-6
    np.testing.assert_allclose(blend.predict(test["user_id"], test["item_id"]), test["rating"], atol=1e-6)


def test_blend_rejects_unknown_component():
    with pytest.raises(ValueError, match="choose from baseline, svd_rating"):
        BlendConfig(components=("svd++",))


# --------------------------------------------------------------------------- AutoRec
def test_autorec_gradient_matches_finite_differences():
    rng = np.random.RandomState(0)
    dense = np.where(rng.rand(6, 5) < 0.5, rng.randint(1, 6, (6, 5)), 0).astype(np.float64)
    matrix = sp.csr_matrix(dense)
    params = {k: v.astype(np.float64) for k, v in rating.init_params(5, 3, seed=1).items()}
    params["c"] += rng.normal(size=5)
    _, grads = loss_and_grads(params, matrix, reg=0.7)
    eps = 1e-6
    for name, value in params.items():
        for index in np.ndindex(value.shape):
            plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            plus[name][index] += eps
            minus[name][index] -= eps
            numeric = (loss_and_grads(plus, matrix, 0.7)[0] - loss_and_grads(minus, matrix, 0.7)[0]) / (2 * eps)
            assert grads[name][index] == pytest.approx(numeric, rel=1e-4, abs=1e-4), (name, index)


SMALL_AUTOREC = dict(hidden=8, reg=1.0, lr=0.05, n_epochs=150, random_state=0)
AUTOREC_PINNED = 0.59057  # float32 BLAS: pinned to 1e-4, not to the last digit


def _autorec_rmse(toy, **overrides) -> float:
    data, train, test = toy
    model = AutoRec(AutoRecConfig(**{**SMALL_AUTOREC, **overrides})).fit(train, data)
    return accuracy(model.predict(test["user_id"], test["item_id"]), test["rating"].to_numpy())["rmse"]


def test_autorec_rmse_pinned_on_checkerboard(toy):
    assert _autorec_rmse(toy) == pytest.approx(AUTOREC_PINNED, abs=1e-4)


@pytest.mark.parametrize("field, value", [("hidden", 4), ("reg", 30.0), ("lr", 0.01), ("n_epochs", 50),
                                          ("random_state", 1)])
def test_autorec_each_hyperparameter_changes_the_result(toy, field, value):
    assert _autorec_rmse(toy, **{field: value}) != pytest.approx(AUTOREC_PINNED, abs=1e-4)


def test_autorec_unknown_user_gets_global_mean(toy):
    data, train, _ = toy
    model = AutoRec(AutoRecConfig(**SMALL_AUTOREC)).fit(train, data)
    assert model.predict([999], [1])[0] == pytest.approx(train["rating"].mean())
