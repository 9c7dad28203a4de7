"""Tracing of chat turns and swipes: OpenTelemetry spans in Langfuse's conventions, a local trace
log, Prometheus metrics and structured JSON logs.

``setup_tracing()`` is called once at the entry point (CLI, web app); ``turn_tracer(bundle,
parser)`` then gives the ``DialogueManager`` its ``tracer``. For every finished turn the
``DialogueManager`` calls ``record_turn(result, error)``; that only puts the turn on a bounded queue
(microseconds) and returns. A background thread then

1. appends one JSON line to the local trace log ``$CINEAGENT_HOME/traces/traces.jsonl`` (always;
   rotated at ``trace_log_max_bytes``, ``trace_log_backups`` old files kept), which the UI's
   Traces tab and the nightly job read back with ``recent_traces`` / ``iter_traces``;
2. updates the Prometheus metrics of ``agent.metrics`` (per-step latency, LLM tokens);
3. logs one JSON record with trace id, user id, session id, prompt version and latency;
4. when an exporter is configured, builds the turn's OpenTelemetry spans after the fact, with the
   steps' real start and end times: one trace per turn whose trace id is ``TurnResult.trace_id``
   (so swipes can score it later), a root span ``chat-turn`` and one child per ``Step`` (parent
   from ``Step.parent``). Span processors export them in batches from their own thread.

Exporters (both optional, both may be on):

- **Langfuse**, when ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are set (base URL from
  ``LANGFUSE_BASE_URL`` or ``LANGFUSE_HOST``, default Langfuse Cloud): the Langfuse v5 SDK's own
  client is attached to this module's ``TracerProvider``. It adds its ``LangfuseSpanProcessor``
  (a ``BatchSpanProcessor`` sending OTLP/HTTP to ``{base}/api/public/otel/v1/traces`` with
  ``Authorization: Basic base64(pk:sk)``), its score queue (``POST /api/public/scores``) used for
  swipes, and prompt management / datasets used by ``agent.prompt_registry`` and
  ``eval.experiments``. Trace ids stay ours: spans are created with plain OpenTelemetry and an id
  generator that hands out the turn's trace id for its root span.
- **Any OTLP backend** through the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (+ ``_HEADERS``, ``_TIMEOUT``, ``_COMPRESSION``).
  ``OTEL_SDK_DISABLED=true`` turns both off (the local log stays).

Attributes follow the Langfuse v5 SDK (``langfuse._client.attributes``): trace-level ones
(``langfuse.trace.name``, ``user.id``, ``session.id``, ``langfuse.trace.tags``,
``langfuse.version`` = model artifact version) on every span, as the SDK's
``propagate_attributes`` does; ``langfuse.trace.metadata.*`` (model and prompt versions, parser)
on the root; ``langfuse.observation.type`` from ``Step.kind``; ``langfuse.observation.input`` /
``output`` as JSON; ``langfuse.observation.level=ERROR`` + ``status_message`` (and OTel status
ERROR) on the step that raised. The intent parse is a ``generation`` when the LLM answered (model,
parameters, usage, prompt link, latency; ``gen_ai.*`` too for other backends), else a span with the
fallback recorded (level WARNING) and the failed LLM call as a child generation.

Personal data: only ids, scores and the request text leave the process. Inputs and outputs pass
through ``scrub`` (keys such as ``ratings`` or ``your_rating`` are dropped, long strings and lists
cut); the agent's reply text is not exported (it may quote titles from the person's profile).

Settings (environment, all optional): ``CINEAGENT_TRACE_EXPORT_TIMEOUT_S`` (default 2),
``CINEAGENT_TRACE_LOG_MAX_BYTES`` (default 20 MiB), ``CINEAGENT_TRACE_LOG_BACKUPS`` (default 3),
``CINEAGENT_LOG_FORMAT`` (``json`` | ``text``), ``LANGFUSE_TRACING_ENVIRONMENT``,
``LANGFUSE_RELEASE``.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent import metrics, prompt_registry
from data.store import home

log = logging.getLogger(__name__)
turn_log = logging.getLogger("cineagent.turns")

TRACE_NAME = "chat-turn"
SCORE_NAME = "user_feedback"
TRACER_NAME = "cineagent"
DEFAULT_LANGFUSE_URL = "https://cloud.langfuse.com"   # the Langfuse SDK's own default
BATCH_LINGER_S = 0.05       # the tracing thread gathers turns this long before exporting them
TURN_QUEUE = 1000           # turns waiting for the background thread; more are dropped (counted), never waited for
SPAN_QUEUE = 2048           # spans per exporter waiting to be sent (the OTel default, stated: bounded memory)
MAX_TEXT = 1000             # characters kept of any exported string (a request is at most 2000)
MAX_ITEMS = 50              # elements kept of any exported list (a page is at most 50 cards)
# keys that would carry a person's history rather than ids of this turn: never exported
PERSONAL_KEYS = frozenset({"ratings", "rating", "your_rating", "profile", "history", "swipes", "likes",
                           "dislikes", "evidence", "profile_items"})
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


# ---------------------------------------------------------------------------------------- settings
class TracingConfig(BaseModel):
    """Where turns go. ``from_env`` reads the variables listed in the module docstring."""

    model_config = ConfigDict(extra="forbid")

    langfuse_public_key: str | None = None
    langfuse_secret_key: SecretStr | None = None
    langfuse_base_url: str = DEFAULT_LANGFUSE_URL
    otlp: bool = False                    # export to OTEL_EXPORTER_OTLP_* as well
    export_timeout_s: int = Field(default=2, ge=1)        # per export request, in the background
    flush_interval_s: float = Field(default=1.0, gt=0)    # seconds a span waits before its batch goes
    trace_log: Path | None = None         # default $CINEAGENT_HOME/traces/traces.jsonl
    trace_log_max_bytes: int = Field(default=20 * 1024 * 1024, ge=4096)
    trace_log_backups: int = Field(default=3, ge=0)
    log_format: Literal["json", "text"] = "text"
    release: str | None = None            # default: LANGFUSE_RELEASE, else the cineagent package version
    environment: str | None = None        # Langfuse environment (LANGFUSE_TRACING_ENVIRONMENT)

    @property
    def langfuse(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "TracingConfig":
        env = os.environ if environ is None else environ
        disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        values: dict[str, Any] = {
            "langfuse_public_key": None if disabled else env.get("LANGFUSE_PUBLIC_KEY") or None,
            "langfuse_secret_key": None if disabled else env.get("LANGFUSE_SECRET_KEY") or None,
            "langfuse_base_url": (env.get("LANGFUSE_BASE_URL") or env.get("LANGFUSE_HOST") or DEFAULT_LANGFUSE_URL
                                  ).rstrip("/"),
            "otlp": not disabled and bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                                          or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
            "release": env.get("LANGFUSE_RELEASE") or None,
            "environment": env.get("LANGFUSE_TRACING_ENVIRONMENT") or None,
        }
        for name, var in (("export_timeout_s", "CINEAGENT_TRACE_EXPORT_TIMEOUT_S"),
                          ("trace_log_max_bytes", "CINEAGENT_TRACE_LOG_MAX_BYTES"),
                          ("trace_log_backups", "CINEAGENT_TRACE_LOG_BACKUPS"), ("log_format", "CINEAGENT_LOG_FORMAT")):
            if env.get(var, "").strip():
                values[name] = env[var].strip()
        values.update(overrides)
        return cls(**values)


def package_version() -> str:
    try:
        return metadata.version("cineagent")
    except metadata.PackageNotFoundError:
        return "dev"


# ---------------------------------------------------------------------------------------- local trace log
def default_trace_log() -> Path:
    return home() / "traces" / "traces.jsonl"


class TraceLog:
    """JSON Lines, one turn per line, appended by any number of threads and processes.

    Each line is one ``os.write`` on an ``O_APPEND`` descriptor under an exclusive ``flock`` (lines
    never interleave; no fsync: losing the last turns in a power cut is acceptable for traces).
    When the file would pass ``max_bytes`` it becomes ``traces.jsonl.1`` (older ones shift up to
    ``.{backups}``, the oldest is removed) and a new file starts.
    """

    def __init__(self, path: Path | None = None, max_bytes: int = 20 * 1024 * 1024, backups: int = 3) -> None:
        self.path = Path(path) if path is not None else default_trace_log()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        self.append_many([record])

    def append_many(self, records: list[dict]) -> None:
        """Append the records in order, in one write: a batch of turns takes the lock once."""
        if not records:
            return
        # orjson: a tenth of the stdlib's CPU for a 5 KB turn, and this thread shares the GIL with turns
        line = b"".join(orjson.dumps(r, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
                        for r in records)
        with self._lock:
            # a sidecar lock file, not the log itself: rotation renames the log, and a lock on a
            # renamed file would no longer keep another process out
            lock_fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                size = self.path.stat().st_size if self.path.exists() else 0
                if size > 0 and size + len(line) > self.max_bytes:
                    self._rotate()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            finally:
                os.close(lock_fd)

    def _rotate(self) -> None:
        """Shift traces.jsonl -> .1 -> .2 ...; the caller holds the sidecar lock."""
        for n in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            newer = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
            if n == self.backups and older.exists():
                older.unlink()
            if newer.exists():
                os.replace(newer, older)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        return log_files(self.path, self.backups)


def log_files(path: Path, backups: int) -> list[Path]:
    """The trace log's files that exist: current first, then the rotated ones, newest to oldest."""
    rotated = [path.with_name(f"{path.name}.{n}") for n in range(1, backups + 1)]
    return [p for p in [path, *rotated] if p.exists()]


