"""The chat UI (Gradio): one conversation with the cards inside it, swipes, undo, people, Traces.

The conversation is one ``gr.HTML`` (``#conversation``) rendered here from turns the browser keeps
(``gr.BrowserState``, so a reload finds it again); its script (``web/static/chat.js``) turns
clicks, keys and touch swipes on a card into the component's custom ``swipe`` event, handled by
``ui_swipe`` with the person's token like every other event. A card's liked/disliked look comes
from the person's profile each time the conversation is drawn, so every copy of a card, in any
turn, shows the person's current swipe. The script shows the swipe at once and the answer of
``ui_swipe`` settles it (``#swipe-status``); a chat turn never waits for a swipe, nor a swipe for
a turn.

A message shows at once with a typing indicator (``#pending``, drawn by the script). With an LLM
wording replies (``agent.reply_writer``), the reply streams: ``ui_chat`` yields each draft of it to
``#reply-draft`` and the script shows it growing in place of the indicator; the finished turn,
with its cards, then replaces the draft with the reply as checked (the template's reply when the
validator rejected the LLM's words).

What a person sees is in plain words; model names, ranks, scores, the parser and the model version
are the operator's, in the Traces tab (shown to the operator only, and checked on every call).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import OrderedDict, deque
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

import gradio as gr

from agent import metrics
from agent.dialogue import MAX_MESSAGE_CHARS, BadRequest
from agent.errors import NotReady
from data.errors import CineAgentError
from data.event_store import ConversationMoved, StoreError
from data.people import InvalidToken, Person
from web.errors import status_of
from web.limits import RateLimited
from web.render import (MAX_TURNS_KEPT, data_summary, deletion_list, render_conversation, render_data,
                         render_welcome, shown_card, swiped_items)

if TYPE_CHECKING:
    from web.api import Runtime

STATIC = Path(__file__).resolve().parent / "static"
CHAT_JS = (STATIC / "chat.js").read_text().replace("__MAX_CHARS__", str(MAX_MESSAGE_CHARS))
CSS = (STATIC / "chat.css").read_text()
HEAD = f"<style>{(STATIC / 'page.css').read_text()}</style>"

PERSON_KEY = "cineagent-person"
# Gradio encrypts BrowserState with this in the page itself: it only keeps the value from being
# plain text in local storage. What protects the token is the browser's same-origin rule, as for
# any bearer token kept by a web page. Fixed, so a visitor stays the same person across restarts.
PERSON_STORAGE_SECRET = "cineagent-person-v1"
# the conversation as shown (no scores, no evidence beyond the sentences), for a reload
CHAT_KEY = "cineagent-chat"
CHAT_STORAGE_SECRET = "cineagent-chat-v1"

TURN_COLUMNS = ["time", "trace_id", "channel", "user", "message", "act", "parser", "items", "total_ms", "outcome"]
STEP_COLUMNS = ["trace_id", "step", "kind", "duration_ms", "error"]
PICK_COLUMNS = ["trace_id", "rank", "item_id", "title", "score", "sources (rank)", "models"]
PICKS_KEPT = 200   # UI turns whose picks the operator can inspect

PEOPLE_ERRORS = CineAgentError  # shown to the person, never a crash

FRESH = "Start from scratch (no history)"
PERSONA_NOTE = ("**What is this?** The recommender learned from 100,000 ratings by 943 anonymous film fans "
                "(the MovieLens collection, up to 1998). Starting from one of them copies their ratings into a "
                "new profile of your own, so your very first picks are personal; your likes and dislikes then "
                "change only your copy, never theirs. Starting over gives you a new profile and a new "
                "conversation; the old profile, its swipes and conversations are deleted.")


def plain_error(exc: Exception) -> str:
    """An error in a person's words (the detail for a developer is in the logs and traces)."""
    if isinstance(exc, NotReady):
        return "the recommender is still getting ready; try again in a few seconds"
    if isinstance(exc, RateLimited):
        return f"that was a lot at once; try again in {exc.retry_after_s} s"
    if isinstance(exc, ConversationMoved):
        return "another message of yours to this chat arrived at the same moment; send this one again"
    if isinstance(exc, StoreError):
        return "we could not save that just now; nothing was changed, try again in a moment"
    if isinstance(exc, InvalidToken):
        return "this browser's profile is no longer valid; reload the page to start a new one"
    return str(exc)


@contextmanager
def observed(endpoint: str) -> Iterator[dict]:
    """Count and time a UI action like an API request; the block sets ``outcome["status"]`` (500 if it raises)."""
    outcome, started = {"status": 500}, time.perf_counter()
    try:
        yield outcome
    finally:
        metrics.observe_request(endpoint, outcome["status"], time.perf_counter() - started)


# ---------------------------------------------------------------------------------------- people
_TASTES: dict[int, str] = {}   # persona -> their taste in words (the same for the life of the process)


def persona_taste(runtime: "Runtime", seed: int) -> str:
    """A persona's taste in plain words ("loves horror and sci-fi"), never their number."""
    if seed not in _TASTES:
        from data.personas import describe

        _TASTES[seed] = describe(runtime.require().data, seed).taste()
    return _TASTES[seed]


