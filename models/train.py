"""Train every model from a ratings table, save them as one artifact version, load them back.

The text vectors of the catalog are an input (computed by ``retrieval`` and saved beside the
models) so that ``models`` never depends on the embedding stack.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data.movielens import MovieLens
from data.store import atomic_path
from models.artifacts import Manifest, open_version, write_version
from models.base import Recommender
from models.ease import EASE
from models.fusion import Fusion
from models.popularity import Popularity
from models.svd import SVD
from models.two_tower import TwoTower

log = logging.getLogger(__name__)

SOURCES = ("popularity", "ease", "svd", "two_tower")
MODEL_CLASSES: dict[str, type[Recommender]] = {
    "popularity": Popularity, "ease": EASE, "svd": SVD, "two_tower": TwoTower,
}
VECTORS_FILE = "item_text_vectors.npy"


@dataclass
class ModelBundle:
    """Everything a turn needs from ``models``: the fitted sources, the fusion over them, the text vectors."""

    data: MovieLens
    fusion: Fusion
    item_text_vectors: np.ndarray
    manifest: Manifest | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def sources(self) -> dict[str, Recommender]:
        return self.fusion.sources

    def models(self) -> dict[str, Recommender]:
        """Every model worth measuring, fusion included."""
        return {**self.sources, "fusion": self.fusion}


def source_factories(item_text_vectors: np.ndarray) -> dict:
    return {
        "popularity": Popularity,
        "ease": EASE,
        "svd": SVD,
        "two_tower": lambda: TwoTower(item_text_vectors=item_text_vectors),
    }


def fit_bundle(ratings: pd.DataFrame, data: MovieLens, item_text_vectors: np.ndarray) -> ModelBundle:
    """Fit all sources and learn the fusion weights on a validation carve of ``ratings``."""
    started = time.perf_counter()
    fusion = Fusion(source_factories(item_text_vectors)).fit(ratings, data)
    return ModelBundle(data=data, fusion=fusion, item_text_vectors=item_text_vectors,
                       timings={"fit_s": time.perf_counter() - started})


def save_bundle(bundle: ModelBundle, parameters: dict, metrics: dict | None = None, make_current: bool = True,
                suffix: str = "") -> Manifest:
    def build(directory: Path) -> dict:
        for name, model in bundle.sources.items():
            (directory / name).mkdir()
            model.save(directory / name)
        bundle.fusion.save(directory)
        with atomic_path(directory / VECTORS_FILE) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, bundle.item_text_vectors)
        return {"sources": list(bundle.sources), "fusion_weights": bundle.fusion.weights}

    manifest = write_version(build, bundle.data.checksum, parameters, metrics, make_current=make_current, suffix=suffix)
    bundle.manifest = manifest
    log.info("saved models as artifact version %s", manifest.version)
    return manifest


def load_bundle(data: MovieLens, version: str | None = None) -> ModelBundle:
    """Load and verify an artifact version (the current one by default)."""
    manifest = open_version(version, data_checksum=data.checksum)
    sources = {name: MODEL_CLASSES[name].load(manifest.path / name, data) for name in manifest.data["sources"]}
    fusion = Fusion.load_with(manifest.path, sources)
    vectors = np.load(manifest.path / VECTORS_FILE)
    return ModelBundle(data=data, fusion=fusion, item_text_vectors=vectors, manifest=manifest)
