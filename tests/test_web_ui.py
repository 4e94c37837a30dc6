"""What a person sees in the browser (issue 16, points 4-10): the Memory tab at 1280 px, the People
tab on a phone, a neutral start, deleting a conversation, escaped names, the cloud control.
Headless Chromium (Playwright) against a real server with the real models."""

import re

from playwright.sync_api import expect

from app.render import guess_line
from assistant.store.store import Profile
from assistant.people.identification import Identification
from tests.browser import running_server
from tests.screenshots import MAYA, TOM, turns
from tests.test_web import TIMEOUT_MS, browser_page, db_rows  # noqa: F401 (a fixture)
from tests.test_web_manage import choose, confirm, data_files_contain, open_tab, seed

expect.set_options(timeout=TIMEOUT_MS)
HOUSEHOLD = {"Maya": turns(MAYA, "About {q}: plenty of plant protein and an easy pace.", 10),
             "Tom": turns(TOM, "About {q}: protect your sleep first.", 11)}  # 48 exchanges: clustered


def test_the_guess_names_the_person_with_one_spelling():
    maya = Profile(id=1, name="Maya", created_at="2026-01-01T00:00:00+00:00")
    line = guess_line(Identification(maya, 1.0, True), maya)
    assert line == "🔍 Identified as Maya (100%). Not Maya? It was:"  # str.capitalize() made it "maya"
    html = Profile(id=2, name="<b>Bob</b>", created_at="2026-01-01T00:00:00+00:00")
    assert "<b>" not in guess_line(Identification(html, 0.9, True), html)


