"""The request as a vector, for profile retrieval and semantic candidates.

The vector is the normalised mean of its parts: one precomputed MiniLM vector per wanted genre
("Comedy movie"), the catalog vectors of referenced titles, and — only when the request carries
free-text keywords — an embedding of those words (``keyword_texts``; cached by the shared
``agent.text_vectors``). Most requests are genres and titles, so most turns embed nothing:
embedding a phrase costs ~9 ms, more than three whole turns. Exclusions never enter the vector
(embedding "no horror" would pull horror closer).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from agent.intent import Intent
from agent.text_vectors import aembed
from data.movielens import GENRES, MovieLens
from retrieval.catalog import CatalogIndex

Embedder = Callable[[Sequence[str]], np.ndarray]


class RequestEncoder:
    def __init__(self, catalog: CatalogIndex, data: MovieLens, embedder: Embedder | None = None) -> None:
        if embedder is None:
            from agent.text_vectors import text_vectors

            embedder = text_vectors()
        self.embed = embedder  # cached: a keyword phrase is embedded once
        self.catalog = catalog
        self.data = data
        self._pos = {int(i): p for p, i in enumerate(catalog.item_ids)}
        vectors = self.embed([f"{g} movie" for g in GENRES] + ["a good movie"])
        self.genre_vectors = dict(zip(GENRES, vectors[:-1]))
        self.default_vector = vectors[-1]

    def text(self, intent: Intent) -> str:
        """A readable positive description of the request (what traces show)."""
        parts = []
        if intent.genres:
            parts.append(" ".join(intent.genres) + " movie")
        if intent.keywords:
            parts.append(" ".join(intent.keywords))
        if intent.titles:
            parts.append("like " + ", ".join(self.data.movies[t].label for t in intent.titles if t in self.data.movies))
        return ". ".join(parts) or "a good movie"

    @staticmethod
    def keyword_texts(intent: Intent) -> list[str]:
        """What ``vector`` embeds for this request (nothing, or its keywords as one phrase)."""
        return [" ".join(intent.keywords)] if intent.keywords else []

    def vector(self, intent: Intent) -> np.ndarray:
        texts = self.keyword_texts(intent)
        return self._combine(intent, self.embed(texts)[0] if texts else None)

    async def avector(self, intent: Intent) -> np.ndarray:
        """``vector`` for code on an event loop: a phrase not embedded yet is embedded in a worker thread."""
        texts = self.keyword_texts(intent)
        return self._combine(intent, (await aembed(self.embed, texts))[0] if texts else None)

    def _combine(self, intent: Intent, keywords: np.ndarray | None) -> np.ndarray:
        parts = [self.genre_vectors[g] for g in intent.genres]
        parts += [self.catalog.vectors[self._pos[t]] for t in intent.titles if t in self._pos]
        if keywords is not None:
            parts.append(keywords)
        if not parts:
            return self.default_vector
        mean = np.mean(parts, axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)
