"""``cineagent``: the command line. Library code raises typed errors; only this turns them into messages."""
from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

log = logging.getLogger("cineagent")


def _write_json(path: str | None, obj: dict) -> None:
    if path:
        from data.store import write_json_atomic

        write_json_atomic(Path(path), obj)
        print(f"wrote {path}")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------- data
def cmd_data_fetch(args) -> int:
    from data import movielens

    path = movielens.fetch(force=args.force)
    data = movielens.load(fetch_if_missing=False)
    print(f"MovieLens 100k ready at {path}: {len(data.ratings)} ratings, {len(data.users)} users, {len(data.items)} items")
    return 0


def cmd_data_split(args) -> int:
    from data import movielens, splits

    data = movielens.load()
    for split in splits.make(data.ratings, args.protocol):
        out = Path(args.out) / split.name if args.protocol == "kfold" else Path(args.out)
        splits.write(split, out)
        print(f"{split.name}: {len(split.train)} train / {len(split.test)} test -> {out}")
    return 0


# ---------------------------------------------------------------------------------------- models
def cmd_train(args) -> int:
    from data import movielens
    from models.train import fit_bundle, save_bundle
    from retrieval.catalog import item_vectors

    started = time.perf_counter()
    data = movielens.load()
    if args.if_missing:
        from models.artifacts import ArtifactError, open_version

        try:
            manifest = open_version(data_checksum=data.checksum)
            print(f"models are current (artifact {manifest.version}); not retraining")
            return 0
        except ArtifactError as exc:
            print(f"training: {exc}")
    vectors = item_vectors(data)
    embedded = time.perf_counter()
    bundle = fit_bundle(data.ratings, data, vectors)
    parameters = {name: getattr(m, "config", None) and m.config.model_dump(mode="json") for name, m in bundle.sources.items()}
    parameters["fusion"] = bundle.fusion.config.model_dump(mode="json")
    metrics = {"fusion_validation_ndcg@10": bundle.fusion.validation_ndcg,
               "train_seconds": time.perf_counter() - started, "embed_seconds": embedded - started,
               "peak_rss_mib": _peak_rss_mib()}
    manifest = save_bundle(bundle, parameters, metrics)
    print(f"trained {', '.join(bundle.sources)} + fusion (weights {bundle.fusion.weights}) "
          f"in {metrics['train_seconds']:.1f} s, peak RSS {metrics['peak_rss_mib']:.0f} MiB -> artifact {manifest.version}")
    _write_json(args.json, {"version": manifest.version, **metrics})
    return 0


# ---------------------------------------------------------------------------------------- eval
def cmd_eval_offline(args) -> int:
    from data import movielens
    from eval.offline import format_report, offline_report

    report = offline_report(movielens.load(), export_split=args.export_split, rating=not args.skip_rating)
    print(format_report(report))
    _write_json(args.json, report)
    return 0


# ---------------------------------------------------------------------------------------- bench
def cmd_bench_score(args) -> int:
    from data import movielens
    from eval.bench import bench_score
    from models.train import load_bundle

    result = bench_score(load_bundle(movielens.load()), n=args.n)
    print(f"score top-10 (n={result['n']}): p50 {result['p50_ms']:.2f} ms  p95 {result['p95_ms']:.2f} ms  "
          f"p99 {result['p99_ms']:.2f} ms")
    _write_json(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cineagent", description="CineAgent: a conversational movie recommender")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="MovieLens data").add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="download, validate and cache MovieLens 100k")
    fetch.add_argument("--force", action="store_true", help="fetch again even when the cache is valid")
    fetch.set_defaults(func=cmd_data_fetch)
    split = data.add_parser("split", help="write train.tsv/test.tsv for a protocol")
    split.add_argument("--protocol", choices=["stratified", "temporal", "kfold"], default="stratified")
    split.add_argument("--out", required=True, help="directory (kfold writes kfold0..kfold4 inside)")
    split.set_defaults(func=cmd_data_split)

    train = sub.add_parser("train", help="train every model and index; save a new artifact version")
    train.add_argument("--json", help="write the training figures here")
    train.add_argument("--if-missing", action="store_true", help="do nothing when a valid artifact exists")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluations").add_subparsers(dest="eval_command", required=True)
    off = ev.add_parser("offline", help="ranking + rating benchmark on the published protocols")
    off.add_argument("--json", help="write the report here")
    off.add_argument("--export-split", help="also write the splits used (train.tsv/test.tsv) under this directory")
    off.add_argument("--skip-rating", action="store_true", help="skip the 5-fold rating protocol (minutes)")
    off.set_defaults(func=cmd_eval_offline)

    bench = sub.add_parser("bench", help="latency benchmarks").add_subparsers(dest="bench_command", required=True)
    score = bench.add_parser("score", help="top-10 for known users from loaded models")
    score.add_argument("-n", type=int, default=1000, help="timed calls")
    score.add_argument("--json", help="write p50/p95/p99 here")
    score.set_defaults(func=cmd_bench_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from data.movielens import DataError
    from models.artifacts import ArtifactError

    try:
        return args.func(args)
    except (DataError, ArtifactError) as exc:
        print(f"cineagent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
