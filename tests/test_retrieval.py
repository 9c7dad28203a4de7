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


def test_a_swipe_being_written_holds_up_nobody_else(vectors, tmp_path, monkeypatch):
    """The profile file is written outside the store-wide lock: while one person's swipe waits on
    the disk, other people's searches and swipes go ahead, and the writer's own table changes only
    once its file is on disk."""
    import threading

    import retrieval.profile_index as profile_index

    ids = np.arange(1, 51)
    store = ProfileStore(vectors, ids, {"1": {3: 5}, "2": {10: 5}}, directory=tmp_path)
    on_disk, release = threading.Event(), threading.Event()
    real_write = profile_index.write_json_atomic

    def slow_write(path, obj):
        if obj["user"] == "1":
            on_disk.set()
            assert release.wait(10), "the test never released the write"
        real_write(path, obj)

    monkeypatch.setattr(profile_index, "write_json_atomic", slow_write)
    writer = threading.Thread(target=store.record_swipe, args=("1", 20, True))
    writer.start()
    assert on_disk.wait(10)
    others = threading.Thread(target=lambda: (store.search("2", vectors[9]), store.record_swipe("2", 11, True)))
    others.start()
    others.join(10)
    assert not others.is_alive(), "another person's search or swipe waited for this write"
    assert store.swipes("2") == {11: 5} and store.swipes("1") == {}  # not published before it is durable
    release.set()
    writer.join(10)
    assert store.swipes("1") == {20: 5}
