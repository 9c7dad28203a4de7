"""The chat UI in Debian's headless chromium (Playwright): a visitor asks, swipes and asks again as a
person of their own; a persona start; the Traces tab for the operator only."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from data.feedback import read_feedback
from tests.app_server import running_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"  # Debian's package (tests/prepare.sh installs it); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 90_000  # a turn on a busy 2-core machine, plus Gradio's queue and re-render


ADMIN_TOKEN = "browser-admin-" + "y" * 24


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("browser"), env={"CINEAGENT_ADMIN_TOKEN": ADMIN_TOKEN}) as app:
        yield app


@pytest.fixture
def page():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run tests/prepare.sh"
    with sync_playwright() as playwright:
        # launch() gives every browser a fresh temporary user-data-dir, removed on close
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def card_ids(page) -> list[int]:
    return [int(i.removeprefix("card-")) for i in page.eval_on_selector_all(".card", "els => els.map(e => e.id)")]


def turn_class(page) -> str:
    return page.eval_on_selector(".card", "e => [...e.classList].find(c => c.startsWith('turn-'))")


def ask(page, message: str, previous_turn: str | None = None) -> list[int]:
    """Send ``message`` and wait for the new turn's cards (not the previous turn's) to render."""
    box = page.locator("#msg").get_by_role("textbox")
    box.fill(message)
    page.locator("#send").click()
    page.wait_for_function(
        "prev => { const cards = document.querySelectorAll('.card');"
        " return cards.length >= 5 && (!prev || ![...cards].some(c => c.classList.contains(prev))); }",
        arg=previous_turn, timeout=TIMEOUT_MS)
    return card_ids(page)


def traces_tab(page):
    return page.get_by_role("tab", name="Traces")


def test_a_visitor_is_a_new_person_who_asks_swipes_and_asks_again(server, page, movielens):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server.url)
    page.locator("#parser-note").get_by_text("offline parser").wait_for()
    page.locator("#who").get_by_text("new visitor").wait_for()
    expect(traces_tab(page)).to_have_count(0)   # a visitor never sees everyone's turns

    first = ask(page, "a comedy")
    assert len(first) >= 5
    assert all("Comedy" in movielens.movies[i].genres for i in first)
    page.locator("#who").get_by_text("started from scratch").wait_for()
    turn = turn_class(page)

    cards = page.locator(".card")
    cards.nth(0).locator(".like-btn").click()
    page.locator("#swipe-status").get_by_text("Liked").wait_for()
    cards.nth(1).locator(".dislike-btn").click()
    page.locator("#swipe-status").get_by_text("Disliked").wait_for()
    liked, disliked = first[0], first[1]

    records = read_feedback(server.state / "feedback.jsonl")
    person = records[0].user_id
    assert person.startswith("p_"), "a visitor is a person of their own, never a MovieLens user"
    assert [(r.user_id, r.item_id, r.action, r.rank, r.query) for r in records] == [
        (person, liked, "like", 1, "a comedy"), (person, disliked, "dislike", 2, "a comedy")]
    assert records[0].trace_id == records[1].trace_id == turn.removeprefix("turn-")
    assert records[0].session_id == records[1].session_id

    cards.nth(0).locator(".card-why").get_by_text("Why this pick?").click()
    page.locator(".card").nth(0).get_by_text("ranked #").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "browser-swiped.png"), full_page=True)

    second = ask(page, "a comedy", previous_turn=turn)
    assert disliked not in second, "a disliked movie came back"
    assert len(second) >= 5
    page.screenshot(path=str(ARTIFACTS / "browser-chat.png"), full_page=True)

    # the browser keeps the person: after a reload it is still them, with their two swipes
    page.reload()
    page.locator("#who").get_by_text("2 ratings and swipes").wait_for()
    third = ask(page, "a comedy")
    assert disliked not in third
    assert {r.user_id for r in read_feedback(server.state / "feedback.jsonl")} == {person}
    expect(traces_tab(page)).to_have_count(0)

    # their data: shown to them, then deleted everywhere, and the browser forgets them
    page.locator("#data-panel").get_by_text("Your data").first.click()
    page.locator("#export-me").click()
    expect(page.locator("#export-view")).to_contain_text(person, timeout=TIMEOUT_MS)
    page.locator("#delete-me").click()
    page.locator("#swipe-status").get_by_text("Deleted").wait_for()
    page.locator("#who").get_by_text("new visitor").wait_for()
    assert read_feedback(server.state / "feedback.jsonl") == []
    page.reload()
    page.locator("#who").get_by_text("new visitor").wait_for()


def test_a_visitor_may_start_from_a_persona_described_by_taste(server, page):
    page.goto(server.url)
    page.locator("#parser-note").get_by_text("offline parser").wait_for()
    page.locator("#persona-panel").get_by_text("Start from a MovieLens persona").first.click()
    page.get_by_text("copies their ratings into a new profile of your own").wait_for()
    page.locator("#persona input").click()
    option = page.get_by_role("option").filter(has_text="loves").first
    label = option.inner_text()
    assert "MovieLens rater #" in label and "favourites:" in label
    number = label.split("#", 1)[1].split(":", 1)[0]
    option.click()
    page.locator("#start-over").click()
    page.locator("#who").get_by_text(f"started from MovieLens persona #{number}").wait_for()
    assert len(ask(page, "a thriller")) >= 5
    page.screenshot(path=str(ARTIFACTS / "browser-persona.png"), full_page=True)


def test_only_an_operator_sees_the_traces_tab(server, page):
    page.goto(server.url)
    page.locator("#parser-note").get_by_text("offline parser").wait_for()
    expect(traces_tab(page)).to_have_count(0)
    ask(page, "a western")
    turn = turn_class(page)

    page.goto(f"{server.url}/operator")
    page.locator("#admin-token").fill("not the admin token")
    page.locator("#operator-login").click()
    page.get_by_text("That is not the admin token").wait_for()
    page.locator("#admin-token").fill(ADMIN_TOKEN)
    page.locator("#operator-login").click()
    page.wait_for_url(f"{server.url}/")
    page.locator("#parser-note").get_by_text("offline parser").wait_for()
    traces_tab(page).click()
    expect(page.locator("#turns")).to_contain_text(turn.removeprefix("turn-")[:12], timeout=TIMEOUT_MS)
    expect(page.locator("#steps")).to_contain_text("intent_parse", timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "browser-traces.png"), full_page=True)
