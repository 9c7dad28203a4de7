"""Load benchmark of the served app: concurrent chat turns and swipes through the JSON API.

``run_load_test`` starts the real app (``cineagent serve``, offline parser) as a subprocess on a
free 127.0.0.1 port, in a scratch state directory that borrows the current home's data, models
and caches (so 1,000 benchmark swipes never land in a real event store). Every simulated user is
a person of its own (``POST /api/people``, before any timing), mostly started from a MovieLens
persona, and sends its token; rate limits are off for the benchmark. It measures:

- time from process start to ``/healthz`` answering 200 (models loaded);
- ``users`` concurrent users x ``turns`` chat turns each (``POST /api/chat``, gold-set
  utterances, one session per user): errors, p50/p95/p99 latency, throughput, the app
  process's CPU per turn (all its threads, from /proc), and how many turns waited for a phrase
  embedded off the event loop (from the app's Turn events);
- ``swipes`` likes/dislikes from ``users`` concurrent writers (``POST /api/feedback``, on the cards
  of a turn each writer had first, untimed, naming its trace): errors,
  latency, and whether the event store holds exactly one swipe per acknowledged swipe;
- graceful shutdown: seconds from SIGTERM to exit, and the exit status.

Bounded: every phase stops issuing requests at ``time_limit_s`` (the report says so).
``AppProcess`` (the app as a subprocess) is reused by the integration and browser tests.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from data import GOLD_SET
from data.store import home
from eval.bench import percentiles
from web.limits import limits_off_env

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BORROWED = ("data", "artifacts", "cache")   # read-only inputs a scratch home links to
READY_TIMEOUT_S = 300.0                     # loading models on a busy 2-core machine takes ~10-60 s
REQUEST_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------- the app
def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def scratch_home(target: Path, source: Path | None = None) -> Path:
    """A state directory whose data/artifacts/cache are symlinks into ``source`` (default: home())."""
    source = Path(source) if source else home()
    target.mkdir(parents=True, exist_ok=True)
    for name in BORROWED:
        if (source / name).exists() and not (target / name).exists():
            (target / name).symlink_to((source / name).resolve(), target_is_directory=True)
    return target


class AppProcess:
    """``cineagent serve`` in a subprocess on a free 127.0.0.1 port; logs go to ``state/app.log``.

    ``env`` adds environment variables (e.g. ``CINEAGENT_PARSER=offline``); ``CINEAGENT_HOME`` is
    ``state``. Use as a context manager: started on enter, SIGTERM (then SIGKILL) on exit.
    """

    def __init__(self, state: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 workers: int = 1) -> None:
        self.state = Path(state)
        self.workers = workers
        self.host, self.port = host, free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log_path = self.state / "app.log"
        self.env = {**os.environ, "CINEAGENT_HOME": str(self.state), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.started: float | None = None

    def start(self) -> "AppProcess":
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", self.host, "--port",
                                          str(self.port), "--workers", str(self.workers)], cwd=REPO, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Block until /healthz says ready; returns seconds since start. Raises with the log tail.
        With several workers, each answers /healthz for itself: ready once a run of answers (new
        connections, spread by the kernel over the workers) are all 200."""
        deadline = self.started + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}")
            try:
                reply = httpx.get(f"{self.url}/healthz", timeout=5)
                if reply.status_code == 200 and all(
                        httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200 for _ in range(8 * (self.workers - 1))):
                    return time.monotonic() - self.started
                if reply.json().get("status") == "failed":
                    raise RuntimeError(f"the app could not load its models: {reply.json().get('error')}")
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.25)
        raise TimeoutError(f"the app was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> tuple[int, float]:
        """SIGTERM, wait for a graceful exit (SIGKILL after ``timeout_s``); returns (status, seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else 0), 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the app ignored SIGTERM for %.0f s; killing it", timeout_s)
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode, time.monotonic() - started

    def cpu_seconds(self) -> float | None:
        """CPU the app process has used so far (all its threads), from /proc; None where there is none."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, AttributeError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> "AppProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------- phases
def _percentiles(latencies_s: list[float]) -> dict:
    if not latencies_s:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    return {k: round(v, 1) for k, v in percentiles([s * 1000 for s in latencies_s]).items() if k.startswith("p")}


def _run_concurrently(workers: int, jobs_per_worker: int, url: str, request, deadline: float) -> dict:
    """``workers`` threads, each with its own HTTP client, calling ``request(client, worker, i)``.

    The clients are built and connected (``GET /healthz``) before any request is timed, and the
    threads start together: building an httpx client costs ~30 ms of the load generator's CPU, and
    20 clients built and connecting in the workers were timed as the first answers (2 s)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) for _ in range(workers)]
    start_together = threading.Barrier(workers)

    def worker(w: int) -> None:
        client = clients[w]
        start_together.wait()
        for i in range(jobs_per_worker):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                reply = request(client, w, i)
                problem = None if reply.status_code == 200 else f"HTTP {reply.status_code}: {reply.text[:200]}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with lock:
                if problem is None:
                    latencies.append(elapsed)
                else:
                    errors.append(problem)

    try:
        for client in clients:
            client.get("/healthz")
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(worker, range(workers)))
        wall = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    return {"n": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_samples": errors[:5], **_percentiles(latencies), "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
            "stopped_early": len(latencies) + len(errors) < workers * jobs_per_worker}


def create_people(url: str, seeds: list[int | None]) -> list[dict[str, str]]:
    """One person per seed (None: from scratch); returns each one's Authorization header."""
    headers = []
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        for seed in seeds:
            reply = client.post("/api/people", json={} if seed is None else {"seed_from": seed})
            reply.raise_for_status()
            headers.append({"Authorization": f"Bearer {reply.json()['token']}"})
    return headers


def chat_phase(url: str, users: int, turns: int, deadline: float) -> dict:
    utterances = [case["utterance"] for case in json.loads(GOLD_SET.read_text())]
    # mostly people started from a MovieLens persona (personalised path), every fifth from scratch (cold start)
    people = create_people(url, [None if user % 5 == 4 else 1 + (user * 47) % 943 for user in range(users)])

    def turn(client: httpx.Client, user: int, i: int) -> httpx.Response:
        return client.post("/api/chat", json={"session_id": f"load-{user}",
                                              "message": utterances[(user * turns + i) % len(utterances)]},
                           headers=people[user])

    return _run_concurrently(users, turns, url, turn, deadline)


def swipe_phase(url: str, state: Path, writers: int, swipes: int, deadline: float) -> dict:
    per_writer = swipes // writers
    people = create_people(url, [1 + writer for writer in range(writers)])
    # a swipe names the turn that showed its card: each writer has one turn first (untimed)
    shown: list[tuple[str, list[int]]] = []
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        for writer in range(writers):
            reply = client.post("/api/chat", json={"session_id": f"swipes-{writer}", "message": "a comedy"},
                                headers=people[writer])
            reply.raise_for_status()
            shown.append((reply.json()["trace_id"], [item["item_id"] for item in reply.json()["items"]]))

    def swipe(client: httpx.Client, writer: int, i: int) -> httpx.Response:
        trace_id, items = shown[writer]
        return client.post("/api/feedback", json={
            # each visit of a card flips the action: the same swipe twice would be one event (a retry)
            "session_id": f"swipes-{writer}", "item_id": items[i % len(items)],
            "action": "like" if (i // len(items)) % 2 == 0 else "dislike",
            "trace_id": trace_id, "rank": i % len(items) + 1, "query": "load test"}, headers=people[writer])

    result = _run_concurrently(writers, per_writer, url, swipe, deadline)
    result["stored"] = len(stored_swipes(state))
    result["store_matches"] = result["stored"] == result["ok"]
    return result


def stored_swipes(state: Path) -> list:
    """The swipes in the event store of an app's state directory (the default SQLite file)."""
    from data.event_store import FILE_NAME, EventStore

    store = EventStore(f"sqlite:///{Path(state) / FILE_NAME}")
    try:
        return store.swipes()
    finally:
        store.close()


# ---------------------------------------------------------------------------------------- driver
def shadow_registry(state: Path) -> None:
    """A registry in the scratch home whose champion and challenger are both the current artifact
    (two registered versions): with CINEAGENT_SHADOW=1 the app then shadows every turn with a
    challenger as large as the champion (``bench load --shadow``)."""
    from models import registry as reg
    from models.artifacts import current_version

    before = os.environ.get("CINEAGENT_HOME")
    os.environ["CINEAGENT_HOME"] = str(state)
    try:
        artifact = current_version()
        registry = reg.Registry()
        for alias in (reg.CHAMPION, reg.CHALLENGER):
            run_id = registry.start_run(f"bench load {alias}", {})
            registry.finish(run_id)
            registry.set_alias(alias, registry.register(run_id, {"artifact_version": artifact,
                                                                 "eval_artifact_version": artifact}))
    finally:
        if before is None:
            os.environ.pop("CINEAGENT_HOME", None)
        else:
            os.environ["CINEAGENT_HOME"] = before


def shadowed_turns(state: Path) -> int:
    """Turn events in the app's store that carry a shadow ranking (read after the app stopped)."""
    from data.event_store import FILE_NAME, EventStore

    store = EventStore(f"sqlite:///{state / FILE_NAME}")
    try:
        return sum(turn.shadow is not None for turn in store.turns())
    finally:
        store.close()


def run_load_test(users: int = 20, turns: int = 50, swipes: int = 1000, time_limit_s: float = 480.0,
                  source_home: Path | None = None, shadow: bool = False) -> dict:
    """Run every phase against a fresh app (offline parser); returns the figures (see module doc).
    ``shadow``: champion and challenger registered, shadow mode on (every turn ranked twice)."""
    scratch = Path(tempfile.mkdtemp(prefix="cineagent-load-"))
    try:
        state = scratch_home(scratch / "home", source_home)
        report: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                        "config": {"users": users, "turns_per_user": turns, "swipes": swipes, "parser": "offline",
                                   "time_limit_s": time_limit_s, "shadow": shadow}}
        env = {"CINEAGENT_PARSER": "offline", **limits_off_env()}
        if shadow:
            shadow_registry(state)
            env.update({"CINEAGENT_SHADOW": "1", "CINEAGENT_MODEL_CHECK_S": "0", "CINEAGENT_CANARY_FRACTION": "0"})
        with AppProcess(state, env=env) as app:
            report["ready_s"] = round(app.wait_ready(), 2)
            deadline = time.monotonic() + time_limit_s
            cpu_before = app.cpu_seconds()
            report["chat"] = chat_phase(app.url, users, turns, deadline)
            cpu_after = app.cpu_seconds()
            # what a turn costs the app (HTTP, the turn, tracing): at saturation it sets throughput
            report["chat"]["server_cpu_ms_per_turn"] = (
                round((cpu_after - cpu_before) * 1000 / report["chat"]["ok"], 2)
                if cpu_before is not None and cpu_after is not None and report["chat"]["ok"] else None)
            report["swipes"] = swipe_phase(app.url, state, users, swipes, deadline)
            status, seconds = app.stop()
            report["chat"]["turns_embedding_off_loop"] = turns_with_step(state, "embed")
            report["chat"]["shadowed_turns"] = shadowed_turns(state)
            # uvicorn re-raises SIGTERM after a clean shutdown: -15 with "shutdown complete" logged is graceful
            report["shutdown"] = {"exit_status": status, "seconds": round(seconds, 2),
                                  "graceful": status in (0, -signal.SIGTERM)
                                  and "Application shutdown complete" in app.log_tail()}
        report["ok"] = (report["chat"]["errors"] == 0 and report["swipes"]["errors"] == 0
                        and report["swipes"]["store_matches"] and report["shutdown"]["graceful"]
                        and not report["chat"]["stopped_early"]
                        and not report["swipes"]["stopped_early"])
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------- people who think
THINK_S = (1.0, 3.0)          # seconds a simulated person waits between turns
CAPACITY_P95_MS = 100.0       # the latency a crowd of people must get for the app to "hold" it
CROWDS = (10, 15, 25, 40, 60, 90, 135, 200, 300, 450)   # x1.5 a step


async def _people(url: str, people: int, turns: int, think_s: tuple[float, float], deadline: float) -> dict:
    """``people`` simulated people on one asyncio HTTP client, each waiting ``think_s`` (uniform)
    before every turn, so the app sees ~people / 2 turns a second, not a flood. Latency is timed
    from sending to the answer; the first wait is also spread, so people do not arrive together."""
    import asyncio
    import random

    utterances = [case["utterance"] for case in json.loads(GOLD_SET.read_text())]
    # as in chat_phase: mostly people started from a persona, every fifth from scratch; made before
    # anyone starts to think (a sign-up is not a chat turn)
    headers = create_people(url, [None if p % 5 == 4 else 1 + (p * 47) % 943 for p in range(people)])
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=people, max_keepalive_connections=people)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        async def person(p: int) -> None:
            rng = random.Random(p)
            for i in range(turns):
                await asyncio.sleep(rng.uniform(*think_s))
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                try:
                    reply = await client.post("/api/chat", headers=headers[p], json={
                        "session_id": f"crowd-{p}", "message": utterances[(p * turns + i) % len(utterances)]})
                    problem = None if reply.status_code == 200 else f"HTTP {reply.status_code}: {reply.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is None:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors.append(problem)

        started = time.perf_counter()
        await asyncio.gather(*(person(p) for p in range(people)))
        wall = time.perf_counter() - started
    return {"people": people, "n": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_samples": errors[:5], **_percentiles(latencies),
            "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
            "stopped_early": len(latencies) + len(errors) < people * turns}


