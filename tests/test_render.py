"""The chat's HTML and its plain-word explanations (web.render), without a browser."""
from __future__ import annotations

import re

from web.render import (data_summary, deletion_list, plain_reason, render_conversation, render_data, render_turn,
                        shown_card, why_sentences)

CARD = {"item_id": 50, "title": "Star Wars", "year": 1977, "genres": ["Action", "Sci-Fi"],
        "explanation": "Ranked high by people who liked what you liked (EASE) (#3).", "score": 7.23,
        "evidence": {"profile_items": [{"item_id": 181, "title": "Return of the Jedi (1983)", "similarity": 0.8,
                                        "your_rating": 5}],
                     "genres": ["Sci-Fi"], "sources": {"ease": 3, "svd": 8},
                     "referenced_titles": ["Alien (1979)"], "missing_genres": ["Comedy"], "tones": ["dark"]}}


def test_why_is_sentences_from_the_evidence_without_internals():
    sentences = why_sentences(CARD["evidence"])
    text = " ".join(sentences)
    assert all(s.endswith(".") and s[0].isupper() for s in sentences)
    for said in ("Sci-Fi", "Return of the Jedi (1983)", "Alien (1979)", "isn't Comedy", "dark"):
        assert said in text
    shown = shown_card(CARD)
    assert set(shown) == {"item_id", "title", "year", "genres", "reason", "why"}   # no score, sources, evidence
    assert plain_reason(CARD["evidence"]) == "For fans of Alien (1979)."
    html = render_turn({"trace_id": "a" * 32, "message": "x", "text": "Here you go:", "cards": [shown]}, {})
    for internal in ("ease", "EASE", "svd", "#3", "7.23", "score"):
        assert internal not in html
    assert why_sentences({}) and plain_reason({})   # nothing to cite still says something true-ish and short


def test_buttons_name_the_movie_and_show_the_swipe():
    html = render_turn({"trace_id": "b" * 32, "message": "m", "text": "t", "cards": [shown_card(CARD)]}, {50: "like"})
    assert 'aria-label="Like Star Wars"' in html and 'aria-label="Dislike Star Wars"' in html
    assert 'aria-label="Undo Star Wars"' in html and 'data-state="like"' in html
    assert html.count('aria-pressed="true"') == 1


def test_everything_from_the_browser_is_escaped():
    evil = {"trace_id": "<x>", "message": "<img src=x onerror=alert(1)>", "text": "<b>hi</b>",
            "notices": ["<script>"], "cards": [{**shown_card(CARD), "title": '"><script>alert(1)</script>',
                                                 "genres": ["<i>"], "why": ["<u>"]}]}
    html = render_conversation([evil], {})
    assert "<script" not in html and "<img" not in html and "<b>hi" not in html and "<i>" not in html
    assert render_conversation([], {}).count('class="example"') == 3   # the welcome, with examples


def test_a_tampered_conversation_is_dropped_not_drawn():
    from types import SimpleNamespace

    from web.ui import chat_of

    me = SimpleNamespace(id="p_me")
    good = {"trace_id": "c" * 32, "message": "m", "text": "t", "cards": [shown_card(CARD)]}
    bad = [{"trace_id": 1, "cards": []}, {"trace_id": "d" * 32, "cards": ["x"]},
           {"trace_id": "e" * 32, "cards": [{"item_id": "50", "title": "x"}]}, "junk"]
    kept = chat_of({"user_id": "p_me", "session_id": "s", "turns": [good, *bad]}, me)
    assert kept["turns"] == [good]
    assert chat_of({"user_id": "p_other", "session_id": "s", "turns": [good]}, me) is None
    assert chat_of({"user_id": "p_me", "session_id": "", "turns": []}, me) is None


def test_moods_and_likes_are_said_in_peoples_words():
    evidence = {**CARD["evidence"], "tones": {"less_violent": 0.8, "darker": -0.3}}
    text = " ".join(why_sentences(evidence))
    assert "less violent" in text and "less_violent" not in text and "darker" not in text   # only moods it fits
    # a like by swipe is "you liked"; "rated highly" only for ratings, and a persona's are theirs
    assert "which you liked" in " ".join(why_sentences(evidence, swiped={181}))
    assert "rated highly" not in " ".join(why_sentences(evidence, swiped={181}))
    assert "the film fan you started from rated highly" in " ".join(why_sentences(evidence, seeded=True))


def test_a_notice_shows_once_in_a_conversation():
    new_here = "You're new here, so these lean on what's popular."
    turns = [{"trace_id": f"{n:032x}", "message": "m", "text": "t", "notices": [new_here], "cards": []} for n in range(3)]
    assert render_conversation(turns, {}).count("new here") == 1


