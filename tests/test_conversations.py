"""Multi-turn conversations as a person would hold them, through the real parser, models and
indexes: what stands after each turn, the cards, and what the agent says it could not use."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

STAR_WARS, EMPIRE, JEDI, TITANIC, ALIEN, ALIENS = 50, 172, 181, 313, 183, 176


@pytest.fixture(scope="module")
def agent(trained, movielens, stratified_split, item_text_vectors, tmp_path_factory):
    from agent.dialogue import DialogueManager
    from agent.offline_parser import OfflineParser
    from agent.runtime import base_profiles
    from retrieval.catalog import CatalogIndex
    from retrieval.profile_index import ProfileStore

    profiles = ProfileStore(item_text_vectors, movielens.item_ids, base_profiles(stratified_split.train))
    return DialogueManager(trained, OfflineParser(movielens), CatalogIndex(item_text_vectors, movielens.item_ids), profiles)


class Chat:
    """One person, one session: ``say`` returns the turn's result."""

    counter = 0

    def __init__(self, agent, user: str | None = None):
        Chat.counter += 1
        self.agent, self.user, self.session = agent, user or f"visitor-{Chat.counter}", f"conv-{Chat.counter}"

    def say(self, message: str):
        return self.agent.turn(self.user, self.session, message)

    def genres(self, result) -> list[set[str]]:
        return [set(self.agent.data.movies[c.item_id].genres) for c in result.cards]


def test_a_new_topic_starts_fresh_and_a_refinement_keeps_the_rest(agent):
    chat = Chat(agent)
    first = chat.say("a funny sci-fi movie, nothing scary")
    assert set(first.intent.genres) == {"Comedy", "Sci-Fi"} and "Horror" in first.intent.exclude_genres
    refined = chat.say("from the 90s please")
    assert refined.act == "refine" and set(refined.intent.genres) == {"Comedy", "Sci-Fi"}
    assert "Horror" in refined.intent.exclude_genres and refined.intent.years.start == 1990
    assert all(1990 <= c.year <= 1999 for c in refined.cards)
    fresh = chat.say("I'd like a western")
    assert fresh.intent.genres == ["Western"] and not fresh.intent.exclude_genres and fresh.intent.years is None
    assert all("Western" in g for g in chat.genres(fresh))


def test_actually_replaces_the_genre(agent):
    chat = Chat(agent)
    chat.say("a comedy, no romance")
    replaced = chat.say("actually, make it a horror")
    assert replaced.intent.genres == ["Horror"] and "Romance" in replaced.intent.exclude_genres
    assert all("Horror" in g and "Romance" not in g for g in chat.genres(replaced))


def test_darker_moves_along_the_learned_direction_and_keeps_the_request(agent):
    chat = Chat(agent)
    first = chat.say("a comedy")
    darker = chat.say("something darker")
    assert darker.act == "refine" and darker.intent.genres == ["Comedy"] and darker.intent.mood == ["darker"]
    tone = agent.ranker.tone_scores("darker")
    pos = agent.ranker.position
    before = sum(tone[pos[c.item_id]] for c in first.cards) / len(first.cards)
    assert all(tone[pos[c.item_id]] >= before - 1e-6 for c in darker.cards)
    readings = next(s for s in darker.steps if s.name == "merge").output["readings"]
    assert any(r.startswith("darker") for r in readings), "the trace shows how 'darker' was read"


def test_older_and_more_recent_move_the_era_relative_to_what_was_shown(agent):
    chat = Chat(agent)
    first = chat.say("a thriller")
    shown = sorted(c.year for c in first.cards if c.year)
    median = shown[len(shown) // 2] if len(shown) % 2 else (shown[len(shown) // 2 - 1] + shown[len(shown) // 2]) // 2
    older = chat.say("something older")
    assert older.intent.years and older.intent.years.end is not None and older.intent.years.end < median + 1
    assert all(c.year <= older.intent.years.end for c in older.cards) and "Thriller" in older.intent.genres
    newer = chat.say("more recent")
    assert newer.intent.years.start is not None and all(c.year >= newer.intent.years.start for c in newer.cards)


def test_card_references_resolve(agent):
    chat = Chat(agent)
    first = chat.say("a sci-fi movie")
    second = first.cards[1]
    why = chat.say("why the second one?")
    assert why.act == "explain" and why.cards[0].item_id == second.item_id
    like_it = chat.say("more like the second one")
    assert second.item_id in like_it.intent.titles and "Sci-Fi" in like_it.intent.genres
    assert second.item_id not in {c.item_id for c in like_it.cards}


def test_rejected_and_seen_titles_are_exclusions_with_their_sequels(agent):
    chat = Chat(agent)
    chat.say("a sci-fi adventure")
    rejected = chat.say("not Star Wars")
    assert STAR_WARS in rejected.intent.exclude_titles and STAR_WARS not in rejected.intent.titles
    shown = {c.item_id for c in rejected.cards}
    assert not shown & {STAR_WARS}
    seen = Chat(agent).say("I've already seen Titanic, something romantic")
    assert TITANIC in seen.intent.exclude_titles and TITANIC not in {c.item_id for c in seen.cards}
    alien = Chat(agent).say("a scary movie, nothing like Alien")
    family = agent.ranker.with_sequels([ALIEN])
    assert ALIEN in alien.intent.exclude_titles and not family & {c.item_id for c in alien.cards}


def test_what_cannot_be_used_is_said_and_listed(agent):
    actor = Chat(agent).say("a comedy with Tom Hanks")
    assert {"text": "Tom Hanks", "why": "person"} in [u.model_dump() for u in actor.unused]
    assert "Tom Hanks" in actor.text and actor.cards and all("Comedy" in agent.data.movies[c.item_id].genres
                                                             for c in actor.cards)
    later = Chat(agent).say("something like Inception (2010)")
    assert any(u.why == "out_of_catalog" for u in later.unused) and "1998" in later.text and later.cards
    spanish = Chat(agent).say("quiero ver una película de terror")
    assert any(u.why == "language" for u in spanish.unused) and "English" in spanish.text
    weather = Chat(agent).say("what's the weather like tomorrow?")
    assert weather.act == "chit_chat" and any(u.why == "off_topic" for u in weather.unused)


def test_an_impossible_combination_still_answers_and_says_what_it_relaxed(agent):
    result = Chat(agent).say("a film-noir western musical documentary from 1920")
    assert result.cards, "nothing ends with zero cards without saying what to change"
    assert result.notices or "only some" in result.text


def test_a_thriller_but_not_too_scary_adds_no_horror(agent):
    result = Chat(agent).say("a thriller but not too scary")
    assert result.intent.genres == ["Thriller"] and "Horror" not in result.intent.genres


def test_kiddie_exclusion_and_a_change_of_audience(agent):
    avoid = Chat(agent).say("I want to avoid anything kiddie")
    assert "Children's" in avoid.intent.exclude_genres and "Children's" not in avoid.intent.genres
    chat = Chat(agent)
    chat.say("Toy Story for my kids")
    grown = chat.say("I loved The Godfather and Goodfellas")
    assert "Children's" not in grown.intent.genres, "a new topic: the children's request no longer stands"
