"""The chat as HTML: turns, cards and their "why" in plain words (pure functions, no Gradio).

What a person sees never names a model, a rank or a score: those are the operator's (the Traces
tab). A card is stored in the browser (``web.ui`` keeps the conversation there) already reduced to
what is shown: title, year, genres, a one-line reason and the "why" sentences; the raw evidence
and scores stay on the server.
"""
from __future__ import annotations

from html import escape
from typing import Iterable, Mapping

from data.events import DISLIKE_RATING

MAX_TURNS_KEPT = 8    # turns a browser keeps and shows: enough to scroll back, small in storage
EXAMPLES = ("a funny sci-fi like Men in Black", "a 90s thriller, nothing too violent", "something like Toy Story")


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _article(genres: list[str]) -> str:
    phrase = _join(genres)
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


# a mood as people say it (the request's words; agent.replies says the same in replies)
MOOD_WORDS = {"darker": "darker", "lighter": "lighter", "funnier": "funnier", "less_violent": "less violent"}


def _moods(tones) -> list[str]:
    """The moods a pick fits, in words: the evidence's tones (mood -> where the pick sits, a
    z-score: only those it leans toward) or a plain list of them."""
    names = [m for m, z in tones.items() if float(z) > 0] if isinstance(tones, Mapping) else list(tones)
    return [MOOD_WORDS.get(str(m), str(m).replace("_", " ")) for m in names]


def why_sentences(evidence: Mapping, swiped: Iterable[int] = (), seeded: bool = False) -> list[str]:
    """The evidence of a pick as sentences a person reads: only what the evidence holds.

    ``swiped``: the items the person liked by a swipe (said "you liked"); the others in
    ``profile_items`` are ratings: the person's own, or (``seeded``) the film fan's they started from."""
    sentences = []
    genres = list(evidence.get("genres") or [])
    if genres:
        sentences.append(f"It's {_article(genres)} film, which is what you asked for.")
    missing = list(evidence.get("missing_genres") or [])
    if missing:
        sentences.append(f"It isn't {_join(missing)}, though: it's the closest match we found.")
    moods = _moods(evidence.get("tones") or [])
    if moods:
        sentences.append(f"It fits the mood you asked for: {_join(moods)}.")
    swiped = set(swiped)
    cited = [p for p in evidence.get("profile_items") or [] if p.get("title")][:3]
    by_swipe = [p["title"] for p in cited if p.get("item_id") in swiped]
    rated = [p["title"] for p in cited if p.get("item_id") not in swiped]
    if by_swipe:
        sentences.append(f"It's similar to {_join(by_swipe)}, which you liked.")
    if rated:
        whose = "which the film fan you started from rated highly" if seeded else "which you rated highly"
        sentences.append(f"It's similar to {_join(rated)}, {whose}.")
    mentioned = list(evidence.get("referenced_titles") or [])
    if mentioned:
        sentences.append(f"People who enjoy {_join(mentioned)}, which you mentioned, tend to enjoy it too.")
    if not sentences:
        sentences.append("It's one of the best matches for your request among films people like you rated well.")
    return sentences


def plain_reason(evidence: Mapping) -> str:
    """The card's one line: the most personal reason first."""
    mentioned = list(evidence.get("referenced_titles") or [])
    liked = [p["title"] for p in evidence.get("profile_items") or [] if p.get("title")]
    genres = list(evidence.get("genres") or [])
    if mentioned:
        return f"For fans of {_join(mentioned[:2])}."
    if liked:
        return f"Because you liked {_join(liked[:2])}."
    if genres:
        # the card's year and other genres make the line the card's own, not one sentence ten times
        year, also = evidence.get("year"), list(evidence.get("other_genres") or [])[:2]
        head = f"A {year} {_join(genres).lower()} film" if year else _join(genres)
        return f"{head}, as you asked" + (f", with {_join(also).lower()} in it too." if also else ".")
    return "A well-liked match for your request."


def shown_card(card: Mapping, swiped: Iterable[int] = (), seeded: bool = False) -> dict:
    """What the browser keeps of a card (``Card.as_dict()``): no scores, ranks or model names
    (``swiped``, ``seeded``: as for ``why_sentences``)."""
    evidence = card.get("evidence") or {}
    return {"item_id": int(card["item_id"]), "title": str(card["title"]), "year": card.get("year"),
            "genres": list(card.get("genres") or []), "reason": plain_reason(evidence),
            "why": why_sentences(evidence, swiped, seeded)}


