"""Splits are deterministic, disjoint, complete; the temporal split never leaks the future."""
import pandas as pd
import pytest

from data import splits

pytestmark = pytest.mark.integration


def _keys(frame):
    return set(zip(frame.user_id, frame.item_id))


def test_stratified_is_deterministic_disjoint_and_75_25(movielens, stratified_split):
    again = splits.stratified(movielens.ratings)
    pd.testing.assert_frame_equal(again.train, stratified_split.train)
    train, test = stratified_split.train, stratified_split.test
    assert not _keys(train) & _keys(test)
    assert len(train) + len(test) == 100_000
    per_user = train.groupby("user_id").size() / movielens.ratings.groupby("user_id").size()
    assert per_user.between(0.72, 0.78).all()
    assert set(test.user_id) <= set(train.user_id)


def test_temporal_never_puts_a_later_rating_in_train(movielens):
    split = splits.temporal(movielens.ratings)
    last_train = split.train.groupby("user_id").timestamp.max()
    first_test = split.test.groupby("user_id").timestamp.min()
    assert (last_train.loc[first_test.index] <= first_test).all()
    assert len(split.train) + len(split.test) == 100_000


def test_kfold_partitions_every_rating_once(movielens):
    folds = list(splits.kfold(movielens.ratings))
    assert len(folds) == 5
    test_keys = [_keys(f.test) for f in folds]
    assert sum(len(k) for k in test_keys) == 100_000
    assert len(set().union(*test_keys)) == 100_000
    assert all(len(f.train) + len(f.test) == 100_000 for f in folds)


def test_written_split_round_trips(stratified_split, tmp_path):
    splits.write(stratified_split, tmp_path)
    back = pd.read_csv(tmp_path / "test.tsv", sep="\t", header=None, names=splits.COLUMNS)
    pd.testing.assert_frame_equal(back, stratified_split.test)


def test_unknown_protocol_names_the_valid_ones(movielens):
    with pytest.raises(ValueError, match="stratified, temporal, kfold"):
        splits.make(movielens.ratings, "random")
