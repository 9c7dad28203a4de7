"""MovieLens loading and splits, the feedback log, the gold set, and the on-disk state helpers."""
