"""The LLM may word replies and reasons from the cards' evidence only: the validator, its fallback
on a misbehaving endpoint, and the real local llama.cpp server."""
from __future__ import annotations

import json

import pytest

from agent.llm_parser import LLMSettings
from agent.reply_writer import ReplyWriter, WrittenReply, validate
from agent.session import Card
from tests.llm_server import fake_endpoint, llama_server, text_completion, tool_call_completion

STAR_WARS, EMPIRE, FARGO, TOY_STORY = 50, 172, 100, 1


@pytest.fixture(scope="module")
def titles(movielens):
    from agent.offline_parser import OfflineParser

    return OfflineParser(movielens, embedder=None).titles


def card(item_id, title, year, genres, liked=(), referenced=()):
    evidence = {"profile_items": [{"item_id": i, "title": t} for i, t in liked], "referenced_titles": list(referenced),
                "genres": [g for g in genres if g in ("Sci-Fi", "Crime")], "missing_genres": []}
    return Card(item_id, title, year, list(genres), "template reason", 1.0, evidence)


CARDS = [card(EMPIRE, "The Empire Strikes Back", 1980, ["Action", "Adventure", "Sci-Fi"], liked=[(STAR_WARS, "Star Wars")]),
         card(FARGO, "Fargo", 1996, ["Crime", "Drama", "Thriller"])]


def written(reply, *reasons):
    return WrittenReply(reply=reply, reasons=[{"item_id": i, "reason": r} for i, r in reasons])


def test_a_reply_built_from_the_evidence_passes(titles):
    ok = written("Some sci-fi and crime picks for tonight.",
                 (EMPIRE, "A 1980 sci-fi adventure; you liked Star Wars."), (FARGO, "A crime drama with a thriller edge."))
    assert validate(ok, CARDS, titles, ["Sci-Fi"]) == []


@pytest.mark.parametrize("bad, problem", [
    (written("Here you go.", (EMPIRE, "Because you liked Toy Story.")), "outside the evidence"),
    (written("Here you go.", (FARGO, "A scary horror film.")), "genre"),
    (written("Here you go.", (FARGO, "From 1987, a classic.")), "number"),
    (written("Here you go.", (999, "A great pick.")), "not a shown card"),
    (written("Westerns for you!"), "genre"),
    (written(""), "empty"),
])
def test_claims_outside_the_evidence_are_rejected(titles, bad, problem):
    problems = validate(bad, CARDS, titles, ["Sci-Fi"])
    assert problems and any(problem in p for p in problems), problems


def test_an_invented_movie_from_the_endpoint_falls_back_to_the_template(titles):
    args = json.dumps({"reply": "Try these!", "reasons": [{"item_id": FARGO, "reason": "Like Toy Story, but darker."}]})
    with fake_endpoint(tool_call_completion(args, name="WrittenReply")) as endpoint:
        writer = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles)
        result = writer.write("sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    assert result.written_by == "template" and result.text == "Sci-fi movies:"
    assert result.reasons == {EMPIRE: "template reason", FARGO: "template reason"}
    assert any("outside the evidence" in r for r in result.rejected)


def test_prose_instead_of_a_tool_call_falls_back(titles):
    with fake_endpoint(text_completion("Sure! Here are some movies.")) as endpoint:
        result = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles).write(
            "sci-fi", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    assert result.written_by == "template" and result.rejected[0].startswith("invalid_output")


@pytest.mark.llm
def test_the_real_server_is_either_validated_or_replaced_by_the_template(titles):
    with llama_server() as base_url:
        writer = ReplyWriter(LLMSettings(base_url=base_url, timeout_s=60), titles)
        results = [writer.write("sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"]) for _ in range(2)]
    for result in results:
        assert result.details.get("latency_ms") is not None
        if result.written_by == "llm":  # what the model wrote passed every check
            assert validate(written(result.text, *result.reasons.items()), CARDS, titles, ["Sci-Fi"]) == []
        else:
            assert result.rejected and result.text == "Sci-fi movies:"
    print("real server:", [(r.written_by, r.rejected[:2]) for r in results])


@pytest.mark.integration
def test_a_turn_shows_validated_words_and_traces_which_path_answered(trained, movielens, stratified_split,
                                                                     item_text_vectors, titles, tmp_path):
    from agent.dialogue import DialogueManager
    from agent.offline_parser import OfflineParser
    from agent.runtime import base_profiles
    from retrieval.catalog import CatalogIndex
    from retrieval.profile_index import ProfileStore

    def manager(base_url):
        profiles = ProfileStore(item_text_vectors, movielens.item_ids, base_profiles(stratified_split.train))
        return DialogueManager(trained, OfflineParser(movielens), CatalogIndex(item_text_vectors, movielens.item_ids),
                               profiles, writer=ReplyWriter(LLMSettings(base_url=base_url, timeout_s=5), titles))

    reply = json.dumps({"reply": "A few westerns for a quiet night.", "reasons": []})
    with fake_endpoint(tool_call_completion(reply, name="WrittenReply")) as endpoint:
        result = manager(endpoint.base_url).turn("196", "s-writer", "a western")
    step = next(s for s in result.steps if s.name == "write_reply")
    assert step.kind == "generation" and step.output["written_by"] == "llm"
    assert result.text == "A few westerns for a quiet night." and result.cards

    invented = json.dumps({"reply": "Horror nights ahead!", "reasons": []})
    with fake_endpoint(tool_call_completion(invented, name="WrittenReply")) as endpoint:
        result = manager(endpoint.base_url).turn("196", "s-writer2", "a western")
    step = next(s for s in result.steps if s.name == "write_reply")
    assert step.output["written_by"] == "template" and step.output["rejected"]
    assert "western" in result.text.lower() and "Horror" not in result.text
