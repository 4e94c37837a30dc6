"""The Memory tab: search one person's memories by words and meaning, see each exchange with its
date, route and topic (query cluster), correct or delete one, and forget everything between two
dates. The table fits the page at 1280 px (fixed column widths, text wrapped inside its cell),
and a search that matches nothing says so.

Every memory is resolved through ``People.owned`` against the person the login may use, so an
id sent by the page can never reach someone else's memory.
"""

from __future__ import annotations

import gradio as gr

from app.sanitize import model_line
from app.web_common import Shell, guarded, info, plural, warn
from app.web_people import no_topics_yet, when
from assistant.people.service import Found
from assistant.errors import InputError

HEADERS = ["#", "When", "Route", "Topic", "Question", "Reply", "Matched by"]
# Shares of the table's width: the text columns get the room, the short ones just enough for
# their header on one line (a narrow "Cluster" column wrapped one letter per line).
WIDTHS = ["6%", "12%", "8%", "8%", "29%", "27%", "10%"]
SHOWN_CHARS = 160


def row(found: Found) -> list:
    e = found.exchange
    return [e.id, when(e.created_at), e.route or "—", "not yet" if e.cluster is None else f"#{e.cluster}",
            _clip(e.user_text), _clip(e.reply or ""), found.matched]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def build(shell: Shell, tab: gr.Tab) -> None:
    service, access = shell.people, shell.access

    def people(request: gr.Request, current=None):
        choices = shell.choices(request)
        ids = [i for _, i in choices]
        return gr.update(choices=choices, value=current if current in ids else (ids[0] if ids else None))

    @guarded(2)
    def find(person, query, request: gr.Request):
        if person is None:
            return gr.update(value=None), "Nobody yet."
        profile = access.person(request, person)
        found = service.search(profile.id, query, limit=shell.assistant.settings.memory_search_results)
        asked = " ".join((query or "").split())
        name = model_line(profile.name)
        if not found:
            said = f"No memories match “{model_line(asked)}”." if asked else f"{name} has no memories yet."
            return gr.update(value=None), said
        what = f"matching “{model_line(asked)}”" if asked else "most recent first"
        note = "" if all(f.exchange.cluster is not None for f in found) else (
            f" Topic “not yet”: {no_topics_yet(shell.assistant.settings.recluster_min)}.")
        kind = "memory" if len(found) == 1 else "memories"
        return gr.update(value=[row(f) for f in found]), f"{len(found)} of {name}'s {kind}, {what}.{note}"

    @guarded(4)
    def pick(person, request: gr.Request, evt: gr.SelectData):
        exchange_id = evt.row_value[0] if evt.row_value else None
        exchange = service.owned(exchange_id, access.person(request, person).id)
        return exchange.id, exchange.user_text, exchange.reply or "", gr.update(visible=True)

    @guarded(3)
    def save(person, exchange_id, question, reply, request: gr.Request):
        profile = access.person(request, person)
        exchange = service.edit(exchange_id, question, reply, profile.id)
        info("Saved; the old wording is gone from the database.")
        return exchange.user_text, exchange.reply, gr.update(visible=False)

    @guarded(3)
    def ask_delete(person, exchange_id, request: gr.Request):
        exchange = service.owned(exchange_id, access.person(request, person).id)
        return gr.update(visible=True), f"Delete the memory “{model_line(_clip(exchange.user_text))}” for good?", (
            "one", exchange.id)

    @guarded(3)
    def ask_forget(person, after, before, request: gr.Request):
        profile = access.person(request, person)
        after, before = (after or "").strip() or None, (before or "").strip() or None
        if not after and not before:
            raise InputError("Give at least one date (YYYY-MM-DD): from, before, or both.")
        count = len(service.matching(profile.id, before=before, after=after))
        if not count:
            raise InputError(f"{profile.name} said nothing in that period.")
        span = " ".join(f"{word} {day}" for word, day in (("from", after), ("before", before)) if day)
        return gr.update(visible=True), f"Forget all {count} of {model_line(profile.name)}'s exchanges {span}, for good?", (
            "range", (after, before))

    @guarded(3)
    def confirmed(person, pending, request: gr.Request):
        profile = access.person(request, person)
        if not pending:
            raise InputError("Nothing to confirm.")
        kind, what = pending
        if kind == "one":
            service.delete_memory(what, profile.id)
            info("Deleted that memory for good.")
        else:
            count = service.forget(profile.name, after=what[0], before=what[1])
            info(f"Forgot {plural(count, 'exchange')} of {profile.name}.")
        return gr.update(visible=False), None, gr.update(visible=False)

    with tab:
        pending = gr.State(None)  # the action waiting for its confirmation
        with gr.Row(equal_height=True):
            who = gr.Dropdown(label="Whose memories", choices=[], interactive=True, scale=1, elem_id="cf-mem-person")
            query = gr.Textbox(label="Search by words or meaning", placeholder="e.g. birthday",
                               max_lines=1, scale=3, elem_id="cf-mem-query")
            search_button = gr.Button("Search", variant="primary", scale=0, elem_id="cf-mem-search")
        summary = gr.Markdown(elem_id="cf-mem-summary")
        results = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="cf-mem-results",
                               column_widths=WIDTHS, label="Memories (click one to edit or delete it)")
        chosen = gr.State(None)
        with gr.Group(visible=False, elem_id="cf-mem-editor") as editor:
            question = gr.Textbox(label="Question", lines=2, elem_id="cf-mem-question")
            reply = gr.Textbox(label="Reply", lines=3, elem_id="cf-mem-reply")
            with gr.Row():
                save_button = gr.Button("Save changes", variant="primary", elem_id="cf-mem-save")
                delete_button = gr.Button("Delete this memory…", variant="stop", elem_id="cf-mem-delete")
        with gr.Accordion("Forget everything said between two dates", open=False, elem_id="cf-mem-forget-box"):
            with gr.Row(equal_height=True):
                after = gr.Textbox(label="From (YYYY-MM-DD, included)", max_lines=1, elem_id="cf-mem-after")
                before = gr.Textbox(label="Before (YYYY-MM-DD, not included)", max_lines=1, elem_id="cf-mem-before")
                forget_button = gr.Button("Forget…", variant="stop", scale=0, elem_id="cf-mem-forget")
        with gr.Group(visible=False) as confirm_box:
            confirm_text = gr.Markdown(elem_id="cf-mem-confirm-text")
            with gr.Row():
                confirm_button = gr.Button("Yes, for good", variant="stop", elem_id="cf-mem-confirm")
                cancel_button = gr.Button("Cancel", elem_id="cf-mem-cancel")

    listed = [results, summary]
    tab.select(people, who, who).then(find, [who, query], listed)
    who.input(find, [who, query], listed).then(lambda: gr.update(visible=False), outputs=editor)
    query.submit(find, [who, query], listed)
    search_button.click(find, [who, query], listed)
    results.select(pick, who, [chosen, question, reply, editor])
    save_button.click(save, [who, chosen, question, reply], [question, reply, editor]).then(find, [who, query], listed)
    delete_button.click(ask_delete, [who, chosen], [confirm_box, confirm_text, pending])
    forget_button.click(ask_forget, [who, after, before], [confirm_box, confirm_text, pending])
    cancel_button.click(lambda: (gr.update(visible=False), None), outputs=[confirm_box, pending])
    confirm_button.click(confirmed, [who, pending], [confirm_box, pending, editor]).then(find, [who, query], listed)
