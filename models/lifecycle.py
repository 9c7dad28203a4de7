"""Training runs tracked in MLflow, and the validation gate a challenger must pass to serve.

``train_run`` fits two bundles from one recipe (MovieLens ratings, plus people's swipes at a
recorded event-store position when asked):

- the **evaluation bundle**, on the MovieLens holdout's training part (``data.splits.stratified``:
  per user 75/25, seed 42) plus each person's earlier swipes (their latest are held out,
  ``models.feedback.split_recent``). Its offline metrics (every model and the fusion) are the
  run's metrics, and the gate compares evaluation bundles;
- the **serving bundle**, on all the ratings and all the swipes: what people are served.

Both are CineAgent artifact versions (``models.artifacts``) and artifacts of the MLflow run; the
serving bundle is registered as a version of the model ``cineagent``. A challenger run
(``--challenger``) gets the alias ``challenger``; a plain run becomes ``champion`` only when there
is none yet (a first install), else it is a challenger too: only ``models promote`` moves the
champion, and only after the gate passed (unless forced).

``gate`` judges a version against the champion in one MLflow run, on frozen data: the MovieLens
holdout (both evaluation bundles measured afresh), the held-out recent swipes at the challenger's
recorded position (each person represented by their earlier swipes, as serving folds them in),
scoring latency of the serving bundle, and output sanity. Every figure and the verdict go to the
run and to the version's tags.
"""
from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data import splits
from data.movielens import MovieLens
from models.artifacts import ArtifactError, artifacts_root, code_version, open_version, set_current
from models.base import top_n
from models.feedback import SwipeTable, fold_in_profiles, split_recent, training_rows
from models.registry import CHALLENGER, CHAMPION, Registry, RegistryError
from models.train import ModelBundle, fit_bundle, load_bundle, save_bundle

log = logging.getLogger(__name__)

K = 10
HOLDOUT_FIGURES = ("ndcg@10", "recall@10", "precision@10", "map", "coverage@10")


def metric_key(name: str) -> str:
    """MLflow metric names take letters, digits, ``_-. /``: ``ndcg@10`` -> ``ndcg_at_10``."""
    return name.replace("@", "_at_")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


# ---------------------------------------------------------------------------------------- evaluation
def holdout_metrics(bundle: ModelBundle, split: splits.Split, data: MovieLens, models: bool = True) -> dict[str, float]:
    """Ranking figures on the MovieLens holdout, ``holdout.<model>.<figure>``."""
    from eval.ranking import evaluate_ranking

    todo = bundle.models() if models else {"fusion": bundle.fusion}
    out = {}
    for name, model in todo.items():
        report = evaluate_ranking(model, split.train, split.test, data, K)
        for figure in HOLDOUT_FIGURES:
            out[f"holdout.{name}.{metric_key(figure)}"] = float(report[figure])
    return out


def fused_scores_for(bundle: ModelBundle, person: int, profile: dict[int, float]) -> np.ndarray:
    """The fusion's scores of a person represented by ``profile``, as serving computes them."""
    parts = bundle.fusion.source_scores_for(person, profile)
    return sum(bundle.fusion.weights[n] * s for n, s in parts.items())


def recent_swipe_metrics(bundle: ModelBundle, earlier: pd.DataFrame, recent: pd.DataFrame, seeds: dict[int, int],
                         ratings: pd.DataFrame) -> dict[str, float]:
    """Each person's held-out latest likes against the top 10 computed from their earlier swipes."""
    targets = {int(u): set(g["item_id"].astype(int)) for u, g in recent[recent["like"]].groupby("user_id")}
    if not targets:
        return {"recent.people": 0.0}
    profiles = fold_in_profiles(earlier[earlier["user_id"].isin(targets)], seeds, ratings)
    item_pos = {int(i): p for p, i in enumerate(bundle.data.item_ids)}
    recalls, ndcgs, hits = [], [], []
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    for person, liked in targets.items():
        profile = profiles.get(person)
        if not profile:
            continue
        scores = fused_scores_for(bundle, person, profile).astype(np.float64, copy=True)
        scores[[item_pos[i] for i in profile if i in item_pos]] = -np.inf
        top = top_n(scores, K, bundle.data.item_ids)[0].tolist()
        gains = np.array([1.0 if i in liked else 0.0 for i in top] + [0.0] * (K - len(top)))
        ideal = discounts[: min(len(liked), K)].sum()
        recalls.append(gains.sum() / min(len(liked), K))
        ndcgs.append(float((gains * discounts).sum() / ideal))
        hits.append(float(gains.any()))
    if not recalls:
        return {"recent.people": 0.0}
    return {"recent.people": float(len(recalls)), "recent.recall_at_10": float(np.mean(recalls)),
            "recent.ndcg_at_10": float(np.mean(ndcgs)), "recent.hit_rate_at_10": float(np.mean(hits))}


