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


def why_sentences(evidence: Mapping) -> list[str]:
    """The evidence of a pick as sentences a person reads: only what the evidence holds."""
    sentences = []
    genres = list(evidence.get("genres") or [])
    if genres:
        sentences.append(f"It's {_article(genres)} film, which is what you asked for.")
    missing = list(evidence.get("missing_genres") or [])
    if missing:
        sentences.append(f"It isn't {_join(missing)}, though: it's the closest match we found.")
    tones = list(evidence.get("tones") or [])
    if tones:
        sentences.append(f"Its mood fits what you asked for: {_join([str(t) for t in tones])}.")
    liked = [p["title"] for p in evidence.get("profile_items") or [] if p.get("title")]
    if liked:
        sentences.append(f"It's similar to {_join(liked[:3])}, which you rated highly.")
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
        return f"{_join(genres)}, as you asked."
    return "A well-liked match for your request."


def shown_card(card: Mapping) -> dict:
    """What the browser keeps of a card (``Card.as_dict()``): no scores, ranks or model names."""
    evidence = card.get("evidence") or {}
    return {"item_id": int(card["item_id"]), "title": str(card["title"]), "year": card.get("year"),
            "genres": list(card.get("genres") or []), "reason": plain_reason(evidence),
            "why": why_sentences(evidence)}


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
        f'<details class="card-why"><summary>Why this pick?</summary>{why}</details></div>'
        f'<p class="card-state" aria-hidden="true"><span class="liked-note">You liked this</span>'
        f'<span class="disliked-note">Not for you</span></p>'
        f'<div class="card-actions">'
        f'<button type="button" class="dislike-btn" data-action="dislike" aria-label="Dislike {title}" '
        f'aria-pressed="{str(state == "dislike").lower()}"><span aria-hidden="true">✕ </span>Dislike</button>'
        f'<button type="button" class="like-btn" data-action="like" aria-label="Like {title}" '
        f'aria-pressed="{str(state == "like").lower()}"><span aria-hidden="true">♥ </span>Like</button>'
        f'<button type="button" class="undo-btn" data-action="undo" aria-label="Undo {title}">Undo</button>'
        f"</div></li>")


def render_turn(turn: Mapping, swiped: Mapping[int, str]) -> str:
    trace = str(turn.get("trace_id") or "")
    cards = turn.get("cards") or []
    notices = "".join(f'<p class="notice">{escape(n)}</p>' for n in turn.get("notices") or [])
    listing = ""
    if cards:
        listing = ('<ul class="cards" aria-label="Picks">'
                   + "".join(_card(c, trace, i, swiped.get(int(c["item_id"]))) for i, c in enumerate(cards, 1))
                   + "</ul>")
    return (f'<article class="turn" id="turn-{escape(trace)}" data-trace="{escape(trace)}">'
            f'<div class="msg user"><span class="sr-only">You: </span><p class="said">{escape(str(turn.get("message") or ""))}</p></div>'
            f'<div class="msg bot"><span class="sr-only">CineAgent: </span><p class="reply">'
            f'{escape(str(turn.get("text") or ""))}</p>{notices}{listing}</div></article>')


def render_welcome() -> str:
    examples = "".join(f'<li><button type="button" class="example" data-example="{escape(e)}">{escape(e)}</button></li>'
                       for e in EXAMPLES)
    return ('<div class="welcome"><h2>What would you like to watch?</h2>'
            "<p>Ask the way you'd ask a friend, then like or dislike the picks (swipe right or left on a "
            "phone): the next ones get closer to your taste.</p>"
            f'<ul class="examples" aria-label="Try asking">{examples}</ul></div>')


def render_conversation(turns: Iterable[Mapping], swiped: Mapping[int, str]) -> str:
    """The whole conversation, oldest first; the welcome when there is none yet."""
    body = "".join(render_turn(t, swiped) for t in turns)
    return body or render_welcome()


def swiped_items(swipes: Mapping[int, int]) -> dict[int, str]:
    """The card state of every swiped item (item -> its rating from the profile store): a card
    shows the person's current swipe, whichever turn showed it (so an undone or later swipe shows
    on every copy)."""
    return {int(i): ("dislike" if rating == DISLIKE_RATING else "like") for i, rating in swipes.items()}
