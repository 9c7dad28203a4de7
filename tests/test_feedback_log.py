"""The swipe log under concurrent threads and processes, kills, torn lines and bad records."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data.feedback import FeedbackError, FeedbackLog, make_record, read_feedback

REPO = Path(__file__).resolve().parents[1]

# A writer process: WRITER_ID, COUNT (-1: until killed) and the log path come in argv.
WRITER = """
import sys
from data.feedback import FeedbackLog
writer, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = FeedbackLog(path)
seq = 0
while count < 0 or seq < count:
    log.log(user_id=f"w{writer}", session_id=f"s{writer}", item_id=seq + 1, action="like" if seq % 2 else "dislike",
            trace_id=f"{writer}-{seq}", rank=seq % 10 + 1, query="x" * (seq % 300))
    seq += 1
"""


def spawn_writer(writer: str, count: int, path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, writer, str(count), str(path)], cwd=REPO)


def swipe(log: FeedbackLog, writer: str, seq: int) -> None:
    log.log(user_id=f"w{writer}", session_id=f"s{writer}", item_id=seq + 1, action="like" if seq % 2 else "dislike",
            trace_id=f"{writer}-{seq}", rank=seq % 10 + 1, query="x" * (seq % 300))


def test_round_trip_keeps_every_field(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    written = log.log(user_id="196", session_id="s1", item_id=50, action="like", trace_id="t1", rank=3,
                      query="a sci-fi classic")
    line = json.loads((tmp_path / "feedback.jsonl").read_text())
    assert set(line) == {"ts", "user_id", "session_id", "item_id", "action", "trace_id", "rank", "query"}
    assert read_feedback(log.path) == [written]
    assert written.ts.utcoffset().total_seconds() == 0


def test_a_thousand_swipes_from_threads_and_processes(tmp_path):
    """20 concurrent writers (16 threads here + 4 processes), 50 swipes each: exactly 1,000 lines."""
    path = tmp_path / "feedback.jsonl"
    per_writer, n_threads, n_procs = 50, 16, 4
    procs = [spawn_writer(f"p{i}", per_writer, path) for i in range(n_procs)]
    log = FeedbackLog(path)
    start = threading.Barrier(n_threads)

    def run(writer: str) -> None:
        start.wait()
        for seq in range(per_writer):
            swipe(log, writer, seq)

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(timeout=120) == 0 for p in procs)

    raw_lines = path.read_bytes().split(b"\n")
    assert raw_lines[-1] == b"", "the log must end with a complete line"
    records = read_feedback(path)
    assert len(raw_lines) - 1 == len(records) == (n_threads + n_procs) * per_writer == 1000
    seen = {r.trace_id for r in records}
    expected = {f"{w}-{s}" for w in [f"t{i}" for i in range(n_threads)] + [f"p{i}" for i in range(n_procs)]
                for s in range(per_writer)}
    assert seen == expected, "every swipe is there exactly once"
    for writer in ("t0", "p0"):  # each writer's own lines stay in the order it wrote them
        mine = [int(r.trace_id.split("-")[1]) for r in records if r.user_id == f"w{writer}"]
        assert mine == list(range(per_writer))


def test_kill_9_mid_stream_leaves_earlier_lines_intact(tmp_path):
    path = tmp_path / "feedback.jsonl"
    survivor = FeedbackLog(path)
    swipe(survivor, "before", 0)
    proc = spawn_writer("victim", -1, path)
    try:
        deadline = time.monotonic() + 60
        while (not path.exists() or path.stat().st_size < 20_000) and time.monotonic() < deadline:
            time.sleep(0.02)
        snapshot = path.read_bytes()
        # cut at the last complete line seen before the kill: those lines must never change
        prefix = snapshot[: snapshot.rfind(b"\n") + 1]
        assert prefix.count(b"\n") > 20, "the writer did not get going"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    swipe(survivor, "after", 0)  # a writer arriving after the crash still produces a readable line
    after = path.read_bytes()
    assert after.startswith(prefix)
    records = read_feedback(path)
    victim = [int(r.trace_id.split("-")[1]) for r in records if r.user_id == "wvictim"]
    assert victim == list(range(len(victim))) and len(victim) >= prefix.count(b"\n") - 1
    assert records[0].trace_id == "before-0" and records[-1].trace_id == "after-0"


def test_torn_last_line_is_skipped_with_a_warning_and_the_next_append_is_readable(tmp_path, caplog):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    swipe(log, "a", 0)
    swipe(log, "a", 1)
    whole = log.path.read_bytes()
    with open(log.path, "ab") as fh:
        fh.write(whole[: len(whole) // 3])  # half a record, no newline: what a crash mid-write leaves
    with caplog.at_level(logging.WARNING, logger="data.feedback"):
        assert [r.trace_id for r in read_feedback(log.path)] == ["a-0", "a-1"]
    assert "torn last line" in caplog.text

    swipe(log, "a", 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data.feedback"):
        assert [r.trace_id for r in read_feedback(log.path)] == ["a-0", "a-1", "a-2"]
    assert "line 3" in caplog.text, "the old fragment is now a bad line of its own, skipped by number"


def test_bad_lines_are_skipped_not_fatal(tmp_path, caplog):
    path = tmp_path / "feedback.jsonl"
    good = make_record(user_id="7", session_id="s", item_id=1, action="like")
    path.write_bytes(b"\n".join([good.to_line().rstrip(), b"{not json", b'{"user_id": "7"}', b"\xff\xfe",
                                 b"", good.to_line().rstrip()]) + b"\n")
    with caplog.at_level(logging.WARNING, logger="data.feedback"):
        assert read_feedback(path) == [good, good]
    assert all(f"line {n}: skipping" in caplog.text for n in (2, 3, 4))


def test_absent_log_reads_empty(tmp_path):
    assert read_feedback(tmp_path / "nothing.jsonl") == []


@pytest.mark.parametrize("fields, named", [
    ({"action": "love"}, "action"),
    ({"item_id": 0}, "item_id"),
    ({"user_id": ""}, "user_id"),
    ({"rank": 0}, "rank"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_records_name_the_field(fields, named):
    base = {"user_id": "196", "session_id": "s", "item_id": 50, "action": "like"}
    with pytest.raises(FeedbackError, match=named):
        make_record(**{**base, **fields})


def test_invalid_action_lists_the_valid_ones():
    with pytest.raises(FeedbackError, match="'like' or 'dislike'"):
        make_record(user_id="196", session_id="s", item_id=50, action="love")
