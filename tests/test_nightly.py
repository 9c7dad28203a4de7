"""The nightly job (figures, regressions, feedback statistics, dashboard in a real browser, the
scheduler) and the gold set as a Langfuse experiment against a local stand-in for Langfuse."""
from __future__ import annotations

import json
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.tracing import Tracing, TracingConfig
from data import GOLD_SET
from data.event_store import EventStore
from data.events import Turn, make_swipe
from eval import dashboard
from eval.experiments import DATASET, item_id, run_gold
from eval.gold import load_cases
from eval.nightly import (NightlyConfig, NightlyScheduler, card_source, feedback_stats, figures_of, next_run,
                          regressions, run_nightly)
from tests.llm_server import free_port
from tests.otlp_receiver import langfuse_receiver

CHROMIUM = "/usr/bin/chromium"  # Debian's package (tests/prepare.sh installs it); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def entry(figures: dict, swipes: int = 100, **extra) -> dict:
    return {"figures": figures, "feedback": {"n": swipes}, **extra}


# ---------------------------------------------------------------------------------------- regressions
def test_a_drop_beyond_the_threshold_is_named_and_errors_rising_count_as_drops():
    before = entry({"gold.accuracy": 0.90, "gold.micro_f1": 0.95, "rating.best.rmse": 0.90,
                    "ranking.stratified.fusion.ndcg@10": 0.40, "feedback.like_rate": 0.70})
    now = entry({"gold.accuracy": 0.87, "gold.micro_f1": 0.945, "rating.best.rmse": 0.93,
                 "ranking.stratified.fusion.ndcg@10": 0.45, "feedback.like_rate": 0.60})
    found = regressions(before, now, threshold=0.02)
    assert [r["figure"] for r in found] == ["feedback.like_rate", "gold.accuracy", "rating.best.rmse"]
    assert found[1] == {"figure": "gold.accuracy", "previous": 0.90, "current": 0.87, "drop": pytest.approx(0.03)}
    assert regressions(None, now, 0.02) == []
    assert regressions(before, now, threshold=0.2) == []


def test_like_rate_is_guarded_only_with_enough_swipes_and_missing_figures_are_skipped():
    before = entry({"feedback.like_rate": 0.9, "rating.best.rmse": 0.9}, swipes=10)
    now = entry({"feedback.like_rate": 0.1}, swipes=500)
    assert regressions(before, now, 0.02, min_swipes=30) == []
    assert [r["figure"] for r in regressions(before, now, 0.02, min_swipes=5)] == ["feedback.like_rate"]


def test_figures_flatten_gold_ranking_rating_and_feedback():
    gold = {"accuracy": 0.9, "micro_f1": 0.95, "year_accuracy": None}
    offline = {"ranking": {"stratified": {"svd": {"ndcg@10": 0.3, "recall@10": 0.2, "coverage@10": 0.5}}},
               "rating": {"svd_default": {"rmse": 0.93, "mae": 0.73}, "best": {"name": "blend", "rmse": 0.9, "mae": 0.7}}}
    figures = figures_of(gold, offline, {"like_rate": 0.5})
    assert figures == {"gold.accuracy": 0.9, "gold.micro_f1": 0.95, "ranking.stratified.svd.ndcg@10": 0.3,
                       "ranking.stratified.svd.recall@10": 0.2, "rating.svd_default.rmse": 0.93,
                       "rating.svd_default.mae": 0.73, "rating.best.rmse": 0.9, "rating.best.mae": 0.7,
                       "feedback.like_rate": 0.5}


# ---------------------------------------------------------------------------------------- feedback statistics
def explained(trace_id: str, cards: dict[int, dict]) -> Turn:
    """The turn that showed these cards, each with the sources that ranked it."""
    return Turn(trace_id=trace_id, user_id="196", session_id="s", items=list(cards), sources=list(cards.values()))


def test_feedback_stats_by_position_and_source(tmp_path):
    traces = {"a" * 32: explained("a" * 32, {1: {"svd": 3, "semantic": 1}, 2: {"two_tower": 2}, 3: {}})}
    swipes = [make_swipe(user_id="196", session_id="s", item_id=item, action=action, trace_id="a" * 32, rank=rank)
              for item, action, rank in ((1, "like", 1), (2, "dislike", 2), (3, "like", 3), (1, "dislike", 1))]
    swipes.append(make_swipe(user_id="196", session_id="s", item_id=9, action="like", trace_id="b" * 32, rank=1))
    stats = feedback_stats(swipes, traces)
    assert (stats["n"], stats["likes"], stats["dislikes"], stats["like_rate"]) == (5, 3, 2, 0.6)
    assert stats["by_rank"]["1"] == {"n": 3, "likes": 2, "like_rate": pytest.approx(2 / 3)}
    assert stats["by_source"] == {"semantic": {"n": 2, "likes": 1, "like_rate": 0.5},
                                  "two_tower": {"n": 1, "likes": 0, "like_rate": 0.0},
                                  "uncited": {"n": 1, "likes": 1, "like_rate": 1.0},
                                  "unknown": {"n": 1, "likes": 1, "like_rate": 1.0}}
    assert card_source(None, 1) == "unknown"