def _parse_lines(raw: bytes, path: Path) -> list[dict]:
    out = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            log.debug("%s: skipping a torn or unreadable trace line", path)
    return out


def _tail(path: Path, n: int, block: int = 64 * 1024) -> list[dict]:
    """The last ``n`` readable records of ``path``, oldest first, reading backwards by blocks."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= n:
            start = max(0, end - block)
            fh.seek(start)
            data = fh.read(end - start) + data
            end = start
    lines = data.split(b"\n")
    if end > 0:
        lines = lines[1:]   # the first piece may be the tail of a line that started before the block
    return _parse_lines(b"\n".join(lines), path)[-n:] if n else []


def recent_traces(n: int = 50, path: Path | None = None, backups: int = 3) -> list[dict]:
    """The newest ``n`` turns of the trace log (rotated files included), newest first."""
    out: list[dict] = []
    for file in log_files(Path(path) if path is not None else default_trace_log(), backups):
        out = _tail(file, n - len(out)) + out
        if len(out) >= n:
            break
    return list(reversed(out[-n:]))


def iter_traces(path: Path | None = None, backups: int = 3) -> Iterator[dict]:
    """Every turn of the trace log, oldest first (rotated files first)."""
    for file in reversed(log_files(Path(path) if path is not None else default_trace_log(), backups)):
        yield from _parse_lines(file.read_bytes(), file)


# ---------------------------------------------------------------------------------------- JSON logs
LOG_FIELDS = ("trace_id", "user_id", "session_id", "prompt_version", "latency_ms", "act", "parser",
              "fallback_reason", "model_version", "items", "error")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, and the ``LOG_FIELDS`` a record
    carries (pass them with ``extra=``), plus ``exc`` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in LOG_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_json_logs(logger: logging.Logger | None = None) -> None:
    """Format every handler of ``logger`` (default: root) as JSON; add a stderr handler if none."""
    logger = logger or logging.getLogger()
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


# ---------------------------------------------------------------------------------------- export helpers
def scrub(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy for export: ``PERSONAL_KEYS`` dropped, strings cut to ``MAX_TEXT``, lists to
    ``MAX_ITEMS``, nesting below 6 levels summarised."""
    # exact type checks first: this runs over every step of every turn (ABC checks cost 10x more)
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if value is None or kind is int or kind is float or kind is bool:
        return value
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        return {str(k): scrub(v, depth + 1) for k, v in value.items() if str(k) not in PERSONAL_KEYS}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    if isinstance(value, (int, float)):   # numpy scalars and other number types
        return value.item() if hasattr(value, "item") else float(value)
    return scrub(str(value), depth + 1)


