"""Shared fixtures. State goes to a test home (never the user's), kept between runs so a warm
machine does not fetch or embed again; models are trained once per session."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest_plugins = ["tests.postgres"]   # pg_server_url, pg_database_url, pg_url

# set before any project module reads it; a developer can point tests elsewhere
os.environ["CINEAGENT_HOME"] = os.environ.get("CINEAGENT_TEST_HOME", str(Path.home() / ".cache" / "cineagent-test"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@contextmanager
def one_at_a_time(name: str):
    """An exclusive lock over the test home, across the test processes (pytest-xdist workers)."""
    import fcntl

    home = Path(os.environ["CINEAGENT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def llama_url():
    """One real local OpenAI-compatible server (llama.cpp, SmolLM2) per test process, started by
    the first test that needs it: it keeps nothing between requests, so tests can share it."""
    from tests.llm_server import llama_server

    with llama_server() as base_url:
        yield base_url


@pytest.fixture(scope="session")
def movielens():
    from data.movielens import load

    with one_at_a_time("data"):   # the first process to need it fetches it; the other waits, then reads it
        return load()


@pytest.fixture(scope="session")
def stratified_split(movielens):
    from data.splits import stratified

    return stratified(movielens.ratings)


@pytest.fixture(scope="session")
def item_text_vectors(movielens):
    from retrieval.catalog import item_vectors

    with one_at_a_time("data"):   # embedded once, cached in the test home
        return item_vectors(movielens)


def _models_fingerprint() -> str:
    """Hash of the code that shapes trained models: a change to it retrains, nothing else does."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted((root / "models").glob("*.py")) + [root / "data" / "splits.py", root / "retrieval" / "catalog.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def trained(movielens, stratified_split, item_text_vectors):
    """Every model fit on the real stratified training split: once per code change.

    The fitted bundle is kept as an artifact version in the test home, keyed by the models'
    source, so a warm machine loads it in seconds instead of training again.
    """
    from models import artifacts

    key = f"stratified-train-{_models_fingerprint()}"
    pointer = artifacts.artifacts_root() / f"TEST-{key}"
    with one_at_a_time("train"):   # `make test` runs two processes: one trains, the other then loads
        return _trained(movielens, stratified_split, item_text_vectors, key, pointer)


def _trained(movielens, stratified_split, item_text_vectors, key: str, pointer: Path):
    from models import artifacts
    from models.train import fit_bundle, load_bundle, save_bundle

    if pointer.exists():
        try:
            return load_bundle(movielens, pointer.read_text().strip())
        except (artifacts.ArtifactError, OSError, ValueError, KeyError, RuntimeError):
            pass  # stale or broken: train again below
    bundle = fit_bundle(stratified_split.train, movielens, item_text_vectors)
    manifest = save_bundle(bundle, {"fixture": key})
    from data.store import write_bytes_atomic

    write_bytes_atomic(pointer, manifest.version.encode())
    return bundle
