"""``cineagent``: the command line. Library code raises typed errors; only this turns them into messages."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("cineagent")


def _write_json(path: str | None, obj: dict) -> None:
    if path:
        from data.store import write_json_atomic

        write_json_atomic(Path(path), obj)
        print(f"wrote {path}")


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
def _train_reader(data) -> dict:
    """The trained reader of messages, from the labelled messages in data/labels."""
    from agent.understand.artifact import train_reader

    figures = train_reader(data)
    print(f"trained the {figures['reader_variant']} reader on {figures['reader_messages']} labelled messages "
          f"(labels {figures['reader_labels_sha']}) in {figures['reader_train_seconds']} s")
    return figures


def _database_url() -> str | None:
    from agent.settings import Settings

    return Settings.from_env().database_url


def cmd_train(args) -> int:
    from data import movielens
    from models import registry as reg
    from models.lifecycle import train_run
    from agent.understand.artifact import reader_is_current
    from retrieval.catalog import item_vectors

    data = movielens.load()
    database_url = _database_url()
    if args.if_missing:
        from agent.runtime import champion_artifact
        from models.artifacts import ArtifactError, open_version

        try:
            artifact = champion_artifact(data, database_url)   # fetched from MLflow when not here
            manifest = open_version(artifact, data_checksum=data.checksum)
            print(f"models are current (artifact {manifest.version}"
                  f"{', the registry champion' if artifact else ''}); not retraining")
            if not reader_is_current():
                _train_reader(data)
            return 0
        except ArtifactError as exc:
            print(f"training: {exc}")
    registry = reg.Registry(database_url)
    feedback = None
    if args.with_feedback:
        from data.event_store import open_store
        from models.feedback import swipe_table

        store = open_store(database_url)
        try:
            position = args.position if args.position is not None else store.swipe_position()
            feedback = swipe_table(store.swipes(upto=position), data, store.seeds(), position)
        finally:
            store.close()
        print(f"feedback: {len(feedback.frame)} swipes of {feedback.people} people, event-store position {position}")
    vectors = item_vectors(data)
    result = train_run(data, vectors, registry, feedback=feedback, challenger=args.challenger,
                       shuffled=args.shuffled_ratings, note=args.note or "")
    m = result.metrics
    reader = _train_reader(data)
    print(f"MLflow run {result.run_id} in {registry.describe()}")
    print(f"registered version {result.version} with alias {result.alias!r} (artifact {result.artifact_version}); "
          f"holdout fusion ndcg@10 {m['holdout.fusion.ndcg_at_10']:.4f} recall@10 {m['holdout.fusion.recall_at_10']:.4f}"
          + (f", recent swipes recall@10 {m['recent.recall_at_10']:.4f} ({int(m['recent.people'])} people)"
             if "recent.recall_at_10" in m else "")
          + f"; {m['train.seconds']:.1f} s, peak RSS {m['train.peak_rss_mib']:.0f} MiB")
    if result.alias != reg.CHAMPION:
        print(f"not serving yet: `cineagent models gate {result.version}`, then `cineagent models promote {result.version}`")
    _write_json(args.json, {"version": result.version, "alias": result.alias, "run_id": result.run_id,
                            "artifact_version": result.artifact_version, **m, **reader})
    return 0


def cmd_models_list(args) -> int:
    import json

    from models import registry as reg

    registry = reg.Registry(_database_url())
    aliases = registry.aliases()
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    rows = []
    for v in registry.versions():
        run = registry.run(v.run_id) if v.run_id else None
        metrics = run.data.metrics if run else {}
        rows.append({"version": str(v.version), "aliases": sorted(by_version.get(str(v.version), [])),
                     "created": time.strftime("%Y-%m-%d %H:%M", time.gmtime(v.creation_timestamp / 1000)),
                     "kind": v.tags.get("kind"), "artifact_version": v.tags.get("artifact_version"),
                     "swipe_position": int(v.tags.get("swipe_position", 0) or 0),
                     "gate": v.tags.get("gate_verdict"), "gate_reasons": v.tags.get("gate_reasons") or None,
                     "holdout_ndcg@10": metrics.get("holdout.fusion.ndcg_at_10"),
                     "holdout_recall@10": metrics.get("holdout.fusion.recall_at_10"),
                     "recent_recall@10": metrics.get("recent.recall_at_10"), "run_id": v.run_id})
    if args.json:
        print(json.dumps({"registry": registry.describe(), "versions": rows, "history": registry.history()}, indent=2))
        return 0
    print(f"registry: {registry.describe()}")
    if not rows:
        print("no registered versions yet: `cineagent train`")
        return 0
    fmt = lambda x: "-" if x is None else f"{x:.4f}"
    print(f"{'version':>7}  {'aliases':<22} {'created':<16} {'swipes@':>8} {'gate':<5} {'ndcg@10':>8} "
          f"{'recall@10':>9} {'recent@10':>9}  artifact")
    for r in rows:
        print(f"{r['version']:>7}  {','.join(r['aliases']) or '-':<22} {r['created']:<16} {r['swipe_position']:>8} "
              f"{r['gate'] or '-':<5} {fmt(r['holdout_ndcg@10']):>8} {fmt(r['holdout_recall@10']):>9} "
              f"{fmt(r['recent_recall@10']):>9}  {r['artifact_version']}")
        if r["gate"] == "fail":
            print(f"{'':>9}gate: {r['gate_reasons']}")
    return 0


def cmd_models_gate(args) -> int:
    import json

    from data import movielens
    from data.event_store import open_store
    from models import registry as reg
    from models.lifecycle import GateConfig, gate, promote

    database_url = _database_url()
    registry = reg.Registry(database_url)
    store = open_store(database_url)
    config = GateConfig(**{k: getattr(args, k) for k in GateConfig.__dataclass_fields__ if getattr(args, k) is not None})
    try:
        result = gate(args.version, registry, movielens.load(), store, config)
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"gate of version {result.version} against champion {result.champion or '(none)'} "
              f"(MLflow run {result.run_id}):")
        for c in result.checks:
            print(f"  {'PASS' if c['passed'] else 'FAIL'}  {c['check']}: {c['detail']}")
        print(f"verdict: {'PASS' if result.passed else 'FAIL'}"
              + ("" if result.passed else f"; version {result.version} stays {reg.CHALLENGER!r} and is not served"))
    if result.passed and args.promote:
        previous = promote(registry, result.version)
        print(f"promoted version {result.version} to champion (was {previous or 'none'})")
    return 0 if result.passed else 1


def cmd_models_promote(args) -> int:
    from models import registry as reg
    from models.lifecycle import promote

    registry = reg.Registry(_database_url())
    previous = promote(registry, args.version, force=args.force)
    print(f"version {registry.by_alias(reg.CHAMPION).version} is the champion (was {previous or 'none'}); servers pick it up on their next "
          "check or restart")
    return 0


def cmd_models_rollback(args) -> int:
    from models import registry as reg
    from models.lifecycle import rollback

    registry = reg.Registry(_database_url())
    current, target = rollback(registry)
    print(f"champion rolled back from version {current} to version {target}")
    return 0


# ---------------------------------------------------------------------------------------- eval
def cmd_eval_offline(args) -> int:
    from data import movielens
    from eval.offline import format_report, offline_report

    report = offline_report(movielens.load(), export_split=args.export_split, rating=not args.skip_rating)
    print(format_report(report))
    _write_json(args.json, report)
    return 0


def cmd_eval_gold(args) -> int:
    from agent.runtime import make_parser
    from data import movielens
    from data import GOLD_SET
    from eval.experiments import run_gold
    from eval.gold import format_table, load_cases

    cases = load_cases(args.dataset or GOLD_SET)  # before the catalog: a bad path fails at once (exit 2)
    data = movielens.load()
    # always the local report; also a Langfuse dataset + experiment when Langfuse is configured
    report = run_gold(cases, make_parser(data, args.parser))
    print(format_table(report, only_failures=args.failures_only))
    langfuse = report.get("langfuse")
    if langfuse:
        print(f"Langfuse: {langfuse['error']}" if "error" in langfuse else
              f"Langfuse experiment {langfuse['run_name']!r} on dataset {langfuse['dataset']} ({langfuse['items']} items)"
              + (f": {langfuse['url']}" if langfuse.get("url") else ""))
    _write_json(args.json, report)
    return 0


def cmd_eval_conversational(args) -> int:
    from data import movielens, splits
    from eval.conversational import conversational_report
    from models.train import fit_bundle
    from retrieval.catalog import item_vectors

    data = movielens.load()
    split = splits.stratified(data.ratings)
    bundle = fit_bundle(split.train, data, item_vectors(data))
    report = conversational_report(split, bundle, limit=args.limit)
    print(f"conversational protocol: {report['cases']} (user, genre) requests in {report['seconds']:.0f} s")
    for name, m in sorted(report["methods"].items(), key=lambda kv: -kv[1]["ndcg@10"]):
        print(f"{name:<22} recall@10 {m['recall@10']:.4f}  ndcg@10 {m['ndcg@10']:.4f}")
    _write_json(args.json, report)
    return 0


def cmd_eval_understanding(args) -> int:
    from agent.offline_parser import OfflineParser
    from agent.text_vectors import text_vectors
    from data import movielens
    from eval.understanding import EVAL_VARIANTS, evaluate, format_report, load_rows

    rows = load_rows([Path(p) for p in args.labels])
    report = evaluate(rows, OfflineParser(movielens.load()), text_vectors(), variants=args.variants or EVAL_VARIANTS,
                      curve=not args.no_curve, heldout=not args.dev_only)
    print(format_report(report))
    if args.misses:
        _write_json(args.misses, {v: e["train_cv"]["misses"] for v, e in report["variants"].items()})
    for entry in report["variants"].values():
        for fold in ("train_cv", "heldout"):
            entry[fold] = {k: v for k, v in entry[fold].items() if k != "misses"}
    _write_json(args.json, report)
    return 0


def cmd_eval_dialogues(args) -> int:
    from agent.runtime import load_agent
    from eval.dialogues import agent_replay, api_replay, evaluate_dialogues, format_report, load_dialogues

    cases = load_dialogues(args.dataset)[: args.limit or None]
    if args.url:  # through a served app, as people reach it (the catalog for the baselines: local)
        from data import movielens

        report = evaluate_dialogues(cases, movielens.load(), api_replay(args.url))
    else:
        agent = load_agent(parser=args.parser)
        report = evaluate_dialogues(cases, agent.data, agent_replay(agent))
    print(format_report(report))
    _write_json(args.json, report)
    return 0


def cmd_eval_nightly(args) -> int:
    from agent.settings import Settings
    from eval.nightly import NightlyConfig, run_nightly

    result = run_nightly(NightlyConfig(quick=args.quick, threshold=args.threshold, parser=args.parser,
                                       requests=args.requests, dialogues=args.dialogues,
                                       database_url=Settings.from_env().database_url))
    print(result.summary())
    _write_json(args.json, result.entry)
    return result.exit_code   # 1 when a figure fell more than the threshold below the previous run


def cmd_eval_harvest(args) -> int:
    from agent.settings import Settings
    from data import movielens
    from eval.harvest import HarvestConfig, run_harvest

    candidates, path = run_harvest(HarvestConfig(low_rank=args.low_rank, high_rank=args.high_rank),
                                   database_url=Settings.from_env().database_url,
                                   out=Path(args.out) if args.out else None, data=movielens.load())
    print(f"{len(candidates)} candidate gold case(s) for review -> {path} (the gold set is not changed)")
    return 0


def cmd_prompts_push(args) -> int:
    from agent.prompt_registry import registry

    version = registry().publish(args.name)
    print(f"published the repo prompt {args.name!r} to Langfuse as version {version} (label production)")
    return 0


# ---------------------------------------------------------------------------------------- agent
def _service(parser: str):
    """The agent's facade over the configured event store, loaded (the CLI's turns are recorded
    like the app's)."""
    from agent.service import CineAgent
    from agent.settings import Settings

    service = CineAgent(Settings.from_env(parser=parser))
    service.load()
    service.require()   # a failed load says why, as an error for the person at the terminal
    return service


