"""``cineagent eval dialogues`` on a toy catalog whose answers are known."""
from __future__ import annotations

import json

import pytest

from eval.dialogues import Baselines, DialogueSetError, case_metrics, evaluate_dialogues, load_dialogues, format_report
from tests.toydata import toy_movielens


def write_cases(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


CASES = [
    {"id": "a", "seeker_messages": ["space movies please"], "mentioned": [1], "seeker_mentioned": [1], "targets": [2]},
    {"id": "b", "seeker_messages": ["hi", "love stories"], "mentioned": [], "seeker_mentioned": [], "targets": [11, 12]},
]


def test_metrics_of_one_case():
    assert case_metrics([5, 2, 9], [2]) == {"R@1": 0.0, "R@5": 1.0, "R@10": 1.0, "HR@10": 1.0}
    assert case_metrics([11, 3], [11, 12])["R@1"] == 0.5
    assert case_metrics([], [4])["HR@10"] == 0.0


def test_baselines_know_the_clusters():
    data, _, _ = toy_movielens()
    baselines = Baselines(data)
    # users who rated item 1 (the Sci-Fi cluster) rated the other Sci-Fi items: co-rating finds them
    picks = baselines.corated([1], exclude={1}, k=5)
    assert 1 not in picks and all(i <= 10 for i in picks)
    assert baselines.popularity(exclude={picks[0]}, k=3)[0] != picks[0]
    # nothing mentioned: popularity fills the list
    assert baselines.corated([], exclude=set(), k=4) == baselines.popularity(set(), k=4)


def test_report_scores_the_replayed_cards_against_the_baselines(tmp_path):
    data, _, _ = toy_movielens()
    cases = load_dialogues(write_cases(tmp_path / "d.jsonl", CASES))
    answers = {"a": [2, 3, 4], "b": []}  # case b: the agent never showed a card

    def replay(case):
        return answers[case["id"]], {"replies": [], "last_reply_had_cards": bool(answers[case["id"]])}

    report = evaluate_dialogues(cases, data, replay)
    agent = report["metrics"]["cineagent"]
    assert agent["R@1"] == 0.5 and agent["R@10"] == 0.5 and agent["HR@10"] == 0.5 and agent["n"] == 2
    assert report["no_cards"] == 1 and report["no_cards_share"] == 0.5
    assert set(report["metrics"]) == {"cineagent", "popularity", "corated", "corated_all"}
    assert [c["id"] for c in report["cases"]] == ["a", "b"]
    assert "cineagent" in format_report(report)


@pytest.mark.parametrize("bad, problem", [
    ({"seeker_messages": "hi", "targets": [1]}, "seeker_messages"),
    ({"seeker_messages": ["hi"], "targets": []}, "targets"),
    ({"seeker_messages": ["hi"], "targets": [True]}, "targets"),
    ({"seeker_messages": ["hi"], "targets": [1], "mentioned": ["x"]}, "mentioned"),
])
def test_bad_cases_are_refused_with_the_field(tmp_path, bad, problem):
    with pytest.raises(DialogueSetError, match=problem):
        load_dialogues(write_cases(tmp_path / "bad.jsonl", [bad]))


def test_missing_file_says_what_to_pass(tmp_path):
    with pytest.raises(DialogueSetError, match="--dataset"):
        load_dialogues(tmp_path / "nope.jsonl")


@pytest.mark.integration
def test_replay_through_the_authenticated_api_matches_the_in_process_agent(tmp_path):
    """The same cases through a served app (a new person and token per case, deleted afterwards)."""
    from data import movielens
    from eval.dialogues import api_replay
    from tests.app_server import running_app

    cases = load_dialogues(write_cases(tmp_path / "d.jsonl", [
        {"id": "api-1", "seeker_messages": ["hello!", "a sci-fi movie like Star Wars please"], "mentioned": [50],
         "seeker_mentioned": [50], "targets": [181]},
        {"id": "api-2", "seeker_messages": ["movies with Tom Hanks"], "mentioned": [], "seeker_mentioned": [],
         "targets": [1]},
    ]))
    with running_app(tmp_path) as app:
        report = evaluate_dialogues(cases, movielens.load(), api_replay(app.url))
    first, second = report["cases"]
    assert first["cineagent"] and first["replies"][1]["act"] in ("recommend", "refine")
    assert second["replies"][0]["unused"] == [{"text": "Tom Hanks", "why": "person"}]
    assert report["no_cards"] == 0
