"""A real local stand-in for Langfuse's HTTP endpoints, for the tracing and experiment tests.

``langfuse_receiver()`` starts a threaded ``http.server`` on a free 127.0.0.1 port and yields a
``Receiver`` that records everything it is sent:

- ``POST /api/public/otel/v1/traces`` (OTLP/HTTP, protobuf, gzip or plain): every span decoded
  with ``opentelemetry-proto`` into a ``ReceivedSpan`` (hex ids, ns times, attributes as Python
  values), plus the request headers;
- ``GET /api/public/health``: ``{"status": "OK", "version": ...}``, no auth, the version the
  receiver plays (``langfuse_receiver(version=...)``, default ``SERVER_VERSION``; None: no version);
- ``POST /api/public/scores``: as the played server takes it. From ``SERVER_VERSION`` (the oldest
  server the pinned SDK supports) a JSON array of score objects (``CreateScoreRequest``: name,
  value, a target id, an optional known data type; a single object is refused with 400); before
  it (``OLD_SERVER_VERSION``, the newest self-hosted server available here) one score object per
  request, and an array is refused with 400, as those servers refuse the SDK's batches;
- spans of the Langfuse SDK's instrumentation scope (``langfuse-sdk``) whose ``public_key`` scope
  attribute is not the key the request authenticated with are refused with 403, as the server does;
- datasets and items (``/api/public/v2/datasets``, ``/api/public/dataset-items``), prompts
  (``/api/public/v2/prompts``) and ``GET /api/public/projects``, answered from memory in the
  shapes the Langfuse v5 SDK parses.

Anything else answers 404 and is still recorded. ``Receiver.wait_for`` polls until a condition on
what arrived holds (export is batched in the background, so tests wait for it with a deadline).
"""
from __future__ import annotations

import base64
import contextlib
from collections import Counter
import gzip
import http.server
import json
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACES_PATH = "/api/public/otel/v1/traces"
PROJECT_ID = "project-cineagent-test"
SERVER_VERSION = "4.59.0"   # the Langfuse server whose API this stand-in checks requests against
OLD_SERVER_VERSION = "4.16.0"   # an older server: one score object per POST /api/public/scores
SCORE_TARGETS = ("traceId", "sessionId", "observationId", "datasetRunId")
SCORE_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT")


@dataclass
class ReceivedRequest:
    method: str
    path: str                       # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]         # names lower-cased
    body: bytes


