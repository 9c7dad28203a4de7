"""Shared fixtures. State goes to a test home (never the user's), kept between runs so a warm
machine does not fetch or embed again; models are trained once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# set before any project module reads it; a developer can point tests elsewhere
os.environ["CINEAGENT_HOME"] = os.environ.get("CINEAGENT_TEST_HOME", str(Path.home() / ".cache" / "cineagent-test"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def movielens():
    from data.movielens import load

    return load()


@pytest.fixture(scope="session")
def stratified_split(movielens):
    from data.splits import stratified

    return stratified(movielens.ratings)


@pytest.fixture(scope="session")
def item_text_vectors(movielens):
    from retrieval.catalog import item_vectors

    return item_vectors(movielens)


@pytest.fixture(scope="session")
def trained(movielens, stratified_split, item_text_vectors):
    """Every model fit once on the real stratified training split."""
    from models.train import fit_bundle

    return fit_bundle(stratified_split.train, movielens, item_text_vectors)
