"""``cineagent eval offline``: every model on the published protocols, one JSON report.

- ranking/stratified: per-user random 75/25 (seed 42), top-10, training items removed
- ranking/temporal:   per-user chronological 80/20, same metrics (leakage-aware)
- rating:             Surprise 5-fold KFold(random_state=0) RMSE/MAE
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from data import splits
from data.movielens import MovieLens
from eval.rating import rating_report
from eval.ranking import evaluate_ranking
from models.train import fit_bundle
from retrieval.catalog import item_vectors

log = logging.getLogger(__name__)

PUBLISHED_NDCG10 = {"BiVAE": 0.475, "BPR": 0.442, "LightGCN": 0.420, "SAR": 0.382}
PUBLISHED_RMSE = {"SVD++": 0.919, "KNNBaseline": 0.931, "SVD": 0.934}


def ranking_on(split: splits.Split, data: MovieLens) -> dict[str, dict[str, float]]:
    """Fit every model on ``split.train`` and measure each on ``split.test``."""
    started = time.perf_counter()
    bundle = fit_bundle(split.train, data, item_vectors(data))
    report = {}
    for name, model in bundle.models().items():
        report[name] = evaluate_ranking(model, split.train, split.test, data)
        log.info("%s %s ndcg@10=%.4f", split.name, name, report[name]["ndcg@10"])
    report["fusion"]["weights"] = bundle.fusion.weights
    report["fusion"]["fit_seconds"] = time.perf_counter() - started
    return report


def offline_report(data: MovieLens, export_split: Path | None = None, rating: bool = True) -> dict:
    """The full report in the DESIGN.md shape: {"ranking": {...}, "rating": {...}}."""
    stratified = splits.stratified(data.ratings)
    temporal = splits.temporal(data.ratings)
    if export_split:
        splits.write(stratified, Path(export_split) / "stratified")
        splits.write(temporal, Path(export_split) / "temporal")
    report = {"ranking": {"stratified": ranking_on(stratified, data), "temporal": ranking_on(temporal, data)},
              "published": {"ndcg@10_stratified": PUBLISHED_NDCG10, "rmse_kfold": PUBLISHED_RMSE}}
    if rating:
        report["rating"] = rating_report(data)
    return report


def format_report(report: dict) -> str:
    """Plain-text tables for the terminal."""
    lines = []
    cols = ["precision@10", "recall@10", "ndcg@10", "map", "coverage@10", "novelty", "diversity"]
    for protocol, models in report["ranking"].items():
        lines.append(f"\nranking — {protocol}")
        lines.append(f"{'model':<12}" + "".join(f"{c:>14}" for c in cols))
        for name, m in models.items():
            lines.append(f"{name:<12}" + "".join(f"{m.get(c, float('nan')):>14.4f}" for c in cols))
    if "rating" in report:
        lines.append("\nrating — Surprise 5-fold")
        for name, m in report["rating"].get("models", {}).items():
            lines.append(f"{name:<24} rmse {m['rmse']:.4f}  mae {m['mae']:.4f}")
        best = report["rating"]["best"]
        lines.append(f"best: {best['name']} rmse {best['rmse']:.4f} mae {best['mae']:.4f}")
    return "\n".join(lines)