# ---------------------------------------------------------------------------------------- dashboard
def synthetic_history(runs: int = 3) -> list[dict]:
    out = []
    for k in range(runs):
        out.append({"ts_iso": f"2026-01-0{k + 1}T02:30:00+00:00", "date": f"2026-01-0{k + 1}", "quick": True,
                    "parser": "offline", "figures": {"gold.accuracy": 0.8 + 0.05 * k, "gold.micro_f1": 0.9,
                                                     "ranking.stratified.svd.ndcg@10": 0.3 + 0.01 * k,
                                                     "ranking.stratified.svd.recall@10": 0.2},
                    "gold": {"per_genre_recall": {"Comedy": 0.9, "Horror": 0.7 + 0.1 * k}},
                    "feedback": {"n": 4, "like_rate": 0.5, "by_rank": {"1": {"n": 2, "likes": 1, "like_rate": 0.5}},
                                 "by_source": {"svd": {"n": 4, "likes": 2, "like_rate": 0.5}}}})
    return out


def test_dashboard_is_self_contained_with_every_plot():
    gold = {"cases": [{"id": "g1", "utterance": "a <b>comedy</b>", "expected": {"genres": ["Comedy"]},
                       "predicted": {"genres": []}, "correct": False, "tags": ["single"]}]}
    page = dashboard.render(synthetic_history(), gold, [], 0.02)
    # accuracy over time, per-genre recall, ndcg@10 and recall@10 over time, like rate, by rank, by source
    assert page.count("<svg") == 7
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing may be fetched"
    assert "<script" not in page and "<link" not in page
    assert "a &lt;b&gt;comedy&lt;/b&gt;" in page, "utterances are escaped"
    assert "No figure fell" in page


# ---------------------------------------------------------------------------------------- the nightly job, for real
def stratified_ranking(trained, split):
    """The quick benchmark's figures from the session's already-fit models (fit on this same
    stratified training split) instead of fitting them again; computed once for both runs."""
    from eval.ranking import evaluate_ranking

    computed: dict = {}

    def offline(data, quick):
        assert quick
        if not computed:
            computed["ranking"] = {"stratified": {name: evaluate_ranking(model, split.train, split.test, data)
                                                  for name, model in trained.models().items()}}
        return computed

    return offline


class ForgetsExclusions:
    """A planted regression: the real parser, but every "no horror" is lost."""

    def __init__(self, parser):
        self.parser, self.name = parser, parser.name

    def parse(self, text, previous=None):
        result = self.parser.parse(text, previous)
        return result.model_copy(update={"intent": result.intent.model_copy(update={"exclude_genres": []})})


