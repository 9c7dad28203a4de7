"""The one base of every error CineAgent raises for a person or an operator to act on.

Library code raises a subclass with a message that says what is wrong and how to fix it; only
the entry points word it for people: the CLI prints ``cineagent: <message>`` and exits 2, the web
app answers a JSON ``{"error": ...}`` with a 4xx/503 status. Anything else is a fault (a bug):
logged with its traceback, never shown to a user.
"""
from __future__ import annotations


class CineAgentError(Exception):
    """An error with a message meant for the person or operator who can fix it."""
