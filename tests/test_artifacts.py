"""Artifact versions round-trip; corruption, truncation and data mismatch are clear errors."""
import json

import numpy as np
import pytest

from models import artifacts
from models.artifacts import ArtifactError
from tests.toydata import toy_movielens


@pytest.fixture()
def saved(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    from models.train import fit_bundle, save_bundle

    data, train, _ = toy_movielens()
    vectors = np.random.RandomState(0).normal(size=(20, 384)).astype(np.float32)
    bundle = fit_bundle(train, data, vectors)
    manifest = save_bundle(bundle, {"note": "toy"}, {"x": 1.0})
    return data, bundle, manifest


def test_round_trip_gives_identical_recommendations(saved):
    from models.train import load_bundle

    data, bundle, manifest = saved
    loaded = load_bundle(data)
    assert loaded.manifest.version == manifest.version == artifacts.current_version()
    assert loaded.fusion.weights == bundle.fusion.weights
    for user in (1, 15):
        assert loaded.fusion.recommend(user, 5)[0].tolist() == bundle.fusion.recommend(user, 5)[0].tolist()
    meta = manifest.data
    assert {"data_checksum", "parameters", "metrics", "code_version", "created", "files"} <= set(meta)
    assert not list(artifacts.artifacts_root().glob(".tmp-*")), "no temp directory left behind"


def test_corrupt_file_is_reported_not_used(saved):
    from models.train import load_bundle

    data, _, manifest = saved
    victim = manifest.path / "ease" / "ease.npz"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="ease/ease.npz does not match its checksum"):
        load_bundle(data)


def test_missing_file_and_unreadable_manifest(saved):
    from models.train import load_bundle

    data, _, manifest = saved
    (manifest.path / "fusion.json").unlink()
    with pytest.raises(ArtifactError, match="fusion.json is missing"):
        load_bundle(data)
    (manifest.path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="no readable manifest"):
        load_bundle(data)


def test_artifact_for_other_data_is_refused(saved):
    from models.train import load_bundle

    data, _, _ = saved
    other = type(data)(ratings=data.ratings, items=data.items, users=data.users, checksum="different")
    with pytest.raises(ArtifactError, match="different MovieLens data"):
        load_bundle(other)


def test_no_artifact_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))
    with pytest.raises(ArtifactError, match="cineagent train"):
        artifacts.open_version()


def test_manifest_lists_every_file_with_checksum(saved):
    _, _, manifest = saved
    on_disk = {str(p.relative_to(manifest.path)) for p in manifest.path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(json.loads((manifest.path / "manifest.json").read_text())["files"]) == on_disk


def test_two_versions_in_the_same_second_get_distinct_names(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEAGENT_HOME", str(tmp_path))

    def build(directory):
        (directory / "f").write_text("x")
        return {}

    first, second = (artifacts.write_version(build, "toy", {}, make_current=False) for _ in range(2))
    assert first.version != second.version and first.path.exists() and second.path.exists()
    assert artifacts.current_version() is None, "make_current=False leaves CURRENT alone"
