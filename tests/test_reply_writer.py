"""The LLM may word replies and reasons from the cards' evidence only: the validator, its fallback
on a misbehaving endpoint, and the real local llama.cpp server."""
from __future__ import annotations

import asyncio
import json

import pytest

from agent.llm_parser import LLMSettings
from agent.reply_writer import ReplyWriter, WrittenReply, validate
from agent.session import Card
from tests.llm_server import fake_endpoint, text_completion, tool_call_completion

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
        result = asyncio.run(writer.awrite("sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"]))
    assert result.written_by == "template" and result.text == "Sci-fi movies:"
    assert result.reasons == {EMPIRE: "template reason", FARGO: "template reason"}
    assert any("outside the evidence" in r for r in result.rejected)


def test_prose_instead_of_a_tool_call_falls_back(titles):
    with fake_endpoint(text_completion("Sure! Here are some movies.")) as endpoint:
        result = asyncio.run(ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles).awrite(
            "sci-fi", CARDS, "Sci-fi movies:", ["Sci-Fi"]))
    assert result.written_by == "template" and result.rejected[0].startswith("invalid_output")


@pytest.mark.llm
def test_the_real_server_is_either_validated_or_replaced_by_the_template(titles, llama_url):
    writer = ReplyWriter(LLMSettings(base_url=llama_url, timeout_s=60), titles)
    results = [asyncio.run(writer.awrite("sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])) for _ in range(2)]
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


# ------------------------------------------------------------------------------------ streaming
def stream_body(arguments: list[str], name: str = "WrittenReply") -> str:
    """An OpenAI chat.completion.chunk stream (server-sent events) of one tool call whose arguments
    arrive in the given pieces."""
    def event(delta: dict, finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                                      "model": "fake", "choices": [{"index": 0, "delta": delta,
                                                                    "finish_reason": finish}]}) + "\n\n"
    first = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_0", "type": "function", "function": {"name": name, "arguments": ""}}]}
    pieces = [event({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in arguments]
    return event(first) + "".join(pieces) + event({}, "tool_calls") + "data: [DONE]\n\n"


def pieces_of(arguments: str, size: int = 4) -> list[str]:
    return [arguments[i:i + size] for i in range(0, len(arguments), size)]


def streamed(writer, *args):
    """``awrite`` with a listener: (the drafts it got, the result)."""
    import asyncio

    from agent.reply_writer import streaming_to

    drafts: list[str] = []

    async def run():
        with streaming_to(drafts.append):
            return await writer.awrite(*args)

    return drafts, asyncio.run(run())


def test_drafts_are_whole_words_that_pass_the_checks_so_far(titles):
    from agent.reply_writer import Drafts

    drafts = Drafts(CARDS, titles, ["Sci-Fi"])
    arguments = json.dumps({"reply": "Some sci-fi picks for a quiet night.", "reasons": []})
    shown = [d for d in (drafts.feed(arguments[:n]) for n in range(len(arguments) + 1)) if d is not None]
    assert shown[0] == "Some" and shown[-1] == "Some sci-fi picks for a quiet night."
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(shown, shown[1:]))
    assert "Some sci" not in shown   # a word still growing is not shown ("sci" -> "sci-fi")

    # a claim outside the evidence is held back, and so is everything after it
    drafts = Drafts(CARDS, titles, ["Sci-Fi"])
    arguments = json.dumps({"reply": "Some westerns and sci-fi for tonight.", "reasons": []})
    shown = [d for d in (drafts.feed(arguments[:n]) for n in range(len(arguments) + 1)) if d is not None]
    assert shown == ["Some"] and drafts.held
    assert drafts.feed(arguments, done=True) is None


def test_a_streamed_reply_shows_drafts_and_ends_as_validated(titles):
    reply = "Some sci-fi and crime picks for tonight."
    arguments = json.dumps({"reply": reply, "reasons": [{"item_id": FARGO, "reason": "A crime drama."}]})
    with fake_endpoint(stream_body(pieces_of(arguments)), content_type="text/event-stream") as endpoint:
        writer = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles)
        drafts, result = streamed(writer, "sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    assert endpoint.requests[0]["stream"] is True
    assert result.written_by == "llm" and result.text == reply and result.reasons[FARGO] == "A crime drama."
    assert len(drafts) >= 3 and drafts[-1] == reply and result.details["streamed"]
    assert result.details["stream_chunks"] == len(pieces_of(arguments))


def test_a_streamed_claim_outside_the_evidence_is_never_a_draft_and_the_template_answers(titles):
    arguments = json.dumps({"reply": "Try these, like Toy Story but darker.", "reasons": []})
    with fake_endpoint(stream_body(pieces_of(arguments)), content_type="text/event-stream") as endpoint:
        writer = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles)
        drafts, result = streamed(writer, "sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    assert result.written_by == "template" and result.text == "Sci-fi movies:"
    assert any("outside the evidence" in r for r in result.rejected)
    assert drafts and not any("Story" in d for d in drafts), drafts


def test_a_raw_newline_in_the_streamed_json_is_read_as_a_whole_call_is(titles):
    # llama.cpp's grammar lets a raw newline into a JSON string; LangChain reads a whole call leniently
    arguments = '{"reply": "Some sci-fi\nfor tonight.", "reasons": []}'
    with fake_endpoint(stream_body(pieces_of(arguments)), content_type="text/event-stream") as endpoint:
        writer = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles)
        drafts, result = streamed(writer, "sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    assert result.written_by == "llm" and result.text == "Some sci-fi\nfor tonight." == drafts[-1]
    assert drafts[:2] == ["Some", "Some sci-fi"]


def test_a_broken_stream_falls_back_to_the_template(titles):
    body = stream_body(['{"reply": "Some sci-fi', ' picks'])   # the JSON is never closed
    with fake_endpoint(body, content_type="text/event-stream") as endpoint:
        writer = ReplyWriter(LLMSettings(base_url=endpoint.base_url, timeout_s=5), titles)
        drafts, result = streamed(writer, "sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    # the drafts were shown while it streamed; what the turn shows in their place is the template
    assert drafts == ["Some", "Some sci-fi", "Some sci-fi picks"]
    assert result.written_by == "template" and result.text == "Sci-fi movies:"
    assert result.rejected[0].startswith("invalid_output")


@pytest.mark.llm
def test_the_real_server_streams_the_reply_and_ends_as_validated_or_the_template(titles, llama_url):
    from agent.reply_writer import _claims

    writer = ReplyWriter(LLMSettings(base_url=llama_url, timeout_s=60), titles)
    drafts, result = streamed(writer, "sci-fi movies", CARDS, "Sci-fi movies:", ["Sci-Fi"])
    print("real server, streamed:", result.written_by, result.rejected[:2], drafts, result.details)
    assert result.details["streamed"] and result.details["stream_chunks"] >= 2   # the call came in pieces
    assert result.details["first_token_ms"] < result.details["latency_ms"]
    # every draft grew the one before it, and passed the reply's claim checks as far as it went
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(drafts, drafts[1:]))
    allowed = {EMPIRE, FARGO, STAR_WARS}
    assert all(_claims(d, titles, allowed, {"Action", "Adventure", "Sci-Fi", "Crime", "Drama", "Thriller"},
                       {1980, 1996}) == [] for d in drafts)
    if result.written_by == "llm":   # the last draft is the validated reply itself
        assert len(drafts) >= 2 and drafts[-1] == result.text
        assert validate(written(result.text, *result.reasons.items()), CARDS, titles, ["Sci-Fi"]) == []
    else:
        assert result.rejected and result.text == "Sci-fi movies:"