def test_memory_tab_fits_1280_and_a_search_with_no_match_says_so(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    page.set_viewport_size({"width": 1280, "height": 800})
    seed(data_dir, HOUSEHOLD)
    with running_server(data_dir) as url:
        page.goto(url)
        open_tab(page, "Memory")
        choose(page, "#cf-mem-person", "Maya")
        table = page.locator("#cf-mem-results")
        expect(table).to_contain_text("plant protein")
        for header in ("Reply", "Matched by", "Topic"):
            box = table.locator("th", has_text=header).first.bounding_box()
            assert box["x"] + box["width"] <= 1280, f"{header} is off-screen"
            assert box["height"] < 80, f"the {header} header wraps"
        topics = table.get_by_role("gridcell").all_inner_texts()[3::7]  # the Topic column
        assert topics and all(re.fullmatch(r"#\d+", t.strip()) for t in topics), topics

        table.get_by_role("gridcell").nth(11).click()  # the second row's Question
        expect(page.locator("#cf-mem-question textarea")).not_to_have_value("")  # the row opened in the editor
        scrolled = table.evaluate("t => [...t.querySelectorAll('*')].map(e => e.scrollLeft).reduce((a, b) => a + b, 0)")
        assert scrolled == 0 and page.evaluate("document.documentElement.scrollWidth") <= 1280

        page.fill("#cf-mem-query input", "xyzzy")
        page.click("#cf-mem-search")
        expect(page.locator("#cf-mem-summary")).to_contain_text("No memories match “xyzzy”.")
        expect(table).not_to_contain_text("plant protein")
        page.fill("#cf-mem-query input", "marathon training")
        page.click("#cf-mem-search")
        expect(page.locator("#cf-mem-summary")).to_contain_text("matching “marathon training”")
        expect(table).to_contain_text("meaning")

        open_tab(page, "People")  # the same household on a phone
        page.set_viewport_size({"width": 390, "height": 844})
        choose(page, "#cf-pp-person", "Maya")
        expect(page.locator("#cf-pp-topics img")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("#cf-pp-topics [data-testid='block-label']:visible").count() == 0  # no label over the title
        row = page.locator("#cf-people-table").get_by_role("row").filter(has_text="Maya").first.inner_text()
        label = re.search(r"#\d+ “[^”]*” \(\d+\)", " ".join(row.split())).group()
        expect(page.locator("#cf-pp-details")).to_contain_text(label)  # "Top topics": the same in both


def test_neutral_start_escaped_names_delete_a_conversation_and_explained_charts(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    secret = "My locker code is 4417"
    seed(data_dir, {"Maya": [(secret, "Noted, I will keep it in mind.", "2026-10-01T09:00:00+00:00"),
                             ("And my bib number?", "You did not say.", "2026-10-01T09:01:00+00:00")],
                    "Tom": [("Is coffee ok at 3am?", "A small one, early in the shift.", "2026-11-01T03:00:00+00:00")]})
    with running_server(data_dir) as url:
        page.goto(url)
        expect(page.locator("#cf-person")).to_be_visible()
        expect(page.locator("#cf-conversations")).not_to_contain_text(secret[:10])
        assert page.locator("#cf-person input").input_value() == ""  # nobody chosen: a shared screen shows nothing
        assert page.locator('#cf-chat [data-testid="user"]').count() == 0
        assert page.locator("#cf-chat button[aria-label='Clear']:visible").count() == 0  # view-only "clear" is gone

        choose(page, "#cf-person", "Maya")
        expect(page.locator('#cf-chat [data-testid="user"]').first).to_contain_text(secret)
        page.click("#cf-delete-conversation")
        expect(page.locator("#cf-delete-text")).to_contain_text("Delete this conversation (2 exchanges) for good?")
        page.click("#cf-delete-cancel")
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges")[0][0] == 3
        page.click("#cf-delete-conversation")
        page.click("#cf-delete-confirm")
        expect(page.get_by_text("Deleted the conversation and its 2 exchanges for good.")).to_be_visible()
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges")[0][0] == 1
        assert data_files_contain(data_dir, secret.encode()) == []  # scrubbed from the file, as forgetting does
        page.reload()
        choose(page, "#cf-person", "Maya")
        assert page.locator('#cf-chat [data-testid="user"]').count() == 0

        open_tab(page, "People")
        page.fill("#cf-pp-new-name input", "<img src=x onerror=window.__pwned=1>")
        page.click("#cf-pp-add")
        expect(page.locator(".toast-body", has_text="Added <img src=x onerror=window.__pwned=1>.")).to_be_visible()
        page.fill("#cf-pp-new-name input", "<b>Bob</b>")
        page.click("#cf-pp-add")
        expect(page.locator("#cf-pp-person input")).to_have_value("<b>Bob</b>")
        expect(page.locator("#cf-pp-details")).to_contain_text("<b>Bob</b>")
        expect(page.locator("#cf-pp-topics-note")).to_contain_text("has not said anything yet")
        assert page.locator("img[src='x'], .toast-body b, #cf-pp-details b, #cf-people-table b").count() == 0
        assert page.evaluate("window.__pwned") is None

        choose(page, "#cf-pp-person", "Tom")
        expect(page.locator("#cf-pp-details")).to_contain_text("1 exchange in 1 conversation ")  # not "1 exchanges"
        expect(page.locator("#cf-pp-topics-note")).to_contain_text("not grouped yet")  # not an empty placeholder
        expect(page.locator("#cf-pp-activity img")).to_be_visible()


def test_the_cloud_mode_is_kept_and_always_is_explained(browser_page, tmp_path):
    from tests.faults import FaultServer

    page, data_dir = browser_page, tmp_path / "data"
    server = FaultServer(["ok"])
    cloud = {"CONFIDANT_CLOUD_BASE_URL": server.url, "CONFIDANT_CLOUD_MODEL": "fault"}
    try:
        with running_server(data_dir, env_extra=cloud) as url:
            page.goto(url)
            expect(page.locator("#cf-cloud-note")).to_contain_text("Always sends every message")
            expect(page.locator("#cf-cloud-note")).to_contain_text("kept for this login until the server restarts")
            expect(page.locator("#cf-cloud-mode input[value=off]")).to_be_checked()
            page.locator("#cf-cloud-mode label", has_text="Auto").click()
            page.wait_for_timeout(1000)  # the choice reaches the server
            page.reload()
            expect(page.locator("#cf-cloud-mode input[value=auto]")).to_be_checked()
    finally:
        server.close()