def test_your_data_is_titles_dates_and_conversations_not_identifiers():
    export = {"person": {"id": "p_" + "a" * 32, "seed_from": 217, "created": 1.7e9},
              "swipes": [{"item_id": 50, "action": "like", "ts": "2026-12-07T20:00:00+00:00", "trace_id": "f" * 32},
                         {"item_id": 181, "action": "like", "ts": "2026-12-07T20:01:00+00:00"},
                         {"item_id": 181, "action": "dislike", "ts": "2026-12-07T20:02:00+00:00"}],
              "turns": [{"session_id": "s1", "ts": "2026-12-07T19:59:00+00:00", "message": "a space opera",
                         "items": [50, 181], "outcome": "ok", "trace_id": "e" * 32},
                        {"session_id": "s2", "ts": "2026-12-07T20:05:00+00:00", "message": "<b>more</b>", "items": [],
                         "outcome": "RateLimited: slow down"}]}
    summary = data_summary(export, {50: "Star Wars (1977)", 181: "Return of the Jedi (1983)"})
    assert summary["likes"] == [("Star Wars (1977)", "7 Dec 2026, 20:00 UTC")]
    assert summary["dislikes"] == [("Return of the Jedi (1983)", "7 Dec 2026, 20:02 UTC")]   # the latest swipe counts
    html = render_data(summary, '{"raw": true}')
    visible = re.sub(r"<[^>]+>", " ", html)
    assert "Star Wars (1977)" in visible and "a space opera" in visible and "Not answered" in visible
    assert "&lt;b&gt;more" in html and "<b>more" not in html
    for internal in ("p_", "s1", "eee", "fff", "RateLimited", "item_id", "1700000000"):
        assert internal not in visible
    assert 'download="cineagent-my-data.json"' in html and "data:application/json;base64," in html
    assert deletion_list(summary, seeded=False) == "your profile, 1 like, 1 dislike and 2 conversations (2 messages)"


def test_the_operators_turn_view_finds_one_turn_and_is_theirs_only():
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from data.events import Turn, TurnStep
    from web.ui import PickLog, find_turn, turn_view_html, ui_turn_view

    nobody = SimpleNamespace(operator=SimpleNamespace(is_operator=lambda headers, cookies: False),
                             recent_turns=lambda: 1 / 0)
    assert ui_turn_view(nobody, PickLog(), "", SimpleNamespace(headers={}, cookies={})) == ""   # never read
    now = datetime.now(timezone.utc)
    first = Turn(trace_id="a" * 32, ts=now - timedelta(seconds=5), user_id="p_x", session_id="s", message="a comedy",
                 intent={"genres": ["Comedy"]}, items=[1])
    second = Turn(trace_id="b" * 32, ts=now, user_id="p_x", session_id="s", message="darker <please>", parser="offline",
                  parsed={"mood": ["darker"]}, intent={"genres": ["Comedy"], "mood": ["darker"]}, items=[50],
                  sources=[{"ease": 3}], steps=[TurnStep(name="intent_parse", kind="parse", duration_ms=4.2)])
    newest_first = [second, first]
    assert find_turn(newest_first, "") == (second, first)
    assert find_turn(newest_first, "COMEDY") == (first, None) and find_turn(newest_first, "bbbb")[0] is second
    assert find_turn(newest_first, "nothing like it") == (None, None)
    html = turn_view_html(second, first, {50: "Star Wars (1977)"}, {50: 7.23}, "Darker comedy:")
    for shown in ("darker &lt;please&gt;", "offline", "intent_parse", "4.2", "Star Wars (1977)", "ease #3", "7.23",
                  "Request before", "Darker comedy:", "b" * 32):
        assert shown in html, shown


def test_answers_to_messages_sent_together_are_all_kept():
    from web.ui import AnsweredTurns

    answered, before = AnsweredTurns(), [{"trace_id": "a"}]
    # three messages left with the same copy of the conversation; their answers arrive in turn
    assert [t["trace_id"] for t in answered.add("p", "s", before, {"trace_id": "b"})] == ["a", "b"]
    assert [t["trace_id"] for t in answered.add("p", "s", before, {"trace_id": "c"})] == ["a", "b", "c"]
    assert [t["trace_id"] for t in answered.add("p", "s", before, {"trace_id": "d"})] == ["a", "b", "c", "d"]
    assert [t["trace_id"] for t in answered.add("p", "other", [], {"trace_id": "e"})] == ["e"]
    answered.forget("p")
    assert [t["trace_id"] for t in answered.add("p", "s", before, {"trace_id": "f"})] == ["a", "f"]