def describe_person(runtime: "Runtime", person: Person | None) -> str:
    if person is None:
        return "You're a **new visitor**: your first message starts your own private profile, kept in this browser."
    agent = runtime.require()
    rated = len(agent.profiles.ratings(person.id))
    origin = (f"started from the taste of a film fan who {persona_taste(runtime, person.seed_from)}"
              if person.seed_from else "started from scratch")
    return f"Your private profile, {origin}: **{rated}** {'rating or swipe' if rated == 1 else 'ratings and swipes'}"


def ui_person(runtime: "Runtime", stored: dict | None, request: gr.Request | None, create: bool = True
              ) -> tuple[Person | None, dict | None]:
    """The person whose token this browser keeps; a new one (unseeded) when it keeps none or a
    token that no longer works (deleted, or another server's), if ``create``."""
    token = stored.get("token") if isinstance(stored, dict) else None
    if isinstance(token, str):
        try:
            return runtime.authenticate(token), stored
        except InvalidToken:
            pass
    if not create:
        return None, None
    person, token = runtime.create_person(None, None, ui_client(request))
    return person, {"token": token, "user_id": person.id}


def ui_client(request: gr.Request | None) -> str:
    client = getattr(request, "client", None) if request is not None else None
    return getattr(client, "host", None) or "unknown"


def is_operator(runtime: "Runtime", request: gr.Request | None) -> bool:
    return request is not None and runtime.operator.is_operator(dict(request.headers), dict(request.cookies))


# ---------------------------------------------------------------------------------------- conversation
def chat_of(stored: Any, person: Person | None) -> dict | None:
    """The browser's conversation if it is this person's, else None. It comes from the browser:
    only its shape is trusted, and everything in it is escaped when drawn."""
    if person is None or not isinstance(stored, dict) or stored.get("user_id") != person.id:
        return None
    turns = stored.get("turns")
    session = stored.get("session_id")
    if not isinstance(turns, list) or not isinstance(session, str) or not 0 < len(session) <= 64:
        return None
    return {"user_id": person.id, "session_id": session,
            "turns": [t for t in turns[-MAX_TURNS_KEPT:] if _well_formed(t)]}


def _well_formed(turn: Any) -> bool:
    """A turn as ``ui_chat`` stored it (anything else in the browser's storage is dropped)."""
    if not isinstance(turn, dict) or not isinstance(turn.get("trace_id"), str) or not isinstance(turn.get("cards"), list):
        return False
    return all(isinstance(c, dict) and isinstance(c.get("item_id"), int) and isinstance(c.get("title"), str)
               and isinstance(c.get("genres", []), list) and isinstance(c.get("why", []), list)
               for c in turn["cards"])


def conversation_html(runtime: "Runtime", person: Person | None, chat: dict | None) -> str:
    if person is None or chat is None:
        return render_welcome()
    return render_conversation(chat["turns"], swiped_items(runtime.require().profiles.swipes(person.id)))


def failed_html(message: str, exc: Exception) -> str:
    """Beside the message box: what went wrong; ``data-failed`` lets the script put the message
    back in the box (unless something new was typed there meanwhile)."""
    return (f'<p class="chat-error" data-failed="{escape(message)}" data-seq="{time.time_ns()}">'
            f"<strong>Not sent:</strong> {escape(plain_error(exc))}. Your message is kept in the box.</p>")


class AnsweredTurns:
    """The turns this process drew for each conversation lately, so that answers to messages sent
    before the last one was drawn are all kept: each answer is drawn over the conversation as the
    browser had it when its message left, which lacks the answers that arrived meanwhile."""

    def __init__(self, conversations: int = 2000) -> None:
        self._recent: OrderedDict[tuple[str, str], list[dict]] = OrderedDict()
        self._size = conversations

    def add(self, person: str, session: str, shown: list[dict], new: dict) -> list[dict]:
        """The conversation with ``new`` added: the browser's copy, then the answers drawn since it
        was sent (oldest first), then ``new``; the last ``MAX_TURNS_KEPT``."""
        key = (person, session)
        had = {t.get("trace_id") for t in shown}
        turns = [*shown, *(t for t in self._recent.get(key, []) if t.get("trace_id") not in had), new]
        self._recent[key] = turns = turns[-MAX_TURNS_KEPT:]
        self._recent.move_to_end(key)
        while len(self._recent) > self._size:
            self._recent.popitem(last=False)
        return turns

    def forget(self, person: str) -> None:
        for key in [k for k in self._recent if k[0] == person]:
            del self._recent[key]


ANSWERED = AnsweredTurns()


