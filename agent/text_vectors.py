"""The request path's text vectors: MiniLM behind a cache, and off the event loop.

A request embeds at most a phrase or two (free-text keywords, the parser's backstop), ~9 ms each,
and the same phrases come back often. ``TextVectors`` caches vectors by text. On an event loop a
~9 ms model call would stall every other request, so async code asks ``await vectors.aget(texts)``:
cached vectors come back at once, and a miss runs the model in a worker thread (the traced MiniLM
runs without the GIL, see ``retrieval.embeddings``) while the loop serves other turns. Either way
the model run is an ``embed`` step of the turn.
"""
from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from agent.lru import LruCache
from agent.steps import recording
from retrieval.embeddings import DIM

CACHE_SIZE = 4096  # distinct texts whose vector is kept (1.5 KB each)


class TextVectors:
    """An embedder (texts -> (n, 384) array) with an LRU cache of vectors by text."""

    def __init__(self, embedder: Callable[[Sequence[str]], np.ndarray], size: int = CACHE_SIZE) -> None:
        self.embedder = embedder
        self._cache: LruCache[str, np.ndarray] = LruCache(size)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors, embedding what is not cached here and now (blocking: not for the loop)."""
        texts = list(texts)
        missing = self.missing(texts)
        if missing:
            self._fill(missing)
        found = [self._cache.get(t) for t in texts]
        if any(v is None for v in found):  # evicted meanwhile by a flood of other texts: embed again
            return np.asarray(self.embedder(texts), dtype=np.float32).reshape(len(texts), DIM)
        return np.stack(found) if found else np.zeros((0, DIM), dtype=np.float32)

    async def aget(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors, for code on an event loop: the model runs in a worker thread, never here."""
        if self.missing(texts):
            return await asyncio.to_thread(self, texts)
        return self(texts)

    def missing(self, texts: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(t for t in texts if self._cache.get(t) is None))

    def _fill(self, texts: list[str]) -> None:
        with recording(None, "embed") as step:
            step.input = {"texts": texts}
            vectors = np.asarray(self.embedder(texts), dtype=np.float32).reshape(len(texts), DIM)
        for text, vector in zip(texts, vectors):
            vector.setflags(write=False)  # shared by every request that asks for this text
            self._cache.put(text, vector)


async def aembed(embedder: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """``embedder(texts)`` from an event loop: ``TextVectors.aget``, or for any other embedder (a
    test's stand-in) a worker thread."""
    if isinstance(embedder, TextVectors):
        return await embedder.aget(texts)
    return await asyncio.to_thread(embedder, texts)


@lru_cache(maxsize=1)
def text_vectors() -> TextVectors:
    """The process's shared cache over MiniLM: the parser's backstop and the request encoder often
    embed the same phrase."""
    from retrieval.embeddings import embed

    return TextVectors(embed)
