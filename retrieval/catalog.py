"""The catalog's text vectors and their FAISS index (semantic search: request text -> items)."""
from __future__ import annotations

import hashlib

import faiss
import numpy as np

from data.movielens import Movie, MovieLens
from data.store import atomic_path, home
from retrieval.embeddings import DIM, embed


def item_text(movie: Movie) -> str:
    """What MiniLM reads for an item: title, year and genres in plain words."""
    genres = ", ".join(g for g in movie.genres if g != "unknown") or "unknown genre"
    return f"{movie.label}. {genres}"


def item_vectors(data: MovieLens) -> np.ndarray:
    """(n_items, 384) normalised text vectors, rows in ``data.item_ids`` order.

    Cached under ``$CINEAGENT_HOME/cache`` keyed by the texts' hash: embedding the catalog takes
    ~15 s on 2 cores and every training run (and each evaluation split) needs the same vectors.
    """
    texts = [item_text(data.movies[int(i)]) for i in data.item_ids]
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = home() / "cache" / f"item_text_vectors-{key}.npy"
    if path.exists():
        try:
            vectors = np.load(path)
            if vectors.shape == (len(texts), DIM):
                return vectors
        except (OSError, ValueError):
            pass  # unreadable cache: recompute below and overwrite
    vectors = embed(texts)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, vectors)
    return vectors


class CatalogIndex:
    """Exact inner-product FAISS index over item text vectors (1,682 rows: flat is fastest)."""

    def __init__(self, vectors: np.ndarray, item_ids: np.ndarray) -> None:
        if len(vectors) != len(item_ids):
            raise ValueError(f"{len(vectors)} vectors for {len(item_ids)} items")
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index = faiss.IndexFlatIP(self.vectors.shape[1])
        self.index.add(self.vectors)

    def search(self, query: np.ndarray, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, cosine scores) of the ``k`` items nearest to one query vector."""
        scores, idx = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = idx[0] >= 0
        return self.item_ids[idx[0][keep]], scores[0][keep]

    def similarity(self, query: np.ndarray) -> np.ndarray:
        """Cosine of ``query`` with every item, in catalog order (dense: cheaper than k-NN for filters)."""
        return self.vectors @ query.astype(np.float32)
