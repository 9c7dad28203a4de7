"""Swipes as JSON Lines: validation of a swipe, `cineagent feedback export`, and reading the
``feedback.jsonl`` of earlier versions (torn and bad lines skipped, not fatal)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from data.event_store import EventStore
from data.events import FeedbackError, make_swipe
from data.feedback import read_feedback, write_feedback

REPO = Path(__file__).resolve().parents[1]
KEYS = {"ts", "user_id", "session_id", "item_id", "action", "trace_id", "rank", "query"}


def test_export_writes_every_swipe_in_the_line_schema(tmp_path):
    """The command reads the configured store and writes one line per swipe, oldest first, with
    exactly the keys of the old feedback.jsonl; the lines read back as the same swipes."""
    home = tmp_path / "home"
    store = EventStore(f"sqlite:///{home / 'cineagent.sqlite3'}")
    written = [make_swipe(user_id="196", session_id="s1", item_id=50 + i, action="like" if i % 2 else "dislike",
                          trace_id=f"t{i}", rank=i + 1, query="a sci-fi classic") for i in range(3)]
    for swipe in written:
        store.add_swipe(swipe)
    out = tmp_path / "swipes.jsonl"
    env = {"CINEAGENT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "cli", "feedback", "export", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [set(line) for line in lines] == [KEYS] * 3
    assert read_feedback(out) == written
    to_stdout = subprocess.run([sys.executable, "-m", "cli", "feedback", "export"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=120)
    assert to_stdout.stdout == out.read_text()


def test_write_feedback_round_trip(tmp_path):
    swipes = [make_swipe(user_id="7", session_id="s", item_id=1, action="like")]
    assert write_feedback(swipes, tmp_path / "out.jsonl") == 1
    assert read_feedback(tmp_path / "out.jsonl") == swipes
    assert swipes[0].ts.utcoffset().total_seconds() == 0


def test_bad_and_torn_lines_are_skipped_not_fatal(tmp_path, caplog):
    path = tmp_path / "feedback.jsonl"
    good = make_swipe(user_id="7", session_id="s", item_id=1, action="like")
    path.write_bytes(b"\n".join([good.to_line().rstrip(), b"{not json", b'{"user_id": "7"}', b"\xff\xfe",
                                 b"", good.to_line().rstrip()]) + b"\n" + b'{"user_id": "7", "sess')
    with caplog.at_level(logging.WARNING, logger="data.feedback"):
        assert read_feedback(path) == [good, good]
    assert all(f"line {n}: skipping" in caplog.text for n in (2, 3, 4)) and "torn last line" in caplog.text


def test_absent_file_reads_empty(tmp_path):
    assert read_feedback(tmp_path / "nothing.jsonl") == []


@pytest.mark.parametrize("fields, named", [
    ({"action": "love"}, "action"),
    ({"item_id": 0}, "item_id"),
    ({"user_id": ""}, "user_id"),
    ({"rank": 0}, "rank"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_swipes_name_the_field(fields, named):
    base = {"user_id": "196", "session_id": "s", "item_id": 50, "action": "like"}
    with pytest.raises(FeedbackError, match=named):
        make_swipe(**{**base, **fields})


def test_invalid_action_lists_the_valid_ones():
    with pytest.raises(FeedbackError, match="'like' or 'dislike'"):
        make_swipe(user_id="196", session_id="s", item_id=50, action="love")
