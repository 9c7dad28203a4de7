"""``cineagent bench abuse``: how ``/healthz`` answers while the abuse paths of issue 20 are tried.

Starts the app (``cineagent serve``, offline parser, limits off, a scratch state directory that
borrows the current home's models) on 127.0.0.1 and, with ``/healthz`` probed every 50 ms
throughout, tries in turn:

- ``header``: one request whose single header grows to ``header_mb`` MB, sent on one socket
  (the parser refuses it once past its 64 KiB, so most of it never leaves the client);
- ``joins``: ``joins`` joins of the page-load event with 60 KB of browser state each, new page
  sessions, never reading a result (past the per-client bound they are 429);
- ``exports``: ``exports`` exports at once, twice each, by a person whose turns sit among
  ``log_mb`` MB of other people's in the trace log.

For each it reports the probes' median and p95 (ms) and what the attack got: bytes the server took
before refusing, joins held and refused, the exports' median seconds. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import secrets
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from data.store import home
from eval.load_test import AppProcess, scratch_home
from web.limits import limits_off_env

PROBE_EVERY_S = 0.05


@contextmanager
def probing(url: str) -> Iterator[list[float]]:
    """``/healthz`` every 50 ms on a connection of its own while the block runs: the latencies (s)."""
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/healthz")
                latencies.append(time.perf_counter() - started)
                stop.wait(PROBE_EVERY_S)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield latencies
    finally:
        time.sleep(0.5)   # a few probes after the attack too
        stop.set()
        thread.join(timeout=60)


def _figures(latencies: list[float]) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {"probes": len(ms), "healthz_p50_ms": round(statistics.median(ms), 1) if ms else None,
            "healthz_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1) if ms else None}


def header_attack(url: str, megabytes: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    sent, started = 0, time.perf_counter()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * 65536
        for _ in range(megabytes * 16):
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass   # refused: the server closed the connection
    answer = b""
    try:
        sock.settimeout(5)
        answer = sock.recv(64)
    except OSError:
        pass
    sock.close()
    return {"sent_mb": round(sent / 2**20, 2), "of_mb": megabytes, "seconds": round(time.perf_counter() - started, 3),
            "answer": answer.split(b"\r\n", 1)[0].decode("latin-1")}


def joins_attack(url: str, joins: int) -> dict:
    with httpx.Client(base_url=url, timeout=60) as client:
        load = next(i for i, d in enumerate(client.get("/config").json()["dependencies"])
                    if any(t[1] == "load" for t in d["targets"]))
        state = {"user_id": "x", "session_id": "s", "turns": [{"trace_id": "t", "cards": [], "text": "a" * 60_000}]}
        statuses = [client.post("/gradio_api/queue/join", json={
            "data": [None, state], "fn_index": load, "session_hash": secrets.token_hex(8), "event_data": None,
            "trigger_id": None}).status_code for _ in range(joins)]
    return {"joins": joins, "held": statuses.count(200), "refused_429": statuses.count(429)}


def exports_attack(url: str, state: Path, exports: int, log_mb: int) -> dict:
    from agent.tracing import TraceLog

    with httpx.Client(base_url=url, timeout=60) as client:
        person = client.post("/api/people", json={"seed_from": 196}).json()
        headers = {"Authorization": f"Bearer {person['token']}"}
        for n in range(3):
            client.post("/api/chat", json={"session_id": "bench", "message": "a comedy"}, headers=headers)
    log = TraceLog(state / "traces" / "traces.jsonl")
    filler = {"user": "p_" + "f" * 24, "message": "x" * 5000, "steps": [{"name": "s", "ms": 1.0}] * 20}
    for _ in range(log_mb * 2):   # 100 records of about 5 KB: half a megabyte a batch
        log.append_many([{**filler, "trace_id": secrets.token_hex(16)} for _ in range(100)])
    timings: list[float] = []

    def export(_: int) -> None:
        started = time.perf_counter()
        httpx.get(f"{url}/api/people/me/export", headers=headers, timeout=120).raise_for_status()
        timings.append(time.perf_counter() - started)

    return {"log_mb": log_mb, "concurrent": exports, "timings": timings, "export": export}


def run_abuse_bench(header_mb: int = 100, joins: int = 400, exports: int = 4, log_mb: int = 30) -> dict:
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="cineagent-bench-abuse-") as scratch:
        state = scratch_home(Path(scratch) / "home", home())
        with AppProcess(state, env={"CINEAGENT_PARSER": "offline", **limits_off_env()}) as app:
            app.wait_ready()
            with probing(app.url) as idle:
                time.sleep(2)
            report["idle"] = _figures(idle)
            with probing(app.url) as during:
                attack = header_attack(app.url, header_mb)
            report["header"] = {**attack, **_figures(during)}
            with probing(app.url) as during:
                attack = joins_attack(app.url, joins)
            report["joins"] = {**attack, **_figures(during)}
            setup = exports_attack(app.url, state, exports, log_mb)
            with probing(app.url) as during, ThreadPoolExecutor(exports) as pool:
                list(pool.map(setup["export"], range(exports * 2)))
            report["exports"] = {"log_mb": log_mb, "concurrent": exports,
                                 "export_p50_s": round(statistics.median(setup["timings"]), 3), **_figures(during)}
    report["ok"] = all(report[k]["healthz_p50_ms"] is not None and report[k]["healthz_p50_ms"] < 100
                       for k in ("header", "joins", "exports"))
    return report


def format_abuse(report: dict) -> str:
    h, j, e, idle = report["header"], report["joins"], report["exports"], report["idle"]
    lines = [f"/healthz idle: p50 {idle['healthz_p50_ms']} ms, p95 {idle['healthz_p95_ms']} ms ({idle['probes']} probes)",
             f"{h['of_mb']} MB header: {h['sent_mb']} MB taken in {h['seconds']} s, answer {h['answer'] or '(closed)'}; "
             f"/healthz p50 {h['healthz_p50_ms']} ms, p95 {h['healthz_p95_ms']} ms ({h['probes']} probes)",
             f"{j['joins']} unread queue joins (60 KB state each): {j['held']} held, {j['refused_429']} refused (429); "
             f"/healthz p50 {j['healthz_p50_ms']} ms, p95 {j['healthz_p95_ms']} ms ({j['probes']} probes)",
             f"{e['concurrent']} exports at once (x2) over a {e['log_mb']} MB trace log: export p50 {e['export_p50_s']} s; "
             f"/healthz p50 {e['healthz_p50_ms']} ms, p95 {e['healthz_p95_ms']} ms ({e['probes']} probes)",
             "ok: /healthz under 100 ms median throughout" if report["ok"] else "NOT ok: /healthz at 100 ms median or more"]
    return "\n".join(lines)
