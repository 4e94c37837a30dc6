"""The People tab: everyone with their figures and pictures; add, rename, merge, delete (after a
confirmation), cloud consent, export and import of one person; for the household, the map of
how the assistant tells people apart, the cloud share over time, the encoder, and the archive
of the whole assistant (admins only when logins are on).
"""

from __future__ import annotations

from datetime import datetime

import gradio as gr

from app import charts, render
from app.sanitize import model_line
from app.web_common import Shell, guarded, info, plural, sentence, warn
from assistant.people.service import PersonStats, Topic
from assistant.errors import InputError, NotFoundError

HEADERS = ["Person", "Exchanges", "Conversations", "First seen", "Last seen", "Cloud share", "Top topics"]
WIDTHS = ["13%", "10%", "13%", "13%", "13%", "8%", "30%"]  # shares of the width: headers on one line at 1280 px


def when(stamp: str | None) -> str:
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M") if stamp else "—"


def topic_label(topic: Topic) -> str:
    """``#2 “What should I eat…” (12)``: the same words in the table and in the details."""
    example = topic.examples[0] if topic.examples else ""
    short = example if len(example) <= 40 else example[:39] + "…"
    return f"#{topic.cluster} “{short}” ({topic.count})"


def no_topics_yet(min_exchanges: int) -> str:
    return f"not grouped yet (topics form once the assistant holds {min_exchanges} exchanges)"


def table_row(stats: PersonStats) -> list:
    topics = "; ".join(topic_label(t) for t in stats.topics)
    return [stats.profile.name, stats.exchanges, stats.conversations, when(stats.first_seen), when(stats.last_seen),
            f"{stats.cloud_share:.0%}", topics or ("—" if not stats.exchanges else "not grouped yet")]


def details(stats: PersonStats, min_exchanges: int) -> str:
    consent = "never sent to the cloud" if not stats.profile.cloud_allowed else "may go to the cloud"
    lines = [
        f"### {model_line(stats.profile.name)}",
        f"{plural(stats.exchanges, 'exchange')} in {plural(stats.conversations, 'conversation')} · first seen "
        f"{when(stats.first_seen)}, last seen {when(stats.last_seen)} · {stats.cloud_share:.0%} of answered turns "
        f"in the cloud · messages {consent}",
    ]
    if stats.topics:
        lines.append("\n**Top topics** (query clusters):")
        for topic in stats.topics:
            examples = ", ".join(f"“{model_line(e[:80])}”" for e in topic.examples)
            lines.append(f"- {model_line(topic_label(topic))}: {examples}")
    elif stats.exchanges:
        lines.append(f"\n**Top topics**: {no_topics_yet(min_exchanges)}.")
    return "\n".join(lines)


