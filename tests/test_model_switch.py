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
