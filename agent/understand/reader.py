"""Trained readers of a message: its dialogue operation and each genre's polarity.

Both are logistic regressions over three kinds of evidence, any of which a variant may leave out:

- ``text``: the message's MiniLM sentence vector (how it is phrased, in any words);
- ``rules``: the rule reading of the message (its act, which slots it filled, which genres it
  wanted or excluded, what it could not use), so that what the rules get right is kept and the
  labels teach where they go wrong;
- ``context``: where the message falls (a request standing, films just suggested, first message).

The genre reader scores (message, genre) pairs with one model shared by all genres: a genre's own
features are its rule decision, its one-hot, and the message vector times the genre description's
vector, so that a rare genre borrows strength from every other. A pair is read as none, wanted or
excluded (argmax).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from agent.intent import Act, ParseResult
from agent.understand.context import OPS, Context, rule_op
from data.movielens import GENRES

log = logging.getLogger(__name__)

VARIANTS = ("rules", "text", "hybrid")          # "rules": the rule reading alone, no model
UNUSED_WHYS = ("person", "plot", "out_of_catalog", "language", "no_movies_in_era", "off_topic")
NONE, WANT, EXCLUDE = 0, 1, 2
C_GRID = (0.003, 0.01, 0.03, 0.1)    # regularisation strengths tried by cross-validation on the training fold
CANDIDATES = 3                   # genres nearest a message that get a decision, beside the rule reading's
CV_FOLDS = 4                     # grouped by conversation: no conversation is on both sides of a split
FEATURE_VERSION = 2              # bump when features change: an artifact of another version is retrained

Embedder = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Reading:
    """One message's reading: the operation and genres decided, with the operation's probabilities."""

    op: str
    genres: list[str]
    exclude_genres: list[str]
    op_probs: dict[str, float] = field(default_factory=dict)


def _message_features(text: str, parsed: ParseResult, context: Context, rules: bool) -> list[float]:
    shape = ["?" in text, min(len(text.split()), 60) / 60]
    ctx = [context.has_standing, context.cards_shown, context.turn == 0]
    if not rules:
        return [float(v) for v in ctx + shape]
    intent, details = parsed.intent, parsed.details
    acts = [intent.act == a for a in Act]
    slots = [bool(intent.genres), bool(intent.exclude_genres), bool(intent.titles), bool(intent.exclude_titles),
             intent.years is not None, bool(intent.keywords), bool(intent.mood), bool(intent.adjust),
             bool(intent.relax), "all" in intent.relax, intent.replace, intent.card_ref is not None,
             intent.count is not None, intent.explain_rank is not None, bool(details.get("rejected_card")),
             bool(details.get("seen"))]
    unused = [any(u.why == w for u in parsed.unused) for w in UNUSED_WHYS]
    rop = rule_op(parsed, context)
    # a message with a request of its own means something else with a request standing than without
    own = bool(intent.genres or intent.exclude_genres or intent.titles or intent.years or intent.mood or intent.adjust)
    crossed = [own and context.has_standing, own and context.cards_shown, not own and context.has_standing]
    return [float(v) for v in acts + slots + unused + [rop == o for o in OPS] + ctx + shape + crossed]


class TrainedReader:
    """``fit`` on labelled rows, ``read`` one message; ``save``/``load`` as one artifact file."""

    def __init__(self, variant: str = "hybrid", embedder: Embedder | None = None, genres: bool = True) -> None:
        """``genres=False``: the operation only; genres stay the rule reading's."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown reader variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.variant = variant
        self.genres = genres
        self.embedder = embedder
        self.op_model = None
        self.genre_model = None
        self.meta: dict = {}
        self._genre_vectors: np.ndarray | None = None

    # ------------------------------------------------------------------ features
    def _uses_rules(self) -> bool:
        return self.variant == "hybrid"

    def genre_vectors(self) -> np.ndarray:
        if self._genre_vectors is None:
            from agent import lexicon

            self._genre_vectors = np.asarray(self.embedder([lexicon.GENRE_DESCRIPTIONS[g] for g in GENRES]),
                                             dtype=np.float32)
        return self._genre_vectors

    def op_features(self, vectors: np.ndarray, texts, parsed, contexts) -> np.ndarray:
        rows = [_message_features(t, p, c, self._uses_rules()) for t, p, c in zip(texts, parsed, contexts)]
        return np.hstack([vectors, np.asarray(rows, dtype=np.float32)])

    def candidates(self, vector: np.ndarray, parsed: ParseResult) -> list[int]:
        """The genres worth a decision for one message (indexes into ``GENRES``): those the rule
        reading wanted or excluded, and the ``CANDIDATES`` whose descriptions are nearest the
        message. Every other genre is read as not asked about: most messages name none, and this
        keeps the reader's rows (and its cost per turn) a sixth of all pairs."""
        near = np.argsort(-(self.genre_vectors() @ vector))[:CANDIDATES].tolist() if vector is not None else []
        ruled = [GENRES.index(g) for g in (*parsed.intent.genres, *parsed.intent.exclude_genres)] if self._uses_rules() else []
        return sorted(set(near) | set(ruled))

    def genre_features(self, vectors: np.ndarray, texts, parsed, contexts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One row per (message, candidate genre): the features, the message's index, the genre's index."""
        gv = self.genre_vectors()
        eye = np.eye(len(GENRES), dtype=np.float32)
        blocks, units, genres = [], [], []
        for n, (vector, text, p, c) in enumerate(zip(vectors, texts, parsed, contexts)):
            pick = self.candidates(vector, p)
            if not pick:
                continue
            shared = np.asarray(_message_features(text, p, c, self._uses_rules()), dtype=np.float32)
            own = [eye[pick], vector[None, :] * gv[pick], (gv[pick] @ vector)[:, None],
                   np.repeat(shared[None, :], len(pick), axis=0)]
            if self._uses_rules():
                own.append(np.array([[GENRES[g] in p.intent.genres, GENRES[g] in p.intent.exclude_genres] for g in pick],
                                    np.float32))
            blocks.append(np.hstack(own))
            units.extend([n] * len(pick))
            genres.extend(pick)
        if not blocks:
            return np.zeros((0, 0), np.float32), np.zeros(0, int), np.zeros(0, int)
        return np.vstack(blocks), np.asarray(units), np.asarray(genres)

    # ------------------------------------------------------------------ training
    def fit(self, rows: Sequence[dict], parsed: Sequence[ParseResult], contexts: Sequence[Context],
            vectors: np.ndarray, seed: int = 0, op_c: float | None = None,
            genre_c: float | None = None) -> "TrainedReader":
        """Fit both readers on labelled rows (``expected.op``, ``genres``, ``exclude_genres``),
        choosing each one's regularisation by cross-validation grouped by conversation, unless
        given (``op_c``, ``genre_c``)."""
        self.meta = {"variant": self.variant, "genres": self.genres, "n": len(rows), "feature_version": FEATURE_VERSION,
                     "labels_sha": labels_digest(rows)}
        if self.variant == "rules":
            return self
        texts = [r["utterance"] for r in rows]
        groups = np.array([r["conversation"] for r in rows])
        op_y = np.array([OPS.index(r["expected"]["op"]) for r in rows])
        X = self.op_features(vectors, texts, parsed, contexts)
        self.op_model, self.meta["op_C"] = _fit_cv(X, op_y, groups, seed, op_c)
        if not self.genres:
            return self
        gX, units, genre_at = self.genre_features(vectors, texts, parsed, contexts)
        gy = np.array([_genre_class(rows[u]["expected"], GENRES[g]) for u, g in zip(units, genre_at)])
        self.genre_model, self.meta["genre_C"] = _fit_cv(gX, gy, groups[units], seed, genre_c, units=units)
        return self

    # ------------------------------------------------------------------ reading
    def read_many(self, texts, parsed, contexts, vectors: np.ndarray | None) -> list[Reading]:
        if not len(texts):
            return []
        if self.variant == "rules":
            return [Reading(op=rule_op(p, c), genres=list(p.intent.genres),
                            exclude_genres=list(p.intent.exclude_genres)) for p, c in zip(parsed, contexts)]
        probs = self.op_model.predict_proba(self.op_features(vectors, texts, parsed, contexts))
        classes = [OPS[k] for k in self.op_model.classes_]
        wanted: dict[int, list[str]] = {}
        excluded: dict[int, list[str]] = {}
        if self.genre_model is None:   # the rule reading's genres
            wanted = {i: list(p.intent.genres) for i, p in enumerate(parsed)}
            excluded = {i: list(p.intent.exclude_genres) for i, p in enumerate(parsed)}
            units = genre_at = decided = []
        else:
            gX, units, genre_at = self.genre_features(vectors, texts, parsed, contexts)
            decided = self.genre_model.predict(gX) if len(units) else []
        for u, g, k in zip(units, genre_at, decided):
            if k == WANT:
                wanted.setdefault(int(u), []).append(GENRES[g])
            elif k == EXCLUDE:
                excluded.setdefault(int(u), []).append(GENRES[g])
        readings = []
        for i, row in enumerate(probs):
            readings.append(Reading(op=classes[int(np.argmax(row))], genres=wanted.get(i, []),
                                    exclude_genres=excluded.get(i, []),
                                    op_probs={c: round(float(p), 3) for c, p in zip(classes, row)}))
        return readings

    def read(self, text: str, parsed: ParseResult, context: Context, vector: np.ndarray | None = None) -> Reading:
        if vector is None and self.variant != "rules":
            vector = np.asarray(self.embedder([text]), dtype=np.float32)[0]
        vectors = None if vector is None else vector[None, :]
        return self.read_many([text], [parsed], [context], vectors)[0]

    # ------------------------------------------------------------------ artifact
    def save(self, path: Path) -> None:
        import joblib

        from data.store import atomic_path

        with atomic_path(path) as tmp:
            joblib.dump({"variant": self.variant, "genres": self.genres, "op_model": self.op_model,
                         "genre_model": self.genre_model,
                         "meta": self.meta}, tmp)

    @classmethod
    def load(cls, path: Path, embedder: Embedder | None = None) -> "TrainedReader":
        import joblib

        saved = joblib.load(path)  # our own artifact, written by `cineagent train` under $CINEAGENT_HOME
        if saved["meta"].get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"{path} was trained with features v{saved['meta'].get('feature_version')}, "
                             f"this code reads v{FEATURE_VERSION}: run `cineagent train`")
        reader = cls(saved["variant"], embedder, saved.get("genres", True))
        reader.op_model, reader.genre_model, reader.meta = saved["op_model"], saved["genre_model"], saved["meta"]
        return reader


def _genre_class(expected: dict, genre: str) -> int:
    if genre in expected.get("exclude_genres", []):
        return EXCLUDE
    return WANT if genre in expected.get("genres", []) else NONE


def _fit_cv(X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, c: float | None = None,
            units: np.ndarray | None = None):
    """A logistic regression whose C is ``c``, or the best of ``C_GRID`` by grouped cross-validation
    accuracy of whole messages: rows of one ``units`` value are one message, right only when all are
    (a genre reader that answers "none" everywhere is right on most pairs and wrong on every request)."""
    units = np.arange(len(y)) if units is None else units
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(c: float):
        # standardised, so that a rare but telling feature (the rules wanted this genre: ~3% of
        # pairs) is not out-weighed by the penalty before it can lift a pair out of "none"
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))

    if c is not None:
        return model(c).fit(X, y), c
    folds = min(CV_FOLDS, len(set(groups)))
    best_c, best = C_GRID[0], (-1.0, -np.inf)
    if folds >= 2:
        for c in C_GRID:
            exact, loglik = [], []
            for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
                if len(set(y[train])) < 2:
                    continue
                fitted = model(c).fit(X[train], y[train])
                probs = fitted.predict_proba(X[test])
                known = np.isin(y[test], fitted.classes_)
                at = np.searchsorted(fitted.classes_, y[test][known])
                hits = fitted.classes_[probs.argmax(axis=1)] == y[test]
                _, message = np.unique(units[test], return_inverse=True)
                exact.append((np.bincount(message, weights=~hits) == 0).mean())
                loglik.append(np.log(np.clip(probs[known][np.arange(known.sum()), at], 1e-9, 1)).mean())
            # whole messages right first; among ties, the better-calibrated model (not the first tried)
            score = (round(float(np.mean(exact)), 4), float(np.mean(loglik))) if exact else (-1.0, -np.inf)
            if score > best:
                best_c, best = c, score
    return model(best_c).fit(X, y), best_c


def labels_digest(rows: Sequence[dict]) -> str:
    """A short hash of the labelled rows a reader was trained on (its data snapshot)."""
    blob = json.dumps([[r["id"], r["expected"]] for r in rows], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
