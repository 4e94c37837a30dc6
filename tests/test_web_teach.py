"""The Teach and Compare tabs in a real browser (headless Chromium) against a real server with the
real small model: Teach shows the sources with counts and the estimate, starts a tiny run (two
steps, ``CONFIDANT_TEACH_MAX_STEPS``) whose progress appears and whose result shows the held-out
loss and example replies; too little data shows the engine's message with Start disabled; Compare
answers one question as two people side by side, labelled, and stores nothing."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from assistant.memory.memory import Memory
from assistant.people.importers import mqd
from assistant.settings import load_settings
from assistant.store.store import Store
from tests.browser import running_server
from tests.test_web import browser_page, db_rows  # noqa: F401 (a fixture)
from tests.test_web_manage import open_tab, seed
from tests.test_web_ui import HOUSEHOLD

FIXTURES = Path(__file__).parent / "fixtures" / "mqd"
TINY_RUN = {"CONFIDANT_TEACH_MAX_STEPS": "2", "CONFIDANT_N_THREADS": "1"}
TRAINING_MS = 600_000  # two steps, but model loading and the held-out loss take longer on a loaded machine


def imported_friends(data_dir: Path) -> None:
    """The fixture's 350 Friends pairs (five askers), imported as Rachel's own replies."""
    settings = load_settings(data_dir=data_dir, n_threads=1)
    memory = Memory(settings, Store(settings.database_path))
    memory.ingest(mqd.parse(FIXTURES / "train.jsonl.gz", "rachel_green"), progress=False)
    memory.save()
    memory.store.close()


def test_teach_shows_sources_progress_and_the_result(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    imported_friends(data_dir)
    with running_server(data_dir, env_extra=TINY_RUN, ready_timeout=600) as url:  # a loaded machine starts slowly
        page.goto(url)
        open_tab(page, "Teach")
        sources = page.locator("#cf-teach-sources")
        expect(sources).to_contain_text("Monica Geller")
        expect(sources).to_contain_text("imported history")
        expect(sources).to_contain_text("350 exchanges from 5 people")
        expect(sources).to_contain_text("Estimated training time")
        expect(sources).to_contain_text("tokens/s, the figure the benchmarks measured")  # where the rate comes from
        expect(page.locator("#cf-teach-adapter")).to_contain_text("No tuned model yet")
        start = page.locator("#cf-teach-start")
        expect(start).to_be_enabled()
        start.click()
        expect(page.locator("#cf-teach-progress progress")).to_be_visible()  # the bar appears at once
        expect(start).to_be_disabled()  # one run at a time
        expect(page.locator("#cf-teach-progress")).to_contain_text("Step", timeout=TRAINING_MS)
        result = page.locator("#cf-teach-result")
        expect(result).to_contain_text("Held-out loss", timeout=TRAINING_MS)
        expect(result).to_contain_text("→")
        expect(result.locator("tr")).to_have_count(4)  # a header and three held-out examples
        expect(page.locator("#cf-teach-progress")).to_contain_text("Done")
        expect(page.locator("#cf-teach-adapter")).to_contain_text("Tuned model from")
        expect(start).to_be_enabled()
    assert (data_dir / "tuned-adapter.gguf").is_file()
    assert not list(data_dir.glob(".*.partial"))


def test_too_little_data_disables_start_and_compare_answers_side_by_side(browser_page, tmp_path):
    page, data_dir = browser_page, tmp_path / "data"
    seed(data_dir, HOUSEHOLD)  # the local model's own replies only: nothing to learn from
    with running_server(data_dir) as url:
        page.goto(url)
        open_tab(page, "Teach")
        expect(page.locator("#cf-teach-needed")).to_contain_text("needs at least 300 exchanges from at least 2 people")
        expect(page.locator("#cf-teach-start")).to_be_disabled()

        before = db_rows(data_dir, "select count(*) from exchanges")[0][0]
        open_tab(page, "Compare")
        page.click("#cf-cmp-people input")
        page.get_by_role("option", name="Maya", exact=True).click()
        page.click("#cf-cmp-people input")
        page.get_by_role("option", name="Tom", exact=True).click()
        page.fill("#cf-cmp-question textarea", "What should I have for <b>dinner</b> tonight?")
        page.click("#cf-cmp-ask")
        cards = page.locator("#cf-cmp-answers .cf-cmp-card")
        expect(cards).to_have_count(2)
        expect(cards.nth(0).locator("h4")).to_have_text("Maya")
        expect(cards.nth(1).locator("h4")).to_have_text("Tom")
        for i in range(2):
            expect(cards.nth(i).locator(".cf-cmp-model")).to_contain_text("SmolLM2")
            expect(cards.nth(i).locator(".cf-cmp-answer")).not_to_have_text("…")
        expect(page.locator("#cf-cmp-answers .cf-cmp-question")).to_contain_text("<b>dinner</b>")  # shown as typed
        expect(page.locator("#cf-cmp-answers b")).to_have_count(0)
        page.wait_for_timeout(500)
        assert db_rows(data_dir, "select count(*) from exchanges")[0][0] == before  # a preview: nothing stored
