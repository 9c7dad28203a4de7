"""Gold-set loading, scoring and report; and the offline parser measured on the real gold set."""
from __future__ import annotations

import json

import pytest

from agent.intent import Act, Intent, IntentParser, ParseResult, YearRange
from data import GOLD_SET
from eval.gold import GoldSetError, evaluate_gold, format_table, load_cases


def case(cid, utterance, genres=(), excluded=(), titles=(), **extra):
    expected = {"genres": list(genres), "exclude_genres": list(excluded), "titles": list(titles), **extra}
    return {"id": cid, "utterance": utterance, "expected": expected, "tags": []}


class ScriptedParser(IntentParser):
    """Answers each utterance with a fixed intent (chit-chat for anything unscripted)."""

    name = "scripted"

    def __init__(self, answers: dict[str, Intent]):
        self.answers = answers

    def parse(self, text, previous=None):
        return ParseResult(intent=self.answers.get(text, Intent(act=Act.chit_chat)), parser=self.name)


# --------------------------------------------------------------------------- loading
def test_loads_a_json_list_and_json_lines(tmp_path):
    cases = [case("a", "funny", ["Comedy"]), case(2, "hi")]
    as_list, as_lines = tmp_path / "gold.json", tmp_path / "gold.jsonl"
    as_list.write_text(json.dumps(cases))
    as_lines.write_text("\n".join(json.dumps(c) for c in cases) + "\n\n")
    assert load_cases(as_list) == load_cases(as_lines)
    assert [c["id"] for c in load_cases(as_list)] == ["a", "2"]


def test_tags_are_optional_and_years_act_allowed(tmp_path):
    item = case("y", "80s comedies", ["Comedy"], years={"start": 1980, "end": 1989}, act="recommend")
    del item["tags"]
    path = tmp_path / "gold.json"
    path.write_text(json.dumps([item]))
    loaded = load_cases(path)[0]
    assert loaded["tags"] == [] and loaded["expected"]["years"] == {"start": 1980, "end": 1989}


@pytest.mark.parametrize("content, message", [
    (json.dumps([case("x1", "spooky", ["Spooky"])]), r"x1.*unknown genre.*Spooky.*valid genres: Action"),
    (json.dumps([{"id": "x2", "utterance": "hi"}]), r"x2.*missing key.*expected"),
    (json.dumps([case("x3", "hi", titles=["Fargo"])]), r"x3.*titles must be a list of MovieLens item ids"),
    (json.dumps([{**case("x4", "hi"), "expectd": {}}]), r"x4.*unknown key.*expectd"),
    (json.dumps([{"id": "x5", "utterance": "hi", "expected": {"genres": []}}]), r"x5.*missing \['exclude_genres', 'titles'\]"),
    (json.dumps([case("d", "a"), case("d", "b")]), r"duplicate case id 'd'"),
    (json.dumps([case("x6", "hi", act="dance")]), r"x6.*act 'dance' is not one of"),
    (json.dumps(case("x7", "hi")) + "\n{not json\n", r"line 2 is not valid JSON"),
    (json.dumps({"id": "x8"}) + "\n", r"line 1.*x8.*missing key"),
    ("[1, 2", r"not valid JSON"),
    ("", r"no cases"),
    ("[\"just a string\"]", r"item 0: a case must be an object"),
])
def test_bad_files_name_the_bad_case(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GoldSetError, match=message):
        load_cases(path)


def test_missing_file(tmp_path):
    with pytest.raises(GoldSetError, match="cannot read gold set"):
        load_cases(tmp_path / "nope.json")


