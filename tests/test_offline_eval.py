"""The real models on the real stratified split: personalised models beat popularity, fusion
beats its sources, and the conversational pipeline beats every single source."""
import pytest

from eval.ranking import evaluate_ranking

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ndcg(trained, stratified_split, movielens):
    return {name: evaluate_ranking(model, stratified_split.train, stratified_split.test, movielens)["ndcg@10"]
            for name, model in trained.models().items()}


def test_models_beat_popularity(ndcg):
    for name in ("ease", "two_tower", "fusion"):
        assert ndcg[name] > ndcg["popularity"] + 0.1, ndcg


def test_fusion_beats_each_source(ndcg):
    assert ndcg["fusion"] > max(v for k, v in ndcg.items() if k != "fusion"), ndcg


def test_fusion_weights_were_learned_not_uniform(trained):
    weights = trained.fusion.weights
    assert set(weights) == set(trained.sources)
    assert len(set(weights.values())) > 1


def test_conversational_pipeline_beats_single_sources(trained, stratified_split, tmp_path):
    from eval.conversational import conversational_report

    report = conversational_report(stratified_split, trained, limit=600)
    pipeline = report["methods"]["pipeline"]["ndcg@10"]
    for name, m in report["methods"].items():
        if name != "pipeline":
            assert pipeline > m["ndcg@10"], (name, report["methods"])
    assert report["methods"]["pipeline"]["recall@10"] >= 0.40
