"""Tracing of chat turns and swipes: OpenTelemetry spans in Langfuse's conventions, a local trace
log, Prometheus metrics and structured JSON logs.

``setup_tracing()`` is called once at the entry point (CLI, web app); ``turn_tracer(bundle,
parser)`` then gives the ``DialogueManager`` its ``tracer``. Spans are live, as the OpenTelemetry
SDK intends: a turn opens its root span ``chat-turn`` when it starts (its trace id, from the SDK, is
``TurnResult.trace_id``, so swipes can score the turn later), and each step opens its span under
the current one while it runs (``agent.steps.recording``; the context carries the parent across
``await`` and worker threads). Ended spans go to the span processors, SDK ``BatchSpanProcessor``s
that export from their own threads; the turn never waits on I/O.

Exporters:

- **the local trace log** (always): ``LocalExporter`` writes one JSON line per turn to
  ``$CINEAGENT_HOME/traces/traces.jsonl`` (rotated at ``trace_log_max_bytes``,
  ``trace_log_backups`` old files kept), which the UI's Traces tab, the nightly job, the harvest
  and the load benchmark read back with ``recent_traces`` / ``iter_traces``; it also updates the
  Prometheus metrics of ``agent.metrics`` and logs one structured record per turn.
- **Langfuse**, when ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are set (base URL from
  ``LANGFUSE_BASE_URL`` or ``LANGFUSE_HOST``, default Langfuse Cloud): the Langfuse v5 SDK's own
  client is attached to this module's ``TracerProvider``: its ``LangfuseSpanProcessor`` (OTLP/HTTP
  to ``{base}/api/public/otel/v1/traces``), its score queue (``POST /api/public/scores``) used for
  swipes, prompt management and datasets (``agent.prompt_registry``, ``eval.experiments``). The
  server relied on is Langfuse v4.59.0 or later (``agent.langfuse_attrs.MIN_SERVER_VERSION``);
  its version is read at start (``agent.langfuse_server``), and with an older one, which refuses
  the SDK's score batches, swipe scores are posted one by one (``Tracing.langfuse_status``).
- **Any OTLP backend** through the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (+ ``_HEADERS``, ``_TIMEOUT``, ``_COMPRESSION``).
  ``OTEL_SDK_DISABLED=true`` turns both off (the local log stays).

Attribute names, the instrumentation scope and the scrubbing of personal data are in
``agent.langfuse_attrs``. Only ids, scores and the request text leave the process; the agent's
reply text is not exported (it may quote titles from the person's profile).

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
import re
import sys
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent import langfuse_attrs as lf
from agent import langfuse_server, metrics, prompt_registry
from agent.steps import Step
from data.store import home

log = logging.getLogger(__name__)
turn_log = logging.getLogger("cineagent.turns")

TRACE_NAME = "chat-turn"
SCORE_NAME = "user_feedback"
SERVICE_NAME = "cineagent"
DEFAULT_LANGFUSE_URL = "https://cloud.langfuse.com"   # the Langfuse SDK's own default
SPAN_QUEUE = 2048           # spans per exporter waiting to be sent (the OTel default, stated: bounded memory)
OPEN_TRACES = 1000          # turns whose root span the local exporter waits for
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
LATE = "cineagent.late"   # a span recorded under a turn's root after the turn ended


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
        parts = [orjson.dumps(r, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
                 for r in records]
        line = b"".join(parts)
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
                    offset = os.fstat(fd).st_size   # under the lock: no other writer appends meanwhile
                    os.write(fd, line)
                finally:
                    os.close(fd)
                # the index beside it: whose each line is and where, so an export reads only its own
                entries, at = [], offset
                for record, part in zip(records, parts):
                    entries.append(b"%s\t%d\t%d\n" % (_index_user(record), at, len(part)))
                    at += len(part)
                fd = os.open(index_of(self.path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"".join(entries))
                finally:
                    os.close(fd)
            finally:
                os.close(lock_fd)

    def _rotate(self) -> None:
        """Shift traces.jsonl -> .1 -> .2 ... (each with its index); the caller holds the sidecar lock."""
        for n in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            newer = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
            if n == self.backups:
                older.unlink(missing_ok=True)
                index_of(older).unlink(missing_ok=True)
            if newer.exists():
                os.replace(newer, older)
            if index_of(newer).exists():
                os.replace(index_of(newer), index_of(older))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            index_of(self.path).unlink(missing_ok=True)

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


def index_of(log_file: Path) -> Path:
    """The index of one trace log file: a line per record, ``user<TAB>offset<TAB>length``."""
    return log_file.with_name(log_file.name + ".idx")


def _index_user(record: dict) -> bytes:
    user = record.get("user")
    return str(user).encode("utf-8", "replace").replace(b"\t", b" ").replace(b"\n", b" ") if user else b"-"


def person_traces(user: str, path: Path | None = None, backups: int = 3) -> list[dict]:
    """One person's turns in the trace log, oldest first, found through each file's index (a line
    of some 50 bytes a turn, against some 5 KB in the log): only their own lines are read. A file
    written before indexes were kept (no index) is read whole, as before."""
    wanted = str(user).encode("utf-8", "replace")
    out: list[dict] = []
    for file in reversed(log_files(Path(path) if path is not None else default_trace_log(), backups)):
        index = index_of(file)
        try:
            raw_index = index.read_bytes()
        except FileNotFoundError:
            out += [t for t in _parse_lines(file.read_bytes(), file) if t.get("user") == user]
            continue
        spans = []
        for entry in raw_index.split(b"\n"):
            name, _, rest = entry.partition(b"\t")
            if name == wanted:
                offset, _, length = rest.partition(b"\t")
                if offset.isdigit() and length.isdigit():
                    spans.append((int(offset), int(length)))
        if not spans:
            continue
        with open(file, "rb") as fh:
            for offset, length in spans:
                fh.seek(offset)
                out += [t for t in _parse_lines(fh.read(length), file) if t.get("user") == user]
    return out


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


# ---------------------------------------------------------------------------------------- the local exporter
class LocalExporter(SpanExporter):
    """The local sinks of a turn, fed by the SDK like any other exporter (its own
    ``BatchSpanProcessor``, so on the SDK's export thread): a turn's spans are gathered until its
    root ends (children end first), then it becomes one line of the trace log, Prometheus
    observations (per-step latency, LLM tokens) and one structured log record."""

    def __init__(self, trace_log: TraceLog, max_open: int = OPEN_TRACES) -> None:
        self.trace_log = trace_log
        self.max_open = max_open
        self._open: OrderedDict[int, list[ReadableSpan]] = OrderedDict()  # trace id -> its ended spans

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = []
        for span in spans:
            if span.attributes.get(LATE):
                continue   # a span added to a turn already written (shadow mode's): OTLP/Langfuse only
            if span.parent is not None:
                self._open.setdefault(span.context.trace_id, []).append(span)
                continue
            children = self._open.pop(span.context.trace_id, [])
            try:
                records.append(self._observe(span, children))
            except Exception:  # noqa: BLE001 - one odd span must not lose the batch
                log.exception("tracing: could not record trace %032x locally", span.context.trace_id)
        while len(self._open) > self.max_open:   # roots the span queue dropped: their children go too
            self._open.popitem(last=False)
        try:
            self.trace_log.append_many(records)
        except OSError:
            log.exception("tracing: writing %d turn(s) to %s failed", len(records), self.trace_log.path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._open.clear()

    def _observe(self, root: ReadableSpan, children: list[ReadableSpan]) -> dict:
        record = turn_record(root, children)
        for step in record["steps"]:
            metrics.observe_step(step["name"], step["duration_ms"] / 1000)
        tokens_in = tokens_out = 0
        for span in children:
            usage = span.attributes.get(lf.USAGE)
            if usage:
                usage = json.loads(usage)
                tokens_in, tokens_out = tokens_in + usage["input"], tokens_out + usage["output"]
        if tokens_in or tokens_out:
            metrics.observe_llm_tokens(tokens_in, tokens_out)
        turn_log.log(logging.ERROR if record["error"] else logging.INFO, "turn %s %s in %.0f ms", record["act"],
                     record["trace_id"], record["duration_ms"],
                     extra={"trace_id": record["trace_id"], "user_id": record["user"], "session_id": record["session"],
                            "prompt_version": record["prompt_version"], "latency_ms": round(record["duration_ms"], 1),
                            "act": record["act"], "parser": record["parser"],
                            "fallback_reason": record["fallback_reason"], "model_version": record["model_version"],
                            "items": len(record["items"]), "error": record["error"]})
        return record


def turn_record(root: ReadableSpan, children: list[ReadableSpan]) -> dict:
    """A turn's line in the local trace log, read back from its spans (the same attributes Langfuse
    gets, so the log shows what was exported)."""
    attrs = root.attributes
    meta = {k[len(lf.TRACE_METADATA) + 1:]: orjson.loads(v) for k, v in attrs.items() if k.startswith(lf.TRACE_METADATA)}
    given, answer = _loads(attrs.get(lf.INPUT)), _loads(attrs.get(lf.OUTPUT))
    names = {span.context.span_id: span.name for span in children}
    failed = root.status.status_code == StatusCode.ERROR
    started = root.start_time / 1e9
    return {
        "trace_id": f"{root.context.trace_id:032x}", "ts": started,
        "time": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "user": attrs.get(lf.USER_ID), "known_user": meta.get("known_user"),
        "session": lf.session_of(attrs.get(lf.USER_ID), attrs.get(lf.SESSION_ID)),   # the person's own id
        "message": given.get("message", ""), "act": answer.get("act", "error"), "intent": answer.get("intent"),
        "parser": meta.get("parser"), "fallback_reason": meta.get("fallback_reason"),
        "prompt_version": meta.get("prompt_version"), "model_version": meta.get("model_version"),
        "duration_ms": round((root.end_time - root.start_time) / 1e6, 3), "items": answer.get("items", []),
        "error": root.status.description if failed else None,
        "steps": [{"name": span.name, "started": span.start_time / 1e9,
                   "duration_ms": round((span.end_time - span.start_time) / 1e6, 3),
                   "kind": span.attributes.get(lf.TYPE, "span"), "input": _loads(span.attributes.get(lf.INPUT)),
                   "output": _loads(span.attributes.get(lf.OUTPUT)),
                   "error": span.status.description if span.status.status_code == StatusCode.ERROR else None,
                   "parent": names.get(span.parent.span_id) if span.parent else None}
                  for span in children],
    }


def _loads(value: Any) -> dict:
    return orjson.loads(value) if isinstance(value, str) else {}


# ---------------------------------------------------------------------------------------- tracing
class Tracing:
    """The process's tracing: one OpenTelemetry ``TracerProvider`` whose span processors (the SDK's
    ``BatchSpanProcessor``) feed the local trace log and, when configured, Langfuse and any OTLP
    backend.

    One per process in production (``setup_tracing``); tests build their own. The Langfuse SDK
    keeps one client per public key in a process, so two ``Tracing`` objects need two keys.
    """

    def __init__(self, config: TracingConfig | None = None, exporters: Sequence[SpanExporter] = ()) -> None:
        """``exporters``: more span exporters (a test's ``InMemorySpanExporter``), each batched."""
        self.config = cfg = config or TracingConfig.from_env()
        self.release = cfg.release or package_version()
        self.trace_log = TraceLog(cfg.trace_log, cfg.trace_log_max_bytes, cfg.trace_log_backups)
        attributes = {"service.version": self.release, lf.RELEASE: self.release}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = SERVICE_NAME
        if cfg.environment:
            attributes[lf.ENVIRONMENT] = cfg.environment
        self.provider = TracerProvider(resource=Resource.create(attributes))
        self.local = LocalExporter(self.trace_log)
        for exporter in (self.local, *exporters):
            self._batch(exporter)
        if cfg.otlp:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            explicit = any(os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"))
            self._batch(OTLPSpanExporter() if explicit else OTLPSpanExporter(timeout=cfg.export_timeout_s))
        self.langfuse = None
        self.langfuse_server: langfuse_server.ServerCheck | None = None
        self.scores: langfuse_server.ScoreSender | None = None
        if cfg.langfuse:
            from langfuse import Langfuse

            # the SDK's own client on our provider: its LangfuseSpanProcessor (a BatchSpanProcessor
            # sending OTLP/HTTP with the Basic auth header; it exports the spans of its scope with its
            # key, i.e. ours), its score queue, prompt management and datasets
            self.langfuse = Langfuse(public_key=cfg.langfuse_public_key,
                                     secret_key=cfg.langfuse_secret_key.get_secret_value(),
                                     base_url=cfg.langfuse_base_url, timeout=cfg.export_timeout_s,
                                     flush_interval=cfg.flush_interval_s, release=self.release,
                                     environment=cfg.environment, tracer_provider=self.provider)
            # the server's version, read in the background: an older one refuses the SDK's score
            # batches, so swipe scores then go one by one (agent.langfuse_server)
            self.langfuse_server = langfuse_server.ServerCheck(cfg.langfuse_base_url, cfg.export_timeout_s)
            self.langfuse_server.start()
            self.scores = langfuse_server.ScoreSender(
                self.langfuse_server, cfg.langfuse_public_key, cfg.langfuse_secret_key.get_secret_value(),
                cfg.export_timeout_s, self.langfuse.create_score, cfg.environment)
        # Langfuse's scope when it is on (see agent.langfuse_attrs), else our own name
        self.tracer = self.provider.get_tracer(lf.SCOPE if cfg.langfuse else SERVICE_NAME, self.release,
                                               attributes=lf.scope_attributes(cfg.langfuse_public_key if cfg.langfuse else None))
        self.prompts = prompt_registry.PromptRegistry(self.langfuse)
        log.info("tracing: local log %s%s%s", self.trace_log.path,
                 f", Langfuse at {cfg.langfuse_base_url}" if cfg.langfuse else "",
                 ", OTLP exporter from OTEL_EXPORTER_OTLP_*" if cfg.otlp else "")

    def _batch(self, exporter: SpanExporter) -> None:
        cfg = self.config
        self.provider.add_span_processor(BatchSpanProcessor(
            exporter, max_queue_size=SPAN_QUEUE, schedule_delay_millis=int(cfg.flush_interval_s * 1000),
            export_timeout_millis=cfg.export_timeout_s * 1000))

    # ------------------------------------------------------------ public
    def turn_tracer(self, model_version: str | None = None, parser: Any = None) -> "AgentTracer":
        """A ``TurnTracer`` for a DialogueManager serving models ``model_version`` with ``parser``
        (its name, and for the LLM parser its model and prompt version, go on every span)."""
        return AgentTracer(self, model_version, parser)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Push every ended span (and queued score) out; blocks up to about ``timeout_s``."""
        ok = self.provider.force_flush(int(timeout_s * 1000))
        if self.scores is not None:
            ok = self.scores.join(timeout_s) and ok
        if self.langfuse is not None:
            self.langfuse.flush()
        return ok

    def shutdown(self) -> None:
        """Flush and stop the exporters (at exit; a dead endpoint costs at most a few timeouts)."""
        if self.scores is not None:
            self.scores.close(self.config.export_timeout_s * 3)
        if self.langfuse is not None:
            self.langfuse.shutdown()
        self.provider.shutdown()

    def langfuse_status(self) -> dict | None:
        """Langfuse's version and how swipe scores reach it (``/healthz``), None when it is off."""
        if self.langfuse_server is None:
            return None
        return langfuse_server.summary(self.langfuse_server, self.scores)

    def score_feedback(self, trace_id: str, user_key: str, item_id: int, liked: bool) -> None:
        """A swipe as a Langfuse score of the turn that showed the card (queued by the SDK)."""
        if self.langfuse is None:
            return
        if not _HEX32.match(trace_id or ""):
            log.debug("swipe on item %s carries no turn trace id (%r): not scored", item_id, trace_id)
            return
        action = "like" if liked else "dislike"
        # its own id: a retry of the post (one by one) or of the batch updates the same score
        self.scores.submit(score_id=uuid.uuid4().hex, name=SCORE_NAME, value=1.0 if liked else 0.0, data_type="BOOLEAN",
                                   trace_id=trace_id, comment=f"{action} item {item_id}",
                                   metadata={"item_id": item_id, "action": action, "user_id": user_key})


class AgentTracer:
    """The ``TurnTracer`` a DialogueManager calls: a root span per turn, a span per step, all live;
    the work of exporting them is the span processors', on their own threads. Never raises into
    the turn for a tracing problem."""

    def __init__(self, tracing: Tracing, model_version: str | None = None, parser: Any = None) -> None:
        self.tracing = tracing
        self.model_version = model_version
        self.parser_name = getattr(parser, "name", None)
        settings = getattr(parser, "settings", None) if self.parser_name == "llm" else None
        prompt = getattr(parser, "prompt", None) if self.parser_name == "llm" else None
        # what every observation carries, to filter by (Langfuse filters observations, not only traces)
        self.trace_metadata = {"model_version": model_version, "configured_parser": self.parser_name,
                               "prompt_version": getattr(prompt, "version", None),   # None: left out
                               "llm_model": getattr(settings, "model", None)}

    @contextmanager
    def turn(self, user: Any, session_id: str, message: str, started: float) -> Iterator["_OpenTurn"]:
        # the session namespaced by person: two people's "s1" are two Langfuse sessions
        common = lf.trace_attributes(TRACE_NAME, user.key, lf.session_key(user.key, str(session_id)),
                                     self.model_version, self.trace_metadata)
        # a root: no parent, so a fresh trace id from the SDK's id generator, which the turn adopts
        root = self.tracing.tracer.start_span(TRACE_NAME, context=otel_context.Context(), start_time=_ns(started),
                                              attributes={**common, lf.TYPE: "agent", lf.INPUT: lf.dumps({"message": message})})
        turn = _OpenTurn(self, root, common, user)
        attached = otel_context.attach(otel_trace.set_span_in_context(root))
        try:
            yield turn
        except BaseException as exc:
            turn.failed(exc)
            raise
        finally:
            otel_context.detach(attached)
            turn.end()

    def record_shadow(self, result: Any, shadow: dict) -> None:
        """Shadow mode: the challenger's ranking as a span of the turn's trace (under its root),
        recorded after the reply; the person never sees it."""
        if not getattr(result, "span_id", "") or not _HEX32.match(result.trace_id or ""):
            return
        try:
            root = otel_trace.SpanContext(int(result.trace_id, 16), int(result.span_id, 16), is_remote=True,
                                          trace_flags=otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED))
            parent = otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(root), otel_context.Context())
            session = lf.session_key(result.user.key, str(result.session_id))   # the turn's own Langfuse session
            common = lf.trace_attributes(TRACE_NAME, result.user.key, session, self.model_version, self.trace_metadata)
            span = self.tracing.tracer.start_span("shadow", context=parent, attributes={
                **common, LATE: True, lf.INPUT: lf.dumps({"champion": shadow.get("champion")}),
                lf.OUTPUT: lf.dumps({"top": shadow.get("top"), "ranks": shadow.get("ranks"), "model": shadow.get("model")})})
            span.end()
        except Exception:  # noqa: BLE001 - a tracing bug must not matter to anyone
            log.exception("could not trace the shadow ranking")

    def record_feedback(self, trace_id: str, user: Any, item_id: int, liked: bool) -> None:
        try:
            self.tracing.score_feedback(trace_id, user.key, int(item_id), bool(liked))
        except Exception:  # noqa: BLE001 - a tracing bug must not fail the swipe
            log.exception("could not score the swipe")


