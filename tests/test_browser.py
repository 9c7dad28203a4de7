"""The chat UI in Debian's headless chromium (Playwright), at a desktop size (1280x800, keyboard and
mouse) and a phone size (390x844, touch): a real conversation with cards inside it, swipes, undo,
a reload, an earlier answer's card; axe-core's accessibility check on each; a persona start; the
Traces tab for the operator only; a failed message kept in the box.

Screenshots and axe reports go to test-artifacts/ (gitignored). axe-core is npm's package, which
tests/prepare.sh installs under .cache/npm/ (never fetched at test time)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from eval.load_test import stored_swipes
from tests.app_server import running_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's package (tests/prepare.sh installs it); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 90_000  # a turn on a busy 2-core machine, plus Gradio's queue and re-render
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ADMIN_TOKEN = "browser-admin-" + "y" * 24
# internals that belong to the operator's view only
INTERNALS = ("ranked #", "score", "EASE", "SVD", "two-tower", "two_tower", "offline parser", "No LLM")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("browser"), env={"CINEAGENT_ADMIN_TOKEN": ADMIN_TOKEN}) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run tests/prepare.sh"
    with sync_playwright() as playwright:
        # launch() gives every browser a fresh temporary user-data-dir, removed on close
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, size: dict, touch: bool = False):
    """A page in a context of its own (its own local storage: a new visitor)."""
    context = browser.new_context(viewport=size, has_touch=touch, is_mobile=touch)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: print(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.js_errors = errors
    return page


@pytest.fixture
def desktop(browser):
    page = new_page(browser, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser):
    page = new_page(browser, PHONE, touch=True)
    yield page
    page.context.close()


def open_chat(page, url: str) -> None:
    page.goto(url)
    page.locator("#conversation .log").wait_for()
    # the person line is drawn by the page's load event, once the models are up
    expect(page.locator("#who")).to_contain_text("profile", timeout=TIMEOUT_MS)


def message_box(page):
    return page.get_by_role("textbox", name="Message CineAgent")


def turns(page):
    return page.locator("#conversation .turn")


def ask(page, message: str) -> list[int]:
    """Type ``message``, press Enter and wait for its answer: the item ids of the new turn's cards."""
    before = turns(page).count()
    box = message_box(page)
    box.focus()
    page.keyboard.type(message)
    page.keyboard.press("Enter")
    expect(turns(page)).to_have_count(before + 1, timeout=TIMEOUT_MS)
    newest = turns(page).last
    expect(newest.locator(".msg.user .said")).to_have_text(message)
    expect(page.locator("#pending .pending-turn")).to_have_count(0)   # the typing indicator is gone
    return [int(i) for i in newest.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.item)")]


def card(page, turn: int, item: int):
    return turns(page).nth(turn).locator(f'.card[data-item="{item}"]')


def settled(page, turn: int, item: int, state: str) -> None:
    """The card shows ``state`` and the server has answered for it (``#swipe-status``)."""
    expect(card(page, turn, item)).to_have_attribute("data-state", state)
    expect(page.locator(f'#swipe-status [data-item="{item}"]')).to_have_attribute("data-state", state)


