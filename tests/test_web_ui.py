"""What a person sees in the browser (issue 16, points 3-10): correcting a detected speaker, the
Memory tab at 1280 px, the People tab on a phone, a neutral start, deleting a conversation,
escaped names, the cloud control.
Headless Chromium (Playwright) against a real server with the real models."""

import json
import re
import time

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


def wait_for_row(data_dir, sql, timeout=3 * TIMEOUT_MS / 1000):
    """The first row ``sql`` finds, polled until it appears (a turn is being answered; a loaded
    machine generates slowly)."""
    deadline = time.monotonic() + timeout
    while not (rows := db_rows(data_dir, sql)):
        assert time.monotonic() < deadline, f"nothing matched {sql}"
        time.sleep(0.5)
    return rows[0]


def opening(reply: str, words: int) -> str:
    """The first ``words`` words of a reply's first line: the page shows each line as its own
    paragraph, so its text has no space where the reply had a line break."""
    return " ".join(reply.strip().splitlines()[0].split()[:words])


def test_a_correction_answers_again_as_the_right_person_and_switches_the_sidebar(browser_page, tmp_path):
    """Issue 16 point 3: Maya's question detected as Tom (the floors lowered so the guess goes
    ahead with Tom's memories); "It was: Maya" forgets that reply and answers again as Maya."""
    page, data_dir = browser_page, tmp_path / "data"
    seed(data_dir, HOUSEHOLD)
    question = "Is coffee ok at 3am on shift?"  # Tom's kind of question, typed by Maya
    confident = {"CONFIDANT_IDENTIFY_THRESHOLD": "0", "CONFIDANT_IDENTIFY_MARGIN": "0",
                 "CONFIDANT_IDENTIFY_RECALL_CONFIDENCE": "0"}
    people = "FROM exchanges e JOIN profiles p ON p.id = e.profile_id"
    with running_server(data_dir, env_extra=confident) as url:
        page.goto(url)
        choose(page, "#cf-person", "🔍 Detect automatically")
        page.fill("#cf-message textarea", question)
        page.click("#cf-send")
        expect(page.locator("#cf-guess-text")).to_contain_text("Identified as Tom")
        wrong_id, wrong_reply, wrong_recall = wait_for_row(
            data_dir, f"SELECT e.id, e.reply, e.recalled {people} WHERE p.name = 'Tom' AND e.status = 'complete' "
                      f"AND e.user_text = '{question}' AND e.identified_as IS NOT NULL")
        assert json.loads(wrong_recall)["memories"], "the guess went ahead with Tom's memories"
        expect(page.locator("#cf-conversations")).to_contain_text("Nov")  # Tom's conversations are listed
        expect(page.locator("#cf-chat")).to_contain_text(opening(wrong_reply, 4))

        page.locator("#cf-guess-pick label", has_text="Maya").click()
        expect(page.get_by_text("Answering again as Maya")).to_be_visible()
        new_id, new_reply, new_recall = wait_for_row(
            data_dir, f"SELECT e.id, e.reply, e.recalled {people} WHERE p.name = 'Maya' AND e.status = 'complete' "
                      f"AND e.user_text = '{question}'")
        expect(page.locator("#cf-guess")).to_be_hidden()
        expect(page.locator("#cf-chat")).to_contain_text(opening(new_reply, 4))  # regenerated in the chat
        assert db_rows(data_dir, f"SELECT e.reply {people} WHERE p.name = 'Maya' AND e.user_text = '{question}'") == [
            (new_reply,)]
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges WHERE identified_as IS NOT NULL") == [(0,)]  # the guess: gone
        assert db_rows(data_dir, f"SELECT COUNT(*) {people} WHERE p.name = 'Tom'") == [(len(HOUSEHOLD["Tom"]),)]
        maya_ids = {i for (i,) in db_rows(data_dir, "SELECT e.id " + people + " WHERE p.name = 'Maya'")}
        assert {m["id"] for m in json.loads(new_recall)["memories"]} <= maya_ids  # answered from Maya's own memories
        expect(page.locator("#cf-conversations")).to_contain_text("Oct")  # the sidebar is Maya's now
        expect(page.locator("#cf-conversations")).not_to_contain_text("Nov")
        if new_reply != wrong_reply:
            expect(page.locator("#cf-chat")).not_to_contain_text(wrong_reply)

        open_tab(page, "Memory")
        choose(page, "#cf-mem-person", "Maya")
        page.fill("#cf-mem-query input", "coffee at 3am on shift")
        page.click("#cf-mem-search")
        table = page.locator("#cf-mem-results")
        expect(table).to_contain_text(opening(new_reply, 3))
        if new_reply != wrong_reply:
            expect(table).not_to_contain_text(wrong_reply)  # Tom's reply never reached Maya's memories
        expect(table).not_to_contain_text("protect your sleep first")
