"""A running service follows the registry's champion without a restart: promote and rollback
are picked up on its next check (``CINEAGENT_MODEL_CHECK_S``, 30 s by default; called directly
here). Real MLflow (SQLite) and the real models of the test home."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.settings import Settings
from tests.app_server import ensure_artifacts

pytestmark = pytest.mark.integration


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A scratch home whose artifacts are the test home's trained bundle under two names."""
    from models.artifacts import current_version

    test_home = Path(os.environ["CINEAGENT_HOME"])
    ensure_artifacts(test_home)
    trained = current_version()
    home = tmp_path / "home"
    (home / "artifacts").mkdir(parents=True)
    for name in ("data", "cache"):
        (home / name).symlink_to((test_home / name).resolve(), target_is_directory=True)
    for alias in ("A-1", "B-2"):
        (home / "artifacts" / alias).symlink_to((test_home / "artifacts" / trained).resolve(), target_is_directory=True)
    monkeypatch.setenv("CINEAGENT_HOME", str(home))
    return home


def _register(registry, artifact: str) -> str:
    run_id = registry.start_run(f"test {artifact}", {})
    registry.finish(run_id)
    return registry.register(run_id, {"artifact_version": artifact, "eval_artifact_version": artifact})


def test_promote_and_rollback_reach_a_running_service(home):
    from agent.service import CineAgent
    from models import registry as reg
    from models.lifecycle import promote, rollback

    registry = reg.Registry()
    first, second = _register(registry, "A-1"), _register(registry, "B-2")
    registry.set_alias(reg.CHAMPION, first)
    service = CineAgent(Settings(parser="offline", model_check_s=0))
    service.load()
    assert service.model_version == "A-1"
    assert service.check_champion() is False, "nothing changed: nothing reloaded"
    held = service.agent

    promote(registry, second, force=True)
    assert service.check_champion() is True and service.model_version == "B-2"
    assert held.bundle.manifest.version == "A-1", "a request already holding the old agent finishes on it"
    rollback(registry)
    assert service.check_champion() is True and service.model_version == "A-1"
    service.store.close()


def test_canary_serves_the_challenger_to_a_stable_share_of_people(home):
    import asyncio

    from agent.service import CineAgent
    from models import registry as reg

    registry = reg.Registry()
    first, second = _register(registry, "A-1"), _register(registry, "B-2")
    registry.set_alias(reg.CHAMPION, first)
    registry.set_alias(reg.CHALLENGER, second)
    service = CineAgent(Settings(parser="offline", model_check_s=0, canary_fraction=0.3))
    service.load()
    assert service.model_version == "A-1" and service.canary.bundle.manifest.version == "B-2"
    people = [f"viewer{i}" for i in range(200)]
    arms = [service.in_canary(p) for p in people]
    assert 0.2 < sum(arms) / len(arms) < 0.4
    again = CineAgent(Settings(parser="offline", model_check_s=0, canary_fraction=0.3), store=service.store)
    assert [again.in_canary(p) for p in people] == arms, "the same people on every replica"

    async def turns():
        for p in people[:12]:
            await service.chat(p, f"s-{p}", "a funny movie")
    asyncio.run(turns())
    served = {t.user_id: t.model for t in service.store.turns()}
    assert served == {p: ("B-2" if service.in_canary(p) else "A-1") for p in people[:12]}
    assert "B-2" in served.values() and "A-1" in served.values()

    registry.drop_alias(reg.CHALLENGER)
    assert service.check_canary() is True and service.canary is None
    service.store.close()