class PickLog:
    """The operator's view of what UI turns showed: scores and the models that ranked each pick,
    and the reply as sent (the event store keeps the cards, not the scores or the words)."""

    def __init__(self, size: int = PICKS_KEPT) -> None:
        self._turns: deque[list[list]] = deque(maxlen=size)
        self._replies: dict[str, str] = {}

    def add(self, trace_id: str, cards: list[dict], model_version: str | None, reply: str | None = None) -> None:
        self._turns.append([[trace_id[:12], rank, c["item_id"], c["title"], round(float(c["score"]), 4),
                             ", ".join(f"{n} #{r}" for n, r in (c.get("evidence", {}).get("sources") or {}).items()),
                             model_version or ""] for rank, c in enumerate(cards, 1)])
        if reply is not None:
            self._replies[trace_id] = reply
            while len(self._replies) > self._turns.maxlen:
                self._replies.pop(next(iter(self._replies)))

    def rows(self) -> list[list]:
        return [row for turn in reversed(self._turns) for row in turn]

    def of(self, trace_id: str) -> tuple[dict[int, float], str | None]:
        """(item -> score, the reply) of one UI turn, as far as this process saw it."""
        rows = next((t for t in self._turns if t and t[0][0] == trace_id[:12]), [])
        return {row[2]: row[4] for row in rows}, self._replies.get(trace_id)


# ---------------------------------------------------------------------------------------- events
def ui_load(runtime: "Runtime", stored: dict | None, chat: Any, request: gr.Request):
    """On page load: who this browser is, its conversation, and the Traces tab for an operator only."""
    try:
        person = ui_person(runtime, stored, request, create=False)[0]
        who, html = describe_person(runtime, person), conversation_html(runtime, person, chat_of(chat, person))
    except NotReady:
        who, html = LOADING, render_welcome()
    return who, html, gr.Tab(visible=is_operator(runtime, request))


async def ui_chat(runtime: "Runtime", picks: PickLog, stored: dict | None, chat: Any, message: str,
                  request: gr.Request):
    """One message -> (conversation, its browser copy, person, who, error beside the box, draft).

    A generator: with an LLM wording replies, each draft of the reply as it streams goes to
    ``#reply-draft`` (the script shows it in the message's pending bubble, in place of the typing
    indicator); the last update draws the turn as the agent finished it (the validated reply, or
    the template's when the check rejected the LLM's words) with its cards, and the pending bubble
    and its draft go. Without an LLM there are no drafts: one update, as before.

    An empty message does nothing at all; a failed one leaves the conversation as it was and the
    message in the box, with the reason beside it."""
    message = message if isinstance(message, str) else ""
    if not message.strip():
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return
    with observed("ui/chat") as outcome:
        try:
            if len(message) > MAX_MESSAGE_CHARS:   # said, never cut: the box takes a longer paste
                raise BadRequest(f"your message is {len(message):,} characters long; messages can be up to "
                                 f"{MAX_MESSAGE_CHARS:,}, so please shorten it")
            person, stored = ui_person(runtime, stored, request)
            runtime.limits.turn(person.id, ui_client(request))
            kept = chat_of(chat, person) or {"user_id": person.id, "session_id": uuid.uuid4().hex, "turns": []}
            drafts: asyncio.Queue[str] = asyncio.Queue()
            with listening(runtime, drafts.put_nowait):  # the turn's task starts in this context: it streams here
                turn = asyncio.ensure_future(runtime.chat(person.id, kept["session_id"], message, channel="ui"))
            async for draft in _drafts_until(turn, drafts):
                yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), draft_html(message, draft)
            result = turn.result()
            cards = [c.as_dict() for c in result.cards]
            picks.add(result.trace_id, cards, runtime.model_version, result.text)
            liked = [i for i, state in swiped_items(runtime.require().profiles.swipes(person.id)).items()
                     if state == "like"]
            shown = [shown_card(c, liked, seeded=person.seed_from is not None) for c in cards]
            new = {"trace_id": result.trace_id, "message": message, "text": result.text,
                   "notices": list(result.notices), "cards": shown}
            kept["turns"] = ANSWERED.add(person.id, kept["session_id"], kept["turns"], new)
            outcome["status"] = 200
            yield (conversation_html(runtime, person, kept), kept, stored, describe_person(runtime, person), "", "")
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), failed_html(message, exc), ""


def listening(runtime: "Runtime", callback) -> AbstractContextManager:
    """Drafts of the reply to ``callback`` where an LLM words replies (else nothing streams, and
    the LLM's modules are not imported for it)."""
    if getattr(runtime.require(), "writer", None) is None:
        return nullcontext()
    from agent.reply_writer import streaming_to

    return streaming_to(callback)


