"""How well the readers understand labelled real messages, on the training fold and the held-out one.

Every labelled message (``data/labels``, optionally the operator's own labelled file) is read in
its conversation: the person's earlier messages are replayed through the rule reading to give the
standing request, as a live conversation would. Then each reader variant (``rules``, ``text``,
``hybrid``: see ``agent.understand.reader``) is

- fitted on the training fold and scored on the held-out fold (the figure that counts), and
- scored on the training fold by grouped cross-validation (out-of-fold predictions), so that the
  development figure is not a model grading its own training data.

Figures per fold: ``whole_parse`` (operation, wanted and excluded genres, referenced and rejected
titles and era all right), ``op_accuracy``, ``genre_exact``, ``genre_micro_f1``, ``exclusion_exact``,
``title_exact``. ``learning_curve`` gives the held-out figures with 25/50/75/100% of the training
conversations, so the next labels go where they help. Nothing here chooses a threshold or weight
on the held-out fold; the only choice made with it is which variant serves, which is what it is for.
"""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Sequence

from agent.intent import IntentParser, ParseResult
from agent.understand.context import prepare
from agent.understand.reader import VARIANTS, Reading, TrainedReader
from data.labelled import fold_of, load_labelled

log = logging.getLogger(__name__)

SHARES = (0.25, 0.5, 0.75, 1.0)
# what serves: the hybrid's operation with the rule reading's genres (agent.understand.artifact)
SERVED = "served"
EVAL_VARIANTS = (*VARIANTS, SERVED)


def make_reader(variant: str, embedder) -> TrainedReader:
    if variant == SERVED:
        return TrainedReader("hybrid", embedder, genres=False)
    return TrainedReader(variant, embedder)
# the act of the shared labelling standard, as an operation (for labelled files that carry no op)
OP_OF_ACT = {"recommend": "new_request", "clarify": "new_request", "refine": "refine", "more": "feedback",
             "explain": "question_card", "chit_chat": "chit_chat"}


def load_rows(extra: Sequence[Path] = ()) -> list[dict]:
    """The repository's labelled messages, plus files in the same schema (an ``op`` is derived from
    ``act`` where a file has none; a row without ``conversation`` gets one from its id)."""
    rows = load_labelled()
    for path in extra:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            row.setdefault("conversation", "-".join(row["id"].split("-")[:3]).replace("redial-valid", "redial"))
            row.setdefault("fold", fold_of(row["conversation"]))
            row.setdefault("context", [])
            row["expected"].setdefault("op", OP_OF_ACT.get(row["expected"].get("act", ""), "new_request"))
            rows.append(row)
    return rows


def score(rows: Sequence[dict], parsed: Sequence[ParseResult], readings: Sequence[Reading]) -> dict:
    """The figures of one set of readings against the labels (see the module docstring)."""
    n = len(rows)
    if not n:
        return {"n": 0}
    tp = fp = fn = 0
    ok = {"whole_parse": 0, "op_accuracy": 0, "genre_exact": 0, "exclusion_exact": 0, "title_exact": 0}
    cases = []
    for row, p, r in zip(rows, parsed, readings):
        e, intent = row["expected"], p.intent
        want, got = set(e["genres"]), set(r.genres)
        tp, fp, fn = tp + len(want & got), fp + len(got - want), fn + len(want - got)
        years = None if intent.years is None else {"start": intent.years.start, "end": intent.years.end}
        checks = {"op": r.op == e["op"], "genres": want == got,
                  "exclude_genres": set(e["exclude_genres"]) == set(r.exclude_genres),
                  "titles": set(e["titles"]) == set(intent.titles),
                  "exclude_titles": set(e.get("exclude_titles", [])) == set(intent.exclude_titles),
                  "years": e.get("years") == years}
        ok["op_accuracy"] += checks["op"]
        ok["genre_exact"] += checks["genres"]
        ok["exclusion_exact"] += checks["exclude_genres"]
        ok["title_exact"] += checks["titles"]
        ok["whole_parse"] += all(checks.values())
        if not all(checks.values()):
            cases.append({"id": row["id"], "utterance": row["utterance"], "wrong": [k for k, v in checks.items() if not v],
                          "expected": e, "read": {"op": r.op, "genres": r.genres, "exclude_genres": r.exclude_genres,
                                                  "titles": intent.titles, "exclude_titles": intent.exclude_titles,
                                                  "years": years}})
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    figures = {k: round(v / n, 4) for k, v in ok.items()}
    figures["genre_micro_f1"] = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
    return {"n": n, **figures, "misses": cases}


def _subset(rows, indexes):
    return [rows[i] for i in indexes]


