"""Ranking for one request: candidates from every source, the request's filters, fusion, MMR.

Sources (each a dense score vector over the catalog, z-scored per request so they add up):
- the recommender core's sources (two-tower, EASE, SVD, popularity) with the fusion weights
  learned offline — they say what this person likes;
- ``semantic``: cosine between the request text and each item's text (what was asked for);
- ``neighbours``: EASE item-item weights from the referenced titles and from the profile items
  most relevant to the request ("more like these").
Filters remove items of the wrong years, excluded genres and titles (with their sequels), and
everything the person has seen, disliked or been shown this session. Wanted genres are a
conjunction (a blend, "a romantic comedy"): items with all of them come first; when fewer than n
exist, the closest partial matches (most wanted genres) follow, marked as partial. Alternatives
("action or comedy", ``genre_match`` "any") admit items with any of them, ranked by score alone. A mood ("darker", "funnier", "less
violent") is a direction in the collaborative item vectors between genre anchors, learned from the
data: it adds a term to the score and keeps items at least as far along it as what was shown.
MMR then trades a little score for variety.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict

from agent.intent import Intent
from agent.lru import LruCache
from agent.steps import Step, recording
from agent.users import User
from data.movielens import GENRES
from models.base import ColdStart
from models.fusion import zscore
from models.train import ModelBundle
from retrieval.catalog import CatalogIndex
from retrieval.profile_index import ProfileHit, ProfileStore


SEMANTIC_CACHE_SIZE = 1024  # request vectors whose catalog similarities are kept (13 KB each)

# Each tone is the direction from the items of the second genre group to those of the first, in the
# item vectors the collaborative model learned ("lighter" is "darker" reversed). The genres are
# anchors only: the direction itself comes from how people rated, so a dark comedy sits between.
TONE_ANCHORS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "darker": (("Horror", "Thriller", "Crime", "Film-Noir", "War"), ("Comedy", "Children's", "Musical", "Animation")),
    "funnier": (("Comedy",), ("Drama", "Thriller", "War", "Horror", "Film-Noir")),
    "less_violent": (("Romance", "Children's", "Musical", "Documentary", "Comedy"), ("Action", "War", "Horror", "Crime")),
}
_SEQUEL_TAIL = re.compile(r"(:.*|\s+(\d+|ii|iii|iv|v|vi|part .*))$")


class RankerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    semantic_weight: float = 0.15        # request-text relevance when the request is only genres
    keyword_semantic_weight: float = 0.6  # when it carries free-text keywords: the text is the request
    neighbour_weight: float = 0.8        # "like <title>": EASE neighbours of the referenced titles
    evidence_weight: float = 0.1         # neighbours of the request-relevant profile items
    told_weight: float = 0.4             # neighbours of films the person said they like earlier in the chat
    typical_weight: float = 0.2          # a newcomer's genre request: films typical of the genre first
    pool: int = 60                       # candidates kept per source before MMR
    mmr_lambda: float = 0.9              # 1.0 = pure score; 0.9 swaps near-duplicates for variety
    evidence_k: int = 5                  # profile hits retrieved for a request
    tone_weight: float = 1.0             # a mood's pull, in z-scores of its direction
    avoid_weight: float = 1.0            # "something different": push away from what was shown
    personal_cache_users: int = 512      # people whose personal scores are kept (~55 KB each): bounds memory


@dataclass
class RankedItem:
    item_id: int
    score: float
    source_ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank within each source's pool
    matched_genres: list[str] = field(default_factory=list)
    alternatives: bool = False        # the wanted genres were alternatives: one of them is no partial match


@dataclass
class Ranking:
    items: list[RankedItem]
    evidence: list[ProfileHit]        # profile items relevant to the request
    sources_used: list[str]
    cold_start_reason: str | None = None
    relaxed_genres: bool = False      # fewer than n items had every wanted genre: partial matches follow
    candidates: int = 0
    tones: dict[str, float] = field(default_factory=dict)  # mood -> the threshold it held the picks to


class RequestRanker:
    def __init__(self, bundle: ModelBundle, catalog: CatalogIndex, profiles: ProfileStore,
                 config: RankerConfig | None = None) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self.profiles = profiles
        self.config = config or RankerConfig()
        self.data = bundle.data
        self.item_ids = bundle.data.item_ids
        self.position = {int(i): p for p, i in enumerate(self.item_ids)}  # item id -> catalog row
        self.genres = bundle.data.genre_matrix.astype(bool)
        years = bundle.data.items["year"]
        self.years = np.where(years.isna(), -1, years.fillna(-1).astype(int)).astype(int)
        self.ease = bundle.sources.get("ease")
        self.item_space = self._item_space(bundle, catalog)
        self.tones = self._tone_directions()
        self._genre_centres = self._genre_centres_scores()
        self._family_of, self.families = self._franchises()
        # a person's personal scores change only when they swipe (``forget``), not from turn to turn
        self._personal: LruCache[str, tuple[dict[str, np.ndarray], str | None]] = LruCache(self.config.personal_cache_users)
        self._semantic: LruCache[bytes, np.ndarray] = LruCache(SEMANTIC_CACHE_SIZE)

    # ---------------------------------------------------------------- filters
    def allowed(self, intent: Intent, blocked: set[int]) -> tuple[np.ndarray, bool]:
        """Boolean mask of items the request admits; second value: fewer than the count have every
        wanted genre, so items with some of them are admitted too (``genre_matches`` orders them)."""
        mask = np.ones(len(self.item_ids), dtype=bool)
        if intent.exclude_genres:
            mask &= ~self.genres[:, [GENRES.index(g) for g in intent.exclude_genres]].any(axis=1)
        if intent.years:
            lo = intent.years.start if intent.years.start is not None else -10**9
            hi = intent.years.end if intent.years.end is not None else 10**9
            mask &= (self.years >= lo) & (self.years <= hi) & (self.years > 0)
        if blocked:
            mask[[self.position[i] for i in blocked if i in self.position]] = False
        relaxed = False
        if intent.genres and intent.genre_match == "any":  # alternatives: one of them is enough
            mask &= self.genre_matches(intent) > 0
        elif intent.genres:
            matches = self.genre_matches(intent)
            strict = mask & (matches == len(intent.genres))
            if strict.sum() >= (intent.count or 10):
                mask = strict
            else:
                mask &= matches > 0
                relaxed = len(intent.genres) > 1
        return mask, relaxed

    def genre_matches(self, intent: Intent) -> np.ndarray:
        """How many of the wanted genres each item has."""
        return self.genres[:, [GENRES.index(g) for g in intent.genres]].sum(axis=1)

    def genre_tiers(self, intent: Intent) -> np.ndarray:
        """The tier each item is ranked in, highest first: for a blend, how many of the wanted
        genres it has; for alternatives, one tier for every item with any of them."""
        if not intent.genres:
            return np.zeros(len(self.item_ids), dtype=int)
        matches = self.genre_matches(intent)
        return np.minimum(matches, 1) if intent.genre_match == "any" else matches

    def with_sequels(self, item_ids) -> set[int]:
        """The items and every catalog title of the same franchise ("Alien" -> "Alien 3",
        "Alien: Resurrection"): a person who rejects a film rejects its sequels."""
        out = set()
        for item in item_ids:
            out.add(int(item))
            out.update(self.families.get(self._family_of.get(int(item), ""), ()))
        return out

    def typical_scores(self, genres: list[str]) -> np.ndarray:
        """z-scored typicality of every item for the wanted genres: closeness, in the collaborative
        item vectors, to each genre's centre as people know it (its films weighted by log ratings).
        A film that carries the label in passing ("Titanic" is listed as action) sits far from it."""
        return zscore(sum(self._genre_centres[GENRES.index(g)] for g in genres)[None, :].astype(np.float64))[0]

    def _genre_centres_scores(self) -> np.ndarray:
        """(n_genres, n_items): each item's closeness to each genre's popularity-weighted centre."""
        pop = self.bundle.sources.get("popularity")
        weight = np.log1p(pop.counts) if pop is not None else np.ones(len(self.item_ids))
        out = np.zeros((len(GENRES), len(self.item_ids)), dtype=np.float32)
        for c in range(len(GENRES)):
            members = self.genres[:, c]
            if members.any() and weight[members].sum() > 0:
                w = weight[members]
                centre = (self.item_space[members] * w[:, None]).sum(axis=0) / w.sum()
                out[c] = self.item_space @ centre
        return out

    def tone_scores(self, tone: str) -> np.ndarray:
        """z-scored position of every item along a mood's direction (higher = more of it)."""
        return self.tones[tone]

    # ---------------------------------------------------------------- learned item facts
    @staticmethod
    def _item_space(bundle: ModelBundle, catalog: CatalogIndex) -> np.ndarray:
        """Normalised item vectors of the collaborative model (the two-tower's item tower), else
        the catalog's text vectors: where tones and "something different" are measured."""
        tower = bundle.sources.get("two_tower")
        vectors = getattr(tower, "item_vectors", None)
        vectors = np.asarray(vectors if vectors is not None and len(vectors) else catalog.vectors, dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def _tone_directions(self) -> dict[str, np.ndarray]:
        out = {}
        for tone, (toward, away) in TONE_ANCHORS.items():
            has_toward = self.genres[:, [GENRES.index(g) for g in toward]].any(axis=1)
            has_away = self.genres[:, [GENRES.index(g) for g in away]].any(axis=1)
            pos, neg = has_toward & ~has_away, has_away & ~has_toward
            direction = self.item_space[pos].mean(axis=0) - self.item_space[neg].mean(axis=0)
            scores = zscore((self.item_space @ direction)[None, :].astype(np.float64))[0]
            scores.setflags(write=False)
            out[tone] = scores
        lighter = -out["darker"]   # the same axis, the other way: built once, not per call
        lighter.setflags(write=False)
        out["lighter"] = lighter
        return out

    def _franchises(self) -> tuple[dict[int, str], dict[str, tuple[int, ...]]]:
        """(item -> its title stem, stem -> the items sharing it where more than one does)."""
        family_of = {int(item): _SEQUEL_TAIL.sub("", self.data.movies[int(item)].display_title.lower()).strip()
                     for item in self.item_ids.tolist()}
        families: dict[str, list[int]] = {}
        for item, key in family_of.items():
            families.setdefault(key, []).append(item)
        return family_of, {k: tuple(v) for k, v in families.items() if len(v) > 1}

    # ---------------------------------------------------------------- sources
    def personal_scores(self, user: User) -> tuple[dict[str, np.ndarray], str | None]:
        """The core's weighted z-scored sources for this person (popularity alone for a newcomer),
        cached per person and version of their own events (their swipes and the persona they
        started from): a swipe makes a new version, so no one has to invalidate anything, and any
        process computes the same scores from the same events. Scoring every model is a tenth of
        a turn; the cache is bounded (``personal_cache_users``)."""
        version = self.profiles.version(user.key)
        cached = self._personal.get(user.key)
        if cached is None or cached[0] != version:
            cached = (version, self._score_personal(user))
            self._personal.put(user.key, cached)
        return cached[1]

    def forget(self, user_key: str) -> None:
        """Drop a person's cached scores now (they are recomputed on demand; deletion uses this)."""
        self._personal.pop(user_key)

    def _score_personal(self, user: User) -> tuple[dict[str, np.ndarray], str | None]:
        fusion = self.bundle.fusion
        try:
            if self.profiles.swipes(user.key) or self.profiles.seeded_from(user.key) or not fusion.knows(user.model_id):
                # the person as their events say, computed without writing into any model (the
                # models stay read-only while serving: any replica gives the same answer)
                ratings = self.profiles.ratings(user.key)
                if not ratings:
                    raise ColdStart(user.model_id, "no ratings or swipes yet")
                parts = fusion.source_scores_for(user.model_id, ratings)
            else:
                parts = {n: s[0] for n, s in fusion.source_scores([user.model_id]).items()}
            scores, reason = {n: fusion.weights[n] * s for n, s in parts.items()}, None
        except ColdStart as exc:
            pop = self.bundle.sources["popularity"]
            scores, reason = {"popularity": zscore(pop.score_all([user.model_id]))[0]}, exc.reason
        for vector in scores.values():
            vector.setflags(write=False)  # shared by every turn of this version
        return scores, reason

    def semantic_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """z-scored cosine of the request with every item, cached by request vector: most requests
        are a few genres, so the same vectors come back turn after turn."""
        key = np.ascontiguousarray(query_vector, dtype=np.float32).tobytes()
        scores = self._semantic.get(key)
        if scores is None:
            scores = zscore(self.catalog.similarity(query_vector)[None, :].astype(np.float64))[0]
            scores.setflags(write=False)
            self._semantic.put(key, scores)
        return scores

    def neighbour_scores(self, seeds: list[int]) -> np.ndarray | None:
        seeds = [s for s in seeds if s in self.position]
        if self.ease is None or not seeds:
            return None
        return zscore(self.ease.neighbour_scores(seeds)[None, :])[0]

    def rank(self, user: User, intent: Intent, query_vector: np.ndarray, n: int = 10,
             exclude: set[int] | frozenset = frozenset(), steps: list[Step] | None = None,
             query_text: str = "", shown: list[int] | None = None, avoid: list[int] | None = None,
             told: list[int] | None = None) -> Ranking:
        """Top-``n`` for this request; each phase is recorded in ``steps`` when given (for tracing).

        ``shown``: the cards shown last, the reference a mood is relative to ("darker" than them);
        ``avoid``: items the picks should differ from ("something different"); ``told``: films the
        person said they like earlier in the conversation (a new topic resets the request, not
        what they told us about their taste)."""
        cfg = self.config
        steps = steps if steps is not None else []
        ratings = self.profiles.ratings(user.key)
        told = [t for t in told or [] if t not in intent.titles]  # seen and liked: still taste, never shown
        blocked = (set(ratings) | set(exclude) | set(intent.titles) | set(told)
                   | self.with_sequels(intent.exclude_titles))
        mask, relaxed = self.allowed(intent, blocked)
        tones = self._tone_filter(intent, mask, shown or [], n)
        for tone, threshold in tones.items():
            mask &= self.tone_scores(tone) >= threshold
        with recording(steps, "profile_retrieval", "retriever") as step:
            evidence = self.profiles.search(user.key, query_vector, k=cfg.evidence_k)
            step.input = {"query": query_text, "k": cfg.evidence_k}
            step.output = {"hits": [{"item_id": h.item_id, "score": round(h.score, 4)} for h in evidence]}

        sources: dict[str, np.ndarray] = {}
        personal, cold_reason = self.personal_scores(user)
        semantic = self.semantic_scores(query_vector)
        request = {"semantic": (cfg.keyword_semantic_weight if intent.keywords else cfg.semantic_weight) * semantic}
        title_nb = self.neighbour_scores(list(intent.titles))
        if title_nb is not None:
            request["neighbours"] = cfg.neighbour_weight * title_nb
        told_nb = self.neighbour_scores(told)
        if told_nb is not None and cfg.told_weight > 0:
            request["told"] = cfg.told_weight * told_nb
        evidence_nb = self.neighbour_scores([h.item_id for h in evidence])
        if evidence_nb is not None and cfg.evidence_weight > 0:
            request["evidence"] = cfg.evidence_weight * evidence_nb
        for tone in intent.mood:
            request[f"tone.{tone}"] = cfg.tone_weight * self.tone_scores(tone)
        if intent.genres and cold_reason is not None and cfg.typical_weight > 0:
            # nothing known of the person: the genre as people know it (Die Hard before Titanic for "action")
            request["typical"] = cfg.typical_weight * self.typical_scores(intent.genres)
        rows = [self.position[i] for i in avoid or [] if i in self.position]
        if rows:
            closeness = (self.item_space @ self.item_space[rows].T).max(axis=1)
            request["different"] = -cfg.avoid_weight * zscore(closeness[None, :].astype(np.float64))[0]

        tops: dict[str, np.ndarray] = {}  # each source's pool: catalog rows, best first
        for name, scores in {**personal, **request}.items():
            with recording(steps, f"candidates.{name}") as step:
                masked = np.where(mask, scores, -np.inf)
                top = np.argpartition(-masked, cfg.pool)[: cfg.pool] if len(masked) > cfg.pool else np.arange(len(masked))
                top = top[np.argsort(-masked[top], kind="stable")]
                tops[name] = top = top[np.isfinite(masked[top])]
                sources[name] = scores
                step.output = {"pool": len(top), "top": [{"item_id": int(self.item_ids[p]), "score": round(float(scores[p]), 4)}
                                                         for p in top[:5].tolist()]}
        # the union of the pools in order of first appearance (the order MMR breaks exact ties in)
        joined = np.concatenate(list(tops.values())) if tops else np.zeros(0, dtype=np.int64)
        matches = self.genre_tiers(intent)
        if relaxed:  # every full match is a candidate, however the sources ranked it: they go first
            joined = np.concatenate([joined, np.flatnonzero(mask & (matches == len(intent.genres)))])
        _, first = np.unique(joined, return_index=True)
        candidates = joined[np.sort(first)]
        with recording(steps, "rerank") as step:
            total = np.where(mask, np.sum(list(sources.values()), axis=0), -np.inf)
            picks: list[int] = []
            # most wanted genres first: all of them, then the closest partial matches
            for count in sorted(set(matches[candidates].tolist()), reverse=True) if len(candidates) else []:
                tier = candidates[matches[candidates] == count]
                picks += self._mmr(tier, total, n - len(picks))
                if len(picks) >= n:
                    break
            by_score = candidates[np.argsort(-total[candidates])][:n] if len(candidates) else candidates
            step.input = {"candidates": len(candidates), "weights": {**{k: v for k, v in self.bundle.fusion.weights.items()
                                                                       if k in personal}, **{k: 1.0 for k in request}},
                          "top_in": [{"item_id": int(self.item_ids[p]), "score": round(float(total[p]), 4)} for p in by_score]}
            step.output = {"top_out": [{"item_id": int(self.item_ids[p]), "score": round(float(total[p]), 4)} for p in picks],
                           "mmr_lambda": cfg.mmr_lambda}
        wanted = set(intent.genres)
        rank_in = {name: dict(zip(top.tolist(), range(1, len(top) + 1))) for name, top in tops.items()}
        items = [RankedItem(int(self.item_ids[p]), float(total[p]), {name: r[p] for name, r in rank_in.items() if p in r},
                            [g for g in self.data.movies[int(self.item_ids[p])].genres if g in wanted],
                            alternatives=intent.genre_match == "any") for p in picks]
        return Ranking(items, evidence, list(sources), cold_reason, relaxed, len(candidates), tones)

    def favourites(self, user: User, n: int, exclude: set[int] | frozenset = frozenset()) -> Ranking:
        """Top-``n`` from the person's own sources alone (popularity for a newcomer): what to show
        while asking what they are in the mood for."""
        personal, cold_reason = self.personal_scores(user)
        blocked = set(self.profiles.ratings(user.key)) | set(exclude)
        total = np.sum(list(personal.values()), axis=0)
        mask = np.ones(len(total), dtype=bool)
        mask[[self.position[i] for i in blocked if i in self.position]] = False
        order = np.argsort(-np.where(mask, total, -np.inf), kind="stable")[:n]
        ranks = {name: np.argsort(np.argsort(-np.where(mask, s, -np.inf), kind="stable"), kind="stable")
                 for name, s in personal.items()}
        items = [RankedItem(int(self.item_ids[p]), float(total[p]), {k: int(r[p]) + 1 for k, r in ranks.items()})
                 for p in order.tolist()]
        return Ranking(items, [], list(personal), cold_reason)

    def _tone_filter(self, intent: Intent, mask: np.ndarray, shown: list[int], n: int) -> dict[str, float]:
        """For each mood, the least of it a pick may have: the mean of the cards shown before (or of
        the catalog), so "darker" is darker than what the person saw. Dropped if too few remain."""
        out = {}
        rows = [self.position[i] for i in shown if i in self.position]
        for tone in intent.mood:
            scores = self.tone_scores(tone)
            threshold = float(scores[rows].mean()) if rows else 0.0
            if (mask & (scores >= threshold)).sum() >= n:
                out[tone] = round(threshold, 3)
                mask = mask & (scores >= threshold)
        return out

    def _mmr(self, candidates: np.ndarray, total: np.ndarray, n: int) -> list[int]:
        if n <= 0 or not len(candidates):
            return []
        lam = self.config.mmr_lambda
        scores = total[candidates]
        span = scores.max() - scores.min()
        rel = (scores - scores.min()) / (span if span > 0 else 1.0)
        vecs = self.catalog.vectors[candidates]
        chosen: list[int] = []
        max_sim = np.zeros(len(candidates))
        available = np.ones(len(candidates), dtype=bool)
        for _ in range(min(n, len(candidates))):
            value = np.where(available, lam * rel - (1 - lam) * max_sim, -np.inf)
            best = int(np.argmax(value))
            chosen.append(int(candidates[best]))
            available[best] = False
            max_sim = np.maximum(max_sim, vecs @ vecs[best])
        return chosen