def _dumps(scrubbed: Any) -> str:
    return json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> str:
    return _dumps(scrub(value))


class _TurnTraceIds(RandomIdGenerator):
    """Random ids, except that a root span started inside ``preset(trace_id)`` gets that trace id:
    how a turn's spans carry the id the agent already handed out (thread-local, so other threads'
    root spans are untouched)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def preset(self, trace_id: int) -> Iterator[None]:
        self._local.trace_id = trace_id
        try:
            yield
        finally:
            self._local.trace_id = None

    def generate_trace_id(self) -> int:
        preset = getattr(self._local, "trace_id", None)
        return preset if preset else super().generate_trace_id()


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


class _Worker(threading.Thread):
    """Runs submitted jobs in order, in batches; a full queue drops the job (counted) instead of
    blocking. After each batch it calls ``after_batch`` (the trace log's one write for the batch).

    It waits ``linger_s`` after the first job of a batch so that a burst of turns is exported
    together: the thread wakes a few times a second instead of once a turn, and every wake-up takes
    the GIL from the turns being answered."""

    def __init__(self, size: int = TURN_QUEUE, after_batch: Callable[[], None] | None = None,
                 linger_s: float = BATCH_LINGER_S) -> None:
        super().__init__(name="cineagent-tracing", daemon=True)
        self.jobs: queue.Queue[Callable[[], None] | threading.Event] = queue.Queue(maxsize=size)
        self.dropped = 0
        self.after_batch = after_batch
        self.linger_s = linger_s
        self._count_lock = threading.Lock()   # request threads submit concurrently

    def submit(self, job: Callable[[], None]) -> bool:
        try:
            self.jobs.put_nowait(job)
            return True
        except queue.Full:
            with self._count_lock:
                self.dropped += 1
                dropped = self.dropped
            if dropped == 1 or dropped % 100 == 0:
                log.warning("tracing is behind: %d turn(s) not traced so far (queue of %d full)", dropped,
                            self.jobs.maxsize)
            return False

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted before this call has run."""
        done = threading.Event()
        try:
            self.jobs.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def run(self) -> None:
        while True:
            batch = [self.jobs.get()]
            if self.linger_s and not isinstance(batch[0], threading.Event):
                time.sleep(self.linger_s)
            while True:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            flushes = []
            for job in batch:
                if isinstance(job, threading.Event):
                    flushes.append(job)   # set once everything before it, the batch's write included, is done
                    continue
                try:
                    job()
                except Exception:  # noqa: BLE001 - tracing must never take the process down
                    log.exception("tracing a turn failed")
            if self.after_batch is not None:
                try:
                    self.after_batch()
                except Exception:  # noqa: BLE001 - e.g. a full disk
                    log.exception("tracing: writing a batch failed")
            for done in flushes:
                done.set()


# ---------------------------------------------------------------------------------------- tracing
class Tracing:
    """The process's tracing: exporters, the local trace log, the background thread.

    One per process in production (``setup_tracing``); tests build their own. The Langfuse SDK
    keeps one client per public key in a process, so two ``Tracing`` objects need two keys.
    """

    def __init__(self, config: TracingConfig | None = None) -> None:
        self.config = config or TracingConfig.from_env()
        self.release = self.config.release or package_version()
        self.trace_log = TraceLog(self.config.trace_log, self.config.trace_log_max_bytes, self.config.trace_log_backups)
        self.provider: TracerProvider | None = None
        self.langfuse = None
        self._ids = _TurnTraceIds()
        if self.config.langfuse or self.config.otlp:
            self._start_exporters()
        self.tracer = self.provider.get_tracer(TRACER_NAME, self.release) if self.provider else None
        self.prompts = prompt_registry.PromptRegistry(self.langfuse)
        self._unwritten: list[dict] = []   # turn records of the current batch (the worker's thread only)
        self._worker = _Worker(after_batch=self._write_batch)
        self._worker.start()

    def _start_exporters(self) -> None:
        cfg = self.config
        attributes = {"service.version": self.release, "langfuse.release": self.release}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = TRACER_NAME
        if cfg.environment:
            attributes["langfuse.environment"] = cfg.environment
        self.provider = TracerProvider(resource=Resource.create(attributes), id_generator=self._ids)
        if cfg.otlp:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            explicit = any(os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"))
            exporter = OTLPSpanExporter() if explicit else OTLPSpanExporter(timeout=cfg.export_timeout_s)
            self.provider.add_span_processor(BatchSpanProcessor(
                exporter, max_queue_size=SPAN_QUEUE, schedule_delay_millis=int(cfg.flush_interval_s * 1000),
                export_timeout_millis=cfg.export_timeout_s * 1000))
        if cfg.langfuse:
            from langfuse import Langfuse

            # the SDK's own client on our provider: its LangfuseSpanProcessor (batched OTLP/HTTP with
            # the Basic auth header), its score queue, prompt management and datasets. Every span of
            # this provider is ours, so all are exported (its default filter keeps only LLM spans).
            self.langfuse = Langfuse(public_key=cfg.langfuse_public_key,
                                     secret_key=cfg.langfuse_secret_key.get_secret_value(),
                                     base_url=cfg.langfuse_base_url, timeout=cfg.export_timeout_s,
                                     flush_interval=cfg.flush_interval_s, release=self.release,
                                     environment=cfg.environment, tracer_provider=self.provider,
                                     should_export_span=lambda span: True)
        log.info("tracing: local log %s%s%s", self.trace_log.path,
                 f", Langfuse at {cfg.langfuse_base_url}" if cfg.langfuse else "",
                 ", OTLP exporter from OTEL_EXPORTER_OTLP_*" if cfg.otlp else "")

    # ------------------------------------------------------------ public
    def turn_tracer(self, model_version: str | None = None, parser: Any = None) -> "AgentTracer":
        """A ``TurnTracer`` for a DialogueManager serving models ``model_version`` with ``parser``
        (its name, and for the LLM parser its model and sampling parameters, go on every trace)."""
        return AgentTracer(self, model_version, parser)

    def submit(self, job: Callable[[], None]) -> bool:
        return self._worker.submit(job)

    @property
    def dropped(self) -> int:
        """Turns and swipes not traced because the queue was full."""
        return self._worker.dropped

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait for queued turns, then push spans and scores out (blocks up to about ``timeout_s``)."""
        ok = self._worker.flush(timeout_s)
        if self.langfuse is not None:
            self.langfuse.flush()
        elif self.provider is not None:
            ok = self.provider.force_flush(int(timeout_s * 1000)) and ok
        return ok

    def shutdown(self) -> None:
        """Flush and stop the exporters (at exit; a dead endpoint costs at most a few timeouts)."""
        self._worker.flush(10.0)
        if self.langfuse is not None:
            self.langfuse.shutdown()
        if self.provider is not None:
            self.provider.shutdown()

    # ------------------------------------------------------------ work done in the background
    def export_turn(self, turn: "TurnView") -> None:
        """Everything a finished turn feeds; each part runs even if another one failed."""
        for part in (self._log_locally, self._emit_spans, self._observe):
            try:
                part(turn)
            except Exception:  # noqa: BLE001 - e.g. a full disk must not stop the export
                log.exception("tracing: %s failed for turn %s", part.__name__, turn.result.trace_id)

    def _log_locally(self, turn: "TurnView") -> None:
        self._unwritten.append(turn.record())

    def _write_batch(self) -> None:
        records, self._unwritten = self._unwritten, []
        self.trace_log.append_many(records)

    def _observe(self, turn: "TurnView") -> None:
        """Metrics and the structured log line of the turn."""
        record = turn.record()
        for step in turn.result.steps:
            metrics.observe_step(step.name, step.duration_ms / 1000)
        tokens_in, tokens_out = turn.tokens()
        if tokens_in or tokens_out:
            metrics.observe_llm_tokens(tokens_in, tokens_out)
        turn_log.log(logging.ERROR if turn.error else logging.INFO, "turn %s %s in %.0f ms", turn.result.act,
                     turn.result.trace_id, turn.result.duration_ms,
                     extra={"trace_id": turn.result.trace_id, "user_id": turn.result.user.key,
                            "session_id": turn.result.session_id, "prompt_version": turn.prompt_version,
                            "latency_ms": round(turn.result.duration_ms, 1), "act": turn.result.act,
                            "parser": record["parser"], "fallback_reason": record["fallback_reason"],
                            "model_version": turn.model_version, "items": len(turn.result.cards),
                            "error": record["error"]})

    def score_feedback(self, trace_id: str, user_key: str, item_id: int, liked: bool) -> None:
        if self.langfuse is None:
            return
        if not _HEX32.match(trace_id or ""):
            log.debug("swipe on item %s carries no turn trace id (%r): not scored", item_id, trace_id)
            return
        action = "like" if liked else "dislike"
        self.langfuse.create_score(name=SCORE_NAME, value=1.0 if liked else 0.0, data_type="BOOLEAN",
                                   trace_id=trace_id, comment=f"{action} item {item_id}",
                                   metadata={"item_id": item_id, "action": action, "user_id": user_key})

    def _emit_spans(self, turn: "TurnView") -> None:
        result, tracer = turn.result, self.tracer
        if tracer is None or not _HEX32.match(result.trace_id or ""):
            return
        common = turn.trace_attributes()
        with self._ids.preset(int(result.trace_id, 16)):
            root = tracer.start_span(TRACE_NAME, context=otel_context.Context(), start_time=_ns(result.started),
                                     attributes={**common, **turn.root_attributes()})
        spans = {None: root}
        ended: list[tuple[Any, int]] = []
        for index in _parents_first(result.steps):
            step = result.steps[index]
            parent = spans.get(step.parent, root)
            start = _ns(step.started)
            span = tracer.start_span(step.name, context=otel_trace.set_span_in_context(parent), start_time=start,
                                     attributes={**common, **turn.step_attributes(index)})
            if step.error:
                span.set_status(Status(StatusCode.ERROR, step.error))
            spans[step.name] = span
            ended.append((span, start + int(step.duration_ms * 1e6)))
            if step.name == "intent_parse" and turn.llm_attempt_failed:
                attempt = turn.llm_attempt_attributes()
                child = tracer.start_span("llm_call", context=otel_trace.set_span_in_context(span), start_time=start,
                                          attributes={**common, **attempt})
                child.set_status(Status(StatusCode.ERROR, turn.result.parse.fallback_reason))
                ended.append((child, start + int(turn.llm_latency_ms() * 1e6)))
        for span, end in reversed(ended):   # children before parents, as they finished
            span.end(end_time=end)
        if turn.error is not None:
            root.record_exception(turn.error)
            root.set_status(Status(StatusCode.ERROR, f"{type(turn.error).__name__}: {turn.error}"))
        root.end(end_time=_ns(result.started) + int(result.duration_ms * 1e6))


def _parents_first(steps: list) -> list[int]:
    """Indices of ``steps`` ordered so that each step comes after the step it names as parent
    (steps are recorded as they finish, so children come first)."""
    names = {s.name for s in steps}
    ordered, placed = [], set()
    pending = list(range(len(steps)))
    while pending:
        rest = []
        for i in pending:
            parent = steps[i].parent
            if parent is None or parent not in names or parent in placed:
                ordered.append(i)
                placed.add(steps[i].name)
            else:
                rest.append(i)
        if len(rest) == len(pending):   # a cycle cannot come from the agent; attach to the root anyway
            ordered.extend(rest)
            break
        pending = rest
    return ordered


class TurnView:
    """One finished turn seen from tracing: the record, the attributes, the LLM details."""

    def __init__(self, result: Any, error: BaseException | None, model_version: str | None, parser_name: str | None,
                 llm_parameters: dict | None, prompts: prompt_registry.PromptRegistry) -> None:
        self.result = result
        self.error = error
        self.model_version = model_version
        self.parser_name = parser_name
        self.llm_parameters = llm_parameters
        self.prompts = prompts
        parse = result.parse
        self.details: dict = dict(parse.details) if parse is not None else {}
        self.llm: dict = self.details.get("llm", {}) if parse is not None and parse.fallback_reason else {}
        self.prompt_version: str | None = self.details.get("prompt_version") or self.llm.get("prompt_version")
        self._record: dict | None = None
        self._steps: list[dict] | None = None

    @property
    def steps(self) -> list[dict]:
        """The turn's steps as exported (scrubbed once, used by the log line and the spans)."""
        if self._steps is None:
            self._steps = [scrub(s.as_dict()) for s in self.result.steps]
        return self._steps

    @property
    def answered_by_llm(self) -> bool:
        return self.result.parse is not None and self.result.parse.parser == "llm"

    @property
    def llm_attempt_failed(self) -> bool:
        return bool(self.llm)

    def llm_latency_ms(self) -> float:
        return float(self.llm.get("latency_ms") or 0.0)

    def tokens(self) -> tuple[int, int]:
        """LLM tokens this turn consumed (a failed call that answered counts too)."""
        source = self.details if self.answered_by_llm else self.llm
        return int(source.get("input_tokens") or 0), int(source.get("output_tokens") or 0)

    # ------------------------------------------------------------ local record
    def record(self) -> dict:
        """The turn's line in the local trace log (computed once)."""
        if self._record is None:
            self._record = self._build_record()
        return self._record

    def _build_record(self) -> dict:
        r, parse = self.result, self.result.parse
        return {
            "trace_id": r.trace_id, "ts": r.started,
            "time": datetime.fromtimestamp(r.started or time.time(), timezone.utc).isoformat(timespec="seconds"),
            "user": r.user.key, "known_user": r.user.known, "session": r.session_id, "message": scrub(r.message),
            "act": r.act, "intent": scrub(r.intent.model_dump(mode="json")),
            "parser": parse.parser if parse else None, "fallback_reason": parse.fallback_reason if parse else None,
            "prompt_version": self.prompt_version, "model_version": self.model_version,
            "duration_ms": round(r.duration_ms, 3), "items": [c.item_id for c in r.cards],
            "error": f"{type(self.error).__name__}: {self.error}" if self.error else None,
            "steps": self.steps,
        }

    # ------------------------------------------------------------ span attributes
    def tags(self) -> list[str]:
        parse = self.result.parse
        tags = ["chat", f"act:{self.result.act}", f"parser:{parse.parser if parse else 'none'}"]
        if parse is not None and parse.fallback_reason:
            tags.append("llm-fallback")
        if any(s.name == "recommend" and s.output.get("cold_start_reason") for s in self.result.steps):
            tags.append("cold-start")
        if self.error is not None or any(s.error for s in self.result.steps):
            tags.append("error")
        return tags

    def trace_attributes(self) -> dict:
        """Trace-level attributes, put on every span like the Langfuse SDK's propagate_attributes."""
        attrs = {"langfuse.trace.name": TRACE_NAME, "user.id": self.result.user.key,
                 "session.id": str(self.result.session_id), "langfuse.trace.tags": self.tags()}
        if self.model_version:
            attrs["langfuse.version"] = self.model_version
        return attrs

    def root_attributes(self) -> dict:
        r, parse = self.result, self.result.parse
        metadata = {"model_version": self.model_version, "prompt_version": self.prompt_version or "none",
                    "parser": parse.parser if parse else None, "configured_parser": self.parser_name,
                    "fallback_reason": parse.fallback_reason if parse else None,
                    "llm_model": (self.llm_parameters or {}).get("model"), "known_user": r.user.known}
        attrs = {"langfuse.observation.type": "agent",
                 "langfuse.observation.input": _json({"message": r.message}),
                 "langfuse.observation.output": _json({"act": r.act, "items": [c.item_id for c in r.cards],
                                                       "notices": len(r.notices)})}
        attrs.update({f"langfuse.trace.metadata.{k}": json.dumps(v) for k, v in metadata.items() if v is not None})
        if self.error is not None:
            attrs["langfuse.observation.level"] = "ERROR"
            attrs["langfuse.observation.status_message"] = f"{type(self.error).__name__}: {self.error}"[:MAX_TEXT]
        return attrs

    def step_attributes(self, index: int) -> dict:
        step, exported = self.result.steps[index], self.steps[index]
        attrs: dict[str, Any] = {"langfuse.observation.type": step.kind or "span",
                                 "langfuse.observation.input": _dumps(exported["input"]),
                                 "langfuse.observation.output": _dumps(exported["output"])}
        if step.name == "intent_parse":
            attrs.update(self._parse_attributes())
        if step.error:
            attrs["langfuse.observation.level"] = "ERROR"
            attrs["langfuse.observation.status_message"] = step.error[:MAX_TEXT]
        return attrs

    def _parse_attributes(self) -> dict:
        parse = self.result.parse
        if parse is None:
            return {}
        attrs: dict[str, Any] = {"langfuse.observation.metadata.parser": json.dumps(parse.parser)}
        if self.prompt_version:
            attrs["langfuse.observation.metadata.prompt_version"] = json.dumps(self.prompt_version)
        if self.answered_by_llm:
            attrs["langfuse.observation.type"] = "generation"
            attrs.update(self._generation_attributes(self.details))
            attrs["langfuse.observation.output"] = _json({"intent": parse.intent.model_dump(mode="json"),
                                                          "raw": self.details.get("raw"),
                                                          "dropped": self.details.get("dropped", [])})
        elif parse.fallback_reason:
            attrs["langfuse.observation.level"] = "WARNING"
            attrs["langfuse.observation.status_message"] = f"LLM parser fell back to offline: {parse.fallback_reason}"
            attrs["langfuse.observation.metadata.fallback_reason"] = json.dumps(parse.fallback_reason)
        return attrs

    def _generation_attributes(self, source: dict) -> dict:
        model = source.get("model") or (self.llm_parameters or {}).get("model")
        params = {k: v for k, v in (self.llm_parameters or {}).items() if k != "model"}
        tokens_in, tokens_out = int(source.get("input_tokens") or 0), int(source.get("output_tokens") or 0)
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat",
                                 "langfuse.observation.metadata.latency_ms": json.dumps(source.get("latency_ms"))}
        if model:
            attrs["langfuse.observation.model.name"] = model
            attrs["gen_ai.request.model"] = model
        if params:
            attrs["langfuse.observation.model.parameters"] = json.dumps(params)
            for key, otel in (("temperature", "gen_ai.request.temperature"), ("max_tokens", "gen_ai.request.max_tokens")):
                if params.get(key) is not None:
                    attrs[otel] = params[key]
        if tokens_in or tokens_out:
            total = int(source.get("total_tokens") or tokens_in + tokens_out)
            attrs["langfuse.observation.usage_details"] = json.dumps({"input": tokens_in, "output": tokens_out,
                                                                      "total": total})
            attrs["gen_ai.usage.input_tokens"] = tokens_in
            attrs["gen_ai.usage.output_tokens"] = tokens_out
        link = self.prompts.link(source.get("prompt_version"))
        if link:
            attrs["langfuse.observation.prompt.name"], attrs["langfuse.observation.prompt.version"] = link
        return attrs

    def llm_attempt_attributes(self) -> dict:
        """The failed LLM call of a fallback turn, as a generation marked ERROR."""
        attrs = {"langfuse.observation.type": "generation",
                 "langfuse.observation.input": _json({"message": self.result.message}),
                 "langfuse.observation.output": _json({"raw": self.llm.get("raw")}),
                 "langfuse.observation.level": "ERROR",
                 "langfuse.observation.status_message": (self.result.parse.fallback_reason or "")[:MAX_TEXT]}
        attrs.update(self._generation_attributes(self.llm))
        return attrs


class AgentTracer:
    """The ``TurnTracer`` a DialogueManager calls: never blocks on I/O, never raises."""

    def __init__(self, tracing: Tracing, model_version: str | None = None, parser: Any = None) -> None:
        self.tracing = tracing
        self.model_version = model_version
        self.parser_name = getattr(parser, "name", None)
        settings = getattr(parser, "settings", None) if self.parser_name == "llm" else None
        self.llm_parameters = ({"model": settings.model, "temperature": settings.temperature,
                                "max_tokens": settings.max_tokens, "timeout_s": settings.timeout_s}
                               if settings is not None else None)

    def record_turn(self, result: Any, error: BaseException | None = None) -> None:
        try:
            view = TurnView(result, error, self.model_version, self.parser_name, self.llm_parameters,
                            self.tracing.prompts)
            self.tracing.submit(partial(self.tracing.export_turn, view))
        except Exception:  # noqa: BLE001 - a tracing bug must not fail the person's turn
            log.exception("could not queue the turn for tracing")

    def record_feedback(self, trace_id: str, user: Any, item_id: int, liked: bool) -> None:
        try:
            self.tracing.submit(partial(self.tracing.score_feedback, trace_id, user.key, int(item_id), bool(liked)))
        except Exception:  # noqa: BLE001
            log.exception("could not queue the swipe for tracing")


# ---------------------------------------------------------------------------------------- process-wide
_active: Tracing | None = None
_setup_lock = threading.Lock()


def setup_tracing(config: TracingConfig | None = None) -> Tracing:
    """Configure tracing for this process once (later calls return the same ``Tracing``): exporters
    from the environment, the local trace log, JSON logs when ``log_format`` is ``json``, and the
    prompt registry's Langfuse client. Flushed and shut down at exit."""
    global _active
    with _setup_lock:
        if _active is not None:
            return _active
        tracing = Tracing(config)
        if tracing.config.log_format == "json":
            use_json_logs()
        prompt_registry.configure(tracing.langfuse)
        tracing.prompts = prompt_registry.registry()
        import atexit

        atexit.register(tracing.shutdown)
        _active = tracing
        return tracing


def active_tracing() -> Tracing | None:
    """The process's ``Tracing`` once ``setup_tracing`` ran, else None."""
    return _active


def turn_tracer(bundle: Any, parser: Any) -> AgentTracer | None:
    """The tracer for a DialogueManager over ``bundle`` (its manifest version goes on every trace)
    and ``parser``; None when ``setup_tracing`` was not called (nothing is traced)."""
    if _active is None:
        return None
    manifest = getattr(bundle, "manifest", None)
    return _active.turn_tracer(manifest.version if manifest else None, parser)