def build(shell: Shell, tab: gr.Tab) -> None:
    people, access = shell.people, shell.access
    min_exchanges = shell.assistant.settings.recluster_min

    def refresh(request: gr.Request, selected=None):
        mine = access.people(request)
        ids = [p.id for p in mine]
        chosen = selected if selected in ids else (ids[0] if ids else None)
        rows = [table_row(people.stats(i)) for i in ids]
        return (gr.update(value=rows or None), gr.update(choices=shell.choices(request), value=chosen),
                gr.update(choices=[(p.name, p.id) for p in mine if p.id != chosen], value=None))

    @guarded(6)
    def show(person, request: gr.Request):
        if person is None:
            return ("Nobody yet: add a person below.", gr.update(value=False),
                    *drawn(None, "Topics appear here once someone has talked to the assistant."),
                    *drawn(None, "Activity appears here once someone has talked to the assistant."))
        profile = access.person(request, person)
        stats = people.stats(profile.id)
        name = f"{profile.id}-{datetime.now().timestamp():.0f}"
        no_topics = (f"**Topics**: {model_line(profile.name)} has not said anything yet." if not stats.exchanges else
                     f"**Topics**: {no_topics_yet(min_exchanges)}; the assistant holds "
                     f"{plural(people.count_exchanges(None), 'exchange')} so far.")
        return (details(stats, min_exchanges), gr.update(value=not profile.cloud_allowed),
                *drawn(charts.topics(people, profile.id, shell.file(request, f"topics-{name}.png", [profile.id])), no_topics),
                *drawn(charts.activity(people, profile.id, shell.file(request, f"activity-{name}.png", [profile.id])),
                       f"**Activity**: {model_line(profile.name)} has not said anything yet."))

    @guarded(4)
    def add(name, request: gr.Request):
        return (*refresh(request, shell.add_person(request, name).id), "")

    @guarded(4)
    def rename(person, new, request: gr.Request):
        old = access.person(request, person)
        profile = people.rename(old.name, new)
        access.renamed(old.name, profile.name)
        info(f"Renamed {old.name} to {profile.name}.")
        return (*refresh(request, profile.id), "")

    @guarded(1)
    def consent(person, never, request: gr.Request):
        profile = people.set_cloud_allowed(access.person(request, person).name, not never)
        info(f"{profile.name}'s messages {'never go' if never else 'may go'} to the cloud.")
        return gr.update()

    @guarded(3)
    def ask_merge(person, into, request: gr.Request):
        source, target = access.person(request, person), access.person(request, into)
        count = people.count_exchanges(source.id)
        text = (f"Merge **{model_line(source.name)}** into **{model_line(target.name)}**? Their {count} exchanges "
                f"move to {model_line(target.name)} and {model_line(source.name)} is removed.")
        return gr.update(visible=True), text, ("merge", target.id)

    @guarded(3)
    def ask_delete(person, request: gr.Request):
        profile = access.person(request, person)
        text = (f"Delete **{model_line(profile.name)}** and their {people.count_exchanges(profile.id)} exchanges "
                "for good? Their words are erased from the database file too.")
        return gr.update(visible=True), text, ("delete", None)

    @guarded(4)
    def confirmed(person, pending, request: gr.Request):
        profile = access.person(request, person)
        if not pending:
            raise InputError("Nothing to confirm.")
        action, target = pending
        if action == "merge":
            into = people.merge(profile.name, access.person(request, target).name)
            access.removed(profile.name)
            info(f"Merged {profile.name} into {into.name}.")
            return (*refresh(request, into.id), gr.update(visible=False))
        people.delete(profile.name)
        access.removed(profile.name)
        info(f"Deleted {profile.name} and everything they said.")
        return (*refresh(request), gr.update(visible=False))

    @guarded(1)
    def export(person, request: gr.Request):
        profile = access.person(request, person)
        path = shell.file(request, f"{_safe(profile.name)}.confidant.json", [profile.id])
        people.write_export(profile.name, path)
        return gr.update(value=str(path), visible=True)

    @guarded(4)
    def import_person(upload, request: gr.Request):
        if upload is None:
            raise InputError("Choose an export file (.json) to import.")
        try:  # the upload holds the person's words: Gradio's copy goes once it is read
            parsed = people.load_export(upload)
            access.may_claim(request, parsed.name)
            report = people.import_profile(upload)
        finally:
            people.discard_upload(upload)
        access.created(request, people.profile(report.name))
        info(sentence(report.summary()))
        return (*refresh(request, people.profile(report.name).id), model_line(sentence(report.summary())))

    @guarded(4)
    def household(request: gr.Request):
        ids = [p.id for p in access.people(request)]
        stamp = f"{datetime.now().timestamp():.0f}"
        return (*drawn(charts.people_map(people, ids, shell.file(request, f"map-{stamp}.png", ids)),
                       "**How the assistant tells people apart**: drawn once two exchanges are remembered."),
                *drawn(charts.cloud_share(people, ids, shell.file(request, f"cloud-{stamp}.png", ids)),
                       "**Cloud turns over time**: drawn once a turn has been answered."))

    @guarded(1)
    def retrain(request: gr.Request):
        admin_only(request)
        outcome = people.train(progress=False)
        info(f"Trained on {outcome.n_dialogues} exchanges of {outcome.n_people} people in {outcome.seconds:.0f} s.")
        return render.encoder_status(people.encoder_meta())

    @guarded(1)
    def archive_export(request: gr.Request):
        admin_only(request)
        path = shell.file(request, f"confidant-{datetime.now():%Y%m%d-%H%M}.zip", [p.id for p in people.everyone()])
        people.write_archive(path)
        return gr.update(value=str(path), visible=True)

    @guarded(1)
    def archive_import(upload, request: gr.Request):
        admin_only(request)
        if upload is None:
            raise InputError("Choose an archive (.zip) to import.")
        try:
            report = people.import_archive(upload)
        finally:
            people.discard_upload(upload)  # it holds everyone's words
        info(f"Imported {len(report.people)} people.")
        return model_line(report.summary()).replace("\n", "  \n")

    def admin_only(request):
        if not access.is_admin(request):
            raise NotFoundError("Only an admin login can do this for the whole household.")

    with tab:
        pending = gr.State(None)  # the action waiting for its confirmation
        table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, label="Everyone the assistant knows",
                             column_widths=WIDTHS,
                             elem_id="cf-people-table")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=280):
                who = gr.Dropdown(label="Person", choices=[], interactive=True, elem_id="cf-pp-person")
                about = gr.Markdown(elem_id="cf-pp-details")
                never_cloud = gr.Checkbox(label="Never send this person's messages to the cloud", elem_id="cf-pp-never-cloud")
                with gr.Accordion("Add, rename, merge, delete", open=True):
                    with gr.Row(equal_height=True):
                        new_name = gr.Textbox(label="New person", max_lines=1, elem_id="cf-pp-new-name")
                        add_button = gr.Button("Add", elem_id="cf-pp-add", scale=0)
                    with gr.Row(equal_height=True):
                        rename_to = gr.Textbox(label="Rename to", max_lines=1, elem_id="cf-pp-rename-to")
                        rename_button = gr.Button("Rename", elem_id="cf-pp-rename", scale=0)
                    with gr.Row(equal_height=True):
                        merge_into = gr.Dropdown(label="Merge into", choices=[], elem_id="cf-pp-merge-into")
                        merge_button = gr.Button("Merge…", elem_id="cf-pp-merge", scale=0)
                    delete_button = gr.Button("Delete…", variant="stop", elem_id="cf-pp-delete")
                    with gr.Group(visible=False) as confirm_box:
                        confirm_text = gr.Markdown(elem_id="cf-pp-confirm-text")
                        with gr.Row():
                            confirm_button = gr.Button("Yes, do it", variant="stop", elem_id="cf-pp-confirm")
                            cancel_button = gr.Button("Cancel", elem_id="cf-pp-cancel")
                with gr.Accordion("Export and import one person", open=False, elem_id="cf-pp-portable"):
                    export_button = gr.Button("Export this person (JSON)", elem_id="cf-pp-export")
                    export_file = gr.File(label="Export", visible=False, interactive=False, elem_id="cf-pp-export-file")
                    import_file = gr.File(label="Import a person (.json)", file_types=[".json"], elem_id="cf-pp-import")
                    import_report = gr.Markdown(elem_id="cf-pp-import-report")
            with gr.Column(scale=3, min_width=300):
                topics_picture = picture("Topics", "cf-pp-topics")
                activity_picture = picture("Activity", "cf-pp-activity")
        with gr.Accordion("The household", open=True, elem_id="cf-household"):
            with gr.Row(equal_height=False):
                with gr.Column(min_width=300):
                    map_picture = picture("How the assistant tells people apart", "cf-map")
                with gr.Column(min_width=300):
                    cloud_picture = picture("Cloud turns over time", "cf-cloud-share")
            with gr.Row(equal_height=False):
                with gr.Column():
                    encoder_text = gr.Markdown(render.encoder_status(people.encoder_meta()), elem_id="cf-encoder-status")
                    retrain_button = gr.Button("Retrain the who-is-asking encoder", elem_id="cf-retrain")
                with gr.Column():
                    archive_button = gr.Button("Export the whole assistant (.zip)", elem_id="cf-archive-export")
                    archive_file = gr.File(label="Archive", visible=False, interactive=False, elem_id="cf-archive-file")
                    archive_upload = gr.File(label="Import an archive (.zip)", file_types=[".zip"], elem_id="cf-archive-import")
                    archive_report = gr.Markdown(elem_id="cf-archive-report")

    listing = [table, who, merge_into]
    person_view = [about, never_cloud, *topics_picture, *activity_picture]
    pictures = [*map_picture, *cloud_picture]

    def then_redraw(event):  # after any change to who is there: the person's view and the household's pictures
        event.then(show, who, person_view).then(household, outputs=pictures)

    then_redraw(tab.select(refresh, outputs=listing))
    who.input(show, who, person_view)
    then_redraw(add_button.click(add, new_name, [*listing, new_name]))
    then_redraw(new_name.submit(add, new_name, [*listing, new_name]))
    then_redraw(rename_button.click(rename, [who, rename_to], [*listing, rename_to]))
    never_cloud.input(consent, [who, never_cloud], never_cloud)
    merge_button.click(ask_merge, [who, merge_into], [confirm_box, confirm_text, pending])
    delete_button.click(ask_delete, who, [confirm_box, confirm_text, pending])
    cancel_button.click(lambda: (gr.update(visible=False), None), outputs=[confirm_box, pending])
    then_redraw(confirm_button.click(confirmed, [who, pending], [*listing, confirm_box]))
    export_button.click(export, who, export_file)
    then_redraw(import_file.upload(import_person, import_file, [*listing, import_report]))
    then_redraw(retrain_button.click(retrain, outputs=encoder_text))
    archive_button.click(archive_export, outputs=archive_file)
    then_redraw(archive_upload.upload(archive_import, archive_upload, archive_report).then(refresh, outputs=listing))

def picture(label: str, elem_id: str) -> tuple[gr.Image, gr.Markdown]:
    """A chart and the note shown instead of it while there is nothing to draw. The chart has a
    title of its own, so Gradio's label (which sat on top of it) is not shown."""
    image = gr.Image(label=label, show_label=False, type="filepath", format="png", interactive=False,
                     buttons=["download"], elem_id=elem_id)
    return image, gr.Markdown(visible=False, elem_id=f"{elem_id}-note")


def drawn(path, why_not: str) -> tuple:
    """Updates for a ``picture``: the chart when there is one, else the note saying why not."""
    return (gr.update(value=path, visible=path is not None),
            gr.update(value=why_not if path is None else "", visible=path is None))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "person"
