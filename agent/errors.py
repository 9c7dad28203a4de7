"""Errors a person can cause in the agent's facade (``agent.service``); the web layer maps each to
its HTTP status, the CLI prints the message."""
from __future__ import annotations

from data.errors import CineAgentError


class NotReady(CineAgentError, RuntimeError):
    """The models are still loading (or failed to load); the message says which."""


class UnknownTurn(CineAgentError, LookupError):
    """A swipe names a turn that did not show this card to this person (or no turn at all)."""

    def __init__(self, trace_id: str, item_id: int) -> None:
        super().__init__(f"trace {trace_id} is not one of your turns that showed item {item_id}: send the "
                         "trace_id of the turn whose card you swiped, or leave it out")


class UnknownPersona(CineAgentError, ValueError):
    """``seed_from`` names no MovieLens user."""
