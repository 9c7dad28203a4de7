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
