"""Which Langfuse server traces go to, and swipe scores that reach it whatever its version.

The pinned SDK (langfuse 5.x) posts its score queue as a JSON array to ``POST /api/public/scores``,
which only servers from ``MIN_SERVER_VERSION`` (4.59.0) take; an older server (self-hosted v4.16.0,
say) refuses every batch with a 400 and the SDK says so in one log line: every swipe score would
be lost. So at start ``ServerCheck`` reads the server's version from its public health endpoint
(``GET {base}/api/public/health`` answers ``{"status": "OK", "version": "4.16.0"}``, no auth) in a
thread of its own (a dead server never delays the start), and ``ScoreSender`` sends each swipe
score the way that server takes it:

- **4.59.0 or later** (or Langfuse Cloud): through the SDK's own score queue, in batches;
- **older**: one JSON object per ``POST /api/public/scores`` (the older API's shape, Basic auth
  ``public:secret``), retried on a network error, 429 or 5xx; a refusal is logged with the
  server's answer and counted;
- **version unknown** (the server did not answer, or gave no version): the SDK's batches, said
  plainly in the log, and the version is read again before a later score (at most once a minute).

What was found is logged at start (a WARNING when scores would be refused) and reported by
``summary()``, which ``/healthz`` and the operator's turn view show.
"""
from __future__ import annotations

import base64
import json
import logging
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Literal

from agent import metrics
from agent.langfuse_attrs import MIN_SERVER_VERSION

log = logging.getLogger(__name__)

HEALTH_PATH = "/api/public/health"
SCORES_PATH = "/api/public/scores"
RECHECK_S = 60.0          # an unknown version is read again before a score, at most this often
QUEUE_MAX = 10_000        # scores waiting to be sent (bounded memory; one beyond it is dropped, said)
RETRIES = 3               # tries of one score against a network error, 429 or 5xx
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")

Mode = Literal["checking", "batch", "one-by-one", "unknown"]