def swipe(page, locator, dx: int) -> None:
    """A finger drag across a card (Chrome's touch input, as a phone sends it)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + min(30, box["height"] / 3)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    # level: a drag with a vertical part would also start a scroll fling, and Chrome turns the next
    # tap during a fling into a stop, not a click (as on a phone)
    for step in range(1, 11):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + dx * step / 10, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def axe_violations(page, name: str) -> list[dict]:
    """axe-core's WCAG 2.x A/AA check of the page as it is; the report goes to test-artifacts/."""
    assert AXE.exists(), f"{AXE} is missing: run tests/prepare.sh"
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))""")
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(found, indent=1))
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    print(f"\naxe {name}: {len(found)} violations, {len(serious)} serious/critical "
          f"{[(v['id'], v['impact'], len(v['nodes'])) for v in found]}")
    return serious


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"))


def feedback(server) -> list[tuple]:
    return [(r.user_id, r.item_id, r.action, r.trace_id) for r in stored_swipes(server.state)]


def test_a_desktop_conversation_by_keyboard(server, desktop, movielens):
    page = desktop
    ARTIFACTS.mkdir(exist_ok=True)
    open_chat(page, server.url)
    expect(page.get_by_role("tab", name="Traces")).to_have_count(0)   # a visitor never sees everyone's turns
    expect(page.locator("#conversation .welcome")).to_be_visible()
    for text in INTERNALS:
        expect(page.locator("body")).not_to_contain_text(text)
    assert axe_violations(page, "desktop-first") == []
    shot(page, "desktop-first")

    # keyboard only: Tab from the top of the page reaches the message box
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#msg') !== null"):
            break
    else:
        raise AssertionError("Tab never reached the message box")
    # Enter on an empty box does nothing: no bubble, no turn, no person created
    page.keyboard.press("Enter")
    page.wait_for_timeout(800)
    expect(turns(page)).to_have_count(0)
    expect(page.locator("#pending .pending-turn")).to_have_count(0)
    assert not feedback(server)

    # the typing indicator shows while the agent works (noted by an observer: it may last only ms)
    page.evaluate("""() => { window.sawTyping = false; new MutationObserver(() => {
        if (document.querySelector('#pending .typing')) window.sawTyping = true; })
        .observe(document.querySelector('#pending'), {childList: true, subtree: true}); }""")
    first = ask(page, "a comedy")
    assert page.evaluate("window.sawTyping"), "no typing indicator"
    assert len(first) >= 5 and all("Comedy" in movielens.movies[i].genres for i in first)
    newest = turns(page).last
    # one answer: a short reply and its cards, each item once, no numbered list beside them
    expect(newest.locator(".reply")).to_contain_text("omedy")  # the reply names the request
    assert newest.locator("ol").count() == 0 and len(set(first)) == len(first)
    assert page.locator(".card").count() == len(first), "cards appear in the conversation only"
    expect(page.locator("#who")).to_contain_text("started from scratch")
    first_card = card(page, 0, first[0])
    expect(first_card.locator(".chip").first).to_be_visible()
    title = movielens.movies[first[-1]].display_title
    expect(page.get_by_role("button", name=f"Like {title}", exact=True)).to_have_count(1)

    # keyboard only: from the box, Shift+Tab reaches the last card's Like, Tab its Undo
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Like {title}"
    page.keyboard.press("Enter")
    settled(page, 0, first[-1], "like")
    expect(page.get_by_role("button", name=f"Like {title}", exact=True)).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Undo {title}"
    page.keyboard.press("Enter")
    settled(page, 0, first[-1], "none")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Like {title}"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Dislike {title}"
    page.keyboard.press("Enter")
    settled(page, 0, first[-1], "dislike")
    expect(page.locator("#who")).to_contain_text("1 rating or swipe")
    records = feedback(server)
    person = records[0][0]
    assert person.startswith("p_"), "a visitor is a person of their own, never a MovieLens user"
    trace = turns(page).first.get_attribute("data-trace")
    assert records == [(person, first[-1], "dislike", trace)], "the undone like left the log"

    # why this pick, in sentences; no model names, ranks or scores
    first_card.locator("summary").click()
    expect(first_card.locator(".card-why p").first).to_be_visible()
    for text in INTERNALS:
        expect(page.locator("#conversation")).not_to_contain_text(text)
    shot(page, "desktop-answer")

    second = ask(page, "no horror please")
    assert first[-1] not in second, "a disliked movie came back"
    assert all("Horror" not in movielens.movies[i].genres for i in second)
    # the earlier answer keeps its cards and buttons: like one of them (mouse)
    card(page, 0, first[1]).locator(".like-btn").click()
    settled(page, 0, first[1], "like")
    assert feedback(server)[-1] == (person, first[1], "like", trace)
    assert axe_violations(page, "desktop-answered") == []
    shot(page, "desktop-refined")

    # a reload finds the conversation and the swipes as they were
    page.reload()
    page.locator("#conversation .log").wait_for()
    expect(turns(page)).to_have_count(2)
    expect(card(page, 0, first[1])).to_have_attribute("data-state", "like")
    expect(card(page, 0, first[-1])).to_have_attribute("data-state", "dislike")
    expect(page.locator("#who")).to_contain_text("2 ratings and swipes")
    third = ask(page, "show me more")
    assert first[-1] not in third
    assert {r[0] for r in feedback(server)} == {person}
    expect(page.get_by_role("tab", name="Traces")).to_have_count(0)
    assert page.js_errors == []

    # their data: shown to them, then deleted everywhere, and the browser forgets them
    page.locator("#data-panel").get_by_text("Your data").first.click()
    page.locator("#export-me").click()
    expect(page.locator("#export-view")).to_contain_text(person, timeout=TIMEOUT_MS)
    page.locator("#delete-me").click()
    page.locator("#data-status").get_by_text("Deleted").wait_for()
    page.locator("#who").get_by_text("new visitor").wait_for()
    assert stored_swipes(server.state) == []
    page.reload()
    page.locator("#who").get_by_text("new visitor").wait_for()


def test_a_phone_conversation_by_touch(server, phone, movielens):
    page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    open_chat(page, server.url)

    def on_first_screen(locator) -> bool:
        box = locator.bounding_box()
        return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]

    page.wait_for_function("() => { const r = document.querySelector('#msg textarea, #msg input')"
                           ".getBoundingClientRect(); return r.bottom <= innerHeight && r.top >= 0; }",
                           timeout=TIMEOUT_MS)   # the page fits the conversation to the screen once laid out
    assert on_first_screen(message_box(page)), "the message box is on the first screen"
    assert axe_violations(page, "phone-first") == []
    shot(page, "phone-first")

    first = ask(page, "a funny sci-fi like Men in Black")
    assert len(first) >= 5
    assert page.evaluate("window.scrollY") == 0 and on_first_screen(message_box(page))
    assert on_first_screen(turns(page).last.locator(".reply")), "the newest answer is in view"

    swipe(page, card(page, 0, first[0]), 160)      # right: like
    settled(page, 0, first[0], "like")
    swipe(page, card(page, 0, first[1]), -160)     # left: dislike
    settled(page, 0, first[1], "dislike")
    shot(page, "phone-swiped")
    # Chrome takes a tap within a few hundred ms of a drag as the end of that gesture, not a click
    page.wait_for_timeout(600)
    card(page, 0, first[1]).locator(".undo-btn").tap()
    settled(page, 0, first[1], "none")
    # a short drag is no swipe, and a vertical one scrolls
    swipe(page, card(page, 0, first[2]), 40)
    page.wait_for_timeout(500)
    expect(card(page, 0, first[2])).to_have_attribute("data-state", "none")

    # a swipe never blocks typing: a draft survives a swipe's round trip
    message_box(page).fill("a draft")
    swipe(page, card(page, 0, first[3]), 160)
    settled(page, 0, first[3], "like")
    expect(message_box(page)).to_have_value("a draft")
    message_box(page).fill("")

    second = ask(page, "something older, from the 80s")
    assert on_first_screen(turns(page).last.locator(".reply")), "the newest answer is in view"
    assert on_first_screen(message_box(page))
    shot(page, "phone-refined")

    page.reload()
    page.locator("#conversation .log").wait_for()
    expect(turns(page)).to_have_count(2)
    assert on_first_screen(turns(page).last.locator(".reply"))
    # an earlier answer's card, after the reload, by touch
    swipe(page, card(page, 0, first[4]), 160)
    settled(page, 0, first[4], "like")
    trace = turns(page).first.get_attribute("data-trace")
    records = [r for r in feedback(server) if r[3] == trace]   # the log is shared with the other tests
    assert [(r[1], r[2]) for r in records] == [(first[0], "like"), (first[3], "like"), (first[4], "like")]
    assert len({r[0] for r in records}) == 1 and records[0][0].startswith("p_")
    assert second and axe_violations(page, "phone-answered") == []
    shot(page, "phone-reloaded")
    assert page.js_errors == []


def test_a_visitor_may_start_from_a_persona_described_by_taste(server, desktop):
    page = desktop
    open_chat(page, server.url)
    page.locator("#persona-panel").get_by_text("Start from a MovieLens persona").first.click()
    page.get_by_text("copies their ratings into a new profile of your own").wait_for()
    page.locator("#persona input").click()
    option = page.get_by_role("option").filter(has_text="loves").first
    label = option.inner_text()
    assert "MovieLens rater #" in label and "favourites:" in label
    number = label.split("#", 1)[1].split(":", 1)[0]
    option.click()
    page.locator("#start-over").click()
    expect(page.locator("#who")).to_contain_text(f"started from MovieLens persona #{number}")
    assert len(ask(page, "a thriller")) >= 5
    shot(page, "persona")


def test_only_an_operator_sees_the_traces_tab_with_the_internals(server, desktop):
    page = desktop
    open_chat(page, server.url)
    expect(page.get_by_role("tab", name="Traces")).to_have_count(0)
    # the first screen's examples ask for themselves
    page.get_by_role("button", name="a funny sci-fi like Men in Black").click()
    expect(turns(page)).to_have_count(1)
    expect(turns(page).last.locator(".said")).to_have_text("a funny sci-fi like Men in Black")
    ask(page, "a western")
    trace = turns(page).last.get_attribute("data-trace")

    page.goto(f"{server.url}/operator")
    page.locator("#admin-token").fill("not the admin token")
    page.locator("#operator-login").click()
    page.get_by_text("That is not the admin token").wait_for()
    page.locator("#admin-token").fill(ADMIN_TOKEN)
    page.locator("#operator-login").click()
    page.wait_for_url(f"{server.url}/")
    page.locator("#conversation .log").wait_for()
    page.get_by_role("tab", name="Traces").click()
    expect(page.locator("#parser-note")).to_contain_text("offline parser", timeout=TIMEOUT_MS)
    # the local trace log is written in batches, about a second behind the turns: refresh as an
    # operator would until the last turn is in it
    for _ in range(30):
        if trace[:12] in (page.locator("#turns").text_content() or ""):
            break
        page.wait_for_timeout(500)
        page.locator("#refresh-traces").click()
    expect(page.locator("#turns")).to_contain_text(trace[:12], timeout=TIMEOUT_MS)
    expect(page.locator("#steps")).to_contain_text("intent_parse", timeout=TIMEOUT_MS)
    expect(page.locator("#picks")).to_contain_text(trace[:12], timeout=TIMEOUT_MS)
    shot(page, "traces")


def test_the_api_docs_render_from_local_files(server, desktop):
    requested: list[str] = []
    desktop.on("request", lambda r: requested.append(r.url))
    desktop.goto(f"{server.url}/docs")
    expect(desktop.locator(".swagger-ui .info .title")).to_contain_text("CineAgent", timeout=TIMEOUT_MS)
    expect(desktop.locator(".swagger-ui")).to_contain_text("/api/feedback/undo")
    assert requested and all(url.startswith(server.url) for url in requested), "every asset is local"
    shot(desktop, "docs")


def test_a_message_that_fails_is_kept_with_the_reason_beside_it(tmp_path, browser):
    # one turn a minute per person: the second message is refused
    with running_app(tmp_path, env={"CINEAGENT_RATE_TURNS_PERSON": "1"}) as app:
        page = new_page(browser, DESKTOP)
        try:
            open_chat(page, app.url)
            ask(page, "a comedy")
            message_box(page).fill("a western please")
            message_box(page).press("Enter")
            expect(page.locator("#chat-error")).to_contain_text("Not sent", timeout=TIMEOUT_MS)
            expect(message_box(page)).to_have_value("a western please")
            expect(turns(page)).to_have_count(1)
            expect(page.locator("#pending .pending-turn")).to_have_count(0)
            shot(page, "failed-message")
        finally:
            page.context.close()
