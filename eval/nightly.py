"""``cineagent eval nightly``: gold set, offline benchmark and feedback statistics, tracked over time.

One run (``run_nightly``):

1. the gold evaluation (``eval.experiments.run_gold``: also a Langfuse experiment when configured),
   and the same on a set of real people's requests when ``requests`` names one (``--requests``);
   with ``dialogues`` (``--dialogues``), real dialogues replayed through the served agent
   (``eval.dialogues``: Recall@1/5/10 and HR@10 with popularity and co-rated baselines);
2. the offline recommender benchmark: ``eval.offline.offline_report`` with the rating protocol
   (two model fits plus 5-fold rating runs: tens of minutes on 2 cores), or with ``quick`` only the
   stratified ranking protocol (``eval.offline.ranking_on``: one fit, a few minutes);
3. feedback statistics from the event store (``feedback_stats``): like rate overall, by card
   position (rank) and by candidate source, the source read from the ``Turn`` event that showed
   the card (the best-ranked source its explanation cites);
4. one line appended to ``$CINEAGENT_HOME/eval/history.jsonl`` with every figure;
5. ``$CINEAGENT_HOME/eval/dashboard.html`` rewritten (``eval.dashboard``);
6. ``regressions``: every guarded figure that fell more than ``threshold`` (absolute, in the
   figure's own units; for RMSE/MAE a rise) below the previous run. The CLI exits 1 naming them.

Guarded figures: the gold headline figures, precision/recall/nDCG@10 and MAP of each model and
protocol, RMSE/MAE of the rating protocol, and the like rate once both runs have at least
``min_swipes`` swipes. Figures missing from either run (a quick run after a full one) are skipped.

Scheduling: ``crontab -e`` with (quick mode nightly at 02:30, full run on Sundays)::

    30 2 * * 1-6 cd /srv/cineagent && .venv/bin/cineagent eval nightly --quick >> $HOME/.cache/cineagent/eval/cron.log 2>&1
    30 2 * * 0   cd /srv/cineagent && .venv/bin/cineagent eval nightly >> $HOME/.cache/cineagent/eval/cron.log 2>&1

or, in the web app, ``CINEAGENT_NIGHTLY_AT=02:30`` (off by default) starts a ``NightlyScheduler``
that runs the same command in a low-priority subprocess every day at that local time
(``CINEAGENT_NIGHTLY_ARGS``, e.g. ``--quick``, is appended to it).
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from data import GOLD_SET
from data.events import Turn
from data.store import home, write_bytes_atomic
from eval.drift import drift_figures

log = logging.getLogger(__name__)

LOWER_IS_BETTER = ("rmse", "mae")
RANKING_METRICS = ("precision@10", "recall@10", "ndcg@10", "map")
GOLD_FIGURES = ("accuracy", "micro_f1", "exclusion_accuracy", "title_accuracy", "cases_correct",
                "year_accuracy", "act_accuracy")


class NightlyConfig(BaseModel):
    """A nightly run. Paths default to ``$CINEAGENT_HOME/eval``; swipes and turns come from the
    event store (``database_url``, default the SQLite store under ``$CINEAGENT_HOME``)."""

    model_config = ConfigDict(extra="forbid")

    quick: bool = False                     # stratified ranking only: no temporal split, no rating protocol
    threshold: float = Field(default=0.02, ge=0)   # absolute drop that fails the run (0.02 = 2 accuracy points)
    min_swipes: int = Field(default=30, ge=1)      # the like rate is guarded only above this many swipes
    parser: Literal["offline", "llm"] = "offline"
    gold_set: Path = GOLD_SET
    eval_dir: Path | None = None            # history.jsonl and dashboard.html; default $CINEAGENT_HOME/eval
    database_url: str | None = None         # the event store; default SQLite under $CINEAGENT_HOME
    requests: Path | None = None            # real people's requests in the gold schema (off when unset)
    dialogues: Path | None = None           # real dialogues for ``eval.dialogues`` (off when unset)

    @property
    def directory(self) -> Path:
        return Path(self.eval_dir) if self.eval_dir is not None else home() / "eval"


@dataclass
class NightlyResult:
    entry: dict                 # the history line of this run
    regressions: list[dict]     # {"figure", "previous", "current", "drop"}
    dashboard: Path
    gold: dict                  # the full gold report

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def summary(self) -> str:
        figures = self.entry["figures"]
        lines = [f"nightly {self.entry['ts_iso']} ({'quick' if self.entry['quick'] else 'full'}): "
                 f"gold accuracy {figures.get('gold.accuracy', float('nan')):.4f}, "
                 f"fusion ndcg@10 {figures.get('ranking.stratified.fusion.ndcg@10', float('nan')):.4f}, "
                 f"like rate {self.entry['feedback'].get('like_rate')} ({self.entry['feedback'].get('n', 0)} swipes)",
                 f"dashboard: {self.dashboard}"]
        for breach in (self.entry.get("drift") or {}).get("breaches", []):
            lines.append(f"DRIFT {breach}")
        canary = self.entry.get("canary") or {}
        for model, arm in canary.get("arms", {}).items():
            if model != canary.get("champion"):
                lines.append(f"CANARY {model}: like rate {arm['like_rate']:.3f} over {arm['n']} swipes vs champion "
                             f"{canary['arms'][canary['champion']]['like_rate']:.3f} "
                             f"({canary['arms'][canary['champion']]['n']}), p {arm['p_vs_champion']:.3g}")
        for model, row in ((self.entry.get("shadow") or {}).get("models") or {}).items():
            hits = row["liked_in_top_10"]
            lines.append(f"SHADOW {model}: overlap@10 with the champion {row['overlap_at_10']:.3f} over {row['turns']} "
                         f"turns; of {row['liked']} liked cards, {'-' if hits is None else f'{hits:.3f}'} in its top 10")
        for r in self.regressions:
            lines.append(f"REGRESSION {r['figure']}: {r['previous']:.4f} -> {r['current']:.4f} "
                         f"(worse by {r['drop']:.4f}, threshold {self.entry['threshold']})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- feedback
def card_source(turn: Turn | None, item_id: int) -> str:
    """The candidate source that put ``item_id`` on the cards of ``turn``: the best-ranked source
    its explanation cites; "uncited" when none ranked it in its top 20, "unknown" without the turn
    (or a turn recorded before cards carried their sources)."""
    if turn is None or item_id not in turn.items or len(turn.sources) != len(turn.items):
        return "unknown"
    sources = turn.sources[turn.items.index(item_id)]
    return min(sources, key=sources.get) if sources else "uncited"


def _rate(records: list) -> dict:
    likes = sum(r.action == "like" for r in records)
    return {"n": len(records), "likes": likes, "like_rate": likes / len(records) if records else None}


def feedback_stats(records: Iterable, turns: dict[str, Turn]) -> dict:
    """Like rate overall, by rank (card position) and by source, from ``Swipe`` events and the
    ``Turn`` events that showed the cards, indexed by trace id."""
    records = list(records)
    by_rank: dict[str, list] = {}
    by_source: dict[str, list] = {}
    for r in records:
        by_rank.setdefault(str(r.rank) if r.rank else "unknown", []).append(r)
        by_source.setdefault(card_source(turns.get(r.trace_id or ""), r.item_id), []).append(r)
    return {**_rate(records), "dislikes": sum(r.action == "dislike" for r in records),
            "by_rank": {k: _rate(v) for k, v in by_rank.items() if k != "unknown"},
            "by_source": {k: _rate(v) for k, v in sorted(by_source.items())}}


def champion_snapshot(database_url: str | None) -> datetime | None:
    """When the serving champion was registered (its training snapshot), or None without a registry."""
    from models import registry

    if not registry.exists(database_url):
        return None
    try:
        champion = registry.Registry(database_url).by_alias(registry.CHAMPION)
    except Exception as exc:  # noqa: BLE001 - drift against half the history is still worth having
        log.warning("nightly: model registry unreadable (%s); drift against the older half of the history", exc)
        return None
    return datetime.fromtimestamp(champion.creation_timestamp / 1000, timezone.utc) if champion else None


def drift_of(turns: list, swipes: list, turn_index: dict, data: Any, database_url: str | None) -> dict:
    from eval.drift import drift_report

    popularity = data.ratings["item_id"].value_counts().to_dict()
    return drift_report(turns, swipes, champion_snapshot(database_url), popularity, len(data.item_ids),
                        source_of=lambda s: card_source(turn_index.get(s.trace_id or ""), s.item_id))


# ---------------------------------------------------------------------------------------- figures
def figures_of(gold: dict, offline: dict, feedback: dict, requests: dict | None = None,
               dialogues: dict | None = None) -> dict[str, float]:
    """The flat figure table of one run (what is plotted over time and guarded)."""
    out: dict[str, float] = {}
    for prefix, report in (("gold", gold), ("requests", requests or {})):
        for key in GOLD_FIGURES:
            if report.get(key) is not None:
                out[f"{prefix}.{key}"] = float(report[key])
    if dialogues:
        for system, metrics in dialogues["metrics"].items():
            for key in ("R@1", "R@5", "R@10", "HR@10"):
                out[f"dialogues.{system}.{key}"] = float(metrics[key])
        out["dialogues.with_cards_share"] = 1.0 - float(dialogues["no_cards_share"])
    for protocol, models in offline.get("ranking", {}).items():
        for model, metrics in models.items():
            for metric in RANKING_METRICS:
                if metric in metrics:
                    out[f"ranking.{protocol}.{model}.{metric}"] = float(metrics[metric])
    rating = offline.get("rating")
    if rating:
        for name in ("svd_default", "best"):
            for metric in LOWER_IS_BETTER:
                out[f"rating.{name}.{metric}"] = float(rating[name][metric])
    if feedback.get("like_rate") is not None:
        out["feedback.like_rate"] = float(feedback["like_rate"])
    return out


def regressions(previous: dict | None, current: dict, threshold: float, min_swipes: int = 30) -> list[dict]:
    """Figures of ``current`` (a history entry) worse than in ``previous`` by more than ``threshold``."""
    if previous is None:
        return []
    out = []
    before, now = previous.get("figures", {}), current["figures"]
    for name in sorted(set(before) & set(now)):
        if name.startswith("drift."):   # drift is flagged by its own tests (eval.drift), not as a drop
            continue
        if name == "feedback.like_rate" and min(previous.get("feedback", {}).get("n", 0),
                                                current.get("feedback", {}).get("n", 0)) < min_swipes:
            continue
        worse = now[name] - before[name] if name.endswith(LOWER_IS_BETTER) else before[name] - now[name]
        if worse > threshold + 1e-12:
            out.append({"figure": name, "previous": before[name], "current": now[name], "drop": worse})
    return out


def read_history(path: Path) -> list[dict]:
    """Entries of a history file, oldest first (a torn last line is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            log.warning("%s: skipping an unreadable history line", path)
    return out


def append_history(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------- the run
def offline_benchmark(data: Any, quick: bool) -> dict:
    """The offline report: full (``offline_report`` with rating) or quick (stratified ranking only)."""
    from data import splits
    from eval.offline import offline_report, ranking_on

    if quick:
        return {"ranking": {"stratified": ranking_on(splits.stratified(data.ratings), data)}}
    return offline_report(data, rating=True)


def run_nightly(config: NightlyConfig | None = None, data: Any = None, parser: Any = None,
                offline: Callable[[Any, bool], dict] = offline_benchmark, now: datetime | None = None,
                agent: Any = None) -> NightlyResult:
    """One nightly run (see the module docstring). ``data`` default ``movielens.load()``, ``parser``
    default ``agent.runtime.make_parser(data, config.parser)``, ``offline(data, quick)`` the
    benchmark, ``agent`` (for the dialogues) default ``agent.runtime.load_agent`` on the current
    artifacts."""
    from data import movielens
    from data.event_store import open_store
    from eval import dashboard
    from eval.experiments import parser_description, run_gold
    from eval.gold import load_cases

    config = config or NightlyConfig()
    now = now or datetime.now(timezone.utc)
    started = time.perf_counter()
    data = data if data is not None else movielens.load()
    if parser is None:
        from agent.runtime import make_parser

        parser = make_parser(data, config.parser)
    gold = run_gold(load_cases(config.gold_set), parser)
    log.info("nightly: gold accuracy %.4f (%d cases)", gold["accuracy"], gold["n"])
    requests = None
    if config.requests is not None:
        requests = run_gold(load_cases(config.requests), parser)
        log.info("nightly: real requests whole parse %.4f (%d cases)", requests["cases_correct"], requests["n"])
    dialogues = None
    if config.dialogues is not None:
        from eval.dialogues import agent_replay, evaluate_dialogues, load_dialogues

        cases = load_dialogues(config.dialogues)
        if agent is None:
            from agent.runtime import load_agent

            agent = load_agent(parser=config.parser)
        dialogues = evaluate_dialogues(cases, data, agent_replay(agent))
        log.info("nightly: dialogues R@10 %.4f (%d cases)", dialogues["metrics"]["cineagent"]["R@10"], dialogues["n"])
    bench = offline(data, config.quick)
    store = open_store(config.database_url)
    try:
        swipes, turns = store.swipes(), store.turns()
    finally:
        store.close()
    turn_index = {t.trace_id: t for t in turns}
    feedback = feedback_stats(swipes, turn_index)
    drift = drift_of(turns, swipes, turn_index, data, config.database_url)
    from eval.drift import arm_comparison, shadow_comparison

    canary = arm_comparison(swipes, turn_index)
    shadow = shadow_comparison(turns, swipes)
    about = parser_description(parser)
    entry = {"ts_iso": now.isoformat(timespec="seconds"), "date": now.date().isoformat(), "quick": config.quick,
             "threshold": config.threshold, "parser": about["parser"], "prompt_version": about.get("prompt_version"),
             "figures": {**figures_of(gold, bench, feedback, requests, dialogues), **drift_figures(drift)},
             "gold": {k: gold.get(k) for k in ("n", *GOLD_FIGURES, "per_genre_recall")},
             "requests": {k: requests.get(k) for k in ("n", *GOLD_FIGURES)} if requests else None,
             "dialogues": {k: dialogues[k] for k in ("metrics", "n", "no_cards", "no_cards_share")} if dialogues else None,
             "offline": bench, "feedback": feedback, "drift": drift, "canary": canary,
             "shadow": shadow,
             "langfuse": gold.get("langfuse")}
    history_path = config.directory / "history.jsonl"
    history = read_history(history_path)
    found = regressions(history[-1] if history else None, entry, config.threshold, config.min_swipes)
    entry["regressions"] = found
    entry["seconds"] = round(time.perf_counter() - started, 1)
    append_history(history_path, entry)
    page = dashboard.render([*history, entry], gold, found, config.threshold,
                            {item_id: movie.label for item_id, movie in data.movies.items()})
    path = config.directory / "dashboard.html"
    write_bytes_atomic(path, page.encode("utf-8"))
    for r in found:
        log.error("nightly regression: %s %.4f -> %.4f", r["figure"], r["previous"], r["current"])
    return NightlyResult(entry, found, path, gold)


# ---------------------------------------------------------------------------------------- scheduling
def next_run(at: str, now: datetime) -> datetime:
    """The next local time ``at`` ("HH:MM") strictly after ``now``; ValueError naming the format."""
    try:
        hour, minute = (int(p) for p in at.strip().split(":"))
        target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError as exc:
        raise ValueError(f"CINEAGENT_NIGHTLY_AT={at!r}: expected a 24-hour local time HH:MM, e.g. 02:30") from exc
    return target if target > now else target + timedelta(days=1)


class NightlyScheduler:
    """Runs ``command`` (default ``cineagent eval nightly`` + ``args``) every day at ``at``, in a
    subprocess at lower CPU priority so that serving stays responsive; ``stop()`` ends the wait."""

    def __init__(self, at: str, args: list[str] | None = None, command: list[str] | None = None) -> None:
        next_run(at, datetime.now())      # validate now, not at 02:30
        self.at = at
        self.command = command or [sys.executable, "-m", "cli", "eval", "nightly", *(args or [])]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cineagent-nightly", daemon=True)
        self.last_exit: int | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "NightlyScheduler | None":
        """A scheduler when ``CINEAGENT_NIGHTLY_AT`` is set, else None (the default: off)."""
        env = os.environ if environ is None else environ
        at = env.get("CINEAGENT_NIGHTLY_AT", "").strip()
        return cls(at, shlex.split(env.get("CINEAGENT_NIGHTLY_ARGS", ""))) if at else None

    def start(self) -> "NightlyScheduler":
        self._thread.start()
        log.info("nightly evaluation scheduled daily at %s: %s", self.at, " ".join(self.command))
        return self

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> int | None:
        """One run, unless another process of this machine's server (``serve --workers N``) is
        running it or has run it this minute: the first to take the lock in ``$CINEAGENT_HOME/eval``
        runs, the others skip."""
        import fcntl

        directory = home() / "eval"
        directory.mkdir(parents=True, exist_ok=True)
        minute = datetime.now().strftime("%Y-%m-%dT%H:%M")
        with open(directory / ".nightly.lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("nightly evaluation: another worker is running it")
                return None
            lock.seek(0)
            if lock.read().strip() == minute:
                return None   # a worker whose clock woke it a moment later
            lock.seek(0)
            lock.truncate()
            lock.write(minute)
            lock.flush()
            return self._run()

    def _run(self) -> int:
        started = time.monotonic()
        done = subprocess.run(self.command, preexec_fn=lambda: os.nice(10), capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
        self.last_exit = done.returncode
        level = logging.INFO if done.returncode == 0 else logging.ERROR
        log.log(level, "nightly evaluation exited %d after %.0f s: %s", done.returncode, time.monotonic() - started,
                (done.stdout + done.stderr).strip()[-2000:])
        return done.returncode

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = (next_run(self.at, datetime.now()) - datetime.now()).total_seconds()
            if self._stop.wait(max(wait, 0)):
                return
            try:
                self.run_once()
            except OSError as exc:
                log.error("could not start the nightly evaluation: %s", exc)