def latency(bundle: ModelBundle, profiles: dict[int, dict[int, float]], n: int = 300) -> dict[str, float]:
    """p50/p95 of a top-10 for a known user (``recommend``) and for a person folded in from their
    swipes (``source_scores_for`` + top 10), warm."""
    import torch
    from threadpoolctl import threadpool_limits

    from eval.bench import time_calls

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):   # as a serving process runs (agent.runtime.one_thread_per_turn)
            return _latency(bundle, profiles, n, time_calls)
    finally:
        torch.set_num_threads(threads)


def _latency(bundle: ModelBundle, profiles: dict[int, dict[int, float]], n: int, time_calls) -> dict[str, float]:
    users = bundle.fusion.sources["svd"].user_ids
    known = time_calls(lambda i: bundle.fusion.recommend(users[i % len(users)], K), n, warmup=20)
    out = {"latency.known.p50_ms": known["p50_ms"], "latency.known.p95_ms": known["p95_ms"]}
    people = list(profiles.items())[:100]
    if people:
        def folded(i: int) -> None:
            person, profile = people[i % len(people)]
            top_n(fused_scores_for(bundle, person, profile), K, bundle.data.item_ids)

        timed = time_calls(folded, min(n, 200), warmup=10)
        out.update({"latency.fold_in.p50_ms": timed["p50_ms"], "latency.fold_in.p95_ms": timed["p95_ms"]})
    return out


def sanity(bundle: ModelBundle, profiles: dict[int, dict[int, float]], n: int = K, seed: int = 0) -> list[str]:
    """Problems with the serving bundle's output (empty when none): NaN scores, fewer than ``n``
    items while more were available, unknown ids, excluded or already-seen items returned."""
    problems: list[str] = []
    fusion, catalog = bundle.fusion, bundle.data.item_ids
    known_ids = set(catalog.tolist())
    rng = np.random.default_rng(seed)
    users = bundle.fusion.sources["svd"].user_ids
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        scores = fusion.score_all(chunk)
        bad = ~np.isfinite(scores).all(axis=1)
        if bad.any():
            problems.append(f"non-finite scores for {int(bad.sum())} known user(s), e.g. user {chunk[int(np.argmax(bad))]}")
            break
    checks = [(u, None) for u in users] + list(profiles.items())
    short = unknown = leaked = 0
    for user, profile in checks:
        exclude = rng.choice(catalog, size=min(3, len(catalog)), replace=False).tolist()
        if profile is None:
            ids, scores = fusion.recommend(user, n, exclude=exclude)
            seen = set(catalog[fusion.seen(user)].tolist())
        else:
            raw = fused_scores_for(bundle, user, profile).astype(np.float64, copy=True)
            if not np.isfinite(raw).all():
                problems.append(f"non-finite scores for person {user}")
                break
            seen = set(profile)
            pos = [p for p, i in enumerate(catalog.tolist()) if i in seen or i in exclude]
            raw[pos] = -np.inf
            ids, scores = top_n(raw, n, catalog)
        available = len(known_ids - seen - set(exclude))
        ids = ids.tolist()
        short += len(ids) != min(n, available)
        unknown += any(i not in known_ids for i in ids)
        leaked += any(i in exclude or i in seen for i in ids)
        if np.isnan(np.asarray(scores, dtype=np.float64)).any():
            problems.append(f"NaN among the top {n} scores of user {user}")
            break
    if short:
        problems.append(f"{short} of {len(checks)} people got fewer than {n} items while more were available")
    if unknown:
        problems.append(f"{unknown} of {len(checks)} people got ids outside the catalog")
    if leaked:
        problems.append(f"{leaked} of {len(checks)} people got an excluded or already-seen item")
    return problems


# ---------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    version: str                  # the registered model version
    alias: str                    # champion or challenger
    run_id: str
    artifact_version: str
    eval_artifact_version: str
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)