def _out_of_fold(variant, rows, parsed, contexts, vectors, embedder, meta: dict, folds: int = 4,
                 seed: int = 0) -> list[Reading]:
    """Readings of every row by a reader that never saw its conversation (grouped k-fold), with the
    regularisation the whole training fold chose (``meta``)."""
    if variant == "rules":
        return TrainedReader("rules").read_many([r["utterance"] for r in rows], parsed, contexts, vectors)
    from sklearn.model_selection import GroupKFold

    readings: list[Reading | None] = [None] * len(rows)
    groups = [r["conversation"] for r in rows]
    for train, test in GroupKFold(n_splits=folds).split(rows, groups=groups):
        reader = make_reader(variant, embedder).fit(_subset(rows, train), _subset(parsed, train),
                                                      _subset(contexts, train), vectors[train], seed,
                                                      meta.get("op_C"), meta.get("genre_C"))
        for i, reading in zip(test, reader.read_many([rows[i]["utterance"] for i in test], _subset(parsed, test),
                                                     _subset(contexts, test), vectors[test])):
            readings[i] = reading
    return readings


def evaluate(rows: Sequence[dict], parser: IntentParser, embedder, variants: Sequence[str] = EVAL_VARIANTS,
             curve: bool = True, seed: int = 0, heldout: bool = True) -> dict:
    """Every variant on both folds (and the learning curve of the trained ones on the held-out fold).
    ``heldout=False``: the training fold only, for trying a change without seeing the held-out figures."""
    rows = list(rows)
    parsed, contexts, vectors = prepare(rows, parser, embedder)
    train = [i for i, r in enumerate(rows) if r["fold"] == "train"]
    held = [i for i, r in enumerate(rows) if r["fold"] == "heldout" and heldout]
    report: dict = {"n": {"train": len(train), "heldout": len(held)}, "variants": {}}
    tr_rows, tr_parsed, tr_ctx, tr_vec = _subset(rows, train), _subset(parsed, train), _subset(contexts, train), vectors[train]
    ho_rows, ho_parsed, ho_ctx, ho_vec = _subset(rows, held), _subset(parsed, held), _subset(contexts, held), vectors[held]
    for variant in variants:
        reader = make_reader(variant, embedder).fit(tr_rows, tr_parsed, tr_ctx, tr_vec, seed)
        held_readings = reader.read_many([r["utterance"] for r in ho_rows], ho_parsed, ho_ctx, ho_vec)
        dev_readings = _out_of_fold(variant, tr_rows, tr_parsed, tr_ctx, tr_vec, embedder, reader.meta, seed=seed)
        entry = {"train_cv": score(tr_rows, tr_parsed, dev_readings), "heldout": score(ho_rows, ho_parsed, held_readings),
                 "meta": reader.meta}
        if curve and heldout and variant != "rules":
            entry["learning_curve"] = _curve(variant, tr_rows, tr_parsed, tr_ctx, tr_vec, ho_rows, ho_parsed,
                                             ho_ctx, ho_vec, embedder, seed,
                                             (reader.meta.get("op_C"), reader.meta.get("genre_C")))
        report["variants"][variant] = entry
    return report


def _curve(variant, tr_rows, tr_parsed, tr_ctx, tr_vec, ho_rows, ho_parsed, ho_ctx, ho_vec, embedder, seed,
           fixed: tuple) -> dict:
    conversations = sorted({r["conversation"] for r in tr_rows})
    random.Random(seed).shuffle(conversations)
    points = {}
    for share in SHARES:
        keep = set(conversations[:max(2, round(share * len(conversations)))])
        idx = [i for i, r in enumerate(tr_rows) if r["conversation"] in keep]
        reader = make_reader(variant, embedder).fit(_subset(tr_rows, idx), _subset(tr_parsed, idx),
                                                      _subset(tr_ctx, idx), tr_vec[idx], seed, *fixed)
        figures = score(ho_rows, ho_parsed, reader.read_many([r["utterance"] for r in ho_rows], ho_parsed, ho_ctx, ho_vec))
        points[f"{int(share * 100)}%"] = {"n_train": len(idx), **{k: v for k, v in figures.items() if k != "misses"}}
    return points


FIGURES = ("whole_parse", "op_accuracy", "genre_exact", "genre_micro_f1", "exclusion_exact", "title_exact")


def format_report(report: dict) -> str:
    lines = [f"labelled messages: {report['n']['train']} training fold, {report['n']['heldout']} held-out fold",
             f"{'variant':<8} {'fold':<9} " + " ".join(f"{f:>15}" for f in FIGURES)]
    for variant, entry in report["variants"].items():
        for fold in ("train_cv", "heldout"):
            if entry[fold]["n"]:
                lines.append(f"{variant:<8} {fold:<9} " + " ".join(f"{entry[fold].get(f, 0):>15.3f}" for f in FIGURES))
    for variant, entry in report["variants"].items():
        for share, figures in entry.get("learning_curve", {}).items():
            lines.append(f"curve {variant:<7} {share:>4} (n={figures['n_train']:>4}) held-out " +
                         " ".join(f"{f}={figures[f]:.3f}" for f in ("whole_parse", "op_accuracy", "genre_exact")))
    return "\n".join(lines)