def cmd_recommend(args) -> int:
    import asyncio
    import uuid

    service = _service(args.parser)
    result = asyncio.run(service.chat(args.user, args.session or f"cli-{uuid.uuid4().hex}", args.query, channel="cli"))
    print(result.text)
    for note in result.notices:
        print(f"  ({note})")
    for rank, card in enumerate(result.cards, 1):
        print(f"{rank:>2}. {card.title} ({card.year}) [{', '.join(card.genres)}] — {card.explanation}")
    _write_json(args.json, {"intent": result.intent.model_dump(mode="json"),
                            "items": [c.as_dict() for c in result.cards], "text": result.text,
                            "parser": result.parse.parser if result.parse else None})
    return 0


def cmd_chat(args) -> int:
    import asyncio
    import uuid

    from data.errors import CineAgentError

    service = _service(args.parser)
    session = uuid.uuid4().hex
    print(f"CineAgent — user {args.user}, parser {service.require().parser.name}. Empty line or Ctrl-D to quit.")
    loop = asyncio.new_event_loop()
    while True:
        try:
            message = input("you> ")
        except EOFError:
            break
        if not message.strip():
            break
        try:
            result = loop.run_until_complete(service.chat(args.user, session, message, channel="cli"))
        except CineAgentError as exc:
            print(f"agent> {exc}")
            continue
        print(f"agent> {result.text}")
        for note in result.notices:
            print(f"       ({note})")
        for rank, card in enumerate(result.cards, 1):
            print(f"  {rank:>2}. {card.title} ({card.year}) — {card.explanation}")
    loop.close()
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from agent.settings import Settings

    from data.event_store import open_store

    settings = Settings.from_env()   # a bad CINEAGENT_* value stops here, with its name, before any worker starts
    # so does a store that cannot be used (unreachable, or written by a newer CineAgent); this also
    # migrates it, and imports an earlier version's files, once, before the workers open it
    open_store(settings.database_url).close()
    host = args.host or os.environ.get("CINEAGENT_HOST") or "127.0.0.1"
    port = args.port or int(os.environ.get("CINEAGENT_PORT") or 7860)
    # by import string so nothing imports app.py, and so uvicorn can start --workers processes: each
    # loads the models and serves anyone, their state shared through the event store. On SIGTERM
    # uvicorn stops accepting, lets requests in flight finish (a swipe is answered only once it is
    # committed), then closes what is left. No access log by default: every turn is a Turn event
    # and /metrics counts requests by route and status; CINEAGENT_ACCESS_LOG=1 turns it on.
    # Forwarded headers (X-Forwarded-For/-Proto) are believed only from the proxies the operator
    # names (CINEAGENT_TRUSTED_PROXIES); uvicorn's own default believes 127.0.0.1, so any local
    # client could pick its address and escape every per-client limit. h11 (not httptools) parses
    # requests so that a request line plus headers over HEADER_LIMIT_BYTES is refused while it
    # arrives (400, connection closed), not buffered whole first (httptools has no such bound).
    from web.gate import HEADER_LIMIT_BYTES

    uvicorn.run("app:app", host=host, port=port, workers=args.workers, timeout_graceful_shutdown=args.grace,
                timeout_keep_alive=args.keep_alive, log_level="info", access_log=settings.access_log,
                proxy_headers=settings.trusted_proxies is not None,
                forwarded_allow_ips=settings.trusted_proxies or "",
                http="h11", h11_max_incomplete_event_size=HEADER_LIMIT_BYTES)
    return 0