def parse_version(text: Any) -> tuple[int, int, int] | None:
    match = _VERSION.match(str(text or "").strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def takes_score_batches(version: str | None) -> bool | None:
    """Whether a server of ``version`` takes the SDK's JSON array of scores; None if unknown."""
    parsed = parse_version(version)
    return None if parsed is None else parsed >= parse_version(MIN_SERVER_VERSION)


class ServerCheck:
    """The Langfuse server's version, read from its public health endpoint, and the way scores go."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.mode: Mode = "checking"
        self.version: str | None = None
        self.problem: str | None = None       # why the version is unknown
        self.checked_at = 0.0                 # monotonic time of the last check
        self.done = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self.check, name="langfuse-server-check", daemon=True).start()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.done.wait(timeout_s)

    def check(self) -> Mode:
        """Read the version (blocking, up to ``timeout_s``), decide the mode, say it in the log."""
        version, problem = None, None
        try:
            request = urllib.request.Request(self.base_url + HEALTH_PATH, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                body = json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:   # a 503 (database down) may still name the version
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {}
            problem = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            body, problem = {}, f"{type(exc).__name__}: {exc}"
        if isinstance(body, dict) and parse_version(body.get("version")):
            version, problem = str(body["version"]), None
        elif problem is None:
            problem = "the answer names no version"
        batches = takes_score_batches(version)
        with self._lock:
            previous = self.mode
            self.version, self.problem, self.checked_at = version, problem, time.monotonic()
            self.mode = "unknown" if batches is None else "batch" if batches else "one-by-one"
            mode = self.mode
        self.done.set()
        if mode != previous:
            self._say(mode)
        return mode

    def due(self) -> bool:
        """An unknown version is worth reading again (before a score, at most every ``RECHECK_S``)."""
        return self.mode == "unknown" and time.monotonic() - self.checked_at >= RECHECK_S

    def _say(self, mode: Mode) -> None:
        where = f"Langfuse at {self.base_url}"
        if mode == "batch":
            log.info("%s is v%s (%s or later needed): swipe scores go in the SDK's batches", where, self.version,
                     MIN_SERVER_VERSION)
        elif mode == "one-by-one":
            log.warning("%s is v%s, older than %s: it refuses the SDK's score batches (a JSON array), so swipe "
                        "scores are posted one at a time instead; spans, prompts and datasets are unaffected, but "
                        "metadata values show JSON-quoted there. Upgrade the server to %s or later.",
                        where, self.version, MIN_SERVER_VERSION, MIN_SERVER_VERSION)
        else:
            log.warning("%s: could not read its version from %s (%s): swipe scores go in the SDK's batches, "
                        "which a server older than %s refuses; the version is read again before a later score",
                        where, HEALTH_PATH, self.problem, MIN_SERVER_VERSION)

    def sentence(self) -> str:
        """The state in one plain sentence, for people (the operator view, /healthz)."""
        if self.mode == "checking":
            return "Checking the Langfuse server's version."
        if self.mode == "batch":
            return f"Langfuse v{self.version}: swipe scores are sent in batches."
        if self.mode == "one-by-one":
            return (f"Langfuse v{self.version} is older than {MIN_SERVER_VERSION}: it refuses score batches, so "
                    f"swipe scores are posted one at a time. Upgrade the server to {MIN_SERVER_VERSION} or later.")
        return (f"Langfuse's version is unknown ({self.problem}): swipe scores are sent in batches, which a server "
                f"older than {MIN_SERVER_VERSION} refuses.")


class ScoreSender:
    """Swipe scores on their way to Langfuse, on a thread of its own (a swipe never waits on it).

    ``submit`` takes the SDK's ``create_score`` arguments. Until the version is known the scores
    wait here; then each goes through ``sdk_score`` (the SDK's batching queue) or, for an older
    server, as one JSON object per request.
    """

    def __init__(self, check: ServerCheck, public_key: str, secret_key: str, timeout_s: float,
                 sdk_score: Callable[..., None], environment: str | None = None) -> None:
        self.check = check
        self.timeout_s = timeout_s
        self.sdk_score = sdk_score
        self.environment = environment
        self._auth = "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        self._queue: queue.Queue[dict | None] = queue.Queue(QUEUE_MAX)
        self.counts = {"batched": 0, "posted": 0, "refused": 0, "failed": 0, "dropped": 0}
        self.last_refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="langfuse-scores", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the caller's side
    def submit(self, **score: Any) -> None:
        try:
            self._queue.put_nowait(score)
        except queue.Full:
            self._count("dropped")
            log.error("Langfuse score queue full (%d): score of trace %s dropped", QUEUE_MAX, score.get("trace_id"))

    def join(self, timeout_s: float) -> bool:
        """Wait until every submitted score has been handed on or sent; False if time ran out."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.join(timeout_s)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        metrics.observe_langfuse_score(outcome)   # /metrics: langfuse_scores_total{outcome}

    # ------------------------------------------------------------ the sender's thread
    def _run(self) -> None:
        while True:
            score = self._queue.get()
            try:
                if score is None:
                    return
                self.check.wait(self.check.timeout_s * 3 + 5)   # the first check: bounded by its timeout
                if self.check.due():
                    self.check.check()
                if self.check.mode == "one-by-one":
                    self._post(score)
                else:   # batch, or unknown: the SDK's queue (its log says when a batch is refused)
                    self.sdk_score(**score)
                    self._count("batched")
            except Exception:  # noqa: BLE001 - one bad score must not stop the sender
                self._count("failed")
                log.exception("could not send a swipe score to Langfuse")
            finally:
                self._queue.task_done()

    def body(self, score: dict) -> dict:
        """One score as the older API's single ``CreateScoreRequest`` object."""
        fields = {"id": score.get("score_id"), "traceId": score.get("trace_id"), "name": score["name"],
                  "value": float(score["value"]) if isinstance(score["value"], (bool, int)) else score["value"],
                  "dataType": score.get("data_type"), "comment": score.get("comment"),
                  "metadata": score.get("metadata"), "environment": self.environment}
        return {k: v for k, v in fields.items() if v is not None}

    def _post(self, score: dict) -> None:
        data = json.dumps(self.body(score), default=str).encode()
        problem = ""
        for attempt in range(RETRIES):
            request = urllib.request.Request(self.check.base_url + SCORES_PATH, data=data, method="POST", headers={
                "Authorization": self._auth, "Content-Type": "application/json", "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    reply.read()
                self._count("posted")
                return
            except urllib.error.HTTPError as exc:
                answer = exc.read()[:300].decode("utf-8", "replace")
                problem = f"HTTP {exc.code}: {answer}"
                if exc.code != 429 and exc.code < 500:   # refused: trying again would be refused again
                    self._count("refused")
                    self.last_refusal = problem
                    log.warning("Langfuse refused the swipe score of trace %s (%s)", score.get("trace_id"), problem)
                    return
            except OSError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5 * 2 ** attempt)
        self._count("failed")
        log.warning("could not post the swipe score of trace %s to Langfuse after %d tries (%s)",
                    score.get("trace_id"), RETRIES, problem)


def summary(check: ServerCheck, sender: ScoreSender | None) -> dict:
    """What ``/healthz`` shows of Langfuse: its version, how scores go, and what became of them."""
    out: dict[str, Any] = {"version": check.version, "min_version": MIN_SERVER_VERSION, "scores": check.mode,
                           "note": check.sentence()}
    if sender is not None:   # counts only: /healthz is public, the server's answers stay in the log
        out["score_counts"] = dict(sender.counts)
    return out
