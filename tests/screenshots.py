"""Screenshots of the Chat, People, Memory, Compare and Teach tabs at 1280×800 and 390×844 for docs/screenshots/.

``python -m tests.screenshots OUT_DIR [TAB ...]`` seeds a fresh data directory with two people
(Maya, a vegetarian marathon runner, and Tom, a night-shift nurse; enough exchanges for query
clusters), starts a real server, and drives headless Chromium through each tab at both sizes.
The Teach shots use another data directory, the test fixture's imported Friends dialogues (enough
to learn from), and a two-step run so the result is shown. ``TAB``s (chat, people, memory,
compare, teach) limit it to those. Not a test: a way to look at what ships.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.test_web_manage import seed

TABS = ("chat", "people", "memory", "compare", "teach")
SIZES = ((1280, 800), (390, 844))

MAYA = ["What should I eat before my long run on Sunday?", "Any vegetarian protein ideas for dinner?",
        "How do I taper before a marathon?", "Is tofu enough protein for a runner?", "What pace for an easy 10k?",
        "Lentil recipes that keep well for lunch?", "How many gels for a marathon?", "Best stretches after a long run?",
        "Should I run when my calf is sore?", "A vegetarian breakfast before a race?", "How do I run hills better?",
        "What to eat the night before a marathon?"]
TOM = ["How do I sleep during the day after a night shift?", "Is coffee ok at 3am on shift?",
       "Quick meals for a nurse on nights?", "How do I switch back to days on my week off?",
       "Blackout curtains or an eye mask?", "How do I stay alert at 4am on the ward?",
       "Snacks that don't make me sleepy at night?", "How do I explain night shifts to my kids?",
       "Is melatonin safe to take after a shift?", "Exercise that fits a night-shift week?",
       "How do I keep my energy on a twelve-hour shift?", "What to eat when I get home at 8am?"]


def turns(questions: list[str], reply: str, month: int) -> list[tuple[str, str, str]]:
    return [(q, reply.format(q=q.lower().rstrip("?")), f"2026-{month:02d}-{1 + i:02d}T09:{i:02d}:00+00:00")
            for repeat in range(2) for i, q in enumerate(questions)]


def main(out: Path, tabs=TABS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if set(tabs) - {"teach"}:
            household_shots(browser, out, tabs)
        if "teach" in tabs:
            teach_shots(browser, out)
        browser.close()


def household_shots(browser, out: Path, tabs) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="confidant-shots-")) / "data"
    seed(data_dir, {"Maya": turns(MAYA, "About {q}: keep it simple, plenty of plant protein and an easy pace.", 10),
                    "Tom": turns(TOM, "About {q}: protect your sleep first, then plan meals around the shift.", 11)})
    with running_server(data_dir, ready_timeout=600) as url:
        for width, height in SIZES:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            page.goto(url)
            expect(page.locator("#cf-person")).to_be_visible()
            if "chat" in tabs:
                page.click("#cf-person input")
                page.get_by_role("option", name="Maya", exact=True).click()
                expect(page.locator('#cf-chat [data-testid="user"]').first).to_be_visible()
                page.screenshot(path=out / f"chat-{width}.png", full_page=True)
            if "people" in tabs:
                page.get_by_role("tab", name="People").click()
                expect(page.locator("#cf-pp-topics img")).to_be_visible()
                page.wait_for_timeout(8000)  # the household's charts are drawn after the person's
                page.screenshot(path=out / f"people-{width}.png", full_page=True)
            if "memory" in tabs:
                page.get_by_role("tab", name="Memory").click()
                page.click("#cf-mem-person input")
                page.get_by_role("option", name="Maya", exact=True).click()
                expect(page.locator("#cf-mem-results")).to_contain_text("protein")
                page.wait_for_timeout(2000)  # the table is re-drawn after its text arrives
                page.screenshot(path=out / f"memory-{width}.png", full_page=True)
            if "compare" in tabs:
                compare_shot(page, out / f"compare-{width}.png")
            page.close()


def compare_shot(page, path: Path) -> None:
    page.get_by_role("tab", name="Compare").click()
    for name in ("Maya", "Tom"):
        page.click("#cf-cmp-people input")
        page.get_by_role("option", name=name, exact=True).click()
    page.fill("#cf-cmp-question textarea", "What should I eat tonight?")
    page.click("#cf-cmp-ask")
    answers = page.locator("#cf-cmp-answers .cf-cmp-answer")
    expect(answers).to_have_count(2)
    for i in range(2):
        expect(answers.nth(i)).not_to_have_text("…", timeout=600_000)  # a loaded machine answers slowly
    page.wait_for_timeout(1000)
    page.screenshot(path=path, full_page=True)


def teach_shots(browser, out: Path) -> None:
    from tests.test_web_teach import TINY_RUN, imported_friends  # here: that module imports this one's data

    data_dir = Path(tempfile.mkdtemp(prefix="confidant-shots-")) / "data"
    imported_friends(data_dir)
    with running_server(data_dir, env_extra=TINY_RUN, ready_timeout=600) as url:
        pages = []
        for width, height in SIZES:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(900_000)
            page.goto(url)
            page.get_by_role("tab", name="Teach").click()
            expect(page.locator("#cf-teach-sources")).to_contain_text("Estimated training time")
            page.screenshot(path=out / f"teach-{width}.png", full_page=True)
            pages.append((width, page))
        pages[0][1].click("#cf-teach-start")
        for width, page in pages:
            page.get_by_role("tab", name="Compare").click()  # back on the tab: the run is picked up
            page.get_by_role("tab", name="Teach").click()
            expect(page.locator("#cf-teach-progress")).to_contain_text("Step")
            page.screenshot(path=out / f"teach-progress-{width}.png", full_page=True)
        for width, page in pages:
            expect(page.locator("#cf-teach-result")).to_contain_text("Held-out loss")
            page.screenshot(path=out / f"teach-result-{width}.png", full_page=True)
            page.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"), tuple(sys.argv[2:]) or TABS)
