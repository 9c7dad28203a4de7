"""The FAISS catalog and profile indexes against exact dense search."""
import numpy as np
import pytest

from retrieval.catalog import CatalogIndex
from retrieval.profile_index import ProfileStore


@pytest.fixture()
def vectors():
    rng = np.random.RandomState(0)
    v = rng.normal(size=(50, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_catalog_faiss_search_matches_dense_similarity(vectors):
    ids = np.arange(101, 151)
    index = CatalogIndex(vectors, ids)
    query = vectors[7]
    found, scores = index.search(query, k=5)
    dense = index.similarity(query)
    assert found[0] == 108 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert found.tolist() == ids[np.argsort(-dense)[:5]].tolist()


def test_profile_search_returns_only_this_users_liked_items(vectors, tmp_path):
    ids = np.arange(1, 51)
    store = ProfileStore(vectors, ids, {"1": {3: 5, 4: 2, 5: 4}, "2": {10: 5}}, directory=tmp_path)
    hits = store.search("1", vectors[2], k=5)
    assert [h.item_id for h in hits][0] == 3 and {h.item_id for h in hits} == {3, 5}  # 4 was rated 2: not liked
    store.record_swipe("1", 20, liked=True)
    assert 20 in {h.item_id for h in store.search("1", vectors[19], k=5)}
    assert {h.item_id for h in store.search("2", vectors[19], k=5)} == {10}
    store.record_swipe("2", 10, liked=False)
    assert store.search("2", vectors[9]) == [] and store.disliked("2") == {10}
    reopened = ProfileStore(vectors, ids, {}, directory=tmp_path)
    assert reopened.swipes("1") == {20: 5}
