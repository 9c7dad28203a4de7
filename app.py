"""CineAgent's web entry point, wiring only: the settings, the agent's facade over the event store,
the JSON API (``web.api``) and the Gradio chat UI at ``/`` (``web.ui``).

``cineagent serve`` (or ``python app.py``) runs ``app:app`` with uvicorn, in ``--workers N``
processes if asked; replicas on several hosts share state through PostgreSQL
(``CINEAGENT_DATABASE_URL``). Models load once per process, in a background thread started by
the app's lifespan: ``/healthz`` says ``loading`` (503) until they are ready, then ``ready``.
Configuration is ``agent.settings.Settings`` (``CINEAGENT_*`` variables), plus the operator
credential (``web.auth``) and abuse limits (``web.limits``).
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a local service
# Turns run on the server's worker threads, and OpenMP (FAISS, torch) gives every new thread the
# process default, read once when the library loads: omp_set_num_threads in agent.runtime reaches
# only the thread that calls it. Left at 2, each search woke a spinning OpenMP helper thread that
# burnt as much CPU as the turn itself (the app CPU per turn that `cineagent bench load` prints).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from fastapi import FastAPI

from agent.settings import Settings
from web.api import Runtime, build_api
from web.ui import mount as mount_ui


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = Runtime(settings or Settings.from_env())
    api = mount_ui(build_api(runtime), runtime)
    # the mounted Gradio app's Blocks: web.limits.QueueGuard checks joins against its events
    runtime.ui_blocks = next(route.app.get_blocks() for route in api.routes
                             if hasattr(getattr(route, "app", None), "get_blocks"))
    return api


app = create_app()

if __name__ == "__main__":
    from cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