@dataclass
class ReceivedSpan:
    trace_id: str                   # 32 hex digits
    span_id: str                    # 16 hex digits
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int                # 0 unset, 1 ok, 2 error
    status_message: str
    scope: str                      # instrumentation scope name
    scope_attributes: dict[str, Any]
    resource: dict[str, Any]
    headers: dict[str, str] = field(repr=False, default_factory=dict)

    def json_attr(self, key: str) -> Any:
        """An attribute that holds JSON (Langfuse input/output/usage...), decoded; None if absent."""
        value = self.attributes.get(key)
        return None if value is None else json.loads(value)


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def decode_spans(body: bytes, headers: dict[str, str]) -> list[ReceivedSpan]:
    """Spans of one OTLP/HTTP protobuf export request."""
    encoding = headers.get("content-encoding", "")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex() or None, name=span.name,
                    start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                    attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                    status_code=span.status.code, status_message=span.status.message,
                    scope=scope_spans.scope.name,
                    scope_attributes={kv.key: any_value(kv.value) for kv in scope_spans.scope.attributes},
                    resource=resource, headers=headers))
    return spans


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class Receiver:
    """What the stand-in has been sent, and its in-memory datasets and prompts."""

    def __init__(self, version: str | None = SERVER_VERSION) -> None:
        self.version = version
        self.base_url = ""
        self.requests: list[ReceivedRequest] = []
        self.spans: list[ReceivedSpan] = []
        self.scores: list[dict] = []
        self.datasets: dict[str, dict] = {}
        self.items: dict[str, dict] = {}          # item id -> item
        self.prompts: dict[str, list[dict]] = {}  # name -> versions, oldest first
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- reading
    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Spans grouped by trace id."""
        with self.lock:
            out: dict[str, list[ReceivedSpan]] = {}
            for span in self.spans:
                out.setdefault(span.trace_id, []).append(span)
            return out

    def calls(self, method: str, path_prefix: str) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def wait_for(self, condition: Callable[["Receiver"], bool], timeout_s: float = 30.0) -> None:
        """Poll ``condition(self)`` every 50 ms; AssertionError naming what arrived if it never holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self):
                return
            time.sleep(0.05)
        seen = Counter(f"{r.method} {r.path}" for r in self.requests)
        raise AssertionError(f"condition not met within {timeout_s} s: {len(self.spans)} spans, "
                             f"{len(self.scores)} scores, requests {dict(seen)}")

    # ---------------------------------------------------------------- seeding
    def add_prompt(self, name: str, prompt: str, config: dict, labels: list[str] = ("production",)) -> dict:
        """A text prompt version as Langfuse prompt management would serve it."""
        with self.lock:
            versions = self.prompts.setdefault(name, [])
            entry = {"type": "text", "name": name, "version": len(versions) + 1, "prompt": prompt, "config": config,
                     "labels": list(labels), "tags": [], "commitMessage": None}
            versions.append(entry)
            return entry

    # ---------------------------------------------------------------- answering
    def handle(self, req: ReceivedRequest) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(req)
        if req.method == "POST" and req.path == TRACES_PATH:
            spans = decode_spans(req.body, req.headers)
            key = _public_key(req.headers)
            foreign = [s for s in spans if s.scope.startswith("langfuse-sdk") and s.scope_attributes.get("public_key") != key]
            if foreign:
                return 403, {"message": f"Langfuse OTEL SDK span has different public key than used for authentication"}
            with self.lock:
                self.spans.extend(spans)
            return 200, b""
        body = json.loads(req.body) if req.body else None
        with self.lock:
            return self._rest(req, body)

    def _rest(self, req: ReceivedRequest, body: Any) -> tuple[int, Any]:
        method, path = req.method, req.path
        if method == "GET" and path == "/api/public/health":
            return 200, {"status": "OK", **({"version": self.version} if self.version else {})}
        if method == "POST" and path == "/api/public/scores":
            if not takes_batches(self.version):   # the older API: one score object, answered with its id
                problem = score_problem(body) if isinstance(body, dict) else "expected an object, received array"
                if problem:
                    return 400, {"message": problem}
                self.scores.append(body)
                return 200, {"id": body.get("id") or uuid.uuid4().hex}
            problem = score_batch_problem(body)
            if problem:
                return 400, {"message": problem}
            self.scores.extend(body)
            return 202, {"message": "Accepted"}
        if method == "GET" and path == "/api/public/projects":
            return 200, {"data": [{"id": PROJECT_ID, "name": "cineagent-test", "metadata": {},
                                   "organization": {"id": "org-test", "name": "test"}}]}
        if method == "POST" and path == "/api/public/v2/datasets":
            dataset = self.datasets.get(body["name"]) or {
                "id": uuid.uuid4().hex, "name": body["name"], "description": body.get("description"),
                "metadata": body.get("metadata"), "projectId": PROJECT_ID, "createdAt": _now(), "updatedAt": _now()}
            self.datasets[body["name"]] = dataset
            return 200, dataset
        if method == "GET" and path.startswith("/api/public/v2/datasets/"):
            dataset = self.datasets.get(unquote(path.rsplit("/", 1)[1]))
            return (200, dataset) if dataset else (404, {"message": "Dataset not found"})
        if method == "POST" and path == "/api/public/dataset-items":
            dataset = self.datasets.get(body["datasetName"])
            if dataset is None:
                return 404, {"message": "Dataset not found"}
            item_id = body.get("id") or uuid.uuid4().hex
            self.items[item_id] = {
                "id": item_id, "status": body.get("status") or "ACTIVE", "input": body.get("input"),
                "expectedOutput": body.get("expectedOutput"), "metadata": body.get("metadata"),
                "sourceTraceId": None, "sourceObservationId": None, "datasetId": dataset["id"],
                "datasetName": dataset["name"], "createdAt": _now(), "updatedAt": _now(), "mediaReferences": []}
            return 200, self.items[item_id]
        if method == "GET" and path == "/api/public/dataset-items":
            name = req.query.get("datasetName", [""])[0]
            page, limit = int(req.query.get("page", ["1"])[0]), int(req.query.get("limit", ["50"])[0])
            rows = [i for i in self.items.values() if i["datasetName"] == name]
            pages = max(1, -(-len(rows) // limit))
            return 200, {"data": rows[(page - 1) * limit: page * limit],
                         "meta": {"page": page, "limit": limit, "totalItems": len(rows), "totalPages": pages}}
        if method == "GET" and path.startswith("/api/public/v2/prompts/"):
            versions = self.prompts.get(unquote(path.rsplit("/", 1)[1]), [])
            label = req.query.get("label", ["production"])[0]
            matching = [v for v in versions if label in v["labels"]]
            return (200, matching[-1]) if matching else (404, {"message": "Prompt not found"})
        if method == "POST" and path == "/api/public/v2/prompts":
            versions = self.prompts.setdefault(body["name"], [])
            entry = {"type": body.get("type", "text"), "name": body["name"], "version": len(versions) + 1,
                     "prompt": body["prompt"], "config": body.get("config"), "labels": body.get("labels", []),
                     "tags": body.get("tags") or [], "commitMessage": body.get("commitMessage")}
            versions.append(entry)
            return 200, entry
        return 404, {"message": f"no route {method} {path} in the test receiver"}


def takes_batches(version: str | None) -> bool:
    """Whether the played server takes score arrays (no version played: the newest, batches)."""
    if not version:
        return True
    return tuple(int(p) for p in version.split(".")) >= tuple(int(p) for p in SERVER_VERSION.split("."))


def score_batch_problem(body: Any) -> str | None:
    """Why ``POST /api/public/scores`` of a ``SERVER_VERSION`` server would refuse ``body``, or None."""
    if not isinstance(body, list):
        return "expected an array of scores"
    for score in body:
        problem = score_problem(score)
        if problem:
            return problem
    return None


def score_problem(score: Any) -> str | None:
    """Why one score object would be refused, or None."""
    if not isinstance(score, dict) or not isinstance(score.get("name"), str):
        return "every score needs a name"
    if not isinstance(score.get("value"), (int, float, str)) or isinstance(score.get("value"), bool):
        return f"score {score['name']!r}: value must be a number or a string"
    if not any(score.get(k) for k in SCORE_TARGETS):
        return f"score {score['name']!r}: one of {', '.join(SCORE_TARGETS)} is required"
    if score.get("dataType") is not None and score["dataType"] not in SCORE_DATA_TYPES:
        return f"score {score['name']!r}: unknown dataType {score['dataType']!r}"
    return None


def _public_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    return base64.b64decode(auth[6:]).decode().split(":", 1)[0]


def _handler(receiver: Receiver, delay_s: float) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = ReceivedRequest(self.command, url.path, parse_qs(url.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
            status, payload = receiver.handle(req)   # recorded at once; the answer comes after delay_s
            if delay_s:
                time.sleep(delay_s)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf" if isinstance(payload, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the slow-endpoint tests)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

        def log_message(self, fmt: str, *args: Any) -> None:
            pass  # the test reads the recorded requests instead

    return Handler


@contextlib.contextmanager
def langfuse_receiver(delay_s: float = 0.0, version: str | None = SERVER_VERSION) -> Iterator[Receiver]:
    """Serve on a free 127.0.0.1 port; ``delay_s`` delays every answer (a slow endpoint);
    ``version``: the Langfuse server played (its health answer and score API)."""
    receiver = Receiver(version)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver, delay_s))  # 0: a free port
    server.daemon_threads = True
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="langfuse-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