async def _drafts_until(turn: asyncio.Future, drafts: asyncio.Queue) -> AsyncIterator[str]:
    """The newest draft each time some arrive, until ``turn`` is done (drafts that arrive together
    are one update: the page draws the newest)."""
    while not turn.done():
        getting = asyncio.ensure_future(drafts.get())
        try:
            await asyncio.wait([turn, getting], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:   # the page went away: the turn runs on, nobody waits for its drafts
            getting.cancel()
            raise
        if not getting.done():   # the turn ended first
            getting.cancel()
            break
        newest = getting.result()
        while not drafts.empty():
            newest = drafts.get_nowait()
        if not turn.done():   # a finished turn draws itself: its last draft would only flash
            yield newest


def draft_html(message: str, draft: str) -> str:
    """A draft of the reply for the message's pending bubble (``cine.draft`` in chat.js puts it there)."""
    return (f'<p data-draft-for="{escape(message)}" data-seq="{time.time_ns()}">{escape(draft)}</p>')


def ui_swipe(runtime: "Runtime", stored: dict | None, chat: Any, data: Any, request: gr.Request) -> tuple[str, Any]:
    """A like, dislike or undo on one card -> (the line that settles the card's look
    (``#swipe-status``), the person line with the new count).

    ``data`` is what the page sent: ``item_id``, ``trace_id``, ``action``. The person is the
    browser's token; ``Runtime.swipe`` checks that the turn showed them this card."""
    data = data if isinstance(data, dict) else {}
    item, trace, action = data.get("item_id"), data.get("trace_id"), data.get("action")
    item = item if isinstance(item, int) and not isinstance(item, bool) else None
    with observed("ui/feedback") as outcome:
        person = None
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            if person is None:
                raise InvalidToken()
            if item is None or action not in ("like", "dislike", "undo"):
                raise BadRequest("a swipe names a card (item_id) and an action: like, dislike or undo")
            runtime.limits.swipe(person.id, ui_client(request))
            title = runtime.require().data.movies[item].display_title if item in runtime.require().data.movies else "it"
            if action == "undo":
                runtime.undo_swipe(person.id, item)
                text = f"Took back your swipe on {title}."
            else:
                kept = chat_of(chat, person) or {}
                turn = next((t for t in kept.get("turns", []) if t.get("trace_id") == trace), None)
                rank = next((i for i, c in enumerate(turn["cards"], 1) if c.get("item_id") == item), None) if turn else None
                runtime.swipe(person.id, kept.get("session_id") or "ui", item, action,
                              trace if isinstance(trace, str) and turn else None, rank,
                              turn.get("message") if turn else None)
                text = (f"Liked {title}: more like it next time." if action == "like"
                        else f"Disliked {title}: it won't be suggested again.")
            outcome["status"] = 200
            ok, retry = "1", "0"
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            text, ok = f"Not recorded: {plain_error(exc)}.", "0"
            # worth sending again in a moment (the page does): the server is busy or getting ready
            retry = "1" if isinstance(exc, (NotReady, StoreError, RateLimited)) else "0"
        state, who = "none", gr.skip()
        if person is not None and runtime.agent is not None and retry == "0":
            state = swiped_items(runtime.agent.profiles.swipes(person.id)).get(item, "none")
            who = describe_person(runtime, person)
    # the card's true state after the attempt: the script settles every copy of the card on it
    return (f'<p data-item="{item or ""}" data-state="{state}" data-ok="{ok}" data-retry="{retry}" '
            f'data-seq="{time.time_ns()}">{escape(text)}</p>'), who


def ui_start_over(runtime: "Runtime", persona: str | None, request: gr.Request, stored: dict | None = None):
    """A new person, from a persona or from scratch -> (person, who, conversation, its copy, error line).
    The person this browser was is deleted (once the new one exists): nothing would be left to
    export or delete their data with."""
    with observed("ui/people") as outcome:
        try:
            persona = persona if isinstance(persona, str) else None
            seed = int(persona) if persona and persona.isdecimal() and persona.isascii() else None
            leaving = ui_person(runtime, stored, request, create=False)[0]
            person, token = runtime.create_person(None, seed, ui_client(request))
            if leaving is not None:
                try:
                    runtime.delete(leaving)
                except PEOPLE_ERRORS:   # the browser keeps the old token (to retry); the new person goes
                    with suppress(PEOPLE_ERRORS):
                        runtime.delete(person)
                    raise
            outcome["status"] = 201
            return ({"token": token, "user_id": person.id}, describe_person(runtime, person), render_welcome(),
                    None, "")
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                    f'<p class="chat-error"><strong>Could not start over:</strong> {escape(plain_error(exc))}</p>')