def test_shadow_ranks_every_turn_with_the_challenger_without_changing_what_people_see(home):
    """Shadow mode: the challenger ranks the same request after the reply (the turn does not wait
    for it), its top-10 is stored with the turn beside the cards shown, and the cards are exactly
    those the service gives with shadow mode off."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from agent.service import CineAgent
    from models import registry as reg

    registry = reg.Registry()
    first, second = _register(registry, "A-1"), _register(registry, "B-2")
    registry.set_alias(reg.CHAMPION, first)
    registry.set_alias(reg.CHALLENGER, second)
    service = CineAgent(Settings(parser="offline", model_check_s=0, shadow=True))
    service.load()
    assert service.model_version == "A-1" and service.shadow.bundle.manifest.version == "B-2"
    assert service.canary is None, "shadow mode serves nobody the challenger"
    # the same artifact under two names: a challenger that ranks differently (more diversity)
    ranker = service.challenger.ranker
    ranker.config = ranker.config.model_copy(update={"mmr_lambda": 0.3})
    # the same loaded champion, shadow mode off
    off = CineAgent(Settings(parser="offline", model_check_s=0), store=service.store)
    off.agent = service.agent

    gate = threading.Event()
    service._shadows = ThreadPoolExecutor(max_workers=1)
    service._shadows.submit(gate.wait)   # the shadow worker is busy: a turn that waited for it would hang

    async def turns():
        on = [await service.chat("196", f"on-{i}", message) for i, message in enumerate(MESSAGES)]
        plain = [await off.chat("196", f"off-{i}", message) for i, message in enumerate(MESSAGES)]
        return on, plain
    on, plain = asyncio.run(turns())
    assert [[c.item_id for c in r.cards] for r in on] == [[c.item_id for c in r.cards] for r in plain]
    assert all(t.shadow is None for t in service.store.turns()), "the replies came before any shadow ranking"
    gate.set()
    service.wait_shadows()

    stored = {t.trace_id: t for t in service.store.turns()}
    for result in on:
        turn = stored[result.trace_id]
        shown = [c.item_id for c in result.cards]
        assert turn.items == shown and turn.model == "A-1"
        assert turn.shadow["model"] == "B-2" and turn.shadow["champion_model"] == "A-1"
        assert turn.shadow["champion"] == shown[:10] and len(turn.shadow["top"]) == len(shown[:10])
        assert set(turn.shadow["ranks"]) == {str(i) for i in shown}
        for item, rank in turn.shadow["ranks"].items():
            assert rank is None or turn.shadow["top"][rank - 1] == int(item)
    assert any(stored[r.trace_id].shadow["top"] != stored[r.trace_id].shadow["champion"] for r in on), \
        "the challenger ranked differently, and that is what was logged"
    for result in plain:
        assert stored[result.trace_id].shadow is None, "shadow mode off: nothing shadowed"
    assert service.shadows_skipped == 0
    service.store.close()


MESSAGES = ["a funny movie", "something darker", "sci-fi from the 80s"]


def test_shadow_comparison_on_a_known_case():
    """The nightly figures of shadow mode: overlap@10 of the two top-10s, and the challenger's rank
    of the cards people liked from shadowed turns."""
    from data.events import Swipe, Turn
    from eval.drift import overlap_at, shadow_comparison

    shown = list(range(1, 11))
    half = Turn(trace_id="t1", user_id="u", session_id="s", items=shown,
                shadow={"model": "B-2", "top": [1, 2, 3, 4, 5, 21, 22, 23, 24, 25], "champion": shown,
                        "ranks": {str(i): (i if i <= 5 else None) for i in shown}})
    same = Turn(trace_id="t2", user_id="u", session_id="s", items=shown,
                shadow={"model": "B-2", "top": shown[::-1], "champion": shown,
                        "ranks": {str(i): 11 - i for i in shown}})
    unshadowed = Turn(trace_id="t3", user_id="u", session_id="s", items=shown)
    swipes = [Swipe(user_id="u", session_id="s", item_id=3, action="like", trace_id="t1"),     # its rank 3
              Swipe(user_id="u", session_id="s", item_id=8, action="like", trace_id="t1"),     # not in its list
              Swipe(user_id="u", session_id="s", item_id=2, action="dislike", trace_id="t1"),  # not a like
              Swipe(user_id="u", session_id="s", item_id=9, action="like", trace_id="t2"),     # its rank 2
              Swipe(user_id="u", session_id="s", item_id=4, action="like", trace_id="t3")]     # not shadowed
    assert overlap_at([1, 2, 3], [3, 4, 5]) == pytest.approx(1 / 3)
    report = shadow_comparison([half, same, unshadowed], swipes)
    row = report["models"]["B-2"]
    assert row["turns"] == 2
    assert row["overlap_at_10"] == pytest.approx(0.75)
    assert row["liked"] == 3 and row["liked_ranks"] == [2, 3]
    assert row["liked_in_top_10"] == pytest.approx(2 / 3)
    assert row["liked_mean_rank"] == pytest.approx(2.5)


def test_the_shadow_ranking_is_a_span_of_the_turns_trace(tmp_path):
    """The shadow span lands under the turn's root span (for Langfuse / OTLP); the local trace
    log, which writes a turn once its root ends, leaves the late span out instead of holding it."""
    from types import SimpleNamespace

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agent.tracing import LocalExporter, Tracing, TracingConfig

    spans = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(trace_log=tmp_path / "traces.jsonl"), exporters=[spans])
    tracer = tracing.turn_tracer("B-2", None)
    result = SimpleNamespace(trace_id="ab" * 16, span_id="cd" * 8, user=SimpleNamespace(key="196"), session_id="s")
    tracer.record_shadow(result, {"model": "B-2", "top": [3, 2, 1], "champion": [1, 2, 3], "ranks": {"1": 3}})
    assert tracing.flush(10)
    (span,) = spans.get_finished_spans()
    assert span.name == "shadow" and span.context.trace_id == int("ab" * 16, 16)
    assert span.parent.span_id == int("cd" * 8, 16)
    assert isinstance(tracing.local, LocalExporter) and not tracing.local._open, "the late span is not held waiting for a root that was written already"
    tracing.shutdown()
