"""MovieLens loading and splits, the feedback log, the gold set, and the on-disk state helpers."""
from pathlib import Path

GOLD_SET = Path(__file__).with_name("eval_dataset.json")  # shipped with the package