def ui_new_conversation(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"New conversation" -> (conversation, its browser copy, error line): the next message starts a
    new session (a fresh dialogue state: nothing asked before carries over). The person, their
    swipes and the old conversation stay in the store ("Your data" shows it)."""
    with observed("ui/new-conversation") as outcome:
        try:
            person = ui_person(runtime, stored, request, create=False)[0]
            outcome["status"] = 200
            fresh = {"user_id": person.id, "session_id": uuid.uuid4().hex, "turns": []} if person else None
            return render_welcome(fresh=person is not None), fresh, ""
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return gr.skip(), gr.skip(), f'<p class="chat-error">Could not start a new conversation: {escape(plain_error(exc))}</p>'


def _held(runtime: "Runtime", person: Person) -> tuple[dict, dict]:
    """(the full export, what it holds in the person's terms)."""
    export = runtime.export(person)
    movies = runtime.require().data.movies
    titles = {i: m.display_title for i, m in movies.items()}
    return export, data_summary(export, titles)


def ui_export(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"Show my data" -> (what is held, readable, with the JSON to download; the status line)."""
    with observed("ui/export") as outcome:
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            outcome["status"] = 200
            if person is None:
                return "", "Nothing is held about you yet: you have not said anything."
            runtime.limits.export(person.id, ui_client(request))  # its own limit, and a turn's
            export, summary = _held(runtime, person)
            return render_data(summary, json.dumps(export, indent=1, default=str)), ""
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return gr.skip(), f"Could not show your data: {plain_error(exc)}"


def ui_confirm_delete(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"Delete my data…" -> (the confirmation, shown, naming what will go; the status line)."""
    with observed("ui/confirm-delete") as outcome:
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            outcome["status"] = 200
            if person is None:
                return gr.Column(visible=False), "", "Nothing is held about you: there is nothing to delete."
            runtime.limits.export(person.id, ui_client(request))  # it reads the export: the export's limit
            _, summary = _held(runtime, person)
            what = deletion_list(summary, person.seed_from is not None)
            return (gr.Column(visible=True),
                    f"**Delete everything?** This removes {what}, on the server, for good; this browser then "
                    "forgets you. Download your data first if you want a copy.", "")
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return gr.skip(), gr.skip(), f"Could not prepare the deletion: {plain_error(exc)}"


def ui_delete(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"Yes, delete everything" -> (person, who, conversation, its copy, data view, status line,
    the confirmation hidden): deleted everywhere, and this browser forgets them."""
    with observed("ui/delete") as outcome:
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            if person is not None:
                runtime.delete(person)
                ANSWERED.forget(person.id)
            outcome["status"] = 200
            return (None, describe_person(runtime, None), render_welcome(), None, "",
                    "Deleted: your profile, likes, dislikes and conversations are gone, and this browser forgot you.",
                    gr.Column(visible=False))
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return (gr.skip(),) * 5 + (f"Could not delete your data: {plain_error(exc)}", gr.skip())


def trace_tables(runtime: "Runtime", picks: PickLog, request: gr.Request) -> tuple[list[list], list[list], list[list], str]:
    """The operator's view: parser and models, the latest turns from the event store (every
    process's and replica's), and the picks of UI turns with their scores and sources. Every person's
    turns: for the operator only (checked here, on every call: Gradio's queue runs this event for
    anyone who names it)."""
    if not is_operator(runtime, request):
        return [], [], [], ""
    turns = runtime.recent_turns()
    rows = [[t.ts.astimezone().strftime("%H:%M:%S"), t.trace_id[:12], t.channel, t.user_id, t.message[:200],
             t.act or "", t.parser or "", len(t.items), round(t.total_ms, 1),
             t.outcome if t.outcome != "ok" else f"ok (fallback: {t.fallback_reason})" if t.fallback_reason else "ok"]
            for t in turns]
    steps = [[t.trace_id[:12], s.name, s.kind, s.duration_ms, s.error or ""] for t in turns for s in t.steps]
    return rows, steps, picks.rows(), operator_note(runtime)


def find_turn(turns: list, query: str | None) -> tuple[Any, Any]:
    """(the newest turn matching ``query``: a trace id or its start, a person id, or words of the
    message; the turn before it in the same conversation, or None). ``turns``: newest first."""
    q = (query or "").strip().lower()
    turn = next((t for t in turns if not q or t.trace_id.startswith(q) or t.user_id.lower() == q
                 or q in t.message.lower()), None)
    if turn is None:
        return None, None
    before = next((t for t in turns if t.session_id == turn.session_id and t.user_id == turn.user_id
                   and t.ts < turn.ts), None)
    return turn, before


def _json(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=1, ensure_ascii=False, default=str))}</pre>"


def turn_view_html(turn: Any, before: Any, titles: dict[int, str], scores: dict[int, float], reply: str | None,
                   langfuse: str | None = None, langfuse_note: str | None = None) -> str:
    """One turn on one screen, for debugging a misunderstood message: the message, what was
    understood (the parser, its fallback, its reading, the unused parts), the request in force
    before and after, the steps with their timings, the picks with their sources and scores, the reply."""
    if turn is None:
        return "<p>No turn matches.</p>"
    head = (f"<p><strong>{escape(turn.ts.astimezone().strftime('%Y-%m-%d %H:%M:%S'))}</strong> · person "
            f"<code>{escape(turn.user_id)}</code> · conversation <code>{escape(turn.session_id[:16])}</code> · "
            f"trace <code>{escape(turn.trace_id)}</code> · {escape(turn.channel)} · {turn.total_ms:.0f} ms · "
            f"outcome <code>{escape(turn.outcome)}</code>"
            + (f' · <a href="{escape(langfuse)}" target="_blank" rel="noopener">in Langfuse</a>' if langfuse else "")
            + "</p>" + (f'<p class="langfuse-note">{escape(langfuse_note)}</p>' if langfuse_note else ""))
    understood = (f"<p>Parser <code>{escape(turn.parser or '-')}</code>"
                  + (f", fell back: {escape(turn.fallback_reason)}" if turn.fallback_reason else "")
                  + f"; act <code>{escape(turn.act or '-')}</code></p>")
    steps = "".join(f"<tr><td>{escape(st.name)}</td><td>{escape(st.kind)}</td><td>{st.duration_ms:.1f}</td>"
                    f"<td>{escape(st.error or '')}</td></tr>" for st in turn.steps)
    picks = "".join(
        f"<tr><td>{rank}</td><td>{escape(titles.get(item, str(item)))}</td><td>{item}</td>"
        f"<td>{escape(', '.join(f'{n} #{r}' for n, r in (turn.sources[rank - 1] if rank <= len(turn.sources) else {}).items()))}</td>"
        f"<td>{scores[item] if item in scores else ''}</td></tr>" for rank, item in enumerate(turn.items, 1))
    return ('<div class="turn-view">' + head
            + f"<h3>Message</h3><blockquote>{escape(turn.message)}</blockquote>"
            + "<h3>Understood</h3>" + understood + "<h4>The parser's reading</h4>" + _json(turn.parsed)
            + "<h4>Unused parts (said to the person)</h4>" + _json(turn.unused)
            + '<div class="state-pair"><div><h4>Request before</h4>'
            + (_json(before.intent) if before is not None else "<p>(the conversation's first turn)</p>")
            + "</div><div><h4>Request after</h4>" + _json(turn.intent) + "</div></div>"
            + '<h3>Steps</h3><table><tr><th>step</th><th>kind</th><th>ms</th><th>error</th></tr>' + steps + "</table>"
            + '<h3>Picks</h3><table><tr><th>#</th><th>title</th><th>item</th><th>sources (rank)</th><th>score</th></tr>'
            + picks + "</table>"
            + "<h3>Reply</h3>" + (f"<blockquote>{escape(reply)}</blockquote>" if reply is not None
                                  else "<p>(kept for chat-UI turns this process answered)</p>")
            + "</div>")


def ui_turn_view(runtime: "Runtime", picks: PickLog, query: str | None, request: gr.Request) -> str:
    """The operator's one-turn view (checked on every call, as for the tables)."""
    if not is_operator(runtime, request):
        return ""
    turn, before = find_turn(runtime.recent_turns(), query)
    if turn is None:
        return turn_view_html(None, None, {}, {}, None)
    movies = runtime.require().data.movies
    scores, reply = picks.of(turn.trace_id)
    host = os.environ.get("LANGFUSE_HOST") or os.environ.get("LANGFUSE_BASE_URL")
    link = f"{host.rstrip('/')}/trace/{turn.trace_id}" if host else None
    return turn_view_html(turn, before, {i: movies[i].label for i in turn.items if i in movies}, scores, reply, link,
                          langfuse_note())


def langfuse_note() -> str | None:
    """What the operator should know of Langfuse (its version and how swipe scores reach it), when
    traces go there."""
    from agent.tracing import active_tracing

    tracing = active_tracing()
    status = tracing.langfuse_status() if tracing is not None else None
    return status["note"] if status else None


def operator_note(runtime: "Runtime") -> str:
    if runtime.status == "loading":
        return f"**Loading models…** ({time.monotonic() - runtime.created:.0f} s)"
    if runtime.status == "failed":
        return f"**The models failed to load:** {runtime.error}"
    if runtime.agent.parser.name == "offline":
        note = ("**No LLM is configured** (set `CINEAGENT_LLM_BASE_URL` to use one): the offline parser "
                "(genre lexicon, sentence embeddings, fuzzy title matching) is reading requests.")
    else:
        note = "**An LLM reads requests**; if it fails or times out, the offline parser answers instead."
    return f"{note} Models `{runtime.model_version}`."


LOADING = "Getting the recommender ready…"


def readiness(runtime: "Runtime", stored: dict | None, shown: str | None, chat: Any = None
              ) -> tuple[str, gr.Timer, gr.Dropdown, Any, Any]:
    """While the models load: a plain line for visitors; once up (or failed) the timer stops, the
    persona choices fill in (describing them needs the ratings) and, if the page still shows the
    loading line (else a turn may have drawn newer ones meanwhile), the person line and their
    conversation are drawn: a page that came back with the server carries on where it was."""
    if runtime.status == "loading":
        return (LOADING, gr.Timer(active=True), gr.Dropdown(), gr.skip(), gr.skip())
    if runtime.status == "failed":
        return ("The recommender is unavailable right now; please try again later.", gr.Timer(active=False),
                gr.Dropdown(), gr.skip(), gr.skip())
    who = html = gr.skip()
    if shown == LOADING:
        person = ui_person(runtime, stored, None, create=False)[0]
        who, html = describe_person(runtime, person), conversation_html(runtime, person, chat_of(chat, person))
    return "", gr.Timer(active=False), gr.Dropdown(choices=persona_choices(runtime)), who, html


def persona_choices(runtime: "Runtime") -> list[tuple[str, str]]:
    """(label, value) pairs: from scratch, then a varied set of MovieLens raters by taste (cached)."""
    if runtime.persona_choices is None:
        from data.personas import featured

        runtime.persona_choices = [(FRESH, "")] + [(p.describe(), str(p.user_id))
                                                   for p in featured(runtime.require().data)]
    return runtime.persona_choices


# ---------------------------------------------------------------------------------------- layout
# chat turns: a person may send the next message before the last answer is drawn; none is dropped
CHAT_TRIGGER = "multiple"
# before a message goes: show it with a typing indicator and empty the box (web/static/chat.js)
SEND_JS = "(person, chat, message) => { window.cine && window.cine.sending(message); return [person, chat, message]; }"
NEW_CHAT_JS = "(person) => { window.cine && window.cine.fresh(); return [person]; }"
SETTLE_JS = "() => { window.cine && window.cine.sent(); }"
STATUS_JS = "watch('value', () => { window.cine && window.cine.settle(element); });"
ERROR_JS = "watch('value', () => { window.cine && window.cine.failed(element); });"
DRAFT_JS = "watch('value', () => { window.cine && window.cine.draft(element); });"


def build_ui(runtime: "Runtime") -> gr.Blocks:
    picks = PickLog()

    def load(stored: dict | None, chat: Any, request: gr.Request):
        return ui_load(runtime, stored, chat, request)

    async def send(stored: dict | None, chat: Any, message: str, request: gr.Request):
        async for update in ui_chat(runtime, picks, stored, chat, message, request):
            yield update

    def swipe(stored: dict | None, chat: Any, request: gr.Request, evt: gr.EventData):
        return ui_swipe(runtime, stored, chat, getattr(evt, "_data", None), request)

    def start_over(persona: str | None, stored: dict | None, request: gr.Request):
        return ui_start_over(runtime, persona, request, stored)

    def turn_view_of(query: str | None, request: gr.Request):
        return ui_turn_view(runtime, picks, query, request)

    def traces(request: gr.Request):
        return trace_tables(runtime, picks, request)

    def new_conversation(stored: dict | None, request: gr.Request):
        return ui_new_conversation(runtime, stored, request)

    def export(stored: dict | None, request: gr.Request):
        return ui_export(runtime, stored, request)

    def confirm_delete(stored: dict | None, request: gr.Request):
        return ui_confirm_delete(runtime, stored, request)

    def delete(stored: dict | None, request: gr.Request):
        return ui_delete(runtime, stored, request)

    def ready(stored: dict | None, shown: str | None, kept: Any):
        return readiness(runtime, stored, shown, kept)

    with gr.Blocks(title="CineAgent", fill_width=True) as demo:
        # {"token", "user_id"}: who this browser is; the token is checked by every event
        person = gr.BrowserState(None, storage_key=PERSON_KEY, secret=PERSON_STORAGE_SECRET)
        # {"user_id", "session_id", "turns"}: the conversation as shown, back after a reload
        chat = gr.BrowserState(None, storage_key=CHAT_KEY, secret=CHAT_STORAGE_SECRET)
        poll = gr.Timer(1.0)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row(elem_id="topbar", equal_height=True):
                    gr.HTML('<h1 class="brand">CineAgent <span>movie picks, by chat</span></h1>', js_on_load=None,
                            elem_id="brand")
                    who = gr.Markdown(elem_id="who")
                    new_chat = gr.Button("New conversation", size="sm", scale=0, min_width=0, elem_id="new-chat")
                readiness_note = gr.Markdown(elem_id="readiness")
                conversation = gr.HTML(render_welcome(), elem_id="conversation", js_on_load=CHAT_JS,
                                       html_template='<div class="log" role="log" aria-label="Conversation">'
                                                     "${value}</div>")
                gr.HTML("", elem_id="pending", js_on_load=None)
                # the reply's draft while an LLM words it (ui_chat); the script shows it in the pending bubble
                reply_draft = gr.HTML("", elem_id="reply-draft", js_on_load=DRAFT_JS,
                                      html_template='<div class="draft-source" aria-hidden="true">${value}</div>')
                with gr.Row(elem_id="composer", equal_height=True):
                    message = gr.Textbox(label="Message CineAgent", show_label=False, container=False, lines=1,
                                         max_lines=1, placeholder="Ask for a movie…", elem_id="msg", scale=5,
                                         autofocus=False)
                    send_button = gr.Button("Send", variant="primary", scale=1, min_width=72, elem_id="send")
                chat_error = gr.HTML("", elem_id="chat-error", js_on_load=ERROR_JS,
                                     html_template='<div role="alert">${value}</div>')
                swipe_status = gr.HTML("", elem_id="swipe-status", js_on_load=STATUS_JS,
                                       html_template='<div role="status" class="sr-status">${value}</div>')
                # below the composer: the box stays on a phone's first screen; a first visit finds it there
                with gr.Accordion("Start from another film fan's taste (what is this?)", open=False,
                                  elem_id="persona-panel"):
                    gr.Markdown(PERSONA_NOTE)
                    with gr.Row():
                        persona = gr.Dropdown(choices=[(FRESH, "")], value="", label="Whose taste to start from", scale=4,
                                              elem_id="persona", interactive=True)
                        start = gr.Button("Start over from this taste", scale=1, elem_id="start-over")
                with gr.Accordion("Your data", open=False, elem_id="data-panel"):
                    gr.Markdown("What is held about you: your likes and dislikes, your conversations, and the full "
                                "record to download; and a way to delete all of it. Nobody else can see it.")
                    with gr.Row():
                        show_data = gr.Button("Show my data", elem_id="export-me")
                        delete_me = gr.Button("Delete my data…", elem_id="delete-me")
                    with gr.Column(visible=False, elem_id="delete-confirm-panel") as confirm_panel:
                        confirm_text = gr.Markdown(elem_id="delete-what")
                        with gr.Row():
                            delete_yes = gr.Button("Yes, delete everything", variant="stop", elem_id="delete-confirm")
                            delete_no = gr.Button("Cancel", elem_id="delete-cancel")
                    data_status = gr.Markdown(elem_id="data-status")
                    data_view = gr.HTML("", elem_id="export-view")

            # rendered for everyone but shown to an operator only (ui_load); its data is checked
            # per call in trace_tables
            with gr.Tab("Traces", id="traces-tab", visible=False, elem_id="traces-tab") as traces_tab:
                parser_note = gr.Markdown(elem_id="parser-note")
                with gr.Row(equal_height=True):
                    turn_query = gr.Textbox(label="One turn: a trace id, a person id or words of the message "
                                                  "(empty: the newest)", elem_id="turn-query", scale=4)
                    show_turn = gr.Button("Show the turn", elem_id="show-turn", scale=1)
                turn_view = gr.HTML("", elem_id="turn-view")
                refresh = gr.Button("Refresh", size="sm", elem_id="refresh-traces")
                turns_table = gr.Dataframe(headers=TURN_COLUMNS, label="Turns (newest first)", elem_id="turns",
                                           interactive=False)
                steps_table = gr.Dataframe(headers=STEP_COLUMNS, label="Steps of each turn", elem_id="steps",
                                           interactive=False)
                picks_table = gr.Dataframe(headers=PICK_COLUMNS, label="Picks of chat-UI turns: scores and the "
                                           "models that ranked them", elem_id="picks", interactive=False)
        gr.Markdown("Operator? [Sign in](/operator) to see traces. [API docs](/docs)", elem_id="operator-link")

        demo.load(load, inputs=[person, chat], outputs=[who, conversation, traces_tab], api_visibility="private")
        poll.tick(ready, inputs=[person, who, chat], outputs=[readiness_note, poll, persona, who, conversation],
                  api_visibility="private",
                  show_progress="hidden")
        start.click(start_over, inputs=[persona, person], outputs=[person, who, conversation, chat, chat_error],
                    api_visibility="private")
        for trigger in (send_button.click, message.submit):
            # (no .failure hook: Gradio's front end ran it after answered sends too; an outage is
            # noticed by chat.js itself, which checks /healthz while anything is unconfirmed)
            trigger(send, [person, chat, message], [conversation, chat, person, who, chat_error, reply_draft],
                    js=SEND_JS, api_visibility="private", show_progress="hidden", trigger_mode=CHAT_TRIGGER
                    ).then(None, js=SETTLE_JS)
        conversation.swipe(swipe, inputs=[person, chat], outputs=[swipe_status, who], api_visibility="private",
                           show_progress="hidden", trigger_mode="multiple")
        new_chat.click(new_conversation, inputs=[person], outputs=[conversation, chat, chat_error],
                       api_visibility="private", js=NEW_CHAT_JS)
        show_data.click(export, inputs=[person], outputs=[data_view, data_status], api_visibility="private")
        delete_me.click(confirm_delete, inputs=[person], outputs=[confirm_panel, confirm_text, data_status],
                        api_visibility="private")
        delete_no.click(lambda: (gr.Column(visible=False), "Nothing was deleted."), outputs=[confirm_panel, data_status],
                        api_visibility="private")
        delete_yes.click(delete, inputs=[person], outputs=[person, who, conversation, chat, data_view, data_status,
                                                           confirm_panel], api_visibility="private")
        for trigger in (show_turn.click, turn_query.submit):
            trigger(turn_view_of, inputs=[turn_query], outputs=[turn_view], api_visibility="private")
        for trigger in (refresh.click, traces_tab.select):
            trigger(traces, outputs=[turns_table, steps_table, picks_table, parser_note], api_visibility="private")
    # turns are CPU-bound on a small machine: a few at once, the rest queue in Gradio
    demo.queue(default_concurrency_limit=4)
    relax_queue_polling(demo)
    return demo


UI_QUEUE_POLL_S = 0.01


def relax_queue_polling(demo: gr.Blocks) -> None:
    """Gradio's queue polls for new UI events every 1 ms on the event loop (6% of a core while
    idle, and under load a wake-up between every two API turns); every 10 ms is as responsive to a
    person and leaves the loop to the API. It is a private attribute: left alone if it moves."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and isinstance(getattr(queue, "sleep_when_free", None), float):
        queue.sleep_when_free = max(queue.sleep_when_free, UI_QUEUE_POLL_S)


# Gradio's default theme loads Source Sans Pro at 400 and 600, but the 600 file in its package holds
# 55 glyphs (capital A and B among them, C-Z and digits not): bold titles mixed two fonts ("Men in
# Black" with a small B). Its complete Bold file serves every heavier weight instead.
THEME = gr.themes.Default(font=[gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)),
                                "ui-sans-serif", "system-ui", "sans-serif"])


def mount(api, runtime: "Runtime"):
    """The UI at ``/`` of the API app, with its stylesheet."""
    return gr.mount_gradio_app(api, build_ui(runtime), path="/", css=CSS, head=HEAD, theme=THEME,
                               footer_links=["gradio"], run_history=False, show_error=False)
