"""``cineagent bench ui``: from pressing Enter to the answer on screen, in a real browser.

Starts the app (``cineagent serve``, offline parser, limits off) in a scratch home that borrows
the current home's data and models, opens the chat in Debian's headless chromium (Playwright,
``/usr/bin/chromium``), and holds one conversation of ``turns`` messages typed into the box. Each
sample is measured in the page: from the Enter keydown to the first animation frame after the
new turn is in the conversation's DOM, so it covers the page's own work, Gradio's queue round
trip, the turn on the server, the HTML re-render and layout. The first ``warmup`` turns are not
timed. The conversation grows to the 20 turns a browser keeps, so later samples redraw the most.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from eval.bench import percentiles
from eval.load_test import AppProcess, scratch_home
from web.limits import limits_off_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# a conversation: asks, refinements, "more"; cycled
MESSAGES = ("a comedy", "no horror please", "show me more", "a 90s thriller", "something like Toy Story",
            "a funny sci-fi like Men in Black", "nothing too long", "a western", "something romantic",
            "older, from the 80s", "more like that", "an animated film for kids")
GOAL_P95_MS = 300.0

INSTRUMENT = """() => {
  const bench = window.__bench = {samples: [], done: 0, t0: null, last: null};
  const box = document.querySelector('#msg textarea, #msg input');
  const log = document.querySelector('#conversation');
  const newest = () => { const t = log.querySelectorAll('.turn'); return t.length ? t[t.length - 1].dataset.trace : null; };
  bench.last = newest();
  box.addEventListener('keydown', (e) => { if (e.key === 'Enter') bench.t0 = performance.now(); }, true);
  new MutationObserver(() => {
    const trace = newest();
    if (bench.t0 === null || !trace || trace === bench.last) return;
    const t0 = bench.t0;
    bench.t0 = null; bench.last = trace;
    requestAnimationFrame(() => { bench.samples.push(performance.now() - t0); bench.done += 1; });
  }).observe(log, {childList: true, subtree: true});
}"""


def run_ui_bench(turns: int = 50, warmup: int = 3, phone: bool = False, timeout_s: float = 60.0) -> dict:
    from playwright.sync_api import sync_playwright

    size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 800}
    with tempfile.TemporaryDirectory(prefix="cineagent-bench-ui-") as tmp:
        state = scratch_home(Path(tmp) / "home")
        with AppProcess(state, env={"CINEAGENT_PARSER": "offline", **limits_off_env()}) as app:
            ready_s = app.wait_ready()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport=size, has_touch=phone, is_mobile=phone)
                    page.set_default_timeout(timeout_s * 1000)
                    page.goto(app.url)
                    page.locator("#conversation .log").wait_for()
                    page.locator("#who").get_by_text("profile").first.wait_for()
                    page.evaluate(INSTRUMENT)
                    box = page.get_by_role("textbox", name="Message CineAgent")
                    started = time.perf_counter()
                    for i in range(warmup + turns):
                        box.fill(MESSAGES[i % len(MESSAGES)])
                        box.press("Enter")
                        page.wait_for_function(f"window.__bench.done >= {i + 1}")
                    wall_s = time.perf_counter() - started
                    samples = page.evaluate("window.__bench.samples")[warmup:]
                    shown = page.locator("#conversation .turn").count()
                finally:
                    browser.close()
    report = {"size": f"{size['width']}x{size['height']}", "turns": turns, "warmup": warmup, "ready_s": round(ready_s, 2),
              "wall_s": round(wall_s, 2), "turns_shown": shown, "enter_to_reply": percentiles(samples),
              "samples_ms": [round(x, 1) for x in samples],
              "goal_p95_ms": GOAL_P95_MS}
    report["ok"] = report["enter_to_reply"]["p95_ms"] <= GOAL_P95_MS
    return report


def format_report(report: dict) -> str:
    r = report["enter_to_reply"]
    return (f"UI: Enter -> reply on screen, {report['turns']} turns at {report['size']} (after {report['warmup']} "
            f"untimed; {report['turns_shown']} turns on screen at the end)\n"
            f"  p50 {r['p50_ms']:.0f} ms  p95 {r['p95_ms']:.0f} ms  p99 {r['p99_ms']:.0f} ms  max {r['max_ms']:.0f} ms"
            f"  (goal p95 <= {report['goal_p95_ms']:.0f} ms: {'met' if report['ok'] else 'NOT met'})")
