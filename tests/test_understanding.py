"""The trained readers on a small labelled fixture with a known answer, how a reading becomes the
turn's act, and the folds of the labelled data."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from agent.intent import Act, Intent, ParseResult, UnusedPart
from agent.understand.apply import act_for, apply_reading
from agent.understand.context import Context, replay, rule_op
from agent.understand.reader import FEATURE_VERSION, Reading, TrainedReader
from data.labelled import fold_of, load_labelled
from eval.understanding import score


def bag_of_words(texts):
    """A deterministic stand-in for MiniLM: each word hashed to a direction, the sum normalised."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 384] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


# The known answer: the operation is carried by one cue word, whatever surrounds it; the rule
# reading is always right about Comedy and always wrong about Horror.
FILLERS = ["ok", "well", "hmm so", "right then", "alright", "you know", "honestly", "please", "now", "so yeah"]
CUES = {"reset": "restart", "unanswerable": "director", "new_request": "recommend"}


def fixture_rows():
    rows, parsed, contexts = [], [], []
    for n in range(60):
        op = list(CUES)[n % 3]
        text = f"{FILLERS[n % len(FILLERS)]} {CUES[op]} {FILLERS[(n * 7) % len(FILLERS)]}"
        genres = ["Comedy"] if n % 2 else []
        ruled = genres + (["Horror"] if n % 4 in (1, 2) else [])
        if op == "unanswerable":
            text += "?"
        rows.append({"id": f"f{n}", "conversation": f"c{n // 2}", "utterance": text,
                     "expected": {"op": op, "genres": genres, "exclude_genres": [],
                                  "titles": [], "exclude_titles": [], "years": None}})
        parsed.append(ParseResult(intent=Intent(act=Act.recommend, genres=ruled), parser="offline"))
        k = n // 3   # the context varies independently of the operation
        contexts.append(Context(has_standing=bool(k % 2), cards_shown=bool((k // 2) % 2), turn=k % 5))
    return rows, parsed, contexts


@pytest.mark.parametrize("variant", ["text", "hybrid"])
def test_a_trained_reader_learns_the_operation_from_the_cue_in_any_surroundings(variant):
    rows, parsed, contexts = fixture_rows()
    reader = TrainedReader(variant, bag_of_words).fit(rows, parsed, contexts, bag_of_words([r["utterance"] for r in rows]))
    unseen = ["could you restart everything", "who was the director?", "recommend one to me"]
    got = [reader.read(t, ParseResult(intent=Intent(), parser="offline"), Context()).op for t in unseen]
    assert got == ["reset", "unanswerable", "new_request"]


def no_text(texts):
    """Vectors that carry nothing: the genre reader has only the rule reading and the message's shape."""
    return np.zeros((len(texts), 384), dtype=np.float32)


def test_the_hybrid_keeps_the_rule_genres_it_can_trust_and_drops_the_others():
    rows, parsed, contexts = fixture_rows()
    reader = TrainedReader("hybrid", no_text).fit(rows, parsed, contexts, no_text([r["utterance"] for r in rows]))
    ruled = ParseResult(intent=Intent(genres=["Comedy", "Horror"]), parser="offline")
    for where in contexts[:6]:
        assert reader.read("well recommend now", ruled, where).genres == ["Comedy"]
        assert reader.read("well recommend now", ParseResult(intent=Intent(), parser="offline"), where).genres == []


def test_the_rules_variant_is_the_rule_reading(tmp_path):
    parsed = ParseResult(intent=Intent(act=Act.refine, genres=["Horror"], exclude_genres=["Comedy"]), parser="offline")
    reading = TrainedReader("rules").read("scarier, no comedy", parsed, Context(has_standing=True))
    assert (reading.op, reading.genres, reading.exclude_genres) == ("refine", ["Horror"], ["Comedy"])
    # a refinement of nothing is a new request
    assert rule_op(parsed, Context(has_standing=False)) == "new_request"


def test_a_saved_reader_reads_the_same_and_refuses_other_features(tmp_path):
    rows, parsed, contexts = fixture_rows()
    reader = TrainedReader("hybrid", bag_of_words).fit(rows, parsed, contexts, bag_of_words([r["utterance"] for r in rows]))
    reader.save(tmp_path / "reader.joblib")
    again = TrainedReader.load(tmp_path / "reader.joblib", bag_of_words)
    blank = ParseResult(intent=Intent(), parser="offline")
    for text in ("restart please", "director?", "recommend"):
        assert again.read(text, blank, Context()).op_probs == reader.read(text, blank, Context()).op_probs
    import joblib

    saved = joblib.load(tmp_path / "reader.joblib")
    saved["meta"]["feature_version"] = FEATURE_VERSION + 1
    joblib.dump(saved, tmp_path / "old.joblib")
    with pytest.raises(ValueError, match="cineagent train"):
        TrainedReader.load(tmp_path / "old.joblib", bag_of_words)


def test_an_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="rules, text, hybrid"):
        TrainedReader("forest")


# --------------------------------------------------------------------------- reading -> act
STANDING = Context(has_standing=True, cards_shown=True, turn=3)


def test_a_new_request_is_never_a_refinement_of_the_standing_one():
    parsed = ParseResult(intent=Intent(act=Act.refine, genres=["Crime"]), parser="offline")
    applied = apply_reading(parsed, Reading("new_request", ["Crime"], []), STANDING, "a clever crime film")
    assert applied.intent.act == Act.recommend and applied.details["rule_reading"]["act"] == "refine"


def test_a_reset_is_marked_and_an_empty_one_asks():
    parsed = ParseResult(intent=Intent(act=Act.chit_chat), parser="offline")
    applied = apply_reading(parsed, Reading("reset", [], []), STANDING, "start over")
    assert applied.details["reset"] and applied.intent.act == Act.clarify
    family = ParseResult(intent=Intent(act=Act.refine, genres=["Children's"]), parser="offline")
    assert apply_reading(family, Reading("reset", ["Children's"], []), STANDING, "start over: a family movie").intent.act == Act.recommend


def test_a_question_the_catalogue_cannot_answer_is_said_and_recommends_nothing():
    parsed = ParseResult(intent=Intent(act=Act.recommend, titles=[100]), parser="offline")
    applied = apply_reading(parsed, Reading("unanswerable", [], []), STANDING, "who directed Fargo?")
    assert applied.intent.act == Act.chit_chat
    assert [u.why for u in applied.unused] == ["facts"]
    # already said as a person the catalogue does not hold: not said twice
    person = parsed.model_copy(update={"unused": [UnusedPart(text="Coen brothers", why="person")]})
    assert [u.why for u in apply_reading(person, Reading("unanswerable", [], []), STANDING, "x").unused] == ["person"]


def test_feedback_keeps_the_rule_readings_page_or_reference():
    more = Intent(act=Act.more)
    assert act_for("feedback", more, STANDING) == Act.more
    assert act_for("feedback", Intent(act=Act.refine, card_ref=2), STANDING) == Act.refine
    assert act_for("feedback", Intent(act=Act.recommend), STANDING) == Act.more
    assert act_for("question_card", Intent(), Context()) == Act.chit_chat   # nothing shown to ask about


# --------------------------------------------------------------------------- data and scoring
def test_every_conversation_lies_in_one_fold_and_a_quarter_is_held_out():
    rows = load_labelled()
    assert len(rows) >= 600
    by_conversation: dict[str, set[str]] = {}
    for row in rows:
        by_conversation.setdefault(row["conversation"], set()).add(row["fold"])
        assert row["fold"] == fold_of(row["conversation"])
    assert all(len(f) == 1 for f in by_conversation.values())
    held = sum(r["fold"] == "heldout" for r in rows) / len(rows)
    assert 0.2 <= held <= 0.33


def test_the_score_counts_a_whole_parse_only_when_every_slot_is_right():
    row = {"id": "x", "utterance": "u", "expected": {"op": "refine", "genres": ["Comedy"], "exclude_genres": [],
                                                     "titles": [], "exclude_titles": [], "years": None}}
    parsed = ParseResult(intent=Intent(), parser="offline")
    right = score([row], [parsed], [Reading("refine", ["Comedy"], [])])
    wrong_op = score([row], [parsed], [Reading("feedback", ["Comedy"], [])])
    assert right["whole_parse"] == 1.0 and right["genre_micro_f1"] == 1.0
    assert wrong_op["whole_parse"] == 0.0 and wrong_op["genre_exact"] == 1.0 and wrong_op["misses"][0]["wrong"] == ["op"]


def test_a_transcript_gives_the_context_a_live_conversation_would(movielens):
    from agent.offline_parser import OfflineParser

    parser = OfflineParser(movielens, embedder=None)
    context, standing = replay(["user: hi there", "bot: hello! what do you like?", "user: 80s comedies please",
                                "bot: Here are some picks: 1. Airplane! (1980); 2. Tootsie (1982)"], parser)
    assert context == Context(has_standing=True, cards_shown=True, turn=2)
    assert standing.genres == ["Comedy"] and standing.years.start == 1980
    assert replay([], parser) == (Context(), None)