def _card(card: Mapping, trace_id: str, rank: int, state: str | None) -> str:
    title = escape(card["title"])
    year = f' <span class="year">({int(card["year"])})</span>' if card.get("year") else ""
    chips = "".join(f'<li class="chip">{escape(g)}</li>' for g in card.get("genres") or [])
    why = "".join(f"<p>{escape(s)}</p>" for s in card.get("why") or [])
    state = state if state in ("like", "dislike") else "none"
    item = int(card["item_id"])
    # aria-labels name the movie: ten "Like" buttons are told apart by a screen reader; the
    # visible word stays the start of the name (WCAG 2.5.3, label in name)
    return (
        f'<li class="card turn-{escape(trace_id)}" id="card-{escape(trace_id[:12])}-{item}" data-item="{item}" '
        f'data-trace="{escape(trace_id)}" data-rank="{rank}" data-title="{title}" data-state="{state}">'
        f'<div class="card-body"><h2 class="card-title">{title}{year}</h2>'
        f'<ul class="chips" aria-label="Genres">{chips}</ul>'
        f'<p class="reason">{escape(card.get("reason") or "")}</p>'
        f'<details class="card-why"><summary>Why this pick?</summary><div class="why-text">{why}</div></details></div>'
        f'<p class="card-state" aria-hidden="true"><span class="liked-note">You liked this</span>'
        f'<span class="disliked-note">Not for you</span></p>'
        f'<div class="card-actions">'
        f'<button type="button" class="dislike-btn" data-action="dislike" aria-label="Dislike {title}" '
        f'aria-pressed="{str(state == "dislike").lower()}"><span aria-hidden="true">✕ </span>Dislike</button>'
        f'<button type="button" class="like-btn" data-action="like" aria-label="Like {title}" '
        f'aria-pressed="{str(state == "like").lower()}"><span aria-hidden="true">♥ </span>Like</button>'
        f'<button type="button" class="undo-btn" data-action="undo" aria-label="Undo {title}">Undo</button>'
        f"</div></li>")


def render_turn(turn: Mapping, swiped: Mapping[int, str], said: set[str] | None = None) -> str:
    """One turn; ``said``: notices already shown earlier in the conversation (each shows once,
    where it first applied: "you're new here" is not news on every turn). Updated here."""
    trace = str(turn.get("trace_id") or "")
    cards = turn.get("cards") or []
    said = set() if said is None else said
    fresh = [str(n) for n in turn.get("notices") or [] if str(n) not in said]
    said.update(fresh)
    notices = "".join(f'<p class="notice">{escape(n)}</p>' for n in fresh)
    listing = ""
    if cards:
        listing = ('<ul class="cards" aria-label="Picks">'
                   + "".join(_card(c, trace, i, swiped.get(int(c["item_id"]))) for i, c in enumerate(cards, 1))
                   + "</ul>")
    return (f'<article class="turn" id="turn-{escape(trace)}" data-trace="{escape(trace)}">'
            f'<div class="msg user"><span class="sr-only">You: </span><p class="said">{escape(str(turn.get("message") or ""))}</p></div>'
            f'<div class="msg bot"><span class="sr-only">CineAgent: </span><p class="reply">'
            f'{escape(str(turn.get("text") or ""))}</p>{notices}{listing}</div></article>')


def render_welcome(fresh: bool = False) -> str:
    """The first screen; ``fresh``: after "New conversation" (the earlier one is in "Your data")."""
    examples = "".join(f'<li><button type="button" class="example" data-example="{escape(e)}">{escape(e)}</button></li>'
                       for e in EXAMPLES)
    note = ('<p class="fresh-note">A new conversation: nothing you asked before carries over, but your likes '
            'and dislikes still count. Earlier conversations are in “Your data” below.</p>' if fresh else "")
    return ('<div class="welcome"><h2>What would you like to watch?</h2>' + note +
            "<p>Ask the way you'd ask a friend, then like or dislike the picks (swipe right or left on a "
            "phone): the next ones get closer to your taste.</p>"
            f'<ul class="examples" aria-label="Try asking">{examples}</ul></div>')


def render_conversation(turns: Iterable[Mapping], swiped: Mapping[int, str]) -> str:
    """The whole conversation, oldest first; the welcome when there is none yet."""
    said: set[str] = set()
    body = "".join(render_turn(t, swiped, said) for t in turns)
    return body or render_welcome()


