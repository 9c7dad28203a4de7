"""Assemble a ready DialogueManager from the current artifacts (what the CLI and app.py call)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.dialogue import DialogueManager
from agent.intent import IntentParser
from agent.offline_parser import OfflineParser
from agent.session import SessionStore
from agent.text_vectors import text_vectors
from agent.understand.artifact import load_reader
from agent.settings import Settings
from data import movielens
from models.train import load_bundle
from retrieval.catalog import CatalogIndex
from retrieval.profile_index import ProfileStore

if TYPE_CHECKING:
    from data.event_store import EventStore

log = logging.getLogger(__name__)


def base_profiles(ratings) -> dict[str, dict[int, int]]:
    """MovieLens ratings as profile tables, keyed like resolved users ("196")."""
    return {str(u): dict(zip(g["item_id"].tolist(), g["rating"].tolist())) for u, g in ratings.groupby("user_id")}


def make_parser(data, choice: str = "auto", settings: "Settings | None" = None) -> IntentParser:
    """``offline``, ``llm`` (needs CINEAGENT_LLM_BASE_URL), or ``auto`` (llm when configured).
    ``settings``: where the LLM is (default: read from the environment now)."""
    offline = OfflineParser(data)
    offline.warm_up()  # loads MiniLM now so that no request pays the seconds it takes
    if choice == "offline":
        return offline
    from agent.llm_parser import LLMParser

    settings = (settings or Settings.from_env()).llm()
    if settings is None:
        if choice == "llm":
            raise ValueError("--parser llm needs CINEAGENT_LLM_BASE_URL (and CINEAGENT_LLM_MODEL) to be set")
        return offline
    from agent.prompt_registry import registry

    # the Langfuse "production" prompt when Langfuse is configured, else the repo copy
    parser = LLMParser(data, offline=offline, settings=settings, prompt=registry().get("intent").prompt)
    parser.warm_up()  # the first llama.cpp call evaluates the prompt: ~7 s, close to the timeout
    return parser


def make_writer(parser: IntentParser, enabled: bool = True):
    """With the LLM parser in use, the same endpoint may word replies and reasons (validated, see
    ``agent.reply_writer``); ``enabled=False`` (``CINEAGENT_LLM_REPLIES=0``) keeps the template wording."""
    if parser.name != "llm" or not enabled:
        return None
    from agent.reply_writer import ReplyWriter

    return ReplyWriter(parser.settings, parser.offline.titles)


def champion_artifact(data, database_url: str | None) -> str | None:
    """The artifact version behind the registry's ``champion`` (fetched from MLflow when this
    machine lacks it); None when there is no registry or no champion yet: then the latest
    artifact (``artifacts/CURRENT``) serves, as before the registry."""
    from models import registry

    if not registry.exists(database_url):
        return None
    try:
        reg = registry.Registry(database_url)
        champion = reg.by_alias(registry.CHAMPION)
        if champion is None:
            return None
        from models.lifecycle import local_artifact

        return local_artifact(reg, data, champion)
    except Exception as exc:   # an unreadable registry must not keep the app from serving
        log.warning("model registry unreadable (%s); serving the latest artifact instead", exc)
        return None


def one_thread_per_turn() -> None:
    """Run numpy (OpenBLAS), torch and FAISS single-threaded in this process.

    A turn's matrices are small (1,682 items), so intra-op threads buy nothing, and when the app
    runs several turns at once their spinning worker threads oversubscribe the cores: on 2 cores
    this halved the app's CPU per turn under 20 concurrent users (``cineagent bench load``).
    Concurrency comes from serving several turns at once, not from splitting one.
    """
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # called, not entered: the limit stays for the process
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def load_agent(parser: str = "auto", version: str | None = None, sessions: SessionStore | None = None,
               events: "EventStore | None" = None, settings: "Settings | None" = None) -> DialogueManager:
    """The dialogue manager over the current artifacts. With ``events`` (the app's store), people's
    swipes are read from it; without (offline evaluation), they live in this process.
    ``settings``: the LLM's (default: read from the environment now)."""
    settings = settings or Settings.from_env()
    one_thread_per_turn()
    data = movielens.load()
    bundle = load_bundle(data, version or champion_artifact(data, settings.database_url))
    catalog = CatalogIndex(bundle.item_text_vectors, data.item_ids)

    def swipes_of(user_key: str) -> tuple[dict[int, int], tuple[int, int]]:
        state = events.profile_state(user_key)
        return state.ratings, state.version

    profiles = ProfileStore(bundle.item_text_vectors, data.item_ids, base_profiles(data.ratings),
                            load=swipes_of if events is not None else None)
    from agent.tracing import turn_tracer

    intent_parser = make_parser(data, parser, settings)
    agent = DialogueManager(bundle, intent_parser, catalog, profiles, sessions,
                            tracer=turn_tracer(bundle, intent_parser), writer=make_writer(intent_parser, settings.llm_replies),
                            reader=load_reader(text_vectors()))
    log.info("agent ready: models %s, parser %s", bundle.manifest.version if bundle.manifest else "?",
             agent.parser.name)
    return agent
