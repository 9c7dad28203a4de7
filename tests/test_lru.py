import pytest

from agent.lru import LruCache


def test_evicts_the_least_recently_used_and_get_refreshes():
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # "a" is now the most recent
    cache.put("c", 3)                   # so "b" goes
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    cache.put("a", 10)                  # replacing refreshes and keeps the bound
    cache.put("d", 4)
    assert len(cache) == 2 and cache.get("a") == 10 and cache.get("c") is None


def test_pop_and_falsy_values():
    cache: LruCache[str, tuple] = LruCache(3)
    cache.put("empty", ())
    assert cache.get("empty") == ()     # a cached empty answer is still an answer
    cache.pop("empty")
    cache.pop("never there")
    assert cache.get("empty") is None


def test_needs_room():
    with pytest.raises(ValueError):
        LruCache(0)