@pytest.mark.integration
@pytest.mark.browser
def test_nightly_on_real_data_writes_the_dashboard_and_catches_a_planted_regression(
        movielens, trained, stratified_split, tmp_path):
    from agent.offline_parser import OfflineParser

    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    feedback = EventStore(url)
    feedback.add_turn(explained("c" * 32, {50: {"svd": 1}, 181: {"semantic": 4}}))
    feedback.add_swipe(make_swipe(user_id="196", session_id="s", item_id=50, action="like", trace_id="c" * 32, rank=1))
    feedback.add_swipe(make_swipe(user_id="196", session_id="s", item_id=181, action="dislike", trace_id="c" * 32,
                                  rank=2))
    config = NightlyConfig(quick=True, eval_dir=tmp_path / "eval", database_url=url)
    offline = stratified_ranking(trained, stratified_split)
    parser = OfflineParser(movielens)

    first = run_nightly(config, data=movielens, parser=parser, offline=offline,
                        now=datetime(2026, 1, 1, 2, 30, tzinfo=timezone.utc))
    assert first.exit_code == 0 and first.regressions == [], "nothing to compare the first run with"
    figures = first.entry["figures"]
    assert figures["gold.exclusion_accuracy"] > 0.9 and figures["ranking.stratified.fusion.ndcg@10"] > 0.3
    assert first.entry["feedback"]["by_source"] == {"semantic": {"n": 1, "likes": 0, "like_rate": 0.0},
                                                    "svd": {"n": 1, "likes": 1, "like_rate": 1.0}}

    second = run_nightly(config, data=movielens, parser=ForgetsExclusions(parser), offline=offline,
                         now=datetime(2026, 1, 2, 2, 30, tzinfo=timezone.utc))
    named = [r["figure"] for r in second.regressions]
    assert second.exit_code == 1 and "gold.exclusion_accuracy" in named, named
    assert not any(n.startswith("ranking.") for n in named), "the models did not change"
    assert "REGRESSION gold.exclusion_accuracy" in second.summary()
    history = [json.loads(line) for line in (tmp_path / "eval" / "history.jsonl").read_text().splitlines()]
    assert [h["date"] for h in history] == ["2026-01-01", "2026-01-02"] and history[-1]["regressions"]

    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run tests/prepare.sh"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(second.dashboard.as_uri())
            assert "gold.exclusion_accuracy" in page.inner_text("#regressions")
            assert page.locator("svg").count() >= 5
            assert page.locator("tr.fail").count() == sum(not c["correct"] for c in second.gold["cases"])
            page.screenshot(path=str(ARTIFACTS / "nightly-dashboard.png"), full_page=False)
        finally:
            browser.close()
    assert requests == [second.dashboard.as_uri()], f"the dashboard fetched {requests}"


# ---------------------------------------------------------------------------------------- scheduling
def test_next_run_is_the_next_local_time_and_bad_times_are_named():
    now = datetime(2026, 3, 1, 2, 30, 0)
    assert next_run("02:30", now) == datetime(2026, 3, 2, 2, 30)
    assert next_run("23:05", now) == datetime(2026, 3, 1, 23, 5)
    with pytest.raises(ValueError, match="HH:MM"):
        next_run("half past two", now)
    with pytest.raises(ValueError, match="HH:MM"):
        NightlyScheduler.from_env({"CINEAGENT_NIGHTLY_AT": "25:99"})


def test_the_scheduler_is_off_by_default_and_runs_its_command():
    assert NightlyScheduler.from_env({}) is None
    scheduler = NightlyScheduler.from_env({"CINEAGENT_NIGHTLY_AT": "03:15", "CINEAGENT_NIGHTLY_ARGS": "--quick"})
    assert scheduler.command[-4:] == ["cli", "eval", "nightly", "--quick"]
    probe = NightlyScheduler("03:15", command=[sys.executable, "-c", "import os; print(os.nice(0))"])
    assert probe.run_once() == 0 and probe.last_exit == 0
    probe.start()
    started = time.perf_counter()
    probe.stop()
    probe._thread.join(5)
    assert not probe._thread.is_alive() and time.perf_counter() - started < 5


# ---------------------------------------------------------------------------------------- Langfuse experiments
def tracing_for(base_url: str, tmp_path) -> Tracing:
    key = uuid.uuid4().hex[:8]
    return Tracing(TracingConfig(langfuse_public_key=f"pk-lf-exp-{key}", langfuse_secret_key=f"sk-lf-exp-{key}",
                                 langfuse_base_url=base_url, trace_log=tmp_path / "traces.jsonl", flush_interval_s=0.1))


@pytest.fixture(scope="module")
def offline_parser(movielens):
    from agent.offline_parser import OfflineParser

    return OfflineParser(movielens)


