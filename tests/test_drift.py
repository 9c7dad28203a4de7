"""Drift figures on a small synthetic stream with a known shift (and one without)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from data.events import Swipe, Turn
from eval.drift import DriftConfig, drift_figures, drift_report

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
POPULARITY = {i: 1000 - i for i in range(1, 1001)}   # item 1 the most rated


def stream(shift: bool, n: int = 200, seed: int = 0):
    """``n`` turns and swipes before the snapshot (T0 + n minutes) and ``n`` after. Before: comedies,
    popular cards, 60% liked. After, with ``shift``: horror, obscure cards, 30% liked."""
    rng = np.random.default_rng(seed)
    turns, swipes = [], []
    for k in range(2 * n):
        after = k >= n and shift
        ts = T0 + timedelta(minutes=k)
        genre = "Horror" if after else rng.choice(["Comedy", "Comedy", "Drama"])
        items = [int(i) for i in rng.choice(np.arange(600, 1000) if after else np.arange(1, 400), 10, replace=False)]
        turns.append(Turn(trace_id=f"t{k}", ts=ts, user_id=f"u{k % 17}", session_id="s", items=items,
                          intent={"genres": [str(genre)]}))
        liked = rng.random() < (0.3 if after else 0.6)
        swipes.append(Swipe(ts=ts, user_id=f"u{k % 17}", session_id="s", item_id=items[0], trace_id=f"t{k}", rank=1,
                            action="like" if liked else "dislike"))
    return turns, swipes, T0 + timedelta(minutes=n - 0.5)


def test_a_known_shift_breaches_every_figure():
    turns, swipes, snapshot = stream(shift=True)
    report = drift_report(turns, swipes, snapshot, POPULARITY, 1682, source_of=lambda s: "ease")
    assert report["turns"] == [200, 200] and report["breach"]
    assert report["request_genre_js"] > 0.8 and report["request_genres_now"] == {"Horror": 1.0}
    assert report["shown_popularity_p"] < 1e-6 and report["shown_popularity_median"][1] < report["shown_popularity_median"][0]
    assert report["like_rate"][0] > 0.5 > report["like_rate"][1] and report["like_rate_p"] < 1e-3
    assert report["like_rate_by_source"]["ease"]["n"] == [200, 200]
    assert len(report["breaches"]) == 3
    figures = drift_figures(report)
    assert figures["drift.breach"] == 1.0 and figures["drift.request_genre_js"] == report["request_genre_js"]


def test_the_same_behaviour_on_both_sides_is_no_breach():
    turns, swipes, snapshot = stream(shift=False)
    report = drift_report(turns, swipes, snapshot, POPULARITY, 1682)
    assert not report["breach"], report["breaches"]
    assert report["request_genre_js"] < 0.1 and report["like_rate_p"] > 0.001


def test_too_few_events_are_reported_but_never_a_breach():
    turns, swipes, snapshot = stream(shift=True, n=10)
    report = drift_report(turns, swipes, snapshot, POPULARITY, 1682, config=DriftConfig(min_events=30))
    assert report["request_genre_js"] > 0.8 and not report["breach"]


def test_without_a_registry_the_older_half_is_the_reference():
    turns, swipes, _ = stream(shift=True)
    report = drift_report(turns, swipes, None, POPULARITY, 1682)
    assert report["turns"] == [201, 199] and report["breach"]


def test_canary_arms_are_compared_by_the_model_that_served_the_card():
    from eval.drift import arm_comparison

    turns, swipes, _ = stream(shift=False)
    rng = np.random.default_rng(1)
    turns = [t.model_copy(update={"model": "challenger-art" if int(t.user_id[1:]) % 5 == 0 else "champion-art"})
             for t in turns]
    index = {t.trace_id: t for t in turns}
    swipes = [s.model_copy(update={"action": "like" if index[s.trace_id].model == "challenger-art" or rng.random() < 0.4
                                   else "dislike"}) for s in swipes]
    report = arm_comparison(swipes, index, champion="champion-art")
    arms = report["arms"]
    assert arms["challenger-art"]["like_rate"] == 1.0 and arms["champion-art"]["like_rate"] < 0.5
    assert arms["challenger-art"]["n"] + arms["champion-art"]["n"] == len(swipes)
    assert arms["challenger-art"]["p_vs_champion"] < 1e-6 and "p_vs_champion" not in arms["champion-art"]
    assert arm_comparison([], index) == {"arms": {}}
