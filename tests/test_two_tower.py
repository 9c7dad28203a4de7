"""Two-tower recommender on a tiny synthetic catalog whose right answers are known.

Two taste clusters: users 1-12 rated only "Action" items (ids 1-15), users 13-24 only "Romance"
items (ids 16-30). A user of one cluster must be recommended unseen items of that cluster; a
folded-in user must be recommended the cluster of the items they liked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from data.movielens import MovieLens
from models.base import ColdStart
from models.two_tower import ARTIFACT, TwoTower, TwoTowerConfig

N_PER_CLUSTER_USERS = 12
N_PER_CLUSTER_ITEMS = 15
ACTION = set(range(1, N_PER_CLUSTER_ITEMS + 1))
ROMANCE = set(range(N_PER_CLUSTER_ITEMS + 1, 2 * N_PER_CLUSTER_ITEMS + 1))
# small and fast: ~300 steps over 24 users
CONFIG = TwoTowerConfig(dim=16, content_hidden=8, epochs=60, batch_size=8, lr=1e-2)


def _synthetic() -> MovieLens:
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, 2 * N_PER_CLUSTER_USERS + 1):
        cluster = sorted(ACTION if user <= N_PER_CLUSTER_USERS else ROMANCE)
        for item in rng.choice(cluster, size=8, replace=False):
            rows.append((user, int(item), int(rng.integers(3, 6)), 880_000_000 + len(rows)))
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    item_ids = sorted(ACTION | ROMANCE)
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": [f"Movie {i}" for i in item_ids],
        "year": pd.array([1990 + i % 8 if i != 3 else None for i in item_ids], dtype="Int64"),
        "genres": [("Action",) if i in ACTION else ("Romance",) for i in item_ids],
    })
    n_users = 2 * N_PER_CLUSTER_USERS + 5  # five users with demographics but no ratings
    users = pd.DataFrame({
        "user_id": range(1, n_users + 1),
        "age": [15 + 2 * u for u in range(n_users)],
        "gender": ["M" if u % 2 else "F" for u in range(n_users)],
        "occupation": ["student" if u % 3 else "writer" for u in range(n_users)],
        "zip_code": ["00000"] * n_users,
    })
    return MovieLens(ratings=ratings, items=items, users=users, checksum="synthetic")


def _text_vectors(n_items: int) -> np.ndarray:
    vectors = np.random.default_rng(1).normal(size=(n_items, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> MovieLens:
    return _synthetic()


@pytest.fixture()
def model(data) -> TwoTower:
    return TwoTower(_text_vectors(len(data.item_ids)), CONFIG, seed=0).fit(data.ratings, data)


def _share(item_ids, cluster: set) -> float:
    return float(np.mean([int(i) in cluster for i in item_ids]))


def test_recommends_the_cluster_the_user_rated(model):
    for user in (1, 5, N_PER_CLUSTER_USERS):
        ids, _ = model.recommend(user, n=5)
        assert _share(ids, ACTION) == 1.0, f"user {user} got {ids}"
    for user in (N_PER_CLUSTER_USERS + 1, 2 * N_PER_CLUSTER_USERS):
        ids, _ = model.recommend(user, n=5)
        assert _share(ids, ROMANCE) == 1.0, f"user {user} got {ids}"


def test_vectors_shapes_and_dense_scores_are_their_dot_product(model, data):
    assert model.item_vectors.shape == (len(data.item_ids), CONFIG.dim)
    assert model.item_vectors.dtype == np.float32
    vector = model.user_vector(1)
    assert vector.shape == (CONFIG.dim,)
    np.testing.assert_allclose(model.score(1), model.item_vectors @ vector, rtol=1e-5, atol=1e-6)


def test_ann_matches_dense_ranking(model):
    ids, scores = model.ann(model.user_vector(2), k=10)
    dense = model.score(2)
    expected = model.item_ids[np.argsort(-dense, kind="stable")[:10]]
    assert list(ids) == list(expected)
    np.testing.assert_allclose(scores, np.sort(dense)[::-1][:10], rtol=1e-5, atol=1e-5)
    batch_ids, batch_scores = model.ann(np.stack([model.user_vector(2), model.user_vector(20)]), k=3)
    assert batch_ids.shape == batch_scores.shape == (2, 3)
    assert list(batch_ids[0]) == list(ids[:3])


def test_ann_k_is_capped_at_the_catalog_and_must_be_positive(model, data):
    ids, _ = model.ann(model.user_vector(1), k=1000)
    assert sorted(ids) == sorted(data.item_ids)
    with pytest.raises(ValueError, match="k must be at least 1"):
        model.ann(model.user_vector(1), k=0)


def test_fold_in_new_user_follows_their_likes(model):
    model.fold_in(500, {16: 5, 18: 5, 20: 4})
    ids, _ = model.recommend(500, n=5)
    assert _share(ids, ROMANCE) == 1.0, ids
    assert not {16, 18, 20} & set(ids.tolist()), "folded-in items count as seen"
    model.fold_in(501, {2: 5, 4: 5, 6: 4})
    assert _share(model.recommend(501, n=5)[0], ACTION) == 1.0


def test_fold_in_ignores_disliked_items(model):
    # Romance items rated 1 are no evidence of taste; the Action likes decide
    model.fold_in(502, {16: 1, 17: 1, 18: 1, 19: 1, 2: 5, 4: 5})
    assert _share(model.recommend(502, n=5)[0], ACTION) == 1.0


def test_fold_in_moves_an_existing_user_toward_new_likes(model):
    before = _share(model.recommend(1, n=5)[0], ROMANCE)
    romance = sorted(ROMANCE)[:8]
    model.fold_in(1, {i: 5 for i in romance})
    after_ids, _ = model.recommend(1, n=5)
    assert before == 0.0 and _share(after_ids, ROMANCE) > 0.5, (before, after_ids)
    assert model.user_ids.count(1) == 1, "an existing user keeps one position"


def test_fold_in_of_a_user_with_known_demographics_but_no_ratings(model):
    newcomer = 2 * N_PER_CLUSTER_USERS + 3
    assert not model.knows(newcomer)
    model.fold_in(newcomer, {3: 5, 5: 4, 7: 5})
    assert _share(model.recommend(newcomer, n=5)[0], ACTION) == 1.0


def test_unknown_user_raises_cold_start(model):
    with pytest.raises(ColdStart) as excinfo:
        model.recommend(9999)
    assert excinfo.value.user_id == 9999
    with pytest.raises(ColdStart):
        model.user_vector(9999)


def test_save_load_round_trip_is_identical(model, data, tmp_path):
    model.fold_in(600, {16: 5, 17: 5})
    files = model.save(tmp_path)
    assert files == [tmp_path / ARTIFACT] and files[0].exists()
    assert [p.name for p in tmp_path.iterdir()] == [ARTIFACT], "no temp files left behind"
    loaded = TwoTower.load(tmp_path, data)
    users = model.user_ids
    assert loaded.user_ids == users
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    np.testing.assert_array_equal(loaded.item_vectors, model.item_vectors)
    for user in (1, 600):
        assert list(loaded.recommend(user, n=5)[0]) == list(model.recommend(user, n=5)[0])
        assert list(loaded.ann(loaded.user_vector(user), k=5)[0]) == list(model.ann(model.user_vector(user), k=5)[0])
    assert loaded.config == model.config
    # the loaded towers fold in exactly as the originals do
    model.fold_in(601, {3: 5, 4: 5})
    loaded.fold_in(601, {3: 5, 4: 5})
    np.testing.assert_allclose(loaded.user_vector(601), model.user_vector(601), rtol=1e-6, atol=1e-6)


def test_load_rejects_a_different_catalog(model, data, tmp_path):
    model.save(tmp_path)
    other = MovieLens(ratings=data.ratings, items=data.items.iloc[:-1], users=data.users, checksum="other")
    with pytest.raises(ValueError, match="different catalog"):
        TwoTower.load(tmp_path, other)


def test_same_seed_same_model_other_seed_other_model(model, data):
    text = _text_vectors(len(data.item_ids))
    again = TwoTower(text, CONFIG, seed=0).fit(data.ratings, data)
    np.testing.assert_array_equal(again.item_vectors, model.item_vectors)
    other = TwoTower(text, CONFIG, seed=1).fit(data.ratings, data)
    assert not np.allclose(other.item_vectors, model.item_vectors)


def test_text_vectors_feed_the_item_tower(model, data):
    without = TwoTower(None, CONFIG, seed=0).fit(data.ratings, data)
    assert not np.allclose(without.item_vectors, model.item_vectors)


def test_text_vectors_must_match_the_catalog(data):
    with pytest.raises(ValueError, match="item_text_vectors must be"):
        TwoTower(np.zeros((3, 384), dtype=np.float32), CONFIG).fit(data.ratings, data)


def test_config_rejects_unknown_and_out_of_range_fields():
    with pytest.raises(ValidationError):
        TwoTowerConfig(epoch=3)
    with pytest.raises(ValidationError):
        TwoTowerConfig(history_dropout=1.0)
