"""Swipes as JSON Lines: ``cineagent feedback export`` writes them, one swipe per line, with the
keys ``ts`` (ISO-8601, UTC), ``user_id``, ``session_id``, ``item_id``, ``action`` (``like`` |
``dislike``), ``trace_id``, ``rank`` and ``query`` — the format of the ``feedback.jsonl`` that
earlier versions kept, which ``read_feedback`` still reads (the store imports it once).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Iterator

from data.events import Swipe
from data.store import atomic_path

log = logging.getLogger(__name__)


def write_feedback(swipes: Iterable[Swipe], target: Path | str) -> int:
    """Write swipes as JSON Lines, atomically (a crash leaves the old file or none); returns the count."""
    count = 0
    with atomic_path(Path(target)) as tmp, open(tmp, "wb") as out:
        for swipe in swipes:
            out.write(swipe.to_line())
            count += 1
    return count


def iter_feedback(path: Path | str) -> Iterator[Swipe]:
    """Valid records in file order; a torn last line and bad lines are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    # a file whose last write completed ends with "\n": the final element is then empty
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, 1):
        if raw.strip():
            record = _parse_line(raw, path, number)
            if record is not None:
                yield record
    if tail.strip():
        log.warning("%s: ignoring a torn last line (%d bytes, no newline): a writer stopped mid-line", path, len(tail))


def read_feedback(path: Path | str) -> list[Swipe]:
    return list(iter_feedback(path))


def _parse_line(raw: bytes, path: Path, number: int) -> Swipe | None:
    try:
        return Swipe.model_validate(json.loads(raw))
    except ValueError as exc:  # JSON, UTF-8 and pydantic's ValidationError all derive from it
        log.warning("%s line %d: skipping an unreadable record (%s)", path, number, " ".join(str(exc).split())[:200])
        return None
