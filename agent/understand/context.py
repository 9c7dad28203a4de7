"""What a message means depends on where it falls in the conversation: the few facts of that kind
the readers use, taken the same way from a live session and from a labelled transcript."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from agent.intent import Act, Intent, IntentParser, ParseResult

# The dialogue operations a message can perform on the conversation (data/labels, "op").
OPS = ("new_request", "refine", "reset", "feedback", "question_card", "unanswerable", "chit_chat")

# How the rule reading's act maps onto an operation: the rules know no reset and no question the
# catalogue cannot answer, so these two only ever come from the trained reader.
RULE_OP = {Act.recommend: "new_request", Act.clarify: "new_request", Act.refine: "refine", Act.more: "feedback",
           Act.explain: "question_card", Act.chit_chat: "chit_chat"}

# A film as a transcript shows it: "Title (1994)" (ReDial's interface) or a numbered card line.
_FILM_IN_TEXT = re.compile(r"\(\d{4}\)")


@dataclass(frozen=True)
class Context:
    """The conversation before a message, as the readers see it."""

    has_standing: bool = False   # a request is in force (something was asked before)
    cards_shown: bool = False    # the other side's last turn suggested films
    turn: int = 0                # the person's messages before this one


def rule_op(parsed: ParseResult, context: Context) -> str:
    """The rule reading's operation: its act, with refinements and pages of nothing read as new."""
    op = RULE_OP[parsed.intent.act]
    if op in ("refine", "feedback") and not context.has_standing:
        return "new_request"
    return op


def replay(lines: Sequence[str], parser: IntentParser) -> tuple[Context, Intent | None]:
    """The context of a labelled message from its transcript ("seeker: ..." / "recommender: ...",
    or "user:" / "bot:"): the person's earlier messages parsed and merged into a standing request
    with the rule reading, as a live conversation would have it."""
    from agent.session import merge

    standing: Intent | None = None
    turn, cards = 0, False
    for line in lines:
        speaker, _, text = line.partition(": ")
        if speaker in ("seeker", "user"):
            if text.strip():
                standing = merge(standing, parser.parse(text, standing).intent)
                if standing.act in (Act.chit_chat, Act.clarify, Act.explain) and standing.is_empty:
                    standing = None
            turn += 1
            cards = False
        else:
            cards = bool(_FILM_IN_TEXT.search(text))
    has_standing = standing is not None and not standing.is_empty
    return Context(has_standing=has_standing, cards_shown=cards, turn=turn), (standing if has_standing else None)


def prepare(rows: Sequence[dict], parser: IntentParser, embedder) -> tuple[list[ParseResult], list[Context], np.ndarray]:
    """The rule reading, the context and the message vector of every row (shared by all variants)."""
    parsed, contexts = [], []
    for row in rows:
        context, standing = replay(row.get("context", []), parser)
        contexts.append(context)
        parsed.append(parser.parse(row["utterance"], standing))
    vectors = np.asarray(embedder([r["utterance"] for r in rows]), dtype=np.float32)
    return parsed, contexts, vectors