def cmd_feedback_export(args) -> int:
    from agent.settings import Settings
    from data.event_store import open_store
    from data.feedback import write_feedback

    store = open_store(Settings.from_env().database_url)
    swipes = store.swipes()
    if args.out:
        count = write_feedback(swipes, args.out)
        print(f"{count} swipe(s) -> {args.out}", file=sys.stderr)
    else:
        for swipe in swipes:
            sys.stdout.write(swipe.to_line().decode("utf-8"))
    return 0


def cmd_feedback_simulate(args) -> int:
    from data import movielens
    from data.event_store import open_store
    from models.feedback import synthetic_swipes

    store = open_store(_database_url())
    swipes = synthetic_swipes(movielens.load(), people=args.people, swipes_each=args.swipes, seed=args.seed,
                              prefix=args.prefix)
    position = store.add_swipes(swipes)
    print(f"{len(swipes)} synthetic swipes of {args.people} people ({args.prefix}-*) -> {store.describe()}, "
          f"position {position}")
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


@contextmanager
def _scratch_service(parser: str, prefix: str):
    """The agent's facade, loaded, over a scratch state directory that borrows the current home's
    models and data: a benchmark's swipes and turns never land in the real store."""
    import tempfile

    from agent.service import CineAgent
    from agent.settings import Settings
    from data.store import home
    from eval.load_test import scratch_home

    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        os.environ["CINEAGENT_HOME"] = str(scratch_home(Path(scratch), home()))
        service = CineAgent(Settings.from_env(parser=parser, database_url=None))
        service.load()
        yield service


