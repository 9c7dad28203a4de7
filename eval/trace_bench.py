"""What tracing costs a chat turn, with the export endpoint dead: the "a dead Langfuse adds no more
than 5 ms to a turn" figure.

``bench_trace_overhead(agent, {"local_only": t1, "dead_endpoint": t2}, n)`` runs the same warm
turns round-robin without a tracer (``none``) and with each tracer (interleaved, so load from other
processes hits every variant alike; each variant has its own sessions, so all see the same
requests in the same states), and times

- ``record_turn``: the call the turn itself makes into tracing, per tracer (all export work
  happens later on the tracing thread);
- the whole turn per variant, and ``added_p50_ms``: each variant's median minus the median of
  ``none``. This includes the tracing thread's CPU competing with the next turns, so on a busy
  2-core machine it is an upper bound of what tracing costs a request.

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


class _Timed:
    """Wraps a TurnTracer and records how long each ``record_turn`` call took (ms)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.samples_ms: list[float] = []

    def record_turn(self, result: Any, error: BaseException | None = None) -> None:
        started = time.perf_counter()
        self.inner.record_turn(result, error)
        self.samples_ms.append((time.perf_counter() - started) * 1000)

    def record_feedback(self, *args: Any, **kwargs: Any) -> None:
        self.inner.record_feedback(*args, **kwargs)


def bench_trace_overhead(agent: Any, tracers: dict[str, Any], n: int = 100, warmup: int = 2, user: str = "196",
                         messages: Sequence[str] = MESSAGES) -> dict:
    """Figures in ms per variant (``none`` plus each of ``tracers``): ``turn`` and ``record_turn``
    p50/p95/p99, ``added_p50_ms``; ``n`` timed turns per variant after ``warmup`` rounds.
    ``agent.tracer`` is restored afterwards."""
    variants: dict[str, _Timed | None] = {"none": None, **{name: _Timed(t) for name, t in tracers.items()}}
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
    for name, tracer in variants.items():
        out[name] = {"turn": percentiles(turns[name]), "added_p50_ms": float(np.median(turns[name])) - base}
        if tracer is not None:
            out[name]["record_turn"] = percentiles(tracer.samples_ms[-n:])
    if {"dead_endpoint", "local_only"} <= set(out):
        out["dead_vs_local_p50_ms"] = out["dead_endpoint"]["turn"]["p50_ms"] - out["local_only"]["turn"]["p50_ms"]
    return out
