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
import time
import uuid
from collections import deque
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
from web.render import MAX_TURNS_KEPT, render_conversation, render_welcome, shown_card, swiped_items

if TYPE_CHECKING:
    from web.api import Runtime

STATIC = Path(__file__).resolve().parent / "static"
CHAT_JS = (STATIC / "chat.js").read_text()
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
PERSONA_NOTE = ("**What is a persona?** MovieLens 100k is 100,000 ratings by 943 anonymous film fans. "
                "Starting from one of them copies their ratings into a new profile of your own, so your very "
                "first picks are personal; your likes and dislikes then change only your copy, never theirs. "
                "Starting over gives you a new profile and a new conversation; the old profile, its swipes and "
                "conversations are deleted.")


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
def describe_person(runtime: "Runtime", person: Person | None) -> str:
    if person is None:
        return "You're a **new visitor**: your first message starts your own private profile, kept in this browser."
    agent = runtime.require()
    rated = len(agent.profiles.ratings(person.id))
    origin = f"started from MovieLens persona #{person.seed_from}" if person.seed_from else "started from scratch"
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


class PickLog:
    """The operator's view of what UI turns showed: scores and the models that ranked each pick."""

    def __init__(self, size: int = PICKS_KEPT) -> None:
        self._turns: deque[list[list]] = deque(maxlen=size)

    def add(self, trace_id: str, cards: list[dict], model_version: str | None) -> None:
        self._turns.append([[trace_id[:12], rank, c["item_id"], c["title"], round(float(c["score"]), 4),
                             ", ".join(f"{n} #{r}" for n, r in (c.get("evidence", {}).get("sources") or {}).items()),
                             model_version or ""] for rank, c in enumerate(cards, 1)])

    def rows(self) -> list[list]:
        return [row for turn in reversed(self._turns) for row in turn]


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
            picks.add(result.trace_id, cards, runtime.model_version)
            kept["turns"] = [*kept["turns"], {"trace_id": result.trace_id, "message": message, "text": result.text,
                                              "notices": list(result.notices),
                                              "cards": [shown_card(c) for c in cards]}][-MAX_TURNS_KEPT:]
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
            ok = "1"
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            text, ok = f"Not recorded: {plain_error(exc)}.", "0"
        state, who = "none", gr.skip()
        if person is not None and runtime.agent is not None:
            state = swiped_items(runtime.agent.profiles.swipes(person.id)).get(item, "none")
            who = describe_person(runtime, person)
    # the card's true state after the attempt: the script settles every copy of the card on it
    return (f'<p data-item="{item or ""}" data-state="{state}" data-ok="{ok}" data-seq="{time.time_ns()}">'
            f"{escape(text)}</p>"), who


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


