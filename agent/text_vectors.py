"""The request path's text vectors: ``embed`` behind a cache, and off the event loop.

A request embeds at most a phrase or two (free-text keywords, the parser's backstop), ~9 ms each,
and the same phrases come back often. ``TextVectors`` caches vectors by text. On an event loop a
~9 ms model call would stall every other request, so ``DialogueManager.aturn`` runs a turn inside
``cache_only()``: a miss raises ``NotCached`` instead of running the model, ``prefetch`` embeds the
phrase in a worker thread (the traced MiniLM runs without the GIL, see ``retrieval.embeddings``)
while the loop serves other turns, and the turn runs again.
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Callable, Iterator, Sequence

import numpy as np

from agent.lru import LruCache
from retrieval.embeddings import DIM

CACHE_SIZE = 4096  # distinct texts whose vector is kept (1.5 KB each)


class NotCached(LookupError):
    """``source`` (a ``TextVectors``) was asked inside ``cache_only()`` for texts it has not embedded
    yet: ``await source.prefetch(texts)``, then ask again."""

    def __init__(self, source: "TextVectors", texts: Sequence[str]) -> None:
        self.source, self.texts = source, list(texts)
        super().__init__(f"not embedded yet: {self.texts!r}")


_cache_only: ContextVar[bool] = ContextVar("cineagent_text_vectors_cache_only", default=False)


@contextmanager
def cache_only() -> Iterator[None]:
    """Inside this block no ``TextVectors`` runs the model: a miss raises ``NotCached``. For code on
    an event loop, which must not stall every other request for the ~9 ms of a phrase."""
    token = _cache_only.set(True)
    try:
        yield
    finally:
        _cache_only.reset(token)


class TextVectors:
    """An embedder (texts -> (n, 384) array) with an LRU cache of vectors by text."""

    def __init__(self, embedder: Callable[[Sequence[str]], np.ndarray], size: int = CACHE_SIZE) -> None:
        self.embedder = embedder
        self._cache: LruCache[str, np.ndarray] = LruCache(size)
        self._inflight: dict[str, asyncio.Future] = {}  # text -> the prefetch embedding it (event loop only)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        missing = self.missing(texts)
        if missing:
            if _cache_only.get():
                raise NotCached(self, missing)
            self._fill(missing)
        found = [self._cache.get(t) for t in texts]
        if any(v is None for v in found):  # evicted meanwhile by a flood of other texts: embed again
            return np.asarray(self.embedder(texts), dtype=np.float32).reshape(len(texts), DIM)
        return np.stack(found) if found else np.zeros((0, DIM), dtype=np.float32)

    def missing(self, texts: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(t for t in texts if self._cache.get(t) is None))

    async def prefetch(self, texts: Sequence[str]) -> None:
        """Embed the texts not cached yet in a worker thread, leaving the event loop free. A text
        another prefetch is already embedding is waited for, not embedded twice."""
        missing = self.missing(texts)
        if not missing:
            return
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Future] = set()
        new: list[str] = []
        for text in missing:
            fill = self._inflight.get(text)
            if fill is not None and fill.get_loop() is loop:
                pending.add(fill)
            else:
                new.append(text)
        if new:
            fill = asyncio.ensure_future(asyncio.to_thread(self._fill, new))
            for text in new:
                self._inflight[text] = fill
            fill.add_done_callback(lambda _: [self._inflight.pop(t, None) for t in new])
            pending.add(fill)
        # shielded: one waiter cancelled (its client gone) must not cancel the others' embedding
        await asyncio.gather(*(asyncio.shield(f) for f in pending))

    def _fill(self, texts: list[str]) -> None:
        vectors = np.asarray(self.embedder(texts), dtype=np.float32).reshape(len(texts), DIM)
        for text, vector in zip(texts, vectors):
            vector.setflags(write=False)  # shared by every request that asks for this text
            self._cache.put(text, vector)


@lru_cache(maxsize=1)
def text_vectors() -> TextVectors:
    """The process's shared cache over MiniLM: the parser's backstop and the request encoder often
    embed the same phrase."""
    from retrieval.embeddings import embed

    return TextVectors(embed)
