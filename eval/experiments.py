"""``cineagent eval gold`` as a Langfuse experiment.

``run_gold(cases, parser)`` always scores the gold set locally (``eval.gold.evaluate_gold``: the
JSON report the CLI writes). With Langfuse configured (``agent.tracing.setup_tracing`` found the
keys) it also

1. syncs the gold set to the Langfuse dataset ``DATASET`` (``sync_dataset``): one item per case,
   id ``"<dataset>:<case id>"``, input ``{"utterance"}``, expected output the case's ``expected``,
   metadata ``{"case_id", "tags"}``; only new or changed cases are upserted, and items whose case
   left the gold set are archived;
2. records the run as a Langfuse experiment over those items (``Langfuse.run_experiment``): one
   trace per case whose output is the parser's reading, item scores ``correct``,
   ``genres_correct``, ``exclusions_correct``, ``titles_correct`` (booleans), and run scores with
   the report's headline figures. The run metadata names the parser and prompt version.

The experiment replays the predictions of the local run instead of parsing again (an LLM parse
costs seconds), so both results describe the same parses. A Langfuse failure is logged and
reported under ``report["langfuse"]["error"]``; the local result is never lost to it.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from agent.intent import IntentParser
from eval.gold import evaluate_gold

log = logging.getLogger(__name__)

DATASET = "cineagent-gold"
EXPERIMENT = "cineagent gold intent parsing"
HEADLINE = ("accuracy", "micro_f1", "exclusion_accuracy", "title_accuracy", "cases_correct")


def item_id(dataset: str, case_id: str) -> str:
    """Langfuse item ids are unique across datasets: prefix the case id with the dataset's name."""
    return f"{dataset}:{case_id}"


def _item_body(case: dict) -> dict:
    return {"input": {"utterance": case["utterance"]}, "expected_output": case["expected"],
            "metadata": {"case_id": case["id"], "tags": case.get("tags", [])}}


def sync_dataset(client: Any, cases: Sequence[dict], dataset: str = DATASET) -> dict:
    """Make the Langfuse dataset hold exactly ``cases``; returns {"created", "updated", "archived",
    "unchanged"} counts and the fresh dataset client under ``"client"``."""
    from langfuse.api import NotFoundError

    try:
        remote = client.get_dataset(dataset)
    except NotFoundError:
        client.create_dataset(name=dataset, description="CineAgent gold set: utterance -> expected intent "
                                                        "(data/eval_dataset.json)",
                              metadata={"source": "data/eval_dataset.json"})
        remote = client.get_dataset(dataset)
    existing = {item.id: item for item in remote.items}
    counts = {"created": 0, "updated": 0, "archived": 0, "unchanged": 0}
    wanted = set()
    for case in cases:
        iid = item_id(dataset, case["id"])
        wanted.add(iid)
        body = _item_body(case)
        old = existing.get(iid)
        if old is not None and str(old.status).endswith("ACTIVE") and old.input == body["input"] \
                and old.expected_output == body["expected_output"] and old.metadata == body["metadata"]:
            counts["unchanged"] += 1
            continue
        client.create_dataset_item(dataset_name=dataset, id=iid, status="ACTIVE", **body)
        counts["created" if old is None else "updated"] += 1
    for iid, old in existing.items():
        if iid not in wanted and not str(old.status).endswith("ARCHIVED"):
            client.create_dataset_item(dataset_name=dataset, id=iid, status="ARCHIVED", input=old.input,
                                       expected_output=old.expected_output, metadata=old.metadata)
            counts["archived"] += 1
    changed = counts["created"] + counts["updated"] + counts["archived"]
    log.info("Langfuse dataset %s: %s", dataset, counts)
    return {**counts, "client": client.get_dataset(dataset) if changed else remote}


def parser_description(parser: IntentParser) -> dict:
    """What produced the parses: parser name, and for the LLM parser its model and prompt version."""
    out = {"parser": parser.name}
    prompt = getattr(parser, "prompt", None)
    settings = getattr(parser, "settings", None)
    if prompt is not None:
        out["prompt_version"] = prompt.version
    if settings is not None:
        out["model"] = settings.model
    return out


def record_experiment(client: Any, report: dict, cases: Sequence[dict], parser: IntentParser,
                      dataset: str = DATASET, run_name: str | None = None) -> dict:
    """Sync the dataset and record ``report`` (from ``evaluate_gold`` on ``cases``) as one run."""
    from langfuse import Evaluation

    synced = sync_dataset(client, cases, dataset)
    rows = {row["id"]: row for row in report["cases"]}
    ids = {item_id(dataset, c["id"]) for c in cases}
    items = [item for item in synced["client"].items if item.id in ids]
    about = parser_description(parser)
    run_name = run_name or f"{about['parser']} {about.get('prompt_version', '')} {time.strftime('%Y-%m-%dT%H:%M:%S')}".replace("  ", " ")

    def task(*, item: Any, **_: Any) -> dict:
        return rows[item.metadata["case_id"]]["predicted"]

    def case_scores(*, metadata: dict, **_: Any) -> list:
        row = rows[metadata["case_id"]]
        expected, predicted = row["expected"], row["predicted"]
        checks = {"correct": row["correct"],
                  "genres_correct": set(expected["genres"]) == set(predicted["genres"]),
                  "exclusions_correct": set(expected["exclude_genres"]) == set(predicted["exclude_genres"]),
                  "titles_correct": set(expected["titles"]) == set(predicted["titles"])}
        return [Evaluation(name=name, value=bool(ok), data_type="BOOLEAN") for name, ok in checks.items()]

    def headline(**_: Any) -> list:
        return [Evaluation(name=key, value=float(report[key]), data_type="NUMERIC") for key in HEADLINE]

    result = client.run_experiment(name=EXPERIMENT, run_name=run_name, data=items, task=task,
                                   evaluators=[case_scores], run_evaluators=[headline], max_concurrency=1,
                                   description="gold-set intent parsing (cineagent eval gold)",
                                   metadata={k: str(v) for k, v in about.items()})
    log.info("Langfuse experiment %r: %d items%s", run_name, len(result.item_results),
             f" — {result.experiment_url}" if result.experiment_url else "")
    return {"dataset": dataset, "run_name": run_name, "experiment_id": result.experiment_id,
            "url": result.experiment_url, "items": len(result.item_results),
            **{k: synced[k] for k in ("created", "updated", "archived", "unchanged")}}


def run_gold(cases: Sequence[dict], parser: IntentParser, tracing: Any = None, dataset: str = DATASET,
             run_name: str | None = None) -> dict:
    """The gold report (``evaluate_gold``), recorded in Langfuse when ``tracing`` (default: the
    process's ``agent.tracing.active_tracing()``) has a Langfuse client."""
    from agent.tracing import active_tracing

    report = evaluate_gold(cases, parser)
    tracing = tracing if tracing is not None else active_tracing()
    client = getattr(tracing, "langfuse", None)
    if client is None:
        return report
    try:
        report["langfuse"] = record_experiment(client, report, cases, parser, dataset, run_name)
    except Exception as exc:  # noqa: BLE001 - Langfuse being down must not lose the local result
        log.warning("recording the gold run in Langfuse failed (%s: %s); the local report is complete",
                    type(exc).__name__, exc)
        report["langfuse"] = {"dataset": dataset, "error": f"{type(exc).__name__}: {exc}"}
    return report