def cmd_bench_turn(args) -> int:
    from eval.bench import bench_turn

    with _scratch_service(args.parser, "cineagent-bench-turn-") as service:
        result = bench_turn(service, n=args.n)
    print(f"chat turn, parser {args.parser} (n={result['n']}): p50 {result['p50_ms']:.1f} ms  "
          f"p95 {result['p95_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms")
    _write_json(args.json, result)
    return 0


def cmd_bench_memory(args) -> int:
    from eval.bench import bench_memory

    with _scratch_service("offline", "cineagent-bench-memory-") as service:
        result = bench_memory(service, people=args.people)
    print(f"{result['people']} new people, one swipe each (a turn every 10th): RSS {result['rss_before_mib']} -> "
          f"{result['rss_after_mib']} MiB (+{result['growth_mib']} MiB) in {result['seconds']} s")
    _write_json(args.json, result)
    return 0


def cmd_bench_embed(args) -> int:
    from eval.bench import bench_embed

    results = bench_embed(n=args.n)
    for name, r in results.items():
        print(f"embed one phrase, {name} (n={r['n']}): p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  "
              f"p99 {r['p99_ms']:.1f} ms")
    _write_json(args.json, results)
    return 0


def cmd_bench_load(args) -> int:
    from eval.load_test import format_capacity, format_report, run_capacity_test, run_load_test

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the report
    if args.think:
        report = run_capacity_test(turns=args.turns or 10, time_limit_s=args.time_limit,
                                   workers=args.workers)
        print(format_capacity(report))
        _write_json(args.json, report)
        return 0 if report["holds"] else 1
    report = run_load_test(users=args.users, turns=args.turns or 50, swipes=args.swipes, time_limit_s=args.time_limit,
                           shadow=args.shadow)
    print(format_report(report))
    _write_json(args.json, report)
    return 0 if report["ok"] else 1