def test_gold_run_syncs_the_dataset_and_records_an_experiment_with_item_scores(offline_parser, tmp_path):
    cases = load_cases(GOLD_SET)[:12]
    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        report = run_gold(cases, offline_parser, tracing=tracing, run_name="test run 1")
        receiver.wait_for(lambda r: len(r.scores) >= 12 * 4 + 5)
        first_items = {i["id"]: i for i in receiver.items.values()}

        changed = [dict(c) for c in cases[:10]]
        changed[0] = {**changed[0], "expected": {**changed[0]["expected"], "genres": ["Western"]}}
        second = run_gold(changed, offline_parser, tracing=tracing, run_name="test run 2")
        tracing.shutdown()

    assert report["n"] == 12 and "cases" in report, "the local report is complete"
    lf = report["langfuse"]
    assert (lf["dataset"], lf["items"], lf["created"], lf["updated"], lf["archived"]) == (DATASET, 12, 12, 0, 0)
    assert len(receiver.calls("POST", "/api/public/v2/datasets")) == 1
    assert set(first_items) == {item_id(DATASET, c["id"]) for c in cases}
    some = first_items[item_id(DATASET, cases[0]["id"])]
    assert some["input"] == {"utterance": cases[0]["utterance"]} and some["expectedOutput"] == cases[0]["expected"]

    run1 = [s for s in receiver.spans if s.attributes.get("langfuse.experiment.name") == "test run 1"]
    item_traces = {s.trace_id for s in run1}
    assert len(item_traces) == 12
    assert {s.attributes.get("langfuse.experiment.item.id") for s in run1} - {None} == set(first_items)
    outputs = {s.json_attr("langfuse.observation.input")["utterance"]: s.json_attr("langfuse.observation.output")
               for s in run1 if s.name == "experiment-item-run"}
    rows = {r["utterance"]: r["predicted"] for r in report["cases"]}
    assert outputs == rows, "each item's output is the parse the local report scored"

    item_scores = [s for s in receiver.scores if s.get("traceId") in item_traces]
    assert len(item_scores) == 12 * 4
    assert {s["name"] for s in item_scores} == {"correct", "genres_correct", "exclusions_correct", "titles_correct"}
    correct = {s["traceId"]: s["value"] for s in item_scores if s["name"] == "correct"}
    assert sum(correct.values()) == sum(r["correct"] for r in report["cases"])
    run_scores = {s["name"]: s["value"] for s in receiver.scores if s.get("datasetRunId") == lf["experiment_id"]}
    assert run_scores["accuracy"] == pytest.approx(report["accuracy"])

    lf2 = second["langfuse"]
    assert (lf2["created"], lf2["updated"], lf2["archived"], lf2["unchanged"], lf2["items"]) == (0, 1, 2, 9, 10)
    archived = [i for i in receiver.items.values() if i["status"] == "ARCHIVED"]
    assert {i["id"] for i in archived} == {item_id(DATASET, c["id"]) for c in cases[10:]}


def test_gold_run_keeps_its_local_result_when_langfuse_is_down(offline_parser, tmp_path):
    tracing = tracing_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    report = run_gold(load_cases(GOLD_SET)[:5], offline_parser, tracing=tracing)
    assert report["n"] == 5 and report["accuracy"] >= 0
    assert "error" in report["langfuse"]
    tracing.shutdown()


@pytest.mark.integration
def test_nightly_scores_real_requests_and_replays_dialogues_when_given(movielens, trained, stratified_split, tmp_path):
    """Fixtures written for this test (never the development sets): both sets land in the figures,
    the history and the dashboard; the offline benchmark is left out (measured above)."""
    from agent.dialogue import DialogueManager
    from agent.offline_parser import OfflineParser
    from agent.runtime import base_profiles
    from retrieval.catalog import CatalogIndex
    from retrieval.profile_index import ProfileStore

    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(json.dumps(c) for c in [
        {"id": "r1", "utterance": "any good westerns?", "expected": {"genres": ["Western"], "exclude_genres": [], "titles": []}},
        {"id": "r2", "utterance": "I want a scary one, no comedy", "expected": {"genres": ["Horror"], "exclude_genres": ["Comedy"], "titles": []}},
    ]) + "\n")
    dialogues = tmp_path / "dialogues.jsonl"
    dialogues.write_text("\n".join(json.dumps(c) for c in [
        {"id": "d1", "seeker_messages": ["hi!", "I'd love a sci-fi movie like Star Wars"], "mentioned": [50],
         "seeker_mentioned": [50], "targets": [181]},
        {"id": "d2", "seeker_messages": ["something funny for tonight"], "mentioned": [], "seeker_mentioned": [],
         "targets": [1]},
    ]) + "\n")
    parser = OfflineParser(movielens)
    profiles = ProfileStore(trained.item_text_vectors, movielens.item_ids, base_profiles(stratified_split.train))
    agent = DialogueManager(trained, parser, CatalogIndex(trained.item_text_vectors, movielens.item_ids), profiles)
    config = NightlyConfig(quick=True, eval_dir=tmp_path / "eval", database_url=f"sqlite:///{tmp_path / 'e.sqlite3'}",
                           requests=requests, dialogues=dialogues)
    result = run_nightly(config, data=movielens, parser=parser, offline=lambda data, quick: {}, agent=agent)
    figures = result.entry["figures"]
    assert figures["requests.accuracy"] == 1.0 and result.entry["requests"]["n"] == 2
    assert {"dialogues.cineagent.R@10", "dialogues.popularity.R@10", "dialogues.corated.R@10"} <= set(figures)
    assert figures["dialogues.with_cards_share"] == 1.0
    page = result.dashboard.read_text()
    assert "Real dialogues: Recall@10 over time" in page and "requests.accuracy" in page