class _OpenTurn:
    """One turn while it runs: its root span, and the ``StepSpans`` its steps open spans with."""

    def __init__(self, tracer: AgentTracer, root: Any, common: dict, user: Any) -> None:
        self.tracer, self.root, self.common, self.user = tracer, root, common, user
        self.trace_id = f"{root.get_span_context().trace_id:032x}"
        self.spans = self
        self.result: Any = None
        self.error: BaseException | None = None
        self.steps_failed = False

    # StepSpans
    def open(self, step: Step) -> Any:
        return self.tracer.tracing.tracer.start_span(step.name, start_time=_ns(step.started), attributes=self.common)

    def close(self, step: Step, span: Any) -> None:
        try:
            span.set_attributes(lf.step_attributes(step, self.tracer.tracing.prompts.link))
            if step.error:
                self.steps_failed = True
                span.set_status(Status(StatusCode.ERROR, step.error))
            elif step.facts.get("level") == "ERROR":
                span.set_status(Status(StatusCode.ERROR, str(step.facts.get("status_message", ""))))
        except Exception:  # noqa: BLE001 - a tracing bug must not fail the turn
            log.exception("tracing: could not describe step %s", step.name)
        span.end(end_time=_ns(step.started) + int(step.duration_ms * 1e6))

    # the turn
    def finish(self, result: Any) -> None:
        self.result = result
        try:   # shadow mode's span goes under it; a tracing problem must not fail the turn
            result.span_id = f"{self.root.get_span_context().span_id:016x}"
        except AttributeError:
            log.warning("tracing: the turn's result cannot carry its span id (%s)", type(result).__name__)

    def failed(self, exc: BaseException) -> None:
        self.error = exc

    def end(self) -> None:
        root, result, error = self.root, self.result, self.error
        try:
            parse = result.parse if result is not None else None
            tags = ["chat", f"act:{result.act if result else 'error'}", f"parser:{parse.parser if parse else 'none'}"]
            if parse is not None and parse.fallback_reason:
                tags.append("llm-fallback")
            if result is not None and any(s.name == "recommend" and s.output.get("cold_start_reason") for s in result.steps):
                tags.append("cold-start")
            if error is not None or self.steps_failed:
                tags.append("error")
            attrs = {lf.TAGS: tags, **lf.metadata(lf.TRACE_METADATA, {
                "parser": parse.parser if parse else None, "fallback_reason": parse.fallback_reason if parse else None,
                "known_user": self.user.known})}
            if result is not None:
                attrs[lf.OUTPUT] = lf.dumps({"act": result.act, "items": [c.item_id for c in result.cards],
                                             "notices": len(result.notices), "intent": result.intent.model_dump(mode="json")})
            if error is not None:
                message = f"{type(error).__name__}: {error}"
                attrs[lf.LEVEL], attrs[lf.STATUS_MESSAGE] = "ERROR", message[:lf.MAX_TEXT]
                root.record_exception(error)
                root.set_status(Status(StatusCode.ERROR, message))
            root.set_attributes(attrs)
            # the turn's own clock, so that the trace's duration is the one the turn reports
            end = _ns(result.started) + int(result.duration_ms * 1e6) if result is not None else None
        except Exception:  # noqa: BLE001 - a tracing bug must not fail the turn
            log.exception("tracing: could not describe turn %s", self.trace_id)
            end = None
        root.end(end_time=end)


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


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
