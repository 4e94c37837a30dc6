"""The chat in a real browser: headless Chromium driven by Playwright against a real server."""

import sqlite3

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, running_server

TIMEOUT_MS = 120_000

RECORD_STREAM = """() => {
  window.__snapshots = [];
  const chat = document.querySelector('#cf-chat');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    if (bots.length) window.__snapshots.push(bots[bots.length - 1].innerText);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def db_rows(data_dir, sql):
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def add_person(page, name):
    page.fill("#cf-new-name input", name)
    page.click("#cf-add-person")


def choose_person(page, label):
    page.click("#cf-person input")
    page.get_by_role("option", name=label).click()


def test_chat_streams_shows_status_and_survives_reload(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    with running_server(data_dir) as url:
        page.goto(url)
        expect(page.locator("#cf-new-name input")).to_be_visible()  # nobody yet: the form is open

        add_person(page, "   ")
        expect(page.get_by_text("Please enter a name.")).to_be_visible()
        add_person(page, "Alice")
        expect(page.locator("#cf-person input")).to_have_value("Alice")
        expect(page.locator("#cf-cloud-mode input[type=radio]").first).to_be_disabled()
        expect(page.locator("#cf-cloud-note")).to_contain_text("no cloud model is configured")

        page.evaluate(RECORD_STREAM)
        page.fill("#cf-message textarea", "Hello! What is a nice name for a goldfish?")
        page.keyboard.press("Enter")
        reply = page.locator('#cf-chat [data-testid="bot"]').last
        expect(reply).to_contain_text("tok/s", timeout=TIMEOUT_MS)
        status = reply.inner_text()
        assert "local" in status and "SmolLM2" in status and "to first token" in status

        partials = {s.strip() for s in page.evaluate("window.__snapshots") if "tok/s" not in s and s.strip("… \n")}
        assert len(partials) >= 3, f"the reply did not stream token by token: {partials}"

        [(stored_reply,)] = db_rows(data_dir, "SELECT reply FROM exchanges WHERE status = 'complete'")
        first_words = stored_reply.split("\n")[0][:20]

        page.reload()
        expect_conversation(page, first_words)

    with running_server(data_dir) as url:  # a restarted server shows the same conversation
        page.goto(url)
        expect_conversation(page, first_words)


def expect_conversation(page, first_words):
    expect(page.locator("#cf-person input")).to_have_value("")  # a neutral start: nobody chosen on load
    choose_person(page, "Alice")
    expect(page.locator('#cf-chat [data-testid="user"]')).to_contain_text("nice name for a goldfish")
    expect(page.locator('#cf-chat [data-testid="bot"]')).to_contain_text(first_words)
    expect(page.locator("#cf-conversations")).to_contain_text("Hello! What is a nice name")


def test_people_are_added_in_the_chat_and_duplicates_refused(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    with running_server(data_dir) as url:
        page.goto(url)
        add_person(page, "Alice")
        expect(page.locator("#cf-person input")).to_have_value("Alice")

        choose_person(page, "➕ New person…")
        add_person(page, "alice")
        expect(page.get_by_text("There is already a person called 'alice'.")).to_be_visible()
        add_person(page, "Bob")
        expect(page.locator("#cf-person input")).to_have_value("Bob")
        assert sorted(db_rows(data_dir, "SELECT name FROM profiles")) == [("Alice",), ("Bob",)]
        # Renaming, merging and deleting happen in the People tab: tests/test_web_manage.py


def test_usable_at_phone_size(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    page.set_viewport_size({"width": 390, "height": 844})
    with running_server(data_dir) as url:
        page.goto(url)
        add_person(page, "Alice")
        expect(page.locator("#cf-message textarea")).to_be_visible()
        expect(page.locator("#cf-send")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_cloud_turns_show_the_route_the_payload_and_the_fallback(browser_page, tmp_path):
    from tests.faults import FaultServer

    page, data_dir = browser_page, tmp_path / "data"
    server = FaultServer(["echo", "500"])
    cloud = {"CONFIDANT_CLOUD_BASE_URL": server.url, "CONFIDANT_CLOUD_MODEL": "fault", "CONFIDANT_CLOUD_MODE": "always",
             "CONFIDANT_CLOUD_MAX_RETRIES": "0"}
    try:
        with running_server(data_dir, env_extra=cloud) as url:
            page.goto(url)
            add_person(page, "Alice Smith")
            expect(page.locator("#cf-person input")).to_have_value("Alice Smith")
            expect(page.locator("#cf-cloud-mode input[value=always]")).to_be_checked()

            page.fill("#cf-message textarea", "Please email alice@example.com for Alice Smith")
            page.keyboard.press("Enter")
            reply = page.locator('#cf-chat [data-testid="bot"]').last
            expect(reply).to_contain_text("cloud escalation is set to always", timeout=TIMEOUT_MS)
            expect(reply).to_contain_text("Please email alice@example.com for Alice Smith")  # restored for the user
            page.get_by_text("What was sent to the cloud").first.click()
            sent = page.locator("#cf-chat").inner_text()
            assert "[EMAIL_1]" in sent and "[PERSON_1]" in sent
            assert "alice@example.com" not in str(server.completions[0]["body"])

            page.fill("#cf-message textarea", "And one more thing?")
            page.keyboard.press("Enter")
            expect(page.locator('#cf-chat [data-testid="bot"]').last).to_contain_text(
                "cloud unreachable — answered on this device", timeout=TIMEOUT_MS)
            expect(page.locator('#cf-chat [data-testid="bot"]').last).to_contain_text("tok/s", timeout=TIMEOUT_MS)

            page.get_by_role("tab", name="People").click()
            expect(page.locator("#cf-pp-person input")).to_have_value("Alice Smith")
            page.locator("#cf-pp-never-cloud input").check()
            expect(page.get_by_text("never go to the cloud")).to_be_visible()
        assert db_rows(data_dir, "SELECT cloud_allowed FROM profiles") == [(0,)]
    finally:
        server.close()
