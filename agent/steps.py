"""The steps of a turn: each one timed, kept on the turn's ``steps`` list, and, while the turn is
traced, a live OpenTelemetry span opened where the step runs.

``recording(steps, name)`` is all a step needs. The enclosing step (or the turn's root span) is
found in the context, not passed: OpenTelemetry keeps the current span in a ``contextvars``
variable, and so does this module for the turn being traced and its steps list, so nesting is
right across ``await``, asyncio tasks and ``asyncio.to_thread`` (which copies the context). Code
that runs outside any turn (evaluation, warm-up) records into nothing and opens no span.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace


@dataclass
class Step:
    name: str
    started: float                          # wall-clock epoch seconds
    duration_ms: float
    kind: str = "span"                      # span | generation | retriever | event
    input: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    error: str | None = None
    parent: str | None = None               # name of the enclosing step, None for the turn itself
    # facts for the trace that are neither input nor output: model, model_parameters, usage,
    # prompt_version (a generation), level and status_message (a step that went wrong softly)
    facts: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "started": self.started, "duration_ms": round(self.duration_ms, 3),
                "kind": self.kind, "input": self.input, "output": self.output, "error": self.error,
                "parent": self.parent}


class StepSpans(Protocol):
    """What opens and closes a traced turn's step spans (``agent.tracing`` implements it)."""

    def open(self, step: Step) -> otel_trace.Span: ...

    def close(self, step: Step, span: otel_trace.Span) -> None: ...


@dataclass
class _Traced:
    steps: list[Step]
    spans: StepSpans | None


_turn: ContextVar[_Traced | None] = ContextVar("cineagent_turn", default=None)
_parent: ContextVar[str | None] = ContextVar("cineagent_step", default=None)


@contextmanager
def in_turn(steps: list[Step], spans: StepSpans | None = None) -> Iterator[None]:
    """Steps recorded inside this block (in this context and what it spawns) belong to this turn:
    they go on ``steps`` and, with ``spans``, each opens a span under the current one."""
    token = _turn.set(_Traced(steps, spans))
    try:
        yield
    finally:
        _turn.reset(token)


@contextmanager
def recording(steps: list[Step] | None, name: str, kind: str = "span") -> Iterator[Step]:
    """Time a block as a step of the current turn; the block fills ``step.input`` / ``output``.

    ``steps``: the list to append to, None for the current turn's. The enclosing step (the parent)
    comes from the context. An exception is recorded on the step (``error``) and re-raised.
    """
    turn = _turn.get()
    if steps is None:
        steps = turn.steps if turn is not None else []
    step = Step(name, time.time(), 0.0, kind, parent=_parent.get())
    spans = turn.spans if turn is not None else None
    span: Any = spans.open(step) if spans is not None else None
    attached = otel_context.attach(otel_trace.set_span_in_context(span)) if span is not None else None
    named = _parent.set(name)
    started = time.perf_counter()
    try:
        yield step
    except Exception as exc:
        step.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        step.duration_ms = (time.perf_counter() - started) * 1000
        _parent.reset(named)
        if attached is not None:
            otel_context.detach(attached)
        steps.append(step)
        if span is not None:
            spans.close(step, span)
