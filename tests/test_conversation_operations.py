"""Whole conversations with the trained reader in the turn: each message does what the person
meant to the conversation (a new request starts fresh, a reset forgets, a question the catalogue
cannot answer is said so), and no reply claims a mood its picks do not have."""
from __future__ import annotations

import pytest

from tests.conftest import one_at_a_time

FARGO, USUAL_SUSPECTS = 100, 12


@pytest.fixture(scope="module")
def reader(movielens):
    from agent.text_vectors import text_vectors
    from agent.understand.artifact import load_reader, reader_is_current, train_reader

    with one_at_a_time("reader"):   # two test processes: one trains, the other then loads
        if not reader_is_current():
            train_reader(movielens)
    return load_reader(text_vectors())


@pytest.fixture(scope="module")
def agent(trained, movielens, stratified_split, item_text_vectors, reader):
    from agent.dialogue import DialogueManager
    from agent.offline_parser import OfflineParser
    from agent.runtime import base_profiles
    from retrieval.catalog import CatalogIndex
    from retrieval.profile_index import ProfileStore

    assert reader is not None
    profiles = ProfileStore(item_text_vectors, movielens.item_ids, base_profiles(stratified_split.train))
    return DialogueManager(trained, OfflineParser(movielens), CatalogIndex(item_text_vectors, movielens.item_ids),
                           profiles, reader=reader)


def standing(agent, user, session):
    return agent.sessions.get(session, user).standing


KNOWN_MISS = ("the trained reader reads this as {what}; the labels disagree on such messages (README, "
              "Understanding): kept as the behaviour wanted, strict, so that it reports when it holds")


@pytest.mark.integration
@pytest.mark.xfail(strict=True, reason=KNOWN_MISS.format(what="a refinement (\"another ...\" after a standing request)"))
def test_a_new_request_after_a_long_conversation_inherits_nothing(agent):
    for message in ("some 80s comedies please", "funnier ones", "any others?"):
        agent.turn("guest-a", "s1", message)
    assert standing(agent, "guest-a", "s1").years is not None
    result = agent.turn("guest-a", "s1", "my wife and I loved Fargo and The Usual Suspects, we want another "
                                         "clever crime film, nothing too violent")
    now = standing(agent, "guest-a", "s1")
    assert "Crime" in now.genres and "Comedy" not in now.genres and now.years is None
    assert {FARGO, USUAL_SUSPECTS} <= set(now.titles)
    assert result.cards and all(1980 > (c.year or 0) or (c.year or 0) > 1989 or "Crime" in c.genres for c in result.cards)


@pytest.mark.integration
def test_starting_over_forgets_the_films_told_before(agent):
    agent.turn("guest-b", "s1", "I loved Fargo, something like it")
    result = agent.turn("guest-b", "s1", "start over: a feel-good family movie")
    session = agent.sessions.get("s1", "guest-b")
    assert FARGO not in session.told_likes and FARGO not in session.standing.titles
    assert result.cards and not any("Fargo" in c.explanation for c in result.cards)


@pytest.mark.integration
@pytest.mark.xfail(strict=True, reason=KNOWN_MISS.format(what="feedback on the cards (14 labelled bare resets)"))
def test_forget_all_that_clears_the_request(agent):
    agent.turn("guest-c", "s1", "a 90s thriller, no horror")
    result = agent.turn("guest-c", "s1", "forget all that")
    now = standing(agent, "guest-c", "s1")
    assert now is None or now.is_empty
    assert result.act in ("clarify", "recommend")


@pytest.mark.integration
def test_a_question_the_catalogue_cannot_answer_is_said_and_recommends_nothing_for_it(agent):
    agent.turn("guest-d", "s1", "a crime movie please")
    result = agent.turn("guest-d", "s1", "who directed Fargo?")
    assert not result.cards
    assert result.unused and "can't" in result.text
    assert "fans of" not in result.text.lower()


@pytest.mark.integration
def test_no_reply_claims_a_mood_its_picks_do_not_have(agent):
    """Over a few dozen turns of mood refinements, a reply names a mood only when the picks sit
    further along it than the picks before (or than the catalog average, with nothing before)."""
    from agent.dialogue import MOOD_MARGIN
    from agent.replies import MOOD_WORDS

    ranker = agent.ranker
    checked = 0
    for n, opening in enumerate(("crime movies", "a thriller from the 90s", "action movies", "80s comedies",
                                 "a war movie", "sci-fi adventures")):
        session, before = f"mood-{n}", []
        for message in (opening, "less violent", "darker", "funnier", "lighter please"):
            result = agent.turn("guest-e", session, message)
            claimed = [m for m, word in MOOD_WORDS.items() if word in result.text.split(":")[0]]
            for mood in claimed:
                scores = ranker.tone_scores(mood)
                now = [scores[ranker.position[c.item_id]] for c in result.cards]
                then = [scores[ranker.position[i]] for i in before]
                assert sum(now) / len(now) > (sum(then) / len(then) if then else 0.0) + MOOD_MARGIN, \
                    (message, mood, result.text)
                checked += 1
            before = [c.item_id for c in result.cards] or before
    assert checked >= 5


@pytest.mark.integration
def test_card_reasons_are_the_cards_own(agent):
    result = agent.turn("guest-f", "s1", "a comedy")
    reasons = [c.explanation for c in result.cards]
    assert len(result.cards) >= 5 and len(set(reasons)) >= len(reasons) - 2