def _shuffle(ratings: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same users, items and stars, with the items of the rows permuted: a model that learns nothing."""
    rng = np.random.default_rng(seed)
    return ratings.assign(item_id=rng.permutation(ratings["item_id"].to_numpy()))


def train_run(data: MovieLens, vectors: np.ndarray, registry: Registry, feedback: SwipeTable | None = None,
              challenger: bool = False, shuffled: bool = False, note: str = "") -> TrainResult:
    """Train, measure, save and register one bundle (see the module docstring)."""
    started = time.perf_counter()
    split = splits.stratified(data.ratings)
    base_eval, base_all = (split.train, data.ratings) if not shuffled else (_shuffle(split.train), _shuffle(data.ratings))
    empty = pd.DataFrame({"user_key": [], "user_id": [], "item_id": [], "like": [], "order": [], "timestamp": []})
    table = feedback.frame if feedback is not None else empty
    seeds = feedback.seeds if feedback is not None else {}
    earlier, recent = split_recent(feedback) if feedback is not None else (empty, empty)

    eval_rows = training_rows(earlier, seeds, base_eval)
    held = set(zip(split.test["user_id"].astype(int), split.test["item_id"].astype(int)))
    keep = [(u, i) not in held for u, i in zip(eval_rows["user_id"].astype(int), eval_rows["item_id"].astype(int))]
    eval_rows = eval_rows.loc[keep].reset_index(drop=True)   # a persona's swipe never leaks a holdout item
    eval_bundle = fit_bundle(eval_rows, data, vectors)
    metrics = holdout_metrics(eval_bundle, split, data)
    if len(recent):
        metrics.update(recent_swipe_metrics(eval_bundle, earlier, recent, seeds, data.ratings))
    metrics["fusion.validation_ndcg_at_10"] = eval_bundle.fusion.validation_ndcg
    evaluated = time.perf_counter()

    rows = training_rows(table, seeds, base_all)
    bundle = fit_bundle(rows, data, vectors)
    trained = time.perf_counter()
    metrics.update({"train.seconds": trained - started, "train.eval_seconds": evaluated - started,
                    "train.serving_fit_seconds": trained - evaluated, "train.peak_rss_mib": _peak_rss_mib(),
                    "data.training_rows": float(len(rows)), "data.swipes": float(len(table)),
                    "data.people": float(table["user_id"].nunique()) if len(table) else 0.0,
                    "data.recent_swipes_held_out": float(len(recent))})

    params: dict[str, Any] = {}
    for name, model in bundle.sources.items():
        config = getattr(model, "config", None)
        if config is not None:
            _flat(name, config.model_dump(mode="json"), params)
    _flat("fusion", bundle.fusion.config.model_dump(mode="json"), params)
    _flat("fusion.weights", bundle.fusion.weights, params)
    params.update({"data.movielens_checksum": data.checksum,
                   "data.swipe_position": feedback.position if feedback is not None else 0,
                   "data.with_feedback": feedback is not None, "data.shuffled_ratings": shuffled,
                   "data.holdout": "stratified 75/25 seed 42", "data.recent_share": 0.2})
    kind = "challenger" if challenger else "train"
    eval_manifest = save_bundle(eval_bundle, {"role": "evaluation", **params}, metrics, make_current=False, suffix="-eval")
    champion = registry.by_alias(CHAMPION)
    becomes_champion = not challenger and champion is None
    manifest = save_bundle(bundle, {"role": "serving", **params}, metrics, make_current=becomes_champion)

    tags = {"cineagent.kind": kind, "cineagent.artifact_version": manifest.version,
            "cineagent.eval_artifact_version": eval_manifest.version, "mlflow.source.git.commit": code_version(),
            "cineagent.code_version": code_version()}
    if note:
        tags["mlflow.note.content"] = note
    run_id = registry.start_run(f"{kind} {manifest.version}", tags)
    try:
        registry.log(run_id, params=params, metrics=metrics)
        registry.log_artifacts(run_id, manifest.path, "bundle")
        registry.log_artifacts(run_id, eval_manifest.path, "eval_bundle")
        version = registry.register(run_id, {
            "artifact_version": manifest.version, "eval_artifact_version": eval_manifest.version,
            "swipe_position": str(params["data.swipe_position"]), "with_feedback": str(feedback is not None),
            "data_checksum": data.checksum, "code_version": code_version(), "kind": kind,
            "holdout_ndcg_at_10": f"{metrics['holdout.fusion.ndcg_at_10']:.4f}"},
            description=note or f"{kind}: {len(table)} swipes at position {params['data.swipe_position']}")
        registry.log(run_id, tags={"cineagent.registered_version": version})
        alias = CHAMPION if becomes_champion else CHALLENGER
        registry.set_alias(alias, version)
        registry.finish(run_id, ok=True)
    except BaseException:
        registry.finish(run_id, ok=False)
        raise
    log.info("training run %s: version %s (%s), artifact %s", run_id, version, alias, manifest.version)
    return TrainResult(version, alias, run_id, manifest.version, eval_manifest.version, metrics, params)


# ---------------------------------------------------------------------------------------- loading a version
def local_artifact(registry: Registry, data: MovieLens, model_version, which: str = "serving") -> str:
    """The artifact version of a registered version's serving or evaluation bundle, made sure to
    be here and intact: the local copy, else downloaded from the run's MLflow artifacts."""
    tag = "artifact_version" if which == "serving" else "eval_artifact_version"
    artifact = model_version.tags.get(tag)
    if not artifact:
        raise RegistryError(f"model version {model_version.version} has no {tag} tag (not made by `cineagent train`)")
    try:
        open_version(artifact, data_checksum=data.checksum)
    except ArtifactError:
        fetch_artifact(registry, model_version.run_id, "bundle" if which == "serving" else "eval_bundle", artifact)
    return artifact


def local_bundle(registry: Registry, data: MovieLens, model_version, which: str = "serving") -> ModelBundle:
    return load_bundle(data, local_artifact(registry, data, model_version, which))


def fetch_artifact(registry: Registry, run_id: str, path: str, artifact: str) -> Path:
    """Copy a run's bundle into ``$CINEAGENT_HOME/artifacts/<artifact>`` (atomically)."""
    import os
    import shutil
    import tempfile

    root = artifacts_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        got = Path(registry.client.download_artifacts(run_id, path, tmp))
        target = root / artifact
        shutil.rmtree(target, ignore_errors=True)
        os.replace(got, target)
    log.info("fetched artifact %s from MLflow run %s", artifact, run_id)
    return root / artifact


# ---------------------------------------------------------------------------------------- the gate
@dataclass
class GateConfig:
    ndcg_tolerance: float = 0.01        # challenger's holdout nDCG@10 may be at most this below the champion's
    recall_tolerance: float = 0.01      # the same for Recall@10
    coverage_tolerance: float = 0.05    # and for catalogue coverage@10
    recent_tolerance: float = 0.01      # held-out recent swipes: Recall@10 at most this below
    latency_budget_ms: float = 50.0     # p95 of a top 10, known user and folded-in person alike


@dataclass
class GateResult:
    version: str
    champion: str | None
    passed: bool
    checks: list[dict]            # {"check", "passed", "detail"}
    figures: dict[str, float]
    run_id: str

    @property
    def reasons(self) -> list[str]:
        return [f"{c['check']}: {c['detail']}" for c in self.checks if not c["passed"]]

    def as_dict(self) -> dict:
        return {"version": self.version, "champion": self.champion, "passed": self.passed, "checks": self.checks,
                "figures": self.figures, "run_id": self.run_id}


def _swipes_at(store, position: int, data: MovieLens) -> SwipeTable | None:
    from models.feedback import swipe_table

    if store is None or position <= 0:
        return None
    return swipe_table(store.swipes(upto=position), data, store.seeds(), position)


def gate(version: str, registry: Registry, data: MovieLens, store=None, config: GateConfig | None = None) -> GateResult:
    """Judge ``version`` against the champion (see the module docstring); logs one MLflow run."""
    config = config or GateConfig()
    challenger = registry.version(version)
    version = str(challenger.version)
    champion = registry.by_alias(CHAMPION)
    if champion is not None and str(champion.version) == str(version):
        raise RegistryError(f"version {version} is the champion already; gate a challenger")
    split = splits.stratified(data.ratings)
    position = int(challenger.tags.get("swipe_position", "0") or 0)
    table = _swipes_at(store, position, data)
    figures: dict[str, float] = {}
    checks: list[dict] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"check": name, "passed": bool(passed), "detail": detail})

    challenger_eval = local_bundle(registry, data, challenger, "evaluation")
    champion_eval = local_bundle(registry, data, champion, "evaluation") if champion is not None else None
    # 1. the MovieLens holdout, both measured now on the same split
    for role, bundle in (("challenger", challenger_eval), ("champion", champion_eval)):
        if bundle is not None:
            figures.update({f"{role}.{k}": v for k, v in holdout_metrics(bundle, split, data, models=False).items()})
    if champion_eval is not None:
        for figure, tolerance in (("ndcg_at_10", config.ndcg_tolerance), ("recall_at_10", config.recall_tolerance),
                                  ("coverage_at_10", config.coverage_tolerance)):
            new, old = figures[f"challenger.holdout.fusion.{figure}"], figures[f"champion.holdout.fusion.{figure}"]
            check(f"holdout {figure}", new >= old - tolerance,
                  f"{new:.4f} vs champion {old:.4f} (tolerance {tolerance})")
    else:
        check("holdout", True, "no champion yet: nothing to compare with")
    # 2. held-out recent swipes, at the challenger's recorded position
    profiles: dict[int, dict[int, float]] = {}
    if table is not None and len(table.frame):
        earlier, recent = split_recent(table)
        for role, bundle in (("challenger", challenger_eval), ("champion", champion_eval)):
            if bundle is not None:
                figures.update({f"{role}.{k}": v for k, v in
                                recent_swipe_metrics(bundle, earlier, recent, table.seeds, data.ratings).items()})
        profiles = fold_in_profiles(table.frame, table.seeds, data.ratings)
        if champion_eval is not None and figures.get("challenger.recent.people", 0) > 0:
            new, old = figures["challenger.recent.recall_at_10"], figures["champion.recent.recall_at_10"]
            check("recent swipes recall_at_10", new >= old - config.recent_tolerance,
                  f"{new:.4f} vs champion {old:.4f} over {int(figures['challenger.recent.people'])} people "
                  f"(tolerance {config.recent_tolerance})")
        else:
            check("recent swipes", True, "no held-out swipes or no champion: skipped")
    else:
        check("recent swipes", True, "trained without swipes: skipped")
    # 3. latency and 4. sanity, on what would be served
    serving = local_bundle(registry, data, challenger, "serving")
    timed = latency(serving, profiles)
    figures.update({f"challenger.{k}": v for k, v in timed.items()})
    worst = max(v for k, v in timed.items() if k.endswith("p95_ms"))
    check("latency p95", worst <= config.latency_budget_ms, f"{worst:.2f} ms (budget {config.latency_budget_ms} ms)")
    problems = sanity(serving, profiles)
    check("output sanity", not problems, "; ".join(problems) if problems else
          f"{len(serving.fusion.sources['svd'].user_ids)} training users, and {len(profiles)} people folded in from "
          f"their swipes: finite scores, {K} items each (or all that are left), catalog ids only, nothing excluded or seen")
    passed = all(c["passed"] for c in checks)

    reasons = "; ".join(f"{c['check']}: {c['detail']}" for c in checks if not c["passed"])
    run_id = registry.start_run(f"gate v{version}", {
        "cineagent.kind": "gate", "cineagent.gated_version": str(version),
        "cineagent.champion_version": str(champion.version) if champion is not None else "",
        "cineagent.verdict": "pass" if passed else "fail", "mlflow.source.git.commit": code_version()})
    registry.log(run_id, params={f"gate.{k}": v for k, v in config.__dict__.items()} | {"gate.swipe_position": position},
                 metrics={**figures, "gate.passed": float(passed)},
                 tags={"cineagent.reasons": reasons})
    registry.finish(run_id)
    registry.tag_version(version, {"gate_verdict": "pass" if passed else "fail", "gate_run_id": run_id,
                                   "gate_champion": str(champion.version) if champion is not None else "",
                                   "gate_reasons": reasons[:4000]})
    return GateResult(str(version), str(champion.version) if champion is not None else None, passed, checks, figures, run_id)


