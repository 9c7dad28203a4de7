"""Harvesting candidate gold cases from planted swipes and turns in an event store."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone

from data import GOLD_SET
from data.event_store import EventStore
from data.events import Turn, make_swipe
from eval.gold import load_cases, validate_case
from eval.harvest import HarvestConfig, harvest, overlap, run_harvest

DAY = date(2026, 1, 2)
T0 = 1_767_000_000.0


def turn(trace: str, session: str, message: str, act: str, genres=(), excluded=(), titles=(), ts: float = T0) -> Turn:
    """A turn event as the store holds it (the parser's reading is what harvest reads)."""
    intent = {"act": act, "genres": list(genres), "exclude_genres": list(excluded), "titles": list(titles)}
    return Turn(trace_id=trace * 32, ts=datetime.fromtimestamp(ts, timezone.utc), user_id="196", session_id=session,
                message=message, act=act, parsed=intent, intent=intent, parser="offline")


GOLD_UTTERANCE = "I'm in the mood for a good comedy tonight"   # case g001 of the gold set

TRACES = [
    turn("a", "s1", "something like heat", "recommend", titles=[6]),
    turn("b", "s1", "a cozy film for a rainy day", "recommend", genres=["Drama"], ts=T0 + 60),
    turn("c", "s2", "a funny sci-fi, nothing scary", "recommend", genres=["Comedy", "Sci-Fi"], ts=T0),
    turn("d", "s2", "no horror please", "refine", genres=["Comedy", "Sci-Fi"], excluded=["Horror"], ts=T0 + 30),
    turn("e", "s3", "a western", "recommend", genres=["Western"], ts=T0),
    turn("f", "s3", "no musicals", "refine", genres=["Western"], excluded=["Musical"], ts=T0 + 7200),  # hours later
    turn("1", "s4", "movies with dinosaurs in them", "clarify", ts=T0),
    turn("2", "s4", "dinosaur movies", "recommend", genres=["Adventure"], ts=T0 + 20),
    turn("3", "s5", GOLD_UTTERANCE, "recommend", genres=["Comedy"], ts=T0),
]


def plant(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    feedback = EventStore(url)
    for t in TRACES:
        feedback.add_turn(t)
    swipes = [("a", 12, "like", 9), ("a", 13, "like", 1), ("b", 14, "dislike", 1), ("b", 15, "dislike", 7),
              ("3", 16, "like", 10), ("c", 17, "dislike", 2)]
    for trace, item, action, rank in swipes:
        feedback.add_swipe(make_swipe(user_id="196", session_id="s", item_id=item, action=action,
                                      trace_id=trace * 32, rank=rank, query="x"))
    return url


def test_planted_logs_yield_the_expected_candidates(tmp_path, movielens):
    feedback = plant(tmp_path)
    gold_before = hashlib.sha256(GOLD_SET.read_bytes()).hexdigest()
    out = tmp_path / "eval" / f"candidates-{DAY}.jsonl"
    candidates, path = run_harvest(HarvestConfig(), database_url=feedback, out=out, data=movielens)

    assert path == out and hashlib.sha256(GOLD_SET.read_bytes()).hexdigest() == gold_before, "gold set untouched"
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == candidates
    by_utterance = {c["utterance"]: c for c in candidates}
    assert set(by_utterance) == {"something like heat", "a cozy film for a rainy day", "a funny sci-fi, nothing scary",
                                 "movies with dinosaurs in them"}

    liked_low = by_utterance["something like heat"]
    assert liked_low["tags"] == ["harvested", "liked_low"]
    assert liked_low["expected"] == {"genres": [], "exclude_genres": [], "titles": [6]}
    assert "liked" in liked_low["reason"] and "rank 9" in liked_low["reason"] and "a" * 32 in liked_low["reason"]
    assert movielens.movies[12].title in liked_low["reason"], "the item is named for the reviewer"

    disliked = by_utterance["a cozy film for a rainy day"]
    assert disliked["tags"] == ["harvested", "disliked_high"] and "rank 1" in disliked["reason"]

    corrected = by_utterance["a funny sci-fi, nothing scary"]
    assert corrected["expected"] == {"genres": ["Comedy", "Sci-Fi"], "exclude_genres": ["Horror"], "titles": []}
    assert corrected["tags"] == ["harvested", "disliked_high", "corrected"], "one case per utterance, reasons joined"
    assert "no horror please" in corrected["reason"] and " | " in corrected["reason"]

    reasked = by_utterance["movies with dinosaurs in them"]
    assert reasked["expected"] == {"genres": ["Adventure"], "exclude_genres": [], "titles": []}
    assert reasked["tags"] == ["harvested", "corrected"] and "dinosaur movies" in reasked["reason"]

    for case in candidates:   # a reviewer drops "reason" and the case is valid gold
        reviewed = {k: v for k, v in case.items() if k != "reason"}
        assert validate_case(reviewed)["id"] == case["id"]


def test_thresholds_and_the_window_are_settings(tmp_path):
    store = EventStore(plant(tmp_path))
    records, turns = store.swipes(), store.turns()
    strict = harvest(records, turns, load_cases(GOLD_SET), HarvestConfig(low_rank=10, high_rank=1, window_s=10), day=DAY)
    # rank 9 is no longer "low", rank 2 no longer "high", the 30 s refine is outside a 10 s window
    assert [c["utterance"] for c in strict] == ["a cozy film for a rainy day"]
    loose = harvest(records, turns, load_cases(GOLD_SET), HarvestConfig(window_s=86_400), day=DAY)
    assert "a western" in {c["utterance"] for c in loose}, "the refine two hours later counts in a day's window"
    assert [c["id"] for c in loose][:2] == ["harvest-2026-01-02-001", "harvest-2026-01-02-002"]


def test_a_reask_shares_content_words_not_just_filler():
    assert overlap("movies with dinosaurs in them", "dinosaur movies") == 1.0
    assert overlap("films about space", "space movies please") == 1.0
    assert overlap("something like heat", "something like toy story") == 0.0
    assert overlap("a movie for tonight", "a comedy for tonight") == 0.5   # below the 0.6 default: a refinement
