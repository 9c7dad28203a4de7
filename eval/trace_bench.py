"""What tracing costs a chat turn, with the export endpoint dead: the "a dead Langfuse adds no more
than 5 ms to a turn" figure.

``bench_trace_overhead(agent, {"local_only": t1, "dead_endpoint": t2}, n)`` runs the same warm
turns round-robin without a tracer (``none``) and with each tracer (interleaved, so load from other
processes hits every variant alike; each variant has its own sessions, so all see the same
requests in the same states), and times the whole turn per variant. ``added_p50_ms`` is each
variant's median minus the median of ``none``: the live spans the turn opens and ends (ending one
only queues it for its span processors), plus the processors' export threads competing with the
next turns for the GIL, so on a busy 2-core machine it is an upper bound of what tracing costs a
request.

``dead_vs_local_p50_ms`` (when both variants are given) is what a dead endpoint adds over
tracing to the local log only.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from eval.bench import percentiles

MESSAGES = ("a funny sci-fi movie", "no horror please", "show me more", "a 90s thriller", "something like Toy Story",
            "a romantic comedy", "a western from before 1970", "why the second one?")


def bench_trace_overhead(agent: Any, tracers: dict[str, Any], n: int = 100, warmup: int = 2, user: str = "196",
                         messages: Sequence[str] = MESSAGES) -> dict:
    """Figures in ms per variant (``none`` plus each of ``tracers``): ``turn`` p50/p95/p99 and
    ``added_p50_ms``; ``n`` timed turns per variant after ``warmup`` rounds. ``agent.tracer`` is
    restored afterwards."""
    variants: dict[str, Any] = {"none": None, **tracers}
    turns: dict[str, list[float]] = {name: [] for name in variants}
    original = agent.tracer
    try:
        for k in range(warmup + n):
            for name, tracer in variants.items():
                agent.tracer = tracer
                started = time.perf_counter()
                agent.turn(user, f"trace-bench-{name}-{k // len(messages)}", messages[k % len(messages)])
                if k >= warmup:
                    turns[name].append((time.perf_counter() - started) * 1000)
    finally:
        agent.tracer = original
    base = float(np.median(turns["none"]))
    out: dict[str, Any] = {"n": n}
    for name in variants:
        out[name] = {"turn": percentiles(turns[name]), "added_p50_ms": float(np.median(turns[name])) - base}
    if {"dead_endpoint", "local_only"} <= set(out):
        out["dead_vs_local_p50_ms"] = out["dead_endpoint"]["turn"]["p50_ms"] - out["local_only"]["turn"]["p50_ms"]
    return out