# --------------------------------------------------------------------------- scoring
def test_metrics_on_a_scripted_parser():
    cases = [
        case("1", "funny scifi", ["Comedy", "Sci-Fi"]),            # predicted Comedy only
        case("2", "no horror", [], ["Horror"]),                     # right
        case("3", "like Fargo", titles=[100]),                      # right title
        case("4", "hi"),                                            # predicted a false genre and title
        case("5", "80s drama", ["Drama"], years={"start": 1980, "end": 1989}),  # years wrong
    ]
    parser = ScriptedParser({
        "funny scifi": Intent(genres=["Comedy"]),
        "no horror": Intent(exclude_genres=["Horror"]),
        "like Fargo": Intent(titles=[100]),
        "hi": Intent(genres=["Drama"], titles=[7]),
        "80s drama": Intent(genres=["Drama"], years=YearRange(start=1990, end=1999)),
    })
    report = evaluate_gold(cases, parser)
    assert report["n"] == 5
    assert report["accuracy"] == pytest.approx(3 / 5)                 # cases 2, 3, 5
    assert report["micro_precision"] == pytest.approx(2 / 3)          # Comedy, Drama right; Drama on "hi" wrong
    assert report["micro_recall"] == pytest.approx(2 / 3)             # Sci-Fi missed
    assert report["micro_f1"] == pytest.approx(2 / 3)
    assert report["per_genre_recall"] == {"Comedy": 1.0, "Drama": 1.0, "Sci-Fi": 0.0}
    assert report["exclusion_accuracy"] == 1.0
    assert report["title_cases"] == 2 and report["title_accuracy"] == pytest.approx(1 / 2)
    assert report["year_accuracy"] == 0.0 and report["act_accuracy"] is None
    assert [r["correct"] for r in report["cases"]] == [False, True, True, False, False]
    first = report["cases"][0]
    assert first["predicted"]["genres"] == ["Comedy"] and first["expected"]["genres"] == ["Comedy", "Sci-Fi"]


def test_full_schema_scores_exclude_titles_null_years_and_acts(tmp_path):
    cases = [
        case("a", "older westerns", ["Western"], years=None, act="recommend", exclude_titles=[]),
        case("b", "seen Fargo, more please", exclude_titles=[100], years=None, act="more"),
        case("c", "no horror", [], ["Horror"], act="refine", years={"start": None, "end": None}),
        case("d", "80s drama", ["Drama"], years={"start": 1980, "end": 1989}, act="recommend"),
    ]
    path = tmp_path / "full.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in cases))
    loaded = load_cases(path)
    assert loaded[0]["expected"]["years"] is None and loaded[2]["expected"]["years"] is None
    parser = ScriptedParser({
        "older westerns": Intent(genres=["Western"], years=YearRange(end=1979)),   # a window nobody asked for
        "seen Fargo, more please": Intent(act=Act.more, exclude_titles=[100]),
        "no horror": Intent(act=Act.recommend, exclude_genres=["Horror"]),          # refine missed
        "80s drama": Intent(genres=["Drama"], years=YearRange(start=1980, end=1989)),
    })
    report = evaluate_gold(loaded, parser)
    assert report["unwanted_years"] == 1 and report["year_errors"] == 1
    assert report["exclude_title_accuracy"] == 1.0
    assert report["act_accuracy"] == pytest.approx(3 / 4) and report["act_accuracy_no_refine"] == 1.0
    assert [r["correct"] for r in report["cases"]] == [False, True, False, True]
    assert report["whole_parse"] == report["cases_correct"] == pytest.approx(2 / 4)
    assert report["cases"][1]["predicted"]["exclude_titles"] == [100]
    assert "unwanted_years" in format_table(report)


def test_exclude_titles_must_be_ids(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([case("x", "hi", exclude_titles=["Fargo"])]))
    with pytest.raises(GoldSetError, match="exclude_titles must be a list of MovieLens item ids"):
        load_cases(path)


def test_earlier_turns_are_parsed_and_merged_first(tmp_path):
    seen: list[tuple[str, object]] = []

    class Recording(IntentParser):
        def parse(self, text, previous=None):
            seen.append((text, previous))
            intents = {"a comedy": Intent(genres=["Comedy"]),
                       "no romance": Intent(act=Act.refine, exclude_genres=["Romance"]),
                       "older please": Intent(act=Act.refine, adjust=["older"])}
            return ParseResult(intent=intents[text], parser="rec")

    item = case("t", "older please", act="refine")
    item["turns"] = ["a comedy", "no romance"]
    path = tmp_path / "turns.json"
    path.write_text(json.dumps([item]))
    report = evaluate_gold(load_cases(path), Recording())
    assert [t for t, _ in seen] == ["a comedy", "no romance", "older please"]
    assert seen[0][1] is None and seen[1][1].genres == ["Comedy"]
    assert seen[2][1].genres == ["Comedy"] and seen[2][1].exclude_genres == ["Romance"]
    assert report["act_accuracy"] == 1.0


