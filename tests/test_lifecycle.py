"""Model lifecycle on a real embedded MLflow (SQLite under a temporary CINEAGENT_HOME, and
PostgreSQL): every training run tracked and registered, the champion served, swipes as training
data, the gate passing a real improvement and refusing a broken model, promote and rollback."""
from __future__ import annotations

import numpy as np
import pytest

from tests.toydata import toy_movielens


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("CINEAGENT_MLFLOW_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def toy():
    data, _, _ = toy_movielens()
    vectors = np.random.RandomState(0).normal(size=(20, 384)).astype(np.float32)
    return data, vectors


def _store(home):
    from data.event_store import EventStore

    return EventStore(f"sqlite:///{home / 'events.sqlite3'}")


def _people(data, store, seed=0):
    """Ten people (half as many as the toy's raters) whose tastes cut across its two clusters: each
    likes one of two random sets of 6 items. With many more of them than raters, the toy holdout
    drops by more than the gate's tolerance (the gate says so: a real trade-off, not a flake)."""
    from models.feedback import synthetic_swipes

    swipes = synthetic_swipes(data, people=10, swipes_each=8, clusters=2, cluster_size=6, seed=seed, older_only=False)
    return store.add_swipes(swipes)


def _feedback(data, store):
    from models.feedback import swipe_table

    position = store.swipe_position()
    return swipe_table(store.swipes(upto=position), data, store.seeds(), position)


def test_training_is_a_tracked_registered_run_and_serving_loads_the_champion(home, toy):
    from agent.runtime import champion_artifact
    from models import registry as reg
    from models.artifacts import current_version
    from models.lifecycle import train_run

    data, vectors = toy
    assert champion_artifact(data, None) is None and not reg.exists(), "no registry yet: the latest artifact serves"
    registry = reg.Registry()
    result = train_run(data, vectors, registry)
    assert (home / "mlflow" / "mlflow.db").exists()
    assert result.alias == "champion" and registry.aliases() == {"champion": result.version}
    run = registry.run(result.run_id)
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["ease.l2"] == "400.0" and params["data.movielens_checksum"] == "toy"
    assert params["data.swipe_position"] == "0" and "two_tower.epochs" in params and "fusion.weights.ease" in params
    for model in ("popularity", "ease", "svd", "two_tower", "fusion"):
        assert 0 <= metrics[f"holdout.{model}.ndcg_at_10"] <= 1
    assert metrics["train.seconds"] > 0 and metrics["train.peak_rss_mib"] > 0
    assert tags["cineagent.code_version"] and tags["cineagent.artifact_version"] == result.artifact_version
    files = {f.path for f in registry.client.list_artifacts(result.run_id, "bundle")}
    assert {"bundle/manifest.json", "bundle/fusion.json", "bundle/ease"} <= files
    assert champion_artifact(data, None) == result.artifact_version == current_version()

    second = train_run(data, vectors, registry)   # a champion exists: a plain run waits as a challenger
    assert second.alias == "challenger" and registry.aliases()["champion"] == result.version
    assert current_version() == result.artifact_version, "a challenger never moves what serves"
    assert champion_artifact(data, None) == result.artifact_version


def test_serving_fetches_the_champion_from_mlflow_when_the_local_copy_is_gone(home, toy):
    import shutil

    from agent.runtime import champion_artifact
    from models import registry as reg
    from models.artifacts import artifacts_root, open_version
    from models.lifecycle import train_run

    data, vectors = toy
    result = train_run(data, vectors, reg.Registry())
    shutil.rmtree(artifacts_root() / result.artifact_version)
    assert champion_artifact(data, None) == result.artifact_version
    open_version(result.artifact_version, data_checksum="toy")   # verified against its manifest


def test_swipes_become_training_data_with_dislikes_as_negatives(home, toy):
    from data.events import Swipe
    from models.feedback import DISLIKE_TRAINING_RATING, split_recent, swipe_table, training_rows

    data, _ = toy
    store = _store(home)
    person, _ = store.create_person("ana", seed_from=3)
    swipes = [Swipe(user_id=person.id, session_id="s", item_id=i, action=a)
              for i, a in [(11, "like"), (12, "dislike"), (13, "like"), (11, "dislike"), (14, "like"), (15, "like")]]
    swipes.append(Swipe(user_id="3", session_id="s", item_id=12, action="like"))
    position = store.add_swipes(swipes[:4])
    store.add_swipes(swipes[4:])
    table = swipe_table(store.swipes(upto=position), data, store.seeds(), position)
    assert len(table.frame) == 3, "up to the recorded position, the latest swipe per item"
    table = swipe_table(store.swipes(), data, store.seeds(), store.swipe_position())
    pid = int(table.frame.loc[table.frame["user_key"] == person.id, "user_id"].iloc[0])
    assert pid < 0 and table.seeds == {pid: 3}
    rows = training_rows(table.frame, table.seeds, data.ratings)
    mine = rows[rows["user_id"] == pid].set_index("item_id")["rating"]
    assert mine[11] == DISLIKE_TRAINING_RATING and mine[12] == DISLIKE_TRAINING_RATING and mine[13] == 5
    assert set(data.ratings.loc[data.ratings["user_id"] == 3, "item_id"]) <= set(mine.index), "seed ratings included"
    assert rows[(rows["user_id"] == 3) & (rows["item_id"] == 12)]["rating"].tolist() == [5.0], "a persona's swipe wins"
    earlier, recent = split_recent(table, share=0.2, min_swipes=5)
    assert recent["user_id"].tolist() == [pid] and recent["item_id"].tolist() == [15], "the latest swipe held out"

    from models.ease import EASE
    from models.svd import SVD

    ease, svd = EASE().fit(rows, data), SVD().fit(rows, data)
    assert ease.X[ease._user_pos[pid], ease._item_pos[12]] == 0, "EASE learns no interaction from a dislike"
    assert ease._item_pos[12] in ease.seen(pid) and svd._item_pos[12] in svd.seen(pid), "never recommended back"


def test_gate_passes_a_real_improvement_and_refuses_a_broken_model(home, toy):
    from models import registry as reg
    from models.artifacts import current_version
    from models.lifecycle import GateConfig, gate, promote, rollback, train_run

    data, vectors = toy
    registry = reg.Registry()
    store = _store(home)
    champion = train_run(data, vectors, registry)
    _people(data, store)
    better = train_run(data, vectors, registry, feedback=_feedback(data, store), challenger=True)
    assert better.alias == "challenger" and better.params["data.swipe_position"] == store.swipe_position()

    verdict = gate("challenger", registry, data, store)
    figures = verdict.figures
    assert figures["challenger.recent.recall_at_10"] > figures["champion.recent.recall_at_10"], figures
    assert verdict.passed and verdict.version == better.version, verdict.reasons
    gate_run = registry.run(verdict.run_id)
    assert gate_run.data.tags["cineagent.verdict"] == "pass"
    assert gate_run.data.metrics["challenger.holdout.fusion.ndcg_at_10"] == figures["challenger.holdout.fusion.ndcg_at_10"]
    assert registry.version(better.version).tags["gate_verdict"] == "pass"

    broken = train_run(data, vectors, registry, feedback=_feedback(data, store), challenger=True, shuffled=True)
    refused = gate(broken.version, registry, data, store, GateConfig(latency_budget_ms=1e-6))
    assert not refused.passed
    assert any(r.startswith("holdout ndcg_at_10") for r in refused.reasons), refused.reasons
    assert any(r.startswith("latency p95") for r in refused.reasons), refused.reasons
    assert registry.run(refused.run_id).data.tags["cineagent.verdict"] == "fail"
    assert registry.aliases()["challenger"] == broken.version and registry.aliases()["champion"] == champion.version
    with pytest.raises(reg.RegistryError, match="has not passed the gate.*holdout ndcg_at_10"):
        promote(registry, broken.version)

    assert promote(registry, better.version) == champion.version
    assert registry.aliases()["champion"] == better.version and current_version() == better.artifact_version
    assert rollback(registry) == (better.version, champion.version)
    assert registry.aliases()["champion"] == champion.version and current_version() == champion.artifact_version
    with pytest.raises(reg.RegistryError, match="no earlier champion"):
        rollback(registry)


def test_models_commands(home, toy, capsys):
    import json

    from cli import build_parser
    from models import registry as reg
    from models.lifecycle import train_run

    data, vectors = toy
    registry = reg.Registry()
    first = train_run(data, vectors, registry)
    second = train_run(data, vectors, registry, challenger=True)

    def cli(*argv):
        args = build_parser().parse_args(list(argv))
        return args.func(args)

    assert cli("models", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["aliases"]) for v in listed["versions"]] == [(first.version, ["champion"]),
                                                                        (second.version, ["challenger"])]
    assert listed["versions"][0]["holdout_ndcg@10"] > 0
    with pytest.raises(reg.RegistryError, match="not passed the gate"):
        cli("models", "promote", second.version)
    assert cli("models", "promote", second.version, "--force") == 0
    assert registry.aliases() == {"champion": second.version}
    assert cli("models", "rollback") == 0
    assert "rolled back from version 2 to version 1" in capsys.readouterr().out
    assert cli("models", "list") == 0
    assert "champion" in capsys.readouterr().out


def test_registry_on_postgresql(pg_url, home, toy, monkeypatch):
    """The same lifecycle with the registry in the event store's PostgreSQL database (own schema)."""
    from models import registry as reg
    from models.lifecycle import promote, rollback, train_run

    data, vectors = toy
    uri = reg.tracking_uri(pg_url)
    assert uri.startswith("postgresql+psycopg://") and "_mlflow" in uri
    registry = reg.Registry(pg_url)
    first = train_run(data, vectors, registry)
    second = train_run(data, vectors, registry, challenger=True)
    assert not (home / "mlflow" / "mlflow.db").exists()
    assert reg.serving_version(pg_url) == first.artifact_version
    promote(registry, second.version, force=True)
    assert reg.Registry(pg_url).aliases()["champion"] == second.version, "another process sees the same registry"
    assert reg.serving_version(pg_url) == second.artifact_version
    rollback(registry)
    assert reg.champion_state(pg_url) == (first.version, first.artifact_version)
