"""Understanding learned from labelled real messages.

The rule reading (``agent.offline_parser``) finds titles, years and a first reading of genres and
the act; the trained readers here take that reading as features beside the message's MiniLM vector
and the conversation's shape, and decide what the labels teach: the dialogue operation of the
message and each genre's polarity. They are trained by ``cineagent train`` from ``data/labels``
and measured by ``cineagent eval understanding`` on a held-out fold nobody tunes on.
"""
from agent.understand.context import Context, OPS
from agent.understand.reader import TrainedReader

__all__ = ["Context", "OPS", "TrainedReader"]