def test_turns_must_be_strings(tmp_path):
    item = case("t", "hi")
    item["turns"] = "a comedy"
    path = tmp_path / "turns.json"
    path.write_text(json.dumps([item]))
    with pytest.raises(GoldSetError, match="turns must be a list"):
        load_cases(path)


def test_cli_missing_dataset_is_a_clear_error(tmp_path, capsys):
    from cli import main

    assert main(["eval", "gold", "--dataset", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot read gold set" in err and "Traceback" not in err


def test_no_title_in_scope_scores_one():
    report = evaluate_gold([case("1", "hi")], ScriptedParser({}))
    assert report["title_accuracy"] == 1.0 and report["title_cases"] == 0
    assert report["micro_f1"] == 1.0 and report["accuracy"] == 1.0


def test_table_marks_failures():
    cases = [case("ok", "hi"), case("bad", "funny", ["Comedy"])]
    report = evaluate_gold(cases, ScriptedParser({}))
    table = format_table(report)
    lines = table.splitlines()
    assert any(line.startswith("x bad") for line in lines)
    assert any(line.startswith("  ok") for line in lines)
    assert "expected:" in table and "micro_f1" in table
    assert not any(line.startswith("  ok") for line in format_table(report, only_failures=True).splitlines())


# --------------------------------------------------------------------------- the real gold set
def test_gold_set_is_valid_and_large_enough():
    cases = load_cases(GOLD_SET)
    assert len(cases) >= 160
    tags = {t for c in cases for t in c["tags"]}
    assert {"single", "multi", "exclusion", "slang", "typo", "title", "years", "chit_chat"} <= tags


@pytest.mark.integration
def test_gold_titles_exist_in_the_catalog(movielens):
    ids = set(int(i) for i in movielens.item_ids)
    missing = [(c["id"], t) for c in load_cases(GOLD_SET) for t in c["expected"]["titles"] if t not in ids]
    assert missing == []


@pytest.mark.integration
def test_offline_parser_meets_the_gold_targets(movielens):
    from agent.offline_parser import OfflineParser

    report = evaluate_gold(load_cases(GOLD_SET), OfflineParser(movielens))
    failures = format_table(report, only_failures=True)
    assert report["accuracy"] >= 0.90, failures
    assert report["micro_f1"] >= 0.95, failures
    assert report["title_accuracy"] >= 0.90, failures
    chit_chat = [r for r in report["cases"] if "chit_chat" in r["tags"]]
    assert chit_chat and all(r["predicted"]["genres"] == [] for r in chit_chat), failures


def test_every_error_meant_for_people_shares_one_base():
    """The CLI words any of them as one line and exit 2 (tested above for a missing dataset)."""
    from agent.dialogue import BadRequest
    from agent.errors import NotReady, UnknownPersona, UnknownTurn
    from agent.llm_parser import LLMNotConfigured
    from agent.prompts import PromptError
    from agent.users import UnknownUser
    from data.errors import CineAgentError
    from agent.settings import SettingsError
    from data.event_store import StoreError
    from data.events import FeedbackError
    from data.movielens import DataError
    from data.people import PeopleError
    from eval.dialogues import DialogueSetError
    from eval.gold import GoldSetError
    from models.artifacts import ArtifactError
    from web.auth import Forbidden, Unauthorized
    from web.limits import RateLimited

    for error in (BadRequest, LLMNotConfigured, PromptError, UnknownUser, FeedbackError, DataError, PeopleError,
                  DialogueSetError, GoldSetError, ArtifactError, NotReady, UnknownPersona, UnknownTurn, SettingsError,
                  StoreError, Forbidden, Unauthorized, RateLimited):
        assert issubclass(error, CineAgentError), error
