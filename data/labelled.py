"""Labelled real messages for training and measuring understanding, and the fold each belongs to.

The held-out fold is fixed by a hash of the conversation id, so every message of one conversation
lands in the same fold and no label decides where its own conversation goes. Nothing (rule,
threshold, weight, model choice) is tuned on the held-out fold: it only reports.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

LABELS_DIR = Path(__file__).resolve().parent / "labels"
HELDOUT_SHARE = 4   # one conversation in HELDOUT_SHARE goes to the held-out fold (a quarter)
FOLD_SALT = "cineagent-understanding-fold-v1"   # changing it re-deals the folds: never do it to move a figure


def fold_of(conversation_id: str) -> str:
    """'heldout' for about a quarter of conversations, 'train' for the rest; stable across runs."""
    digest = hashlib.sha256(f"{FOLD_SALT}:{conversation_id}".encode()).digest()
    return "heldout" if digest[0] % HELDOUT_SHARE == 0 else "train"


def load_labelled(fold: str | None = None, directory: Path = LABELS_DIR) -> list[dict]:
    """Every labelled message under ``directory`` (JSON Lines), optionally one fold only."""
    rows: list[dict] = []
    for path in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            row.setdefault("fold", fold_of(row["conversation"]))
            if fold is None or row["fold"] == fold:
                rows.append(row)
    return rows