def swiped_items(swipes: Mapping[int, int]) -> dict[int, str]:
    """The card state of every swiped item (item -> its rating from the profile store): a card
    shows the person's current swipe, whichever turn showed it (so an undone or later swipe shows
    on every copy)."""
    return {int(i): ("dislike" if rating == DISLIKE_RATING else "like") for i, rating in swipes.items()}


# ---------------------------------------------------------------------------------------- "Your data"
def when(ts: object) -> str:
    """A stored time as people read it ("7 Dec 2026, 20:54 UTC"); the export keeps ISO strings."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(ts)) if not isinstance(ts, (int, float)) else \
            datetime.fromtimestamp(ts, timezone.utc)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def data_summary(export: Mapping, titles: Mapping[int, str]) -> dict:
    """What a person's export holds, in their terms: their current likes and dislikes (title, when),
    their conversations (messages and the titles shown), and how many of each."""
    latest: dict[int, Mapping] = {}
    for swipe in export.get("swipes") or []:   # oldest first: the last one on an item is their swipe now
        latest[int(swipe["item_id"])] = swipe
    swipes = sorted(latest.values(), key=lambda s: str(s.get("ts")), reverse=True)
    likes = [(titles.get(int(s["item_id"]), "a film"), when(s.get("ts"))) for s in swipes if s.get("action") == "like"]
    dislikes = [(titles.get(int(s["item_id"]), "a film"), when(s.get("ts"))) for s in swipes if s.get("action") == "dislike"]
    conversations: dict[str, list[dict]] = {}
    for turn in sorted(export.get("turns") or [], key=lambda t: str(t.get("ts"))):
        conversations.setdefault(str(turn.get("session_id")), []).append(
            {"when": when(turn.get("ts")), "message": str(turn.get("message") or ""),
             "shown": [titles.get(int(i), "a film") for i in turn.get("items") or []],
             "answered": turn.get("outcome", "ok") == "ok"})
    return {"likes": likes, "dislikes": dislikes, "conversations": list(conversations.values())}


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def deletion_list(summary: Mapping, seeded: bool) -> str:
    """What "Delete my data" removes, counted: said before the person confirms."""
    turns = sum(len(c) for c in summary["conversations"])
    parts = [_count(len(summary["likes"]), "like", "likes"), _count(len(summary["dislikes"]), "dislike", "dislikes"),
             f'{_count(len(summary["conversations"]), "conversation", "conversations")} '
             f'({_count(turns, "message", "messages")})']
    profile = "your profile (and the ratings it copied from the film fan you started from)" if seeded else "your profile"
    return f"{profile}, {_join(parts)}"


def render_data(summary: Mapping, export_json: str) -> str:
    """"Your data" as a person reads it: likes and dislikes by title and date, each conversation
    as text, and the full export as a JSON download (built in the page: no copy is kept on disk)."""
    from base64 import b64encode

    def swipes(rows: list, empty: str) -> str:
        if not rows:
            return f"<p>{escape(empty)}</p>"
        return "<ul>" + "".join(f"<li>{escape(t)} <span class=\"when\">{escape(w)}</span></li>" for t, w in rows) + "</ul>"

    def conversation(n: int, turns: list[dict]) -> str:
        lines = []
        for t in turns:
            shown = (f"Shown: {escape(', '.join(t['shown']))}." if t["shown"]
                     else "Shown: nothing." if t["answered"] else "Not answered.")
            lines.append(f'<li><span class="when">{escape(t["when"])}</span> <strong>You:</strong> '
                         f'{escape(t["message"])}<br><span class="shown">{shown}</span></li>')
        started = turns[0]["when"] if turns else ""
        return (f'<section class="data-conversation"><h4>Conversation {n}, started {escape(started)}</h4>'
                f'<ol>{"".join(lines)}</ol></section>')

    talks = summary["conversations"]
    body = "".join(conversation(n, c) for n, c in enumerate(talks, 1)) or "<p>No conversations yet.</p>"
    href = "data:application/json;base64," + b64encode(export_json.encode("utf-8")).decode("ascii")
    return ('<div class="data-view">'
            f'<p><a class="download" href="{href}" download="cineagent-my-data.json">'
            "Download everything (JSON)</a> the complete record, exactly as stored.</p>"
            f'<h3>Liked ({len(summary["likes"])})</h3>{swipes(summary["likes"], "Nothing liked yet.")}'
            f'<h3>Disliked ({len(summary["dislikes"])})</h3>{swipes(summary["dislikes"], "Nothing disliked yet.")}'
            f"<h3>Conversations ({len(talks)})</h3>{body}</div>")
