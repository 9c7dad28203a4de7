"""Loader invariants on the real MovieLens 100k, and corrupt-cache detection."""
import numpy as np
import pytest

from data import movielens as ml

pytestmark = pytest.mark.integration


def test_loader_invariants(movielens):
    data = movielens
    assert len(data.ratings) == 100_000
    assert data.ratings["user_id"].nunique() == 943 == len(data.users)
    assert len(data.items) == 1_682 == data.ratings["item_id"].nunique()
    assert data.ratings["rating"].between(1, 5).all()
    assert data.ratings.groupby("user_id").size().min() >= 20  # ML-100k: every user rated at least 20
    assert {g for gs in data.items["genres"] for g in gs} == set(ml.ALL_GENRES)
    assert np.array_equal(data.item_ids, np.arange(1, 1683))
    toy = data.movies[1]
    assert (toy.title, toy.year, toy.genres) == ("Toy Story", 1995, ("Animation", "Children's", "Comedy"))
    assert data.genre_matrix.shape == (1682, 18)
    assert set(data.users.columns) >= {"user_id", "age", "gender", "occupation"}


def test_corrupt_cache_is_detected_and_refetched(movielens, caplog):
    path = ml.data_dir() / "ratings.tsv"
    original = path.read_bytes()
    try:
        path.write_bytes(original[: len(original) // 2])  # a torn download
        reason = ml.check_cache()
        assert reason and "ratings.tsv" in reason
        with caplog.at_level("WARNING"):
            reloaded = ml.load()
        assert len(reloaded.ratings) == 100_000
        assert reloaded.checksum == movielens.checksum
        assert any("unusable" in r.getMessage() for r in caplog.records)
    finally:
        if ml.check_cache():
            path.write_bytes(original)


def test_validation_names_the_broken_invariant(movielens):
    with pytest.raises(ml.DataError, match="ratings: 99999 rows"):
        ml.validate(movielens.ratings.iloc[1:], movielens.items, movielens.users)
