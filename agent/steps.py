"""The record of one step of a turn: what tracing exports and the Traces tab shows."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


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

    def as_dict(self) -> dict:
        return {"name": self.name, "started": self.started, "duration_ms": round(self.duration_ms, 3),
                "kind": self.kind, "input": self.input, "output": self.output, "error": self.error,
                "parent": self.parent}


@contextmanager
def recording(steps: list[Step], name: str, kind: str = "span", parent: str | None = None) -> Iterator[Step]:
    """Time a block and append its Step; the block fills ``step.input`` / ``step.output``.

    An exception is recorded on the step (``error``) and re-raised.
    """
    step = Step(name, time.time(), 0.0, kind, parent=parent)
    started = time.perf_counter()
    try:
        yield step
    except Exception as exc:
        step.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        step.duration_ms = (time.perf_counter() - started) * 1000
        steps.append(step)
