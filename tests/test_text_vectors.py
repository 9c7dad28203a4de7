"""The request path's vector cache: no model here, a counting embedder stands in for MiniLM."""
import asyncio
import threading

import numpy as np
import pytest

from agent.text_vectors import NotCached, TextVectors, cache_only
from retrieval.embeddings import DIM


class CountingEmbedder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, texts):
        self.calls.append((list(texts), threading.current_thread().name))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, hash(text) % DIM] = 1.0
        return out


def test_embeds_each_text_once_and_keeps_the_order_asked():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    first = vectors(["pirates", "treasure"])
    again = vectors(["treasure", "pirates", "pirates"])
    assert [texts for texts, _ in embedder.calls] == [["pirates", "treasure"]]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    again[0][0] = 2.0  # a caller gets its own array: the cached vectors are untouched
    assert vectors(["treasure"])[0][0] != 2.0


def test_cache_only_raises_instead_of_embedding():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    vectors(["known"])
    with cache_only():
        assert vectors(["known"]).shape == (1, DIM)  # hits are served
        with pytest.raises(NotCached) as miss:
            vectors(["known", "new", "new"])
    assert miss.value.source is vectors and miss.value.texts == ["new"]
    assert len(embedder.calls) == 1
    vectors(["new"])  # outside the block the model runs again
    assert len(embedder.calls) == 2


def test_prefetch_embeds_in_a_worker_thread_and_only_what_is_missing():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    vectors(["known"])

    async def on_the_loop():
        loop_thread = threading.current_thread().name
        await vectors.prefetch(["known", "fresh", "fresh"])
        with cache_only():
            return loop_thread, vectors(["fresh", "known"])

    loop_thread, got = asyncio.run(on_the_loop())
    assert got.shape == (2, DIM)
    texts, thread = embedder.calls[-1]
    assert texts == ["fresh"] and thread != loop_thread


def test_a_text_evicted_meanwhile_is_embedded_again():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder, size=1)
    got = vectors(["a", "b"])  # two misses, room for one: the answer is still complete and in order
    assert got.shape == (2, DIM) and np.array_equal(got[0], vectors(["a"])[0])


def test_concurrent_prefetches_of_a_text_embed_it_once():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)

    async def two_at_once():
        await asyncio.gather(vectors.prefetch(["shared", "a"]), vectors.prefetch(["shared", "b"]))

    asyncio.run(two_at_once())
    embedded = [text for texts, _ in embedder.calls for text in texts]
    assert sorted(embedded) == ["a", "b", "shared"]
    assert vectors.missing(["shared", "a", "b"]) == []
