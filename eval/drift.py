"""Drift of what people ask for, what they are shown and how they react, against the training snapshot.

Computed by the nightly job from the event store: the **reference** window is every turn and swipe
up to the champion's training snapshot (its registration time; the whole history before it when
there is no registry), the **current** window everything after. Statistics come from scipy, a
dependency already: Jensen-Shannon distance between the genre mixes of parsed requests, a
two-sample Kolmogorov-Smirnov test between the training popularity of the cards shown, and a
two-proportion z-test between like rates (overall and per source). Evidently was not brought in: it
would add a large dependency tree for the same few statistics (its cost was not measured here).

A figure breaches when the genre-mix distance exceeds ``js_limit`` or a test's p-value is below
``p_limit`` with at least ``min_events`` events on each side; the nightly job flags a breach on its
dashboard line, and ``retrain_on_drift`` makes it train a challenger.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from data.movielens import GENRES


@dataclass(frozen=True)
class DriftConfig:
    js_limit: float = 0.2        # genre mixes this far apart (0..1, base 2) are a breach
    p_limit: float = 0.001       # a test this unlikely under "no change" is a breach
    min_events: int = 30         # fewer events on either side: figures reported, never a breach


def _genre_mix(turns: Iterable) -> np.ndarray:
    counts = Counter(g for t in turns for g in ((t.intent or {}).get("genres") or []))
    return np.array([counts.get(g, 0) for g in GENRES], dtype=np.float64)


def _like_test(before: list, after: list) -> tuple[float | None, float | None, float | None]:
    """(like rate before, after, two-sided p of a two-proportion z-test)."""
    if not before or not after:
        return (None if not before else _rate(before)), (None if not after else _rate(after)), None
    x1, n1, x2, n2 = _likes(before), len(before), _likes(after), len(after)
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(x1 / n1 - x2 / n2) / se))
    return x1 / n1, x2 / n2, p


def _likes(swipes: list) -> int:
    return sum(s.action == "like" for s in swipes)


def _rate(swipes: list) -> float:
    return _likes(swipes) / len(swipes)


def drift_report(turns: list, swipes: list, snapshot: datetime | None, popularity: dict[int, int], n_catalog: int,
                 source_of=None, config: DriftConfig | None = None) -> dict:
    """The drift figures (see the module docstring). ``popularity``: training ratings per item;
    ``source_of(swipe) -> str``: the source that put the swiped card up (``eval.nightly.card_source``)."""
    config = config or DriftConfig()
    if snapshot is None:   # no registry: the older half of the history is the reference
        times = sorted(t.ts for t in turns)
        snapshot = times[len(times) // 2] if times else None
    ref_turns = [t for t in turns if snapshot is not None and t.ts <= snapshot]
    cur_turns = [t for t in turns if snapshot is None or t.ts > snapshot]
    ref_swipes = [s for s in swipes if snapshot is not None and s.ts <= snapshot]
    cur_swipes = [s for s in swipes if snapshot is None or s.ts > snapshot]
    out: dict = {"snapshot": snapshot.isoformat() if snapshot else None, "turns": [len(ref_turns), len(cur_turns)],
                 "swipes": [len(ref_swipes), len(cur_swipes)], "breaches": []}
    enough_turns = min(len(ref_turns), len(cur_turns)) >= config.min_events

    ref_mix, cur_mix = _genre_mix(ref_turns), _genre_mix(cur_turns)
    if ref_mix.sum() and cur_mix.sum():
        js = float(jensenshannon(ref_mix / ref_mix.sum(), cur_mix / cur_mix.sum(), base=2))
        out["request_genre_js"] = js
        out["request_genres_now"] = {g: float(c / cur_mix.sum()) for g, c in zip(GENRES, cur_mix) if c}   # shares
        if enough_turns and js > config.js_limit:
            out["breaches"].append(f"request genre mix moved: Jensen-Shannon {js:.3f} > {config.js_limit}")

    ref_pop = np.array([popularity.get(i, 0) for t in ref_turns for i in t.items], dtype=np.float64)
    cur_pop = np.array([popularity.get(i, 0) for t in cur_turns for i in t.items], dtype=np.float64)
    if len(cur_pop):
        out["shown_popularity_median"] = [float(np.median(ref_pop)) if len(ref_pop) else None, float(np.median(cur_pop))]
        out["shown_coverage"] = len({i for t in cur_turns for i in t.items}) / n_catalog
    if len(ref_pop) and len(cur_pop):
        ks = stats.ks_2samp(ref_pop, cur_pop)
        out["shown_popularity_ks"], out["shown_popularity_p"] = float(ks.statistic), float(ks.pvalue)
        if enough_turns and ks.pvalue < config.p_limit:
            out["breaches"].append(f"popularity of the cards shown moved: KS {ks.statistic:.3f}, p {ks.pvalue:.2g}")

    before, after, p = _like_test(ref_swipes, cur_swipes)
    out["like_rate"], out["like_rate_p"] = [before, after], p
    if p is not None and min(len(ref_swipes), len(cur_swipes)) >= config.min_events and p < config.p_limit:
        out["breaches"].append(f"like rate moved: {before:.3f} -> {after:.3f}, p {p:.2g}")
    if source_of is not None:
        by_source: dict[str, tuple[list, list]] = {}
        for side, group in ((0, ref_swipes), (1, cur_swipes)):
            for s in group:
                by_source.setdefault(source_of(s), ([], []))[side].append(s)
        out["like_rate_by_source"] = {}
        for source, (b, a) in sorted(by_source.items()):
            rb, ra, ps = _like_test(b, a)
            out["like_rate_by_source"][source] = {"before": rb, "after": ra, "p": ps, "n": [len(b), len(a)]}
    out["breach"] = bool(out["breaches"])
    return out


def drift_figures(report: dict) -> dict[str, float]:
    """The numbers the dashboard plots over time (``drift.*``; never guarded as regressions)."""
    out = {"drift.breach": float(report["breach"])}
    for key in ("request_genre_js", "shown_popularity_ks", "shown_coverage"):
        if report.get(key) is not None:
            out[f"drift.{key}"] = float(report[key])
    if report.get("like_rate") and report["like_rate"][1] is not None:
        out["drift.like_rate_now"] = float(report["like_rate"][1])
    return out


def arm_comparison(swipes: list, turn_index: dict, champion: str | None = None) -> dict:
    """Like rates of the models that served the swiped cards (``Turn.model``: the champion, and
    the challenger for canary people), each against the champion with a two-proportion z-test.
    ``champion``: its artifact version (default: the model that served the most swiped cards)."""
    arms: dict[str, list] = {}
    for s in swipes:
        turn = turn_index.get(s.trace_id or "")
        if turn is not None and turn.model:
            arms.setdefault(turn.model, []).append(s)
    if not arms:
        return {"arms": {}}
    champion = champion if champion in arms else max(arms, key=lambda m: len(arms[m]))
    out = {"champion": champion, "arms": {}}
    for model, group in sorted(arms.items()):
        entry = {"n": len(group), "like_rate": _rate(group)}
        if model != champion:
            _, _, entry["p_vs_champion"] = _like_test(arms[champion], group)
        out["arms"][model] = entry
    return out


def overlap_at(a: list[int], b: list[int], k: int = 10) -> float:
    """Shared items of two top-``k`` lists over the longer one's length (1.0: the same set)."""
    a, b = list(a)[:k], list(b)[:k]
    return len(set(a) & set(b)) / max(len(a), len(b)) if (a or b) else 1.0


