"""The real app for integration and browser tests: ``cineagent serve`` as a subprocess.

``running_app(tmp)`` trains models into the test home once (``cineagent train --if-missing``:
minutes on a fresh machine, nothing after), then serves them from a scratch state directory under
``tmp`` (so its event store starts empty for each test module) on a free 127.0.0.1
port, with the offline parser, and yields the ready ``AppProcess``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from eval.load_test import REPO, AppProcess, scratch_home
from web.limits import limits_off_env

TRAIN_TIMEOUT_S = 1200  # a cold train on a busy 2-core machine; a warm one returns at once


def ensure_artifacts(test_home: Path) -> None:
    """Train into ``test_home`` unless a valid artifact for its data is already there."""
    from tests.conftest import one_at_a_time

    env = {**os.environ, "CINEAGENT_HOME": str(test_home)}
    with one_at_a_time("train-cli"):   # two test processes: one trains, the other then finds the artifact
        done = subprocess.run([sys.executable, "-m", "cli", "train", "--if-missing"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"`cineagent train --if-missing` failed ({done.returncode}):\n{done.stderr[-4000:]}")


@contextmanager
def running_app(tmp: Path, env: dict[str, str] | None = None, wait: bool = True) -> Iterator[AppProcess]:
    """A started app over the test home's models; ``wait=False`` yields before /healthz is 200."""
    test_home = Path(os.environ["CINEAGENT_HOME"])  # set by tests/conftest.py
    ensure_artifacts(test_home)
    state = scratch_home(Path(tmp) / "home", test_home)
    # tests send requests far faster than a person: limits are off unless a test turns them on
    with AppProcess(state, env={"CINEAGENT_PARSER": "offline", **limits_off_env(), **(env or {})}) as app:
        if wait:
            app.wait_ready()
        yield app

