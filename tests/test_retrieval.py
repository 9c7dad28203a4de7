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


def test_profile_search_returns_only_this_users_liked_items(vectors):
    ids = np.arange(1, 51)
    store = ProfileStore(vectors, ids, {"1": {3: 5, 4: 2, 5: 4}, "2": {10: 5}})
    hits = store.search("1", vectors[2], k=5)
    assert [h.item_id for h in hits][0] == 3 and {h.item_id for h in hits} == {3, 5}  # 4 was rated 2: not liked
    store.record_swipe("1", 20, liked=True)
    assert 20 in {h.item_id for h in store.search("1", vectors[19], k=5)}
    assert {h.item_id for h in store.search("2", vectors[19], k=5)} == {10}
    store.record_swipe("2", 10, liked=False)
    assert store.search("2", vectors[9]) == [] and store.disliked("2") == {10}


def test_profiles_follow_the_event_store_across_processes(vectors, tmp_path):
    """Two profile stores over one event store (two replicas): a swipe recorded through either is
    in the other's profile after its refresh, and an undo takes it out of both."""
    from data.event_store import EventStore
    from data.events import make_swipe

    events = EventStore(f"sqlite:///{tmp_path / 'events.sqlite3'}")

    def load(key):
        state = events.profile_state(key)
        return state.ratings, state.version

    ids = np.arange(1, 51)
    here, there = (ProfileStore(vectors, ids, {"1": {3: 5}}, load=load) for _ in range(2))
    assert here.swipes("1") == {} and there.swipes("1") == {}
    events.add_swipe(make_swipe(user_id="1", session_id="s", item_id=20, action="like"))
    here.refresh("1")
    assert here.swipes("1") == {20: 5} and 20 in {h.item_id for h in here.search("1", vectors[19], k=5)}
    assert there.swipes("1") == {}       # cached until its next turn refreshes it
    there.refresh("1")
    assert there.swipes("1") == {20: 5} and 20 in {h.item_id for h in there.search("1", vectors[19], k=5)}
    events.undo_swipe("1", 20)
    for store in (here, there):
        store.refresh("1")
        assert store.swipes("1") == {} and 20 not in {h.item_id for h in store.search("1", vectors[19], k=5)}