def run_capacity_test(crowds: tuple[int, ...] = CROWDS, turns: int = 10, think_s: tuple[float, float] = THINK_S,
                      p95_ms: float = CAPACITY_P95_MS, time_limit_s: float = 480.0,
                      source_home: Path | None = None, workers: int = 1) -> dict:
    """Crowds of growing size against one fresh app (offline parser), each person waiting
    ``think_s`` between ``turns`` turns; stops at the first crowd the app does not hold (p95 above
    ``p95_ms`` or any error). Returns every crowd's figures and ``holds``: the largest crowd held."""
    import asyncio

    scratch = Path(tempfile.mkdtemp(prefix="cineagent-crowd-"))
    try:
        state = scratch_home(scratch / "home", source_home)
        report: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                        "config": {"turns_per_person": turns, "think_s": list(think_s), "p95_ms": p95_ms,
                                   "parser": "offline", "workers": workers}, "crowds": [], "holds": 0}
        # limits off: the crowd comes from one address, which the per-client limit would throttle
        # (per process: with several workers each keeps its own buckets)
        with AppProcess(state, env={"CINEAGENT_PARSER": "offline", **limits_off_env()}, workers=workers) as app:
            report["ready_s"] = round(app.wait_ready(), 2)
            deadline = time.monotonic() + time_limit_s
            for people in crowds:
                if time.monotonic() > deadline:
                    break
                figures = asyncio.run(_people(app.url, people, turns, think_s, deadline))
                report["crowds"].append(figures)
                held = figures["errors"] == 0 and not figures["stopped_early"] and (figures["p95_ms"] or 0) <= p95_ms
                if not held:
                    break
                report["holds"] = people
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def format_capacity(report: dict) -> str:
    lines = [f"machine: {report['machine']['cpus']} CPUs, load average at start {report['machine']['load_avg_at_start']}",
             f"app: {report['config'].get('workers', 1)} worker process(es); each person waits {report['config']['think_s'][0]:g}-{report['config']['think_s'][1]:g} s between "
             f"{report['config']['turns_per_person']} turns"]
    for c in report["crowds"]:
        lines.append(f"{c['people']:>4} people: {c['ok']}/{c['n']} ok, {c['errors']} errors, p50 {c['p50_ms']} ms, "
                     f"p95 {c['p95_ms']} ms, p99 {c['p99_ms']} ms, {c['throughput_rps']} turns/s"
                     + (" (stopped at the time limit)" if c["stopped_early"] else ""))
        for sample in c["error_samples"]:
            lines.append(f"       error: {sample}")
    lines.append(f"holds {report['holds']} concurrent people at p95 <= {report['config']['p95_ms']:g} ms with 0 errors"
                 + (" (the largest crowd tried)" if report["crowds"] and report["holds"] == report["crowds"][-1]["people"]
                    else ""))
    return "\n".join(lines)