def cmd_bench_abuse(args) -> int:
    from eval.abuse_bench import format_abuse, run_abuse_bench

    logging.getLogger("httpx").setLevel(logging.WARNING)
    report = run_abuse_bench(header_mb=args.header_mb, joins=args.joins, exports=args.exports, log_mb=args.log_mb)
    print(format_abuse(report))
    _write_json(args.json, report)
    return 0 if report["ok"] else 1


def cmd_bench_replicas(args) -> int:
    from eval.replicas import format_kill, format_replicas, run_kill_test, run_replica_bench

    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = args.server or os.environ.get("CINEAGENT_DATABASE_URL")
    if not url:
        from data.errors import CineAgentError

        raise CineAgentError("bench replicas needs a PostgreSQL server: --server postgresql://user@host:port/db "
                             "(a fresh database is made on it and dropped afterwards)")
    report = {"continuity": run_replica_bench(url, people=args.people, turns=args.turns, swipes=args.swipes),
              "kill": run_kill_test(url, people=args.people, swipes=args.swipes)}
    print(format_replicas(report["continuity"]))
    print(format_kill(report["kill"]))
    _write_json(args.json, report)
    return 0 if report["continuity"]["ok"] and report["kill"]["ok"] else 1


def cmd_bench_ui(args) -> int:
    from eval.ui_bench import format_report, run_ui_bench

    report = run_ui_bench(turns=args.turns, phone=args.phone)
    print(format_report(report))
    _write_json(args.json, report)
    return 0 if report["ok"] else 1


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

    train = sub.add_parser("train", help="train every model (an MLflow run); register the bundle as a model version")
    train.add_argument("--json", help="write the training figures here")
    train.add_argument("--if-missing", action="store_true", help="do nothing when a valid artifact exists")
    train.add_argument("--challenger", action="store_true",
                       help="register with the alias challenger, never champion (`models gate`, then `models promote`)")
    train.add_argument("--with-feedback", action="store_true",
                       help="also train on people's swipes from the event store (likes positive, dislikes negative)")
    train.add_argument("--position", type=int, help="with --with-feedback: only swipes up to this event-store "
                       "position (default: the latest), to repeat a run")
    train.add_argument("--shuffled-ratings", action="store_true",
                       help="a deliberately broken model (the items of the ratings shuffled), to see the gate refuse it")
    train.add_argument("--note", help="a description for the run and the model version")
    train.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="the model registry (MLflow)").add_subparsers(dest="models_command",
                                                                                         required=True)
    mlist = models.add_parser("list", help="versions, aliases, gate verdicts, key metrics")
    mlist.add_argument("--json", action="store_true", help="print JSON")
    mlist.set_defaults(func=cmd_models_list)
    mgate = models.add_parser("gate", help="validate a version against the champion (exit 1 when it fails)")
    mgate.add_argument("version", help="a version number, or an alias (challenger)")
    mgate.add_argument("--json", action="store_true", help="print JSON")
    mgate.add_argument("--promote", action="store_true", help="promote it when it passes")
    mgate.add_argument("--ndcg-tolerance", dest="ndcg_tolerance", type=float)
    mgate.add_argument("--recall-tolerance", dest="recall_tolerance", type=float)
    mgate.add_argument("--coverage-tolerance", dest="coverage_tolerance", type=float)
    mgate.add_argument("--recent-tolerance", dest="recent_tolerance", type=float)
    mgate.add_argument("--latency-budget-ms", dest="latency_budget_ms", type=float)
    mgate.set_defaults(func=cmd_models_gate)
    mpromote = models.add_parser("promote", help="make a version the champion (it must have passed the gate)")
    mpromote.add_argument("version")
    mpromote.add_argument("--force", action="store_true", help="without a passing gate")
    mpromote.set_defaults(func=cmd_models_promote)
    mrollback = models.add_parser("rollback", help="the previous champion serves again")
    mrollback.set_defaults(func=cmd_models_rollback)

    ev = sub.add_parser("eval", help="evaluations").add_subparsers(dest="eval_command", required=True)
    off = ev.add_parser("offline", help="ranking + rating benchmark on the published protocols")
    off.add_argument("--json", help="write the report here")
    off.add_argument("--export-split", help="also write the splits used (train.tsv/test.tsv) under this directory")
    off.add_argument("--skip-rating", action="store_true", help="skip the 5-fold rating protocol (minutes)")
    off.set_defaults(func=cmd_eval_offline)

    gold = ev.add_parser("gold", help="intent parsing against the gold set")
    gold.add_argument("--dataset", help="JSON list or JSONL of cases (default: the packaged gold set)")
    gold.add_argument("--parser", choices=["offline", "llm"], default="offline")
    gold.add_argument("--failures-only", action="store_true", help="print only the cases it gets wrong")
    gold.add_argument("--json", help="write the report here")
    gold.set_defaults(func=cmd_eval_gold)
    under = ev.add_parser("understanding", help="the rule, text and hybrid readers on the labelled messages: "
                          "training fold (cross-validated) and held-out fold, with learning curves")
    under.add_argument("--labels", nargs="*", default=[], help="more labelled files in the same schema "
                       "(JSON Lines; `op` derived from `act` where missing)")
    under.add_argument("--variants", nargs="*", default=None, help="rules, text, hybrid, served (the hybrid's "
                       "operation with the rules' genres; default: all)")
    under.add_argument("--no-curve", action="store_true", help="skip the learning curves")
    under.add_argument("--dev-only", action="store_true", help="the training fold only (cross-validated): for "
                       "trying a change without seeing held-out figures")
    under.add_argument("--misses", help="write every training-fold miss (cross-validated) of each variant here "
                       "(JSON; the held-out misses are never written, so nobody tunes on them)")
    under.add_argument("--json", help="write the report here")
    under.set_defaults(func=cmd_eval_understanding)
    conv = ev.add_parser("conversational", help="ask each test user for each genre of their test positives")
    conv.add_argument("--limit", type=int, help="only the first N (user, genre) requests")
    conv.add_argument("--json", help="write the report here")
    conv.set_defaults(func=cmd_eval_conversational)
    dialogues = ev.add_parser("dialogues", help="replay real dialogues (seeker messages) as new people; "
                              "Recall@1/5/10 and HR@10 of the last cards, with popularity and co-rated baselines")
    dialogues.add_argument("--dataset", required=True, help="JSON Lines: seeker_messages, mentioned, "
                           "seeker_mentioned, targets per case (ReDial mapped to MovieLens)")
    dialogues.add_argument("--parser", choices=["auto", "offline", "llm"], default="offline")
    dialogues.add_argument("--limit", type=int, help="only the first N cases")
    dialogues.add_argument("--url", help="replay through a served app's JSON API (e.g. http://127.0.0.1:7860) "
                           "instead of in-process: a new person per case, bearer tokens")
    dialogues.add_argument("--json", help="write the report (metrics and every case) here")
    dialogues.set_defaults(func=cmd_eval_dialogues)
    nightly = ev.add_parser("nightly", help="gold set, offline benchmark and feedback stats: history, HTML "
                                            "dashboard, exit 1 on a regression")
    nightly.add_argument("--quick", action="store_true",
                         help="offline benchmark on the stratified split only (one model fit, no rating protocol)")
    nightly.add_argument("--threshold", type=float, default=0.02,
                         help="a figure this much below the previous run fails the run (default 0.02)")
    nightly.add_argument("--parser", choices=["offline", "llm"], default="offline")
    nightly.add_argument("--requests", type=Path, help="also score real people's requests (gold schema, JSON/JSONL)")
    nightly.add_argument("--dialogues", type=Path, help="also replay real dialogues (`eval dialogues` schema) "
                         "through the agent on the current artifacts")
    nightly.add_argument("--json", help="write this run's history entry here")
    nightly.set_defaults(func=cmd_eval_nightly)
    harvest = ev.add_parser("harvest", help="candidate gold cases from swipes and corrections, for review")
    harvest.add_argument("--low-rank", type=int, default=8, help="a liked card at this rank or lower (default 8)")
    harvest.add_argument("--high-rank", type=int, default=2, help="a disliked card at this rank or higher (default 2)")
    harvest.add_argument("--out", help="review file (default $CINEAGENT_HOME/eval/candidates-<date>.jsonl)")
    harvest.set_defaults(func=cmd_eval_harvest)

    prompts = sub.add_parser("prompts", help="prompt management").add_subparsers(dest="prompts_command", required=True)
    push = prompts.add_parser("push", help="publish a repo prompt to Langfuse with the label production")
    push.add_argument("name", nargs="?", default="intent")
    push.set_defaults(func=cmd_prompts_push)

    parsers = ["auto", "offline", "llm"]
    rec = sub.add_parser("recommend", help="one request, answered with cards")
    rec.add_argument("--user", required=True, help="a MovieLens user id (1-943) or a new person's name")
    rec.add_argument("--query", required=True)
    rec.add_argument("--session", help="session id (default: a fresh one per run, so that each run is its own "
                                       "session in the traces)")
    rec.add_argument("--parser", choices=parsers, default="auto", help="auto = the LLM when configured")
    rec.add_argument("--json", help="write {intent, items} here")
    rec.set_defaults(func=cmd_recommend)
    chat = sub.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--user", default="guest", help="a MovieLens user id (1-943) or a new person's name")
    chat.add_argument("--parser", choices=parsers, default="auto")
    chat.set_defaults(func=cmd_chat)

    bench = sub.add_parser("bench", help="latency benchmarks").add_subparsers(dest="bench_command", required=True)
    score = bench.add_parser("score", help="top-10 for known users from loaded models")
    score.add_argument("-n", type=int, default=1000, help="timed calls")
    score.add_argument("--json", help="write p50/p95/p99 here")
    score.set_defaults(func=cmd_bench_score)
    turn = bench.add_parser("turn", help="one chat turn, warm, over the gold set's utterances")
    turn.add_argument("-n", type=int, default=500, help="timed turns")
    turn.add_argument("--parser", choices=["offline", "llm"], default="offline")
    turn.add_argument("--json", help="write p50/p95/p99 here")
    turn.set_defaults(func=cmd_bench_turn)
    emb = bench.add_parser("embed", help="one unseen phrase through MiniLM, traced and eager, alone and beside a busy thread")
    emb.add_argument("-n", type=int, default=30, help="timed phrases alone (a fifth of that beside the busy thread)")
    emb.add_argument("--json", help="write p50/p95/p99 here")
    emb.set_defaults(func=cmd_bench_embed)
    memory = bench.add_parser("memory", help="resident memory as many new people each swipe once (in-process)")
    memory.add_argument("--people", type=int, default=10_000)
    memory.add_argument("--json", help="write the figures here")
    memory.set_defaults(func=cmd_bench_memory)
    load = bench.add_parser("load", help="concurrent chat turns and swipes through the JSON API of a served app")
    load.add_argument("--users", type=int, default=20, help="concurrent simulated users (and swipe writers)")
    load.add_argument("--turns", type=int, help="chat turns per user (default 50; 10 with --think)")
    load.add_argument("--swipes", type=int, default=1000, help="swipes in all, spread over the users")
    load.add_argument("--time-limit", type=float, default=480.0, help="seconds before the run stops early")
    load.add_argument("--think", action="store_true",
                      help="people who wait 1-3 s between turns, in growing crowds (10, 15, 25, 40, ...): how many the "
                           "app holds at p95 <= 100 ms with 0 errors (--turns per person, default 10)")
    load.add_argument("--workers", type=int, default=1, help="with --think: app worker processes (serve --workers)")
    load.add_argument("--shadow", action="store_true",
                      help="shadow mode on: the current artifact registered as champion and challenger, and every "
                           "turn ranked by both (compare turn p95 with a run without)")
    load.add_argument("--json", help="write the figures here")
    load.set_defaults(func=cmd_bench_load)
    abuse = bench.add_parser("abuse", help="/healthz while a huge header, unread queue joins and concurrent exports "
                                           "are tried on a served app (127.0.0.1)")
    abuse.add_argument("--header-mb", type=int, default=100, help="size of the one header sent")
    abuse.add_argument("--joins", type=int, default=400, help="queue joins never read")
    abuse.add_argument("--exports", type=int, default=4, help="exports at once")
    abuse.add_argument("--log-mb", type=int, default=30, help="other people's turns in the trace log (MB)")
    abuse.add_argument("--json", help="write the figures here")
    abuse.set_defaults(func=cmd_bench_abuse)
    replicas = bench.add_parser("replicas", help="two app replicas on one PostgreSQL: turns and swipes alternating "
                                                 "between them, then kill -9 of a replica mid-swipes")
    replicas.add_argument("--server", help="a PostgreSQL server URL (default $CINEAGENT_DATABASE_URL)")
    replicas.add_argument("--people", type=int, default=20)
    replicas.add_argument("--turns", type=int, default=1000)
    replicas.add_argument("--swipes", type=int, default=1000)
    replicas.add_argument("--json", help="write the figures here")
    replicas.set_defaults(func=cmd_bench_replicas)
    ui = bench.add_parser("ui", help="Enter to the reply on screen, in headless chromium, over one conversation")
    ui.add_argument("--turns", type=int, default=50, help="timed turns (after 3 untimed)")
    ui.add_argument("--phone", action="store_true", help="a 390x844 touch screen instead of 1280x800")
    ui.add_argument("--json", help="write p50/p95/p99 here")
    ui.set_defaults(func=cmd_bench_ui)

    serve = sub.add_parser("serve", help="the web app: chat UI at / and JSON API under /api")
    serve.add_argument("--host", help="default $CINEAGENT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default $CINEAGENT_PORT or 7860")
    serve.add_argument("--grace", type=float, default=10.0,
                       help="seconds a shutdown waits for requests in flight (default 10)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes on this machine, sharing the event store (default 1)")
    serve.add_argument("--keep-alive", type=float, default=5.0,
                       help="seconds an idle connection is kept open (default 5)")
    serve.set_defaults(func=cmd_serve)

    feedback = sub.add_parser("feedback", help="the swipes in the event store").add_subparsers(
        dest="feedback_command", required=True)
    export = feedback.add_parser("export", help="every swipe as JSON Lines (ts, user_id, session_id, item_id, "
                                               "action, trace_id, rank, query), oldest first")
    export.add_argument("--out", help="write to this file (atomically) instead of stdout")
    export.set_defaults(func=cmd_feedback_export)
    simulate = feedback.add_parser("simulate", help="for benchmarks, in a scratch CINEAGENT_HOME: write synthetic "
                                   "swipes of people whose tastes differ from MovieLens' (models.feedback.synthetic_swipes)")
    simulate.add_argument("--people", type=int, default=1000)
    simulate.add_argument("--swipes", type=int, default=10, help="swipes per person")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--prefix", default="sim", help="their user keys are PREFIX-00000, ...")
    simulate.set_defaults(func=cmd_feedback_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        # before numpy, torch and FAISS load (the imports below load them): see the note in app.py
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its AVX probing is noise, not news
    from agent.tracing import TracingConfig, setup_tracing

    # once per process, before any agent is built: exporters from the environment, the local trace
    # log, JSON logs for the server (text in the terminal unless CINEAGENT_LOG_FORMAT says otherwise)
    setup_tracing(TracingConfig.from_env(
        log_format=os.environ.get("CINEAGENT_LOG_FORMAT") or ("json" if args.command == "serve" else "text")))
    from data.errors import CineAgentError

    try:
        return args.func(args)
    except CineAgentError as exc:  # a mistake someone can fix: its message, never a traceback
        print(f"cineagent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
