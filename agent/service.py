"""CineAgent's one facade: every entry point (the JSON API, the chat UI, the CLI) calls these.

``chat`` answers a message, ``recommend`` answers a stand-alone request, ``swipe`` / ``undo_swipe``
record and take back likes, ``profile`` shows what is known of a person; people are created,
authenticated, exported and deleted here too. All state is the event store's
(``data.event_store``): a person's swipes are events, their profile is derived from them, their
conversations are stored there, and every turn is recorded as one ``Turn`` event. Nothing a
person did lives only in this process, so any process or replica sharing the store can serve
anyone, and killing one loses nothing it acknowledged.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from agent import metrics
from agent.dialogue import BadRequest, DialogueManager, TurnResult
from agent.settings import Settings
from agent.users import resolve_user
from data.event_store import EventStore, StoreError, open_store
from data.events import Swipe, Turn, TurnStep, make_swipe
from data.people import InvalidToken, Person, is_person_id
from agent.errors import NotReady, UnknownPersona, UnknownTurn

log = logging.getLogger("cineagent.service")


class CineAgent:
    """The agent once loaded, over the event store. ``load`` builds the models (slow: the app runs
    it in a background thread, and ``status`` says loading / ready / failed meanwhile)."""

    def __init__(self, settings: Settings, store: EventStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.database_url, settings.db_pool_size)
        self.store.max_turns = settings.max_turns
        self.store.max_turns_person = settings.max_turns_person
        self.agent: DialogueManager | None = None
        # the registry's challenger, loaded beside the champion when canary or shadow mode is on
        self.challenger: DialogueManager | None = None
        self._shadows: ThreadPoolExecutor | None = None   # shadow mode's one worker (created on first use)
        self._shadows_pending = 0
        self._shadows_lock = threading.Lock()
        self.shadows_skipped = 0
        self.error: str | None = None
        self.created = time.monotonic()
        self.load_seconds: float | None = None
        self._loading = threading.Lock()

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        """Build the agent from the current artifacts; failures are kept for ``status``."""
        from agent.runtime import load_agent

        started = time.monotonic()
        try:
            agent = load_agent(parser=self.settings.parser, sessions=self._sessions(), events=self.store,
                               settings=self.settings)
        except Exception as exc:  # noqa: BLE001 - reported by /healthz and every call
            log.exception("loading the models failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        # everything loaded so far lives as long as the process: moved out of the collector's view,
        # a full collection scans only what turns create (before, it scanned ~600k objects in
        # ~340 ms, timed with gc.callbacks: a pause every in-flight request waited out)
        gc.collect()
        gc.freeze()
        self.load_seconds = time.monotonic() - started   # before `agent`: /healthz reads both
        self.agent = agent
        log.info("serving: models %s, parser %s, store %s, loaded in %.1f s", self.model_version,
                 agent.parser.name, self.store.describe(), self.load_seconds)
        try:
            self.check_canary()
        except Exception as exc:  # noqa: BLE001 - no canary (or shadow) is better than no service
            log.warning("the challenger could not be loaded: %s", exc)
        self._watch_registry()

    # ------------------------------------------------------------ the registry's champion
    def _watch_registry(self) -> None:
        """Every ``model_check_s``, ask the registry which artifact the champion is; when it is not
        the one served, load it beside the current agent and switch (requests in flight finish on
        the old one). So `models promote` / `models rollback` reach every replica without a restart."""
        if self.settings.model_check_s <= 0 or getattr(self, "_watcher", None) is not None:
            return
        from models import registry

        if not registry.exists(self.settings.database_url):
            return
        self._stop_watch = threading.Event()
        self._watcher = threading.Thread(target=self._watch_loop, name="cineagent-registry", daemon=True)
        self._watcher.start()

    def _watch_loop(self) -> None:
        while not self._stop_watch.wait(self.settings.model_check_s):
            try:
                self.check_champion()
                self.check_canary()
            except Exception as exc:  # noqa: BLE001 - the registry down must not stop serving
                log.warning("model registry check failed: %s", exc)

    def _sessions(self):
        """The conversations' store of every agent this process loads (champion, switch, challenger)."""
        from agent.session import SessionStore

        return SessionStore(self.settings.max_sessions, self.settings.session_ttl_s, store=self.store,
                            max_per_person=self.settings.max_sessions_person)

    def _load_version(self, artifact: str) -> DialogueManager:
        from agent.runtime import load_agent

        return load_agent(parser=self.settings.parser, version=artifact, sessions=self._sessions(), events=self.store,
                          settings=self.settings)

    @property
    def canary(self) -> DialogueManager | None:
        """The challenger while it serves a share of people (canary mode), else None."""
        return self.challenger if self.settings.canary_fraction > 0 else None

    @property
    def shadow(self) -> DialogueManager | None:
        """The challenger while it ranks every turn in the shadow (shadow mode), else None."""
        return self.challenger if self.settings.shadow else None

    def check_canary(self) -> bool:
        """With ``canary_fraction`` > 0 (canary mode) or ``shadow`` on, load the registry's
        challenger beside the champion (dropped when there is no challenger). True when it changed."""
        if self.settings.canary_fraction <= 0 and not self.settings.shadow:
            return False
        from models.registry import CHALLENGER, Registry, exists

        if not exists(self.settings.database_url):
            return False
        reg = Registry(self.settings.database_url)
        challenger = reg.by_alias(CHALLENGER)
        artifact = challenger.tags.get("artifact_version") if challenger is not None else None
        current = self.challenger.bundle.manifest.version if self.challenger is not None else None
        if artifact == current:
            return False
        if artifact is None:
            self.challenger = None
            log.info("no challenger any more: everyone is served the champion, nothing is shadowed")
            return True
        from data import movielens
        from models.lifecycle import local_artifact

        self.challenger = self._load_version(local_artifact(reg, movielens.load(), challenger))
        log.info("challenger %s (registry version %s) loaded: serves %.0f%% of people%s", artifact,
                 challenger.version, 100 * self.settings.canary_fraction,
                 "; shadows every turn" if self.settings.shadow else "")
        return True

    def in_canary(self, user_key: str) -> bool:
        """Whether this person is in the canary arm: a stable hash of their key, so the same
        people every time, on every replica."""
        import hashlib

        digest = int.from_bytes(hashlib.sha256(f"canary:{user_key}".encode()).digest()[:8], "big")
        return digest / 2**64 < self.settings.canary_fraction

    def _agent_for(self, user: object) -> DialogueManager:
        agent = self.require()
        canary = self.canary
        if canary is None:
            return agent
        try:
            key = resolve_user(user, agent.data).key
        except Exception:  # noqa: BLE001 - the champion's agent says what is wrong with the user
            return agent
        return canary if self.in_canary(key) else agent

    def check_champion(self) -> bool:
        """Switch to the registry's champion when it is not what serves; True when it switched."""
        from models.registry import champion_state

        state = champion_state(self.settings.database_url)
        if state is None or not state[1] or state[1] == self.model_version:
            return False
        started = time.monotonic()
        from data import movielens
        from models.lifecycle import local_artifact
        from models.registry import CHAMPION, Registry

        reg = Registry(self.settings.database_url)
        agent = self._load_version(local_artifact(reg, movielens.load(), reg.by_alias(CHAMPION)))
        previous, self.agent = self.model_version, agent
        log.info("serving: switched models %s -> %s (registry version %s) in %.1f s", previous, self.model_version,
                 state[0], time.monotonic() - started)
        return True

    @property
    def status(self) -> str:
        return "ready" if self.agent is not None else "failed" if self.error else "loading"

    @property
    def model_version(self) -> str | None:
        manifest = self.agent.bundle.manifest if self.agent else None
        return manifest.version if manifest else None

    def require(self) -> DialogueManager:
        if self.agent is None:
            raise NotReady(f"the models failed to load ({self.error}); run `cineagent train`, then restart"
                           if self.error else "the models are still loading; retry in a few seconds")
        return self.agent

    # ------------------------------------------------------------ turns
    async def chat(self, user: object, session_id: str, message: str, channel: str = "api") -> TurnResult:
        """One turn. Its ``Turn`` event is stored with the conversation, in one transaction; a
        refused turn is recorded too, with its error, when the store can take it."""
        wall = datetime.now(timezone.utc)
        try:
            agent = self._agent_for(user)   # the champion's, or the challenger's for a canary person
            model = agent.bundle.manifest.version if agent.bundle.manifest else None
            result = await agent.chat(user, session_id, message,
                                      record=lambda done: turn_event(done, channel, wall, model))
        except Exception as exc:
            self._record_refused(user, session_id, message, channel, wall, exc)
            raise
        metrics.observe_turn(len(result.cards), result.parse.fallback_reason if result.parse else None)
        if self.settings.shadow and result.asked is not None:
            self._queue_shadow(agent, result)
        return result

    # ------------------------------------------------------------ shadow mode
    def _queue_shadow(self, served: DialogueManager, result: TurnResult) -> None:
        """After the reply: the challenger ranks the same request on shadow mode's own worker
        thread; the turn does not wait for it. Shed (and counted) beyond SHADOW_QUEUE waiting."""
        challenger = self.shadow
        if challenger is None or challenger is served:   # a canary person's cards are the challenger's already
            return
        with self._shadows_lock:
            if self._shadows_pending >= SHADOW_QUEUE:
                self.shadows_skipped += 1
                return
            if self._shadows is None:
                self._shadows = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cineagent-shadow")
            self._shadows_pending += 1
        self._shadows.submit(self._run_shadow, served, challenger, result)

    def _run_shadow(self, served: DialogueManager, challenger: DialogueManager, result: TurnResult) -> dict | None:
        try:
            shadow = shadow_ranking(served, challenger, result)
            self.store.add_shadow(result.trace_id, result.user.key, shadow)
            if challenger.tracer is not None and hasattr(challenger.tracer, "record_shadow"):
                challenger.tracer.record_shadow(result, shadow)
            return shadow
        except Exception:  # noqa: BLE001 - the shadow must never touch what people get
            log.exception("shadow ranking of turn %s failed", result.trace_id)
            return None
        finally:
            with self._shadows_lock:
                self._shadows_pending -= 1

    def wait_shadows(self) -> None:
        """Until every queued shadow ranking is stored (tests, benchmarks, shutdown)."""
        if self._shadows is not None:
            self._shadows.submit(lambda: None).result()

    def _record_refused(self, user: object, session_id: str, message: str, channel: str, wall: datetime,
                        exc: Exception) -> None:
        try:
            self.store.add_turn(Turn(trace_id=uuid.uuid4().hex, ts=wall, user_id=str(user)[:64] or "?",
                                     session_id=str(session_id)[:128] or "?", channel=channel,
                                     message=str(message)[:200].encode("utf-8", "replace").decode("utf-8"),
                                     outcome=f"{type(exc).__name__}: {exc}"[:500],
                                     total_ms=(datetime.now(timezone.utc) - wall).total_seconds() * 1000))
        except (StoreError, ValueError) as failed:  # the person hears of the first error, not of this one
            log.warning("a refused turn could not be recorded: %s", failed)

    async def recommend(self, user: object, query: str, n: int | None = None, channel: str = "api") -> TurnResult:
        """One stand-alone request in a session of its own, which is not kept."""
        result = await self.chat(user, f"recommend-{uuid.uuid4().hex}", query, channel)
        # a one-off request: its session must not push live conversations out of the bounded store
        self._agent_for(user).sessions.discard(result.session_id, result.user.key)
        if n is not None:
            result.cards = result.cards[:n]
        return result

    def recent_turns(self) -> list[Turn]:
        """The latest turns, newest first (the operator's Traces tab)."""
        return list(reversed(self.store.turns(latest=self.settings.recent_turns)))

    # ------------------------------------------------------------ swipes
    def swipe(self, user: object, session_id: str, item_id: int, action: str, trace_id: str | None = None,
              rank: int | None = None, query: str | None = None) -> Swipe:
        """Record a like/dislike durably; the person's next turn, on any replica, is ranked with it.

        A ``trace_id`` must be a turn that showed this card to this person (else UnknownTurn):
        only then is the swipe scored on that trace."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        if item_id not in agent.data.movies:
            raise BadRequest(f"item {item_id} is not in the catalog (MovieLens item ids "
                             f"{min(agent.data.movies)}-{max(agent.data.movies)})")
        if trace_id is not None and item_id not in (self.store.shown(trace_id, person.key) or ()):
            raise UnknownTurn(trace_id, item_id)
        swipe = make_swipe(user_id=person.key, session_id=session_id, item_id=item_id, action=action,
                           trace_id=trace_id, rank=rank, query=query)
        # one transaction, refused if the person was deleted meanwhile (then nothing is left behind);
        # the same swipe again (a retry whose first answer was lost) is the stored one, not a new event
        _, stored = self.store.record_swipe(swipe)
        if stored is not None:
            return stored
        self._refresh(agent, person.key)
        if agent.tracer and trace_id:
            agent.tracer.record_feedback(trace_id, person, int(item_id), action == "like")
        metrics.observe_feedback(action)
        return swipe

    def undo_swipe(self, user: object, item_id: int) -> str | None:
        """Take back the person's swipe on ``item_id``. Returns the action undone, or None when
        there was none (an undo is idempotent)."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        if is_person_id(person.key) and self.store.person(person.key) is None:
            raise InvalidToken()
        action = self.store.undo_swipe(person.key, item_id)
        self._refresh(agent, person.key)
        if action is not None:
            metrics.observe_feedback(f"undo_{action}")
        return action

    @staticmethod
    def _refresh(agent: DialogueManager, user_key: str) -> None:
        """After a committed change: this process's view of the person, now if the store answers,
        else on their next turn (which reads it anyway). Never reported as a failure: the change
        itself was saved."""
        try:
            agent.profiles.refresh(user_key)
        except StoreError as exc:
            log.warning("profile refresh after a saved swipe failed (the next turn reads it): %s", exc)

    def profile(self, user: object) -> dict:
        """The person's own ratings and swipes, with titles."""
        agent = self.require()
        person = resolve_user(user, agent.data)
        agent.profiles.refresh(person.key)
        swipes = agent.profiles.swipes(person.key)
        disliked = agent.profiles.disliked(person.key)
        ratings = agent.profiles.ratings(person.key)
        items = [{"item_id": i, "title": agent.data.movies[i].title, "year": agent.data.movies[i].year, "rating": r,
                  "source": "swipe" if i in swipes else "movielens",
                  "swipe": ("dislike" if i in disliked else "like") if i in swipes else None}
                 for i, r in sorted(ratings.items()) if i in agent.data.movies]
        seed = agent.profiles.seeded_from(person.key)
        return {"user_id": person.key, "known": person.known, "seed_from": int(seed) if seed else None,
                "ratings": items, "likes": sorted(i for i in swipes if i not in disliked), "dislikes": sorted(disliked)}

    # ------------------------------------------------------------ people
    def create_person(self, name: str | None, seed_from: int | None) -> tuple[Person, str]:
        agent = self.require()
        if seed_from is not None and seed_from not in agent.data.user_id_set:
            ids = agent.data.user_id_set
            raise UnknownPersona(f"seed_from: {seed_from} is not a MovieLens user ({min(ids)}-{max(ids)}); "
                                 "leave it out to start from scratch")
        person, token = self.store.create_person(name, seed_from)
        self._seed(person)
        return person, token

    def authenticate(self, token: str) -> Person:
        """The person holding ``token`` (raises InvalidToken), their persona seed in place."""
        person = self.store.authenticate(token)
        self._seed(person)
        return person

    def _seed(self, person: Person) -> None:
        # every process learns a person's persona from their record, on each authenticated call
        if person.seed_from is not None:
            for agent in (self.agent, self.challenger):
                if agent is not None:
                    agent.profiles.seed(person.id, str(person.seed_from))

    def export(self, person: Person) -> dict:
        """Everything held about the person: who they are, their swipes, profile, conversations,
        turns, and those turns' records in the trace log."""
        from agent.tracing import TracingConfig, person_traces

        stored = self.store.export_person(person.id)
        # through the trace log's index: their own lines only, never the whole log
        traces = person_traces(person.id, backups=TracingConfig.from_env().trace_log_backups)
        return {**stored, "profile": self.profile(person.id), "traces": traces}

    def delete(self, person: Person) -> dict:
        """Forget the person: record, token, swipes, conversations and turns in one transaction,
        then this process's caches. The trace log keeps their turns under the random person id
        only, which nothing maps to a person any more."""
        removed = self.store.delete_person(person.id)
        for agent in (self.agent, self.challenger):
            if agent is not None:
                agent.forget(person.id)
        return {"swipes": removed["swipes"], "sessions": removed["sessions"], "turns": removed["turns"],
                "profile": bool(removed["swipes"])}


