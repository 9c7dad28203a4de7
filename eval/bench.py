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


def bench_turn(service, n: int = 500) -> dict[str, float]:
    """Warm chat turns through the facade (``agent.service.CineAgent``: the person's swipes and the
    conversation read from the event store, the conversation and a Turn event written back), with
    the gold set's utterances, spread over known and new users."""
    import asyncio

    from data import GOLD_SET
    from eval.gold import load_cases

    messages = [c["utterance"] for c in load_cases(GOLD_SET) if c["utterance"].strip()]
    users = ["196", "42", "7", "ana", "ben"]
    loop = asyncio.new_event_loop()

    def one(i: int) -> None:
        loop.run_until_complete(service.chat(users[i % len(users)], f"bench-{i % 37}", messages[i % len(messages)]))

    try:
        return time_calls(one, n, warmup=30)
    finally:
        loop.close()


def bench_embed(n: int = 30) -> dict[str, dict[str, float]]:
    """One unseen phrase embedded by ``retrieval.embeddings.embed`` (traced MiniLM) and by eager
    sentence-transformers, each alone and in a worker thread while another Python thread is busy
    (what a phrase embedded off the event loop meets under load: the loop running turns). One
    intra-op thread, as the app runs."""
    import threading

    from agent.runtime import one_thread_per_turn
    from retrieval.embeddings import _model, embed

    one_thread_per_turn()
    model = _model()

    def eager(texts):
        return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def busy(stop: threading.Event) -> None:
        while not stop.is_set():
            sum(range(1000))  # pure Python: lets go of the GIL only when the switch interval forces it

    results = {}
    for name, fn in (("traced", embed), ("eager", eager)):
        fn(["warm up"])
        results[f"{name}, alone"] = time_calls(lambda i: fn([f"an unseen phrase number {i} alone"]), n, warmup=3)
        stop = threading.Event()
        worker = threading.Thread(target=busy, args=(stop,), daemon=True)
        worker.start()
        try:
            # fewer calls: eager PyTorch takes ~0.3-0.8 s a phrase here
            results[f"{name}, beside a busy thread"] = time_calls(
                lambda i: fn([f"an unseen phrase number {i} with company"]), max(3, n // 5), warmup=1)
        finally:
            stop.set()
            worker.join()
    return results


def bench_memory(service, people: int = 10_000, turn_every: int = 10) -> dict[str, float]:
    """Resident memory of the serving process as ``people`` new people each swipe once through the
    facade (``agent.service.CineAgent``, its event store included), and every ``turn_every``-th
    asks for something, so their scores are computed and cached: what grows with the number of
    people. RSS from /proc (MiB), after a garbage collection."""
    import gc
    import uuid

    def rss_mib() -> float:
        gc.collect()
        with open("/proc/self/status") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        return kb / 1024

    agent = service.require()
    items = agent.data.item_ids
    agent.turn("bench-warm", "warm", "a comedy")
    before = rss_mib()
    started = time.perf_counter()
    for k in range(people):
        name = f"mem-{uuid.uuid4().hex[:20]}"
        service.swipe(name, "s", int(items[k % len(items)]), "like" if k % 3 else "dislike")
        if turn_every and k % turn_every == 0:
            agent.turn(name, "s", "something like that one")
    after = rss_mib()
    return {"people": people, "rss_before_mib": round(before, 1), "rss_after_mib": round(after, 1),
            "growth_mib": round(after - before, 1), "seconds": round(time.perf_counter() - started, 1)}
