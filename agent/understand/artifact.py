"""The trained reader as an artifact: trained by ``cineagent train`` from ``data/labels``, loaded by
serving. One file under ``$CINEAGENT_HOME/understanding/``, tagged with the labels it learned from,
so a change of labels (or of features) retrains it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from data.labelled import load_labelled
from data.store import home, write_json_atomic

log = logging.getLogger(__name__)

# What serves (README, "Understanding"): the hybrid reader for the operation (it led the text-only
# reader and the rule reading on both folds), the rule reading for genres (the trained genre
# readers did not beat it on either fold: micro-F1 0.893 against 0.913 on the training fold).
SERVING_VARIANT = "hybrid"
TRAINED_GENRES = False
READER_FILE = "reader.joblib"


def reader_path() -> Path:
    return home() / "understanding" / READER_FILE


def train_reader(data, parser=None, embedder=None, fold: str | None = None) -> dict:
    """Fit the serving reader on every labelled message (``fold``: only that fold) and save it.
    Returns its figures for the training log."""
    from agent.offline_parser import OfflineParser
    from agent.text_vectors import text_vectors
    from agent.understand.context import prepare
    from agent.understand.reader import FEATURE_VERSION, TrainedReader, labels_digest

    started = time.perf_counter()
    rows = load_labelled(fold)
    parser = parser or OfflineParser(data)
    embedder = embedder or text_vectors()
    parsed, contexts, vectors = prepare(rows, parser, embedder)
    reader = TrainedReader(SERVING_VARIANT, embedder, genres=TRAINED_GENRES).fit(rows, parsed, contexts, vectors)
    reader.save(reader_path())
    figures = {"reader_variant": SERVING_VARIANT, "reader_genres": "trained" if TRAINED_GENRES else "rules",
               "reader_feature_version": FEATURE_VERSION, "reader_messages": len(rows), "reader_labels_sha": labels_digest(rows),
               "reader_op_C": reader.meta.get("op_C"), "reader_genre_C": reader.meta.get("genre_C"),
               "reader_train_seconds": round(time.perf_counter() - started, 1)}
    write_json_atomic(reader_path().with_suffix(".json"), figures)
    return figures


def reader_is_current() -> bool:
    """A saved reader trained on today's labels with today's features."""
    import json

    from agent.understand.reader import FEATURE_VERSION, labels_digest

    meta = reader_path().with_suffix(".json")
    if not reader_path().exists() or not meta.exists():
        return False
    saved = json.loads(meta.read_text())
    return (saved.get("reader_labels_sha") == labels_digest(load_labelled())
            and saved.get("reader_feature_version") == FEATURE_VERSION
            and saved.get("reader_genres") == ("trained" if TRAINED_GENRES else "rules"))


def load_reader(embedder=None):
    """The saved reader, or None (with a warning) when none was trained: the rule reading serves alone."""
    from agent.understand.reader import TrainedReader

    path = reader_path()
    if not path.exists():
        log.warning("no trained reader at %s (run `cineagent train`): the rule reading serves alone", path)
        return None
    try:
        return TrainedReader.load(path, embedder)
    except (ValueError, KeyError, EOFError, OSError) as exc:
        log.warning("trained reader not usable (%s): the rule reading serves alone", exc)
        return None