SHADOW_QUEUE = 256     # shadow rankings waiting at most; beyond, turns go unshadowed (counted)


def shadow_ranking(served: DialogueManager, challenger: DialogueManager, result: TurnResult) -> dict:
    """The challenger's ranking of the very request a turn's cards answered (same filters, same
    count): its top-10 beside the champion's (the cards shown), and its rank of each shown card
    (None: not in its list). The person's swipes are read into the challenger's view first."""
    asked = result.asked or {}
    started = time.perf_counter()
    user = result.user
    challenger.profiles.refresh(user.key)
    ranking = challenger.ranker.rank(user, asked["intent"], asked["query"], n=asked["n"],
                                     exclude=set(asked["exclude"]), query_text=asked["query_text"],
                                     shown=asked["shown"], avoid=asked["avoid"], told=asked["told"])
    order = [r.item_id for r in ranking.items]
    position = {item: i + 1 for i, item in enumerate(order)}
    shown = [c.item_id for c in result.cards]
    return {"model": challenger.bundle.manifest.version if challenger.bundle.manifest else None,
            "champion_model": served.bundle.manifest.version if served.bundle.manifest else None,
            "top": order[:10], "champion": shown[:10], "ranks": {str(i): position.get(i) for i in shown},
            "ms": round((time.perf_counter() - started) * 1000, 2)}


def turn_event(result: TurnResult, channel: str, ts: datetime, model: str | None = None) -> Turn:
    return Turn(trace_id=result.trace_id, ts=ts, user_id=result.user.key, session_id=result.session_id, model=model,
                channel=channel, message=result.message[:2000], act=result.act,
                parser=result.parse.parser if result.parse else None,
                fallback_reason=result.parse.fallback_reason if result.parse else None,
                parsed=result.parse.intent.model_dump(mode="json") if result.parse else None,
                intent=result.intent.model_dump(mode="json"), items=[c.item_id for c in result.cards],
                sources=[dict(c.evidence.get("sources") or {}) for c in result.cards],
                unused=[u.model_dump() for u in result.unused],
                steps=[TurnStep(name=s.name, kind=s.kind, duration_ms=round(s.duration_ms, 2), error=s.error)
                       for s in result.steps], total_ms=round(result.duration_ms, 2))