def promote(registry: Registry, version: str, force: bool = False) -> str | None:
    """Make ``version`` the champion: only when its gate passed against the current champion
    (``force`` skips that). Returns the version it replaced."""
    candidate = registry.version(version)
    version = str(candidate.version)
    champion = registry.by_alias(CHAMPION)
    if not force and champion is not None and str(champion.version) != str(version):
        verdict = candidate.tags.get("gate_verdict")
        if verdict != "pass":
            why = candidate.tags.get("gate_reasons") or "it has not been gated"
            raise RegistryError(f"version {version} has not passed the gate ({why}); run `cineagent models gate "
                                f"{version}` (or promote with --force)")
        if candidate.tags.get("gate_champion") != str(champion.version):
            raise RegistryError(f"version {version} was gated against version {candidate.tags.get('gate_champion')}, "
                                f"but the champion is now {champion.version}: gate it again")
    previous = registry.promote(version)
    sync_current(registry)
    return previous


def rollback(registry: Registry) -> tuple[str, str]:
    moved = registry.rollback()
    sync_current(registry)
    return moved


def sync_current(registry: Registry) -> None:
    """Point this machine's ``artifacts/CURRENT`` at the champion's artifact when it is here, so
    that a process that cannot read the registry still serves the champion."""
    champion = registry.by_alias(CHAMPION)
    artifact = champion.tags.get("artifact_version") if champion is not None else None
    if artifact and (artifacts_root() / artifact).exists():
        set_current(artifact)
