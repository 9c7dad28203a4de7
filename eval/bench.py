"""Latency benchmarks: repeat an operation, report p50/p95/p99 in milliseconds."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {"n": int(arr.size), "p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "p99_ms": float(np.percentile(arr, 99)), "mean_ms": float(arr.mean()), "max_ms": float(arr.max())}


def time_calls(fn: Callable[[int], object], n: int, warmup: int = 20) -> dict[str, float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``n`` times timed."""
    for i in range(warmup):
        fn(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000.0)
    return percentiles(samples)


def bench_score(bundle, n: int = 1000, k: int = 10) -> dict[str, float]:
    """Top-``k`` for known users from loaded models (fusion over all sources)."""
    users = bundle.fusion.sources["svd"].user_ids
    return time_calls(lambda i: bundle.fusion.recommend(users[i % len(users)], k), n)


def bench_turn(agent, n: int = 500) -> dict[str, float]:
    """Warm chat turns with the gold set's utterances, spread over known and new users."""
    from data import GOLD_SET
    from eval.gold import load_cases

    messages = [c["utterance"] for c in load_cases(GOLD_SET) if c["utterance"].strip()]
    users = ["196", "42", "7", "ana", "ben"]

    def one(i: int) -> None:
        agent.turn(users[i % len(users)], f"bench-{i % 37}", messages[i % len(messages)])

    return time_calls(one, n, warmup=30)