def shadow_comparison(turns: list, swipes: list, k: int = 10) -> dict:
    """Shadow mode on real traffic: for the turns the challenger also ranked (``Turn.shadow``),
    the overlap@k of its top-k with the cards shown, and where it ranked the cards people then
    liked from those turns (1-based; None: not in its list). Per challenger model."""
    shadowed = {t.trace_id: t for t in turns if t.shadow and t.shadow.get("top") is not None}
    out: dict = {"models": {}}
    for model in sorted({str(t.shadow.get("model")) for t in shadowed.values()}):
        mine = {tid: t for tid, t in shadowed.items() if str(t.shadow.get("model")) == model}
        overlaps = [overlap_at(t.shadow.get("champion") or t.items, t.shadow["top"], k) for t in mine.values()]
        ranks: list[int | None] = []
        liked = {(s.trace_id, s.item_id) for s in swipes if s.trace_id in mine and s.action == "like"}
        for trace_id, item in sorted(liked):   # a like undone and redone is one liked card
            ranks.append((mine[trace_id].shadow.get("ranks") or {}).get(str(item)))
        found = [r for r in ranks if r is not None]
        out["models"][model] = {
            "turns": len(mine), f"overlap_at_{k}": sum(overlaps) / len(overlaps),
            "liked": len(ranks),
            f"liked_in_top_{k}": (sum(1 for r in found if r <= k) / len(ranks)) if ranks else None,
            "liked_mean_rank": (sum(found) / len(found)) if found else None,
            "liked_ranks": sorted(found)}
    return out