def turns_with_step(state: Path, name: str) -> int:
    """Turn events in the app's store with a step of this name (read after the app stopped)."""
    from data.event_store import FILE_NAME, EventStore

    store = EventStore(f"sqlite:///{state / FILE_NAME}")
    try:
        return sum(any(step.name == name for step in turn.steps) for turn in store.turns())
    finally:
        store.close()


def format_report(report: dict) -> str:
    chat, swipes = report["chat"], report["swipes"]
    lines = [
        f"machine: {report['machine']['cpus']} CPUs, load average at start {report['machine']['load_avg_at_start']}",
        f"app ready (healthz 200) {report['ready_s']:.1f} s after start",
        f"chat: {chat['ok']}/{chat['n']} ok, {chat['errors']} errors, p50 {chat['p50_ms']} ms, p95 {chat['p95_ms']} ms, "
        f"p99 {chat['p99_ms']} ms, {chat['throughput_rps']} turns/s over {chat['wall_s']} s, "
        f"app CPU {chat['server_cpu_ms_per_turn']} ms a turn, {chat.get('turns_embedding_off_loop')} turns waited for "
        f"a phrase embedded off the loop"
        + (f", {chat.get('shadowed_turns')} turns shadowed by the challenger" if report["config"].get("shadow") else "")
        + (" (stopped at the time limit)" if chat["stopped_early"] else ""),
        f"swipes: {swipes['ok']}/{swipes['n']} ok, {swipes['errors']} errors, p50 {swipes['p50_ms']} ms, "
        f"p95 {swipes['p95_ms']} ms, p99 {swipes['p99_ms']} ms, {swipes['throughput_rps']} swipes/s; "
        f"{swipes['stored']} in the event store"
        + (" (stopped at the time limit)" if swipes["stopped_early"] else ""),
        f"shutdown on SIGTERM: {'graceful' if report['shutdown']['graceful'] else 'NOT graceful'}, exit status "
        f"{report['shutdown']['exit_status']} after {report['shutdown']['seconds']} s",
    ]
    for sample in chat["error_samples"] + swipes["error_samples"]:
        lines.append(f"  error: {sample}")
    return "\n".join(lines)
