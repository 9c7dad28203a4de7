"""With an LLM configured the reply streams into the chat UI: drafts of the reply grow in the
message's pending bubble while the model writes, and the finished turn replaces them with the
reply as checked (the LLM's words when the validator passed them, else the template's).

Debian's headless chromium (Playwright, the launch of tests/test_browser.py) against the app with
the real local llama.cpp server (SmolLM2-135M, tests/llm_server.py) as its LLM."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from agent.tracing import iter_traces
from tests.app_server import running_app
from tests.test_browser import DESKTOP, TIMEOUT_MS, browser, message_box, new_page, open_chat, shot, turns  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.llm]

# every distinct text the draft bubble shows, in order (an observer: a draft may last only ms)
WATCH_DRAFTS = """() => { window.drafts = []; const seen = () => {
    const draft = document.querySelector('#pending .drafting .draft');
    const text = draft ? draft.textContent : '';
    if (text && text !== window.drafts[window.drafts.length - 1]) window.drafts.push(text); };
  new MutationObserver(seen).observe(document.querySelector('#pending'),
    {childList: true, subtree: true, characterData: true}); }"""


def write_step(state, trace_id: str, timeout_s: float = 30.0) -> dict:
    """The turn's write_reply step from the app's local trace log (written in batches, ~1 s behind)."""
    path = state / "traces" / "traces.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            for turn in iter_traces(path):
                if turn["trace_id"] == trace_id:
                    return next(s for s in turn["steps"] if s["name"] == "write_reply")
        time.sleep(0.5)
    raise AssertionError(f"turn {trace_id} is not in {path}")


def test_with_an_llm_the_reply_streams_then_the_checked_reply_replaces_it(tmp_path, browser, llama_url):
    with running_app(tmp_path, env={
            "CINEAGENT_PARSER": "llm", "CINEAGENT_LLM_BASE_URL": llama_url,
            # one llama.cpp thread on a shared CPU: the parse and the wording each take seconds
            "CINEAGENT_LLM_TIMEOUT_S": "60"}) as app:
        page = new_page(browser, DESKTOP)
        try:
            open_chat(page, app.url)
            page.evaluate(WATCH_DRAFTS)
            message_box(page).fill("a comedy")
            message_box(page).press("Enter")
            expect(turns(page)).to_have_count(1, timeout=TIMEOUT_MS)
            expect(page.locator("#pending .pending-turn")).to_have_count(0)
            drafts = page.evaluate("window.drafts")
            newest = turns(page).last
            final = newest.locator(".reply").text_content()
            step = write_step(app.state, newest.get_attribute("data-trace"))
            print(f"\ndrafts shown: {drafts}\nfinal: {final!r}\nwrite_reply: {step['output']}")
            shot(page, "streamed")
            assert len(set(drafts)) >= 2, f"the reply did not grow in two steps before the answer: {drafts}"
            assert all(b.startswith(a) for a, b in zip(drafts, drafts[1:])), "each draft extends the one before"
            assert newest.locator(".card").count() >= 1, "the cards come with the finished turn"
            # no draft is left on screen: what stays is the reply as checked
            expect(page.locator(".draft")).to_have_count(0)
            assert step["output"]["streamed"] is True
            if step["output"]["written_by"] == "llm":
                assert final.startswith(drafts[-1]), "the last draft is the validated reply"
            else:   # rejected: the template's reply replaced the drafts
                assert step["output"]["rejected"]
            assert page.js_errors == []
        finally:
            page.context.close()