def ui_export(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"Show everything held about me" -> (the export as JSON, the line that says what happened)."""
    with observed("ui/export") as outcome:
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            outcome["status"] = 200
            if person is None:
                return {}, "Nothing is held about you yet: you have not said anything."
            runtime.limits.export(person.id, ui_client(request))  # its own limit, and a turn's
            return runtime.export(person), ""
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return gr.skip(), f"Could not show your data: {plain_error(exc)}"


def ui_delete(runtime: "Runtime", stored: dict | None, request: gr.Request):
    """"Delete my data" -> (person, who, conversation, its copy, export view, status line): deleted
    everywhere, and this browser forgets them."""
    with observed("ui/delete") as outcome:
        try:
            person, _ = ui_person(runtime, stored, request, create=False)
            if person is not None:
                runtime.delete(person)
            outcome["status"] = 200
            return (None, describe_person(runtime, None), render_welcome(), None, {},
                    "Deleted: your profile, swipes and conversations are gone, and this browser forgot you.")
        except PEOPLE_ERRORS as exc:
            outcome["status"] = status_of(exc)
            return (gr.skip(),) * 5 + (f"Could not delete your data: {plain_error(exc)}",)


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


def readiness(runtime: "Runtime", stored: dict | None, shown: str | None) -> tuple[str, gr.Timer, gr.Dropdown, Any]:
    """While the models load: a plain line for visitors; once up (or failed) the timer stops, the
    persona choices fill in (describing them needs the ratings) and the person line is drawn if
    the page still shows the loading one (else a turn may have drawn a newer one meanwhile)."""
    if runtime.status == "loading":
        return (LOADING, gr.Timer(active=True), gr.Dropdown(), gr.skip())
    if runtime.status == "failed":
        return ("The recommender is unavailable right now; please try again later.", gr.Timer(active=False),
                gr.Dropdown(), gr.skip())
    who = describe_person(runtime, ui_person(runtime, stored, None, create=False)[0]) if shown == LOADING else gr.skip()
    return "", gr.Timer(active=False), gr.Dropdown(choices=persona_choices(runtime)), who


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

    def traces(request: gr.Request):
        return trace_tables(runtime, picks, request)

    def export(stored: dict | None, request: gr.Request):
        return ui_export(runtime, stored, request)

    def delete(stored: dict | None, request: gr.Request):
        return ui_delete(runtime, stored, request)

    def ready(stored: dict | None, shown: str | None):
        return readiness(runtime, stored, shown)

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
                                         max_length=MAX_MESSAGE_CHARS, autofocus=False)
                    send_button = gr.Button("Send", variant="primary", scale=1, min_width=72, elem_id="send")
                chat_error = gr.HTML("", elem_id="chat-error", js_on_load=ERROR_JS,
                                     html_template='<div role="alert">${value}</div>')
                swipe_status = gr.HTML("", elem_id="swipe-status", js_on_load=STATUS_JS,
                                       html_template='<div role="status" class="sr-status">${value}</div>')
                # below the composer: the box stays on a phone's first screen; a first visit finds it there
                with gr.Accordion("Start from a MovieLens persona (what is this?)", open=False,
                                  elem_id="persona-panel"):
                    gr.Markdown(PERSONA_NOTE)
                    with gr.Row():
                        persona = gr.Dropdown(choices=[(FRESH, "")], value="", label="Persona", scale=4,
                                              elem_id="persona", interactive=True)
                        start = gr.Button("Start over as this persona", scale=1, elem_id="start-over")
                with gr.Accordion("Your data", open=False, elem_id="data-panel"):
                    gr.Markdown("Everything held about you (profile, swipes, conversations, the turns you were "
                                "shown), and a way to delete all of it. Nobody else can see it.")
                    with gr.Row():
                        show_data = gr.Button("Show everything held about me", size="sm", elem_id="export-me")
                        delete_me = gr.Button("Delete my data", size="sm", variant="stop", elem_id="delete-me")
                    data_status = gr.Markdown(elem_id="data-status")
                    exported = gr.JSON(label="Held about you", elem_id="export-view")

            # rendered for everyone but shown to an operator only (ui_load); its data is checked
            # per call in trace_tables
            with gr.Tab("Traces", id="traces-tab", visible=False, elem_id="traces-tab") as traces_tab:
                parser_note = gr.Markdown(elem_id="parser-note")
                refresh = gr.Button("Refresh", size="sm", elem_id="refresh-traces")
                turns_table = gr.Dataframe(headers=TURN_COLUMNS, label="Turns (newest first)", elem_id="turns",
                                           interactive=False)
                steps_table = gr.Dataframe(headers=STEP_COLUMNS, label="Steps of each turn", elem_id="steps",
                                           interactive=False)
                picks_table = gr.Dataframe(headers=PICK_COLUMNS, label="Picks of chat-UI turns: scores and the "
                                           "models that ranked them", elem_id="picks", interactive=False)
        gr.Markdown("Operator? [Sign in](/operator) to see traces. [API docs](/docs)", elem_id="operator-link")

        demo.load(load, inputs=[person, chat], outputs=[who, conversation, traces_tab], api_visibility="private")
        poll.tick(ready, inputs=[person, who], outputs=[readiness_note, poll, persona, who], api_visibility="private",
                  show_progress="hidden")
        start.click(start_over, inputs=[persona, person], outputs=[person, who, conversation, chat, chat_error],
                    api_visibility="private")
        for trigger in (send_button.click, message.submit):
            trigger(send, [person, chat, message], [conversation, chat, person, who, chat_error, reply_draft], js=SEND_JS,
                    api_visibility="private", show_progress="hidden", trigger_mode=CHAT_TRIGGER
                    ).then(None, js=SETTLE_JS)
        conversation.swipe(swipe, inputs=[person, chat], outputs=[swipe_status, who], api_visibility="private",
                           show_progress="hidden", trigger_mode="multiple")
        show_data.click(export, inputs=[person], outputs=[exported, data_status], api_visibility="private")
        delete_me.click(delete, inputs=[person], outputs=[person, who, conversation, chat, exported, data_status],
                        api_visibility="private")
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
