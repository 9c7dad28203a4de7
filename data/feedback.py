"""The swipe log: every like/dislike appended durably to ``$CINEAGENT_HOME/feedback.jsonl``.

One JSON object per line with the keys ``ts`` (ISO-8601, UTC), ``user_id``, ``session_id``,
``item_id``, ``action`` (``like`` | ``dislike``), ``trace_id``, ``rank`` and ``query``.

Writers in many threads and many processes may share the file. Each line goes out in a single
``os.write`` on an ``O_APPEND`` descriptor while holding a thread lock and an exclusive
``flock``, and is fsynced before ``append`` returns: a line acknowledged to a caller survives a
crash or a kill, and lines never interleave. A process killed mid-line (or a full disk) can
leave a torn last line; readers skip it with a warning, and the next writer starts a fresh line
so the fragment never swallows a good record.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data.store import home, write_bytes_atomic
from data.errors import CineAgentError

log = logging.getLogger(__name__)

FILE_NAME = "feedback.jsonl"
ACTIONS = ("like", "dislike")


class FeedbackError(CineAgentError, ValueError):
    """A swipe record that cannot be logged as given; the message names the fields and the fix."""


class FeedbackRecord(BaseModel):
    """One swipe. Unknown keys are refused so a typo never lands silently in the log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: datetime = Field(default_factory=lambda: datetime.now(timezone.utc), description="when, UTC")
    user_id: str = Field(min_length=1, max_length=64, description="resolved user key: '196' or 'alice'")
    session_id: str = Field(min_length=1, max_length=128)
    item_id: int = Field(ge=1, description="MovieLens item id")
    action: Literal["like", "dislike"]
    trace_id: str | None = Field(default=None, max_length=128, description="the turn that showed the card")
    rank: int | None = Field(default=None, ge=1, description="1-based position of the card in that turn")
    query: str | None = Field(default=None, max_length=2000, description="the message that produced the card")

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # naive timestamps are ambiguous across machines; the log is always UTC
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    def to_line(self) -> bytes:
        return (self.model_dump_json() + "\n").encode("utf-8")


def make_record(**fields: object) -> FeedbackRecord:
    """Validate a swipe; raise FeedbackError naming each bad field (valid actions: like, dislike)."""
    try:
        return FeedbackRecord(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
        raise FeedbackError(f"invalid feedback record ({problems})") from None


def default_path() -> Path:
    return home() / FILE_NAME


class FeedbackLog:
    """Appends swipes to one JSONL file, safely shared by threads and processes.

    ``path`` defaults to ``$CINEAGENT_HOME/feedback.jsonl``. The file is opened per append (no
    descriptor to leak or to go stale if the file is rotated) and fsynced per line: durability
    costs one fsync, a few milliseconds, per swipe.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, record: FeedbackRecord) -> FeedbackRecord:
        """Write ``record`` as one line and fsync it; returns the record as written."""
        line = record.to_line()
        with self._lock:
            fd = self._open_locked()
            try:
                if _ends_torn(fd):
                    line = b"\n" + line  # a killed writer left half a line: keep it on its own line
                written = os.write(fd, line)
                if written != len(line):
                    # regular files take the whole buffer unless the disk is full; say so loudly
                    raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes (disk full?)")
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def _open_locked(self) -> int:
        """The log's descriptor, exclusively flocked (other processes; released when it closes).

        ``remove_user`` replaces the file by a rename: a writer that opened the old file before
        the rename finds, once it holds the lock, that the path names another file, and opens again
        (else its line would go to the unlinked old file and be lost)."""
        while True:
            # read access only to peek at the last byte (torn-line repair); writes always append
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            if current.st_ino == os.fstat(fd).st_ino:
                return fd
            os.close(fd)

    def remove_user(self, user_id: str) -> int:
        """Rewrite the log without this person's swipes (their right to be forgotten); returns how
        many were removed. Atomic: a crash leaves the old log or the new one, never half of one."""
        return self._remove(lambda line: line.get("user_id") == user_id)

    def remove_swipe(self, user_id: str, item_id: int) -> int:
        """Rewrite the log without this person's swipes on this item (an undo): the log stays the
        record a profile can be rebuilt from, so an undone swipe must not come back from it."""
        return self._remove(lambda line: line.get("user_id") == user_id and line.get("item_id") == int(item_id))

    def _remove(self, matches) -> int:
        with self._lock:
            fd = self._open_locked()
            try:
                size = os.fstat(fd).st_size
                kept, removed = [], 0
                for raw in os.pread(fd, size, 0).split(b"\n") if size else []:
                    if not raw.strip():
                        continue
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        line = None  # a torn or unreadable line: kept as it was, as readers skip it
                    if isinstance(line, dict) and matches(line):
                        removed += 1
                    else:
                        kept.append(raw + b"\n")
                if removed:
                    write_bytes_atomic(self.path, b"".join(kept))
                return removed
            finally:
                os.close(fd)

    def log(self, **fields: object) -> FeedbackRecord:
        """Validate and append in one call (raises FeedbackError on bad fields)."""
        return self.append(make_record(**fields))


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def iter_feedback(path: Path | str | None = None) -> Iterator[FeedbackRecord]:
    """Valid records in file order; a torn last line and bad lines are skipped with a warning."""
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    # data ends with "\n" when the last write completed: the final split element is then empty
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, 1):
        if not raw.strip():
            continue
        record = _parse_line(raw, path, number)
        if record is not None:
            yield record
    if tail.strip():
        log.warning("%s: ignoring a torn last line (%d bytes, no newline): a writer stopped mid-line",
                    path, len(tail))


def read_feedback(path: Path | str | None = None) -> list[FeedbackRecord]:
    """All valid records of the log (see ``iter_feedback``); an absent log reads as empty."""
    return list(iter_feedback(path))


def _parse_line(raw: bytes, path: Path, number: int) -> FeedbackRecord | None:
    try:
        return FeedbackRecord.model_validate(json.loads(raw))
    except ValueError as exc:  # JSON, UTF-8 and pydantic's ValidationError all derive from it
        log.warning("%s line %d: skipping an unreadable record (%s)", path, number,
                    " ".join(str(exc).split())[:200])
        return None
