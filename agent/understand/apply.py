"""A trained reading applied to the rule reading of one message in a live conversation.

The trained reader decides the operation and each genre's polarity; titles, years, counts, card
positions and moods stay the rule reading's (they are deterministic). The operation becomes the
act the dialogue manager routes on:

- ``new_request``: a request of its own, never a refinement of the standing one (nothing is
  inherited); with nothing in it, a request for ideas (``clarify``);
- ``refine``: changes the standing request where the message names something;
- ``reset``: the conversation starts over (``details["reset"]``), then whatever the message asks;
- ``feedback``: about the films shown: the rule reading's page, reference or rejection stands;
- ``question_card``: a question about a shown film (``explain``);
- ``unanswerable``: a question the catalogue cannot answer: said so, nothing recommended for it;
- ``chit_chat``: no request.
"""
from __future__ import annotations

from agent.intent import Act, Intent, ParseResult, UnusedPart
from agent.offline_parser import quote
from agent.understand.context import Context
from agent.understand.reader import Reading, TrainedReader

def context_of(session) -> Context:
    """The reader's context from a live session."""
    standing = session.standing
    return Context(has_standing=standing is not None and not standing.is_empty,
                   cards_shown=bool(session.last_cards), turn=session.turns)


def act_for(op: str, intent: Intent, context: Context) -> Act:
    """The act the dialogue manager routes on, for an operation and the slots the message filled."""
    rule = intent.act
    asks = bool(intent.genres or intent.exclude_genres or intent.titles or intent.years or intent.keywords
                or intent.adjust or intent.card_ref is not None)
    if op in ("new_request", "reset"):
        return Act.recommend if asks else Act.clarify
    if op == "refine":
        return Act.refine if context.has_standing else (Act.recommend if asks else Act.clarify)
    if op == "feedback":
        if rule in (Act.more, Act.refine, Act.chit_chat, Act.explain):
            return rule
        return Act.refine if (asks and context.has_standing) else Act.more if context.has_standing else Act.chit_chat
    if op == "question_card":
        return Act.explain if context.cards_shown else Act.chit_chat
    return Act.chit_chat   # unanswerable, chit_chat


def apply_reading(parsed: ParseResult, reading: Reading, context: Context, text: str) -> ParseResult:
    """The parse result with the trained reading in force (the rule reading kept in ``details``)."""
    intent = parsed.intent
    update: dict = {"genres": reading.genres, "exclude_genres": reading.exclude_genres}
    if set(reading.genres) != set(intent.genres) and intent.genre_match == "any" and len(reading.genres) < 2:
        update["genre_match"] = "all"
    merged = intent.model_copy(update=update)
    merged = merged.model_copy(update={"act": act_for(reading.op, merged, context)})
    unused = list(parsed.unused)
    if reading.op == "unanswerable" and not any(u.why in ("person", "out_of_catalog") for u in unused):
        unused.append(UnusedPart(text=quote(text), why="facts"))
    details = {**parsed.details, "op": reading.op, "op_probs": reading.op_probs,
               "rule_reading": {"act": intent.act.value, "genres": list(intent.genres),
                                "exclude_genres": list(intent.exclude_genres)}}
    if reading.op == "reset":
        details["reset"] = True
    return parsed.model_copy(update={"intent": merged, "unused": unused, "details": details})


def read_in_context(reader: TrainedReader, text: str, parsed: ParseResult, session) -> ParseResult:
    context = context_of(session)
    return apply_reading(parsed, reader.read(text, parsed, context), context, text)

