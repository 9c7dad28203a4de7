"""The chat UI's stream of drafts (``web.ui._drafts_until``): the newest draft each time, none once
the turn is done (the finished turn draws itself)."""
from __future__ import annotations

import asyncio

from web.ui import _drafts_until, draft_html


def test_drafts_come_newest_first_and_stop_with_the_turn():
    async def run():
        drafts: asyncio.Queue[str] = asyncio.Queue()

        async def turn():
            drafts.put_nowait("Some")
            await asyncio.sleep(0.05)
            drafts.put_nowait("Some sci-fi")
            drafts.put_nowait("Some sci-fi picks")   # two at once: one update, the newer
            await asyncio.sleep(0.05)
            drafts.put_nowait("Some sci-fi picks for tonight.")   # with the end: never drawn as a draft
            return "done"

        task = asyncio.ensure_future(turn())
        shown = [d async for d in _drafts_until(task, drafts)]
        return shown, task.result()

    assert asyncio.run(run()) == (["Some", "Some sci-fi picks"], "done")


def test_a_turn_without_drafts_yields_none():
    async def run():
        task = asyncio.ensure_future(asyncio.sleep(0.01, result="done"))
        return [d async for d in _drafts_until(task, asyncio.Queue())]

    assert asyncio.run(run()) == []


def test_a_draft_is_escaped_and_names_its_message():
    html = draft_html('a "comedy" <b>', "Some <i>picks</i>")
    assert 'data-draft-for="a &quot;comedy&quot; &lt;b&gt;"' in html and "&lt;i&gt;picks&lt;/i&gt;" in html
