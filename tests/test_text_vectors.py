"""The request path's vector cache: no model here, a counting embedder stands in for MiniLM."""
import asyncio
import threading

import numpy as np
import pytest

from agent.text_vectors import TextVectors
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


def test_aget_embeds_in_a_worker_thread_and_only_what_is_missing():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    vectors(["known"])

    async def on_the_loop():
        loop_thread = threading.current_thread().name
        cached = await vectors.aget(["known"])   # a hit: no thread, no model
        calls = len(embedder.calls)
        got = await vectors.aget(["known", "fresh", "fresh"])
        return loop_thread, cached, calls, got

    loop_thread, cached, calls, got = asyncio.run(on_the_loop())
    assert cached.shape == (1, DIM) and calls == 1
    assert got.shape == (3, DIM) and np.array_equal(got[1], got[2]) and np.array_equal(got[0], cached[0])
    texts, thread = embedder.calls[-1]
    assert texts == ["fresh"] and thread != loop_thread


def test_an_embedding_is_a_step_of_the_turn():
    from agent.steps import in_turn

    steps = []
    vectors = TextVectors(CountingEmbedder())
    with in_turn(steps):
        vectors(["pirates"])
        vectors(["pirates"])   # cached: no step
    assert [(s.name, s.input) for s in steps] == [("embed", {"texts": ["pirates"]})]


def test_a_text_evicted_meanwhile_is_embedded_again():
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder, size=1)
    got = vectors(["a", "b"])  # two misses, room for one: the answer is still complete and in order
    assert got.shape == (2, DIM) and np.array_equal(got[0], vectors(["a"])[0])
