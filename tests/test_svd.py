"""SVD: pinned figures on the checkerboard, parity with Surprise, fold-in, persistence."""
from __future__ import annotations

import numpy as np
import pytest
import surprise

from models.base import ColdStart
from models.svd import SVD, SVDConfig
from tests.toydata import toy_movielens

SMALL = dict(n_factors=4, n_epochs=30, lr_all=0.01, reg_all=0.05, random_state=0)


@pytest.fixture(scope="module")
def toy():
    return toy_movielens()


def _rmse(config: SVDConfig, toy) -> float:
    data, train, test = toy
    model = SVD(config).fit(train, data)
    predicted = model.predict(test["user_id"], test["item_id"])
    return float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))


def test_rmse_pinned_on_checkerboard(toy):
    assert _rmse(SVDConfig(**SMALL), toy) == pytest.approx(0.6383403838, abs=1e-8)


@pytest.mark.parametrize("field, value", [
    ("n_factors", 8), ("n_epochs", 60), ("lr_all", 0.02), ("reg_all", 0.2), ("init_std_dev", 0.3),
    ("init_mean", 0.1), ("random_state", 1),
])
def test_each_hyperparameter_changes_the_result(toy, field, value):
    assert _rmse(SVDConfig(**{**SMALL, field: value}), toy) != pytest.approx(0.6383403838, abs=1e-6)


def test_predictions_equal_surprise_own(toy):
    """The numpy scoring reproduces Surprise's estimate, fallbacks and clipping included."""
    data, train, test = toy
    config = SVDConfig(**SMALL)
    model = SVD(config).fit(train, data)
    trainset = surprise.Dataset.load_from_df(train[["user_id", "item_id", "rating"]],
                                             surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = surprise.SVD(**config.model_dump()).fit(trainset)
    users = list(test["user_id"]) + [1, 999]          # 999: unknown user -> mu + b_i
    items = list(test["item_id"]) + [2, 3]
    expected = [algo.predict(u, i).est for u, i in zip(users, items)]
    np.testing.assert_allclose(model.predict(users, items), expected, rtol=0, atol=1e-12)


def test_score_is_unclipped_predicted_rating(toy):
    data, train, _ = toy
    model = SVD(SVDConfig(**SMALL)).fit(train, data)
    scores = model.score(1)
    assert scores.shape == (len(data.item_ids),)
    np.testing.assert_allclose(np.clip(scores, 1, 5), model.predict([1] * len(data.item_ids), data.item_ids))


def test_unknown_user_is_cold_start(toy):
    data, train, _ = toy
    model = SVD(SVDConfig(**SMALL)).fit(train, data)
    with pytest.raises(ColdStart):
        model.score(12345)


def test_surprise_defaults_are_surprise_own():
    defaults = SVDConfig.surprise_defaults().model_dump()
    algo = surprise.SVD()
    assert {k: getattr(algo, k) for k in ("n_factors", "n_epochs", "init_mean", "init_std_dev")} == \
        {k: defaults[k] for k in ("n_factors", "n_epochs", "init_mean", "init_std_dev")}
    assert (algo.lr_bu, algo.reg_bu) == (defaults["lr_all"], defaults["reg_all"])


def test_config_rejects_unknown_field():
    with pytest.raises(ValueError, match="n_factor"):
        SVDConfig(n_factor=10)


def test_fold_in_pulls_new_user_towards_their_ratings(toy):
    """A new user who rates Sci-Fi 5 and Romance 1 is predicted higher on unseen Sci-Fi."""
    data, train, _ = toy
    model = SVD(SVDConfig(**SMALL)).fit(train, data)
    model.fold_in(777, {1: 5, 2: 5, 3: 5, 11: 1, 12: 1, 13: 1})
    scores = dict(zip(data.item_ids.tolist(), model.score(777)))
    scifi = np.mean([scores[i] for i in range(4, 11)])
    romance = np.mean([scores[i] for i in range(14, 21)])
    assert scifi - romance > 1.0, (scifi, romance)
    assert set(model.item_ids[model.seen(777)].tolist()) == {1, 2, 3, 11, 12, 13}

    model.fold_in(777, {11: 5, 12: 5, 13: 5, 1: 1, 2: 1, 3: 1})   # tastes flip: re-fold replaces
    scores = dict(zip(data.item_ids.tolist(), model.score(777)))
    assert np.mean([scores[i] for i in range(14, 21)]) > np.mean([scores[i] for i in range(4, 11)])


def test_fold_in_existing_user_keeps_user_count(toy):
    data, train, _ = toy
    model = SVD(SVDConfig(**SMALL)).fit(train, data)
    before = len(model.user_ids)
    model.fold_in(1, {1: 5, 11: 1})
    assert len(model.user_ids) == before == len(model.bu) == len(model.pu)


def test_save_load_round_trip_is_identical(toy, tmp_path):
    data, train, _ = toy
    model = SVD(SVDConfig(**SMALL)).fit(train, data)
    model.fold_in(777, {1: 5, 11: 1})
    written = model.save(tmp_path)
    assert [p.name for p in written] == ["svd.npz"] and not list(tmp_path.glob("*.tmp"))
    loaded = SVD.load(tmp_path, data)
    assert loaded.config == model.config
    users = [1, 5, 17, 777]
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    for u in users:
        np.testing.assert_array_equal(loaded.seen(u), model.seen(u))
        np.testing.assert_array_equal(loaded.recommend(u, n=5)[0], model.recommend(u, n=5)[0])
