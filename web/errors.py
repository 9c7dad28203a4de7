"""Errors a person can cause, shared by the JSON API (app.py) and the chat UI (web.ui).

They live here rather than in app.py so the UI module can name them without importing the app."""
from __future__ import annotations


class NotReady(RuntimeError):
    """The models are still loading (or failed to load); the message says which."""


class UnknownTurn(LookupError):
    """A swipe names a turn that did not show this card to this person (or no turn at all)."""

    def __init__(self, trace_id: str, item_id: int) -> None:
        super().__init__(f"trace {trace_id} is not one of your turns that showed item {item_id}: send the "
                         "trace_id of the turn whose card you swiped, or leave it out")


class UnknownPersona(ValueError):
    """``seed_from`` names no MovieLens user."""
