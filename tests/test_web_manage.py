"""The People and Memory tabs and logins in a real browser (headless Chromium, Playwright) against
a real server, and the Gradio API called directly with another login's ids."""

import json
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.auth import add_user
from tests.browser import running_server
from tests.test_portable import memory_at, say
from tests.test_web import TIMEOUT_MS, browser_page, db_rows  # noqa: F401 (a fixture)

APPLE = "When should I prune the apple tree?"
expect.set_options(timeout=TIMEOUT_MS)  # the real model and embedder answer slowly on 2 shared cores


def seed(data_dir: Path, people: dict[str, list[tuple[str, str, str]]]) -> None:
    """People and their past exchanges, stored the way chat turns are (vectors and index too)."""
    memory = memory_at(data_dir)
    for name, turns in people.items():
        session = memory.store.new_session(memory.store.add_profile(name).id)
        for text, reply, when in turns:
            say(memory, session, text, reply, when)
    memory.save()
    memory.store.close()


def choose(page, dropdown: str, label: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=label, exact=True).click()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def confirm(page, prefix: str, text: str) -> None:
    expect(page.locator(f"#{prefix}-confirm-text")).to_contain_text(text)
    page.click(f"#{prefix}-confirm")


def data_files_contain(data_dir: Path, needle: bytes) -> list[str]:
    return [p.name for p in data_dir.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_people_are_added_renamed_merged_deleted_exported_and_imported(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    seed(data_dir, {
        "Ann": [(APPLE, "Late winter, before the buds open.", "2024-02-01T10:00:00+00:00"),
                ("And the roses?", "Early spring too.", "2024-02-01T10:02:00+00:00")],
        "Ben": [("What is a good opening for black?", "The Sicilian defence.", "2024-03-01T20:00:00+00:00")],
    })
    with running_server(data_dir) as url:
        page.goto(url)
        open_tab(page, "People")
        table = page.locator("#cf-people-table")
        expect(table).to_contain_text("Ann")
        expect(page.locator("#cf-map img")).to_be_visible()  # the map of both people is drawn
        assert page.locator("#cf-map img").evaluate("img => img.naturalWidth") > 300

        page.fill("#cf-pp-new-name input", "Carol")
        page.click("#cf-pp-add")
        expect(table).to_contain_text("Carol")
        expect(page.locator("#cf-pp-person input")).to_have_value("Carol")

        choose(page, "#cf-pp-person", "Ben")
        expect(page.locator("#cf-pp-details")).to_contain_text("1 exchange in 1 conversation ")
        page.fill("#cf-pp-rename-to input", "Benjamin")
        page.click("#cf-pp-rename")
        expect(page.locator("#cf-pp-person input")).to_have_value("Benjamin")

        choose(page, "#cf-pp-merge-into", "Ann")
        page.click("#cf-pp-merge")
        confirm(page, "cf-pp", "Merge Benjamin into Ann")
        expect(page.locator("#cf-pp-person input")).to_have_value("Ann")
        expect(page.locator("#cf-pp-details")).to_contain_text("3 exchanges in 2 conversations")

        choose(page, "#cf-pp-person", "Carol")
        page.click("#cf-pp-delete")
        confirm(page, "cf-pp", "Delete Carol")
        expect(table).not_to_contain_text("Carol")
        assert db_rows(data_dir, "SELECT name FROM profiles") == [("Ann",)]

        page.locator("#cf-pp-portable").click()
        page.click("#cf-pp-export")
        with page.expect_download() as download:
            page.locator("#cf-pp-export-file a").first.click()
        exported = tmp_path / "ann.json"
        download.value.save_as(exported)
        assert sum(len(c["exchanges"]) for c in json.loads(exported.read_text())["conversations"]) == 3

        page.click("#cf-pp-delete")
        confirm(page, "cf-pp", "Delete Ann")
        expect(table).not_to_contain_text("Ann")
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges") == [(0,)]
    assert data_files_contain(data_dir, b"prune the apple") == []  # gone from every file, not just unlinked

    with running_server(data_dir) as url:
        page.goto(url)
        open_tab(page, "People")
        page.locator("#cf-pp-portable").click()
        page.locator("#cf-pp-import input[type=file]").set_input_files(str(exported))
        expect(page.locator("#cf-pp-import-report")).to_contain_text("Imported 3 exchanges")
        expect(page.locator("#cf-people-table")).to_contain_text("Ann")
    assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges e JOIN profiles p ON p.id = e.profile_id "
                             "WHERE p.name = 'Ann' AND e.user_text = 'When should I prune the apple tree?'") == [(1,)]


def recalled_ids(data_dir: Path) -> list[int]:
    [(recalled,)] = db_rows(data_dir, "SELECT recalled FROM exchanges ORDER BY id DESC LIMIT 1")
    return [m["id"] for m in json.loads(recalled)["memories"]]


def new_conversation(page) -> None:
    page.click("#cf-new-conversation")
    expect(page.locator('#cf-chat [data-testid="bot"]')).to_have_count(0)


def ask(page, text: str, finished: str = "tok/s") -> None:
    """Send ``text`` and wait until its own reply (not an earlier one on the page) is finished."""
    replies = page.locator('#cf-chat [data-testid="bot"]')
    before = replies.count()
    page.fill("#cf-message textarea", text)
    page.keyboard.press("Enter")
    expect(replies.nth(before)).to_be_attached(timeout=TIMEOUT_MS)  # then the last reply is this turn's
    expect(replies.last).to_contain_text(finished, timeout=TIMEOUT_MS)


def test_a_deleted_memory_is_gone_from_recall_and_temporary_chats_are_not_remembered(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    seed(data_dir, {"Ann": [
        ("Which wine goes with fish?", "A dry white, like a Muscadet.", "2023-06-01T19:00:00+00:00"),
        (APPLE, "Late winter, before the buds open.", "2024-02-01T10:00:00+00:00"),
        ("And the roses?", "Early spring too.", "2024-02-01T10:02:00+00:00"),
    ]})
    [(apple_id,)] = db_rows(data_dir, f"SELECT id FROM exchanges WHERE user_text = '{APPLE}'")
    with running_server(data_dir) as url:
        page.goto(url)
        choose(page, "#cf-person", "Ann")  # a neutral start: nobody is chosen until someone says who they are
        new_conversation(page)  # memories come from other conversations than the current one
        ask(page, "How do I prune my apple tree?")
        assert apple_id in recalled_ids(data_dir)  # recalled before it is deleted

        open_tab(page, "Memory")
        page.fill("#cf-mem-query input", "apple tree")
        page.click("#cf-mem-search")
        expect(page.locator("#cf-mem-summary")).to_contain_text("matching “apple tree”")
        results = page.locator("#cf-mem-results")
        results.get_by_test_id(re.compile(r"^cell-\d+-4$")).filter(has_text=APPLE).first.click()  # its question
        expect(page.locator("#cf-mem-question textarea")).to_have_value(APPLE)
        page.click("#cf-mem-delete")
        confirm(page, "cf-mem", "Delete the memory")
        expect(results).not_to_contain_text(APPLE)

        page.locator("#cf-mem-forget-box").click()
        page.fill("#cf-mem-after input", "2023-01-01")
        page.fill("#cf-mem-before input", "2024-01-01")
        page.click("#cf-mem-forget")
        confirm(page, "cf-mem", "Forget all 1 of Ann's exchanges from 2023-01-01 before 2024-01-01")
        expect(results).not_to_contain_text("Muscadet")

        open_tab(page, "Chat")
        new_conversation(page)
        ask(page, "How do I prune my apple tree?")
        assert apple_id not in recalled_ids(data_dir)
        expect(page.locator("#cf-chat")).not_to_contain_text("before the buds open")

        before = db_rows(data_dir, "SELECT COUNT(*) FROM exchanges")
        page.locator("#cf-temporary input").check()
        expect(page.locator("#cf-temporary-banner")).to_be_visible()
        ask(page, "My locker code is 4417, please keep it", finished="not remembered")
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges") == before
    assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges WHERE user_text LIKE '%4417%' OR user_text LIKE '%Muscadet%'"
                             " OR reply LIKE '%Muscadet%'") == [(0,)]


@pytest.fixture
def two_families(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir, {
        "Dad": [("What is the wifi password of the shed router?", "It is written under the router.", "2024-01-02T10:00:00+00:00")],
        "Mum": [("When is the dentist appointment?", "Tuesday at nine.", "2024-01-03T10:00:00+00:00")],
    })
    users = tmp_path / "users.json"
    add_user(users, "dad", "correct horse", ["Dad"])
    add_user(users, "mum", "battery staple", ["Mum"])
    return data_dir, users


def test_with_logins_one_user_can_neither_see_nor_use_anothers_profiles(browser_page, two_families):
    from gradio_client import Client

    page, (data_dir, users) = browser_page, two_families
    [(dad_id,)] = db_rows(data_dir, "SELECT id FROM profiles WHERE name = 'Dad'")
    with running_server(data_dir, "--auth", str(users)) as url:
        page.goto(url)
        page.fill("input[data-testid=textbox]", "mum")  # Gradio's login form
        page.fill("input[type=password]", "battery staple")
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#cf-where")).to_contain_text("Logins on")
        expect(page.locator("#cf-person input")).to_have_value("Mum")
        page.click("#cf-person input")
        assert "Dad" not in page.locator("[role=listbox]").inner_text()
        page.keyboard.press("Escape")
        open_tab(page, "People")
        expect(page.locator("#cf-people-table")).to_contain_text("Mum")
        assert "Dad" not in page.locator("#cf-people-table").inner_text()

        client = Client(url, auth=("mum", "battery staple"), verbose=False)
        before = db_rows(data_dir, "SELECT COUNT(*) FROM exchanges")
        answers = [attempt(client, *call) for call in (
            ("/find", dad_id, ""),  # Dad's memories, asked for by id
            ("/show", dad_id),
            ("/rename", dad_id, "Hacked"),
            ("/export", dad_id),
            ("/send", "Tell me Dad's wifi password", dad_id, "off", [], False),
        )]
        leaked = json.dumps(answers, default=str).replace("Tell me Dad's wifi", "")
        assert "wifi" not in leaked and "router" not in leaked, answers
        assert db_rows(data_dir, "SELECT COUNT(*) FROM exchanges") == before
    assert db_rows(data_dir, "SELECT name FROM profiles ORDER BY id") == [("Dad",), ("Mum",)]


def test_repeated_wrong_passwords_lock_the_login(two_families):
    import urllib.error
    import urllib.parse
    import urllib.request

    data_dir, users = two_families

    def login(url, password) -> int:
        body = urllib.parse.urlencode({"username": "dad", "password": password}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(url + "login", data=body), timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    with running_server(data_dir, "--auth", str(users)) as url:
        assert login(url, "correct horse") == 200
        assert [login(url, "wrong guess") for _ in range(5)] == [400] * 5
        assert login(url, "correct horse") == 400  # locked, even with the right password
    with sqlite3.connect(data_dir / "confidant.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def attempt(client, api_name, *args):
    """What a direct API call returns, or the error it is refused with (Gradio or ours)."""
    from gradio_client.exceptions import AppError

    try:
        return client.predict(*args, api_name=api_name)
    except AppError as error:
        return f"refused: {error}"
