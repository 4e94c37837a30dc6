"""The Gradio web app: chat, who's speaking, conversations, the cloud control.

It holds no logic of its own: every action calls the ``Assistant`` or its store, and every
``ConfidantError`` becomes a visible message without losing what the user typed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from app import render
from assistant.errors import ConfidantError
from assistant.pipeline import Assistant, Chunk, Finished, Started
from assistant.settings import Settings

ASSETS = Path(__file__).resolve().parent.parent / "assets"
NEW_PERSON = "__new__"
CLOUD_MODES = [("Off", "off"), ("Auto", "auto"), ("Always", "always")]


def build_app(assistant: Assistant) -> gr.Blocks:
    settings = assistant.settings
    store = assistant.store

    def people_choices() -> list[tuple[str, int | str]]:
        return [(p.name, p.id) for p in store.profiles()] + [("➕ New person…", NEW_PERSON)]

    def conversation_choices(person) -> list[tuple[str, int]]:
        if not isinstance(person, int):
            return []
        return [(render.session_label(s), s.id) for s in store.sessions(person)]

    def open_person(person):
        """Show a person's latest conversation (or the new-person form)."""
        if not isinstance(person, int):
            return gr.update(visible=True), [], None, gr.update(choices=[], value=None)
        sessions = store.sessions(person)
        session_id = sessions[0].id if sessions else None
        history = render.chat_messages(store.session_exchanges(session_id)) if session_id else []
        choices = conversation_choices(person)
        return gr.update(visible=False), history, session_id, gr.update(choices=choices, value=session_id)

    def on_load():
        people = store.profiles()
        person = people[0].id if people else NEW_PERSON
        return gr.update(choices=people_choices(), value=person), *open_person(person)

    def add_person(name):
        try:
            profile = store.add_profile(name)
        except ConfidantError as error:
            gr.Warning(str(error))
            return gr.update(), gr.update(), gr.update(value=name)
        gr.Info(f"Added {profile.name}.")
        return gr.update(choices=people_choices(), value=profile.id), gr.update(visible=False), gr.update(value="")

    def open_conversation(session_id):
        if session_id is None:
            return [], None
        return render.chat_messages(store.session_exchanges(session_id)), session_id

    def rename_person(person, new):
        if not isinstance(person, int):
            gr.Warning("Choose the person to rename first.")
            return gr.update(), gr.update()
        try:
            profile = store.rename_profile(store.profile(person).name, new)
        except ConfidantError as error:
            gr.Warning(str(error))
            return gr.update(), gr.update()
        gr.Info(f"Renamed to {profile.name}.")
        return gr.update(choices=people_choices(), value=profile.id), gr.update(value="")

    def ask_delete(person):
        if not isinstance(person, int):
            gr.Warning("Choose the person to delete first.")
            return gr.update(visible=False), gr.update()
        profile = store.profile(person)
        count = store.count_exchanges(profile.id)
        return gr.update(visible=True), f"Delete **{profile.name}** and their {count} exchanges for good?"

    def delete_person(person):
        try:
            profile = store.delete_profile(store.profile(person).name)
        except ConfidantError as error:
            gr.Warning(str(error))
            return gr.update(), gr.update(visible=False)
        gr.Info(f"Deleted {profile.name}.")
        people = store.profiles()
        return gr.update(choices=people_choices(), value=people[0].id if people else NEW_PERSON), gr.update(visible=False)

    def new_conversation():
        return [], None, gr.update(value=None)

    def send(message, person, session_id, mode, history):
        history = list(history or [])
        if not isinstance(person, int):
            gr.Warning("Choose who is speaking first, or add a new person.")
            yield history, message, session_id, gr.update()
            return
        shown = history + [{"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
        reply = ""
        try:
            for event in assistant.turn(message, person, session_id, mode):
                if isinstance(event, Started):
                    session_id = event.session.id
                    yield shown, "", session_id, gr.update()
                elif isinstance(event, Chunk):
                    reply += event.text
                    shown[-1] = {"role": "assistant", "content": reply}
                    yield shown, "", session_id, gr.update()
                elif isinstance(event, Finished):
                    shown[-1] = {"role": "assistant", "content": render.reply_content(event.exchange)}
                    yield shown, "", session_id, gr.update(choices=conversation_choices(person), value=session_id)
        except ConfidantError as error:
            gr.Warning(str(error))
            if session_id is None or not reply:  # nothing was answered: give the text back to edit
                yield history, message, session_id, gr.update()
            else:
                shown[-1] = {"role": "assistant", "content": f"{reply}\n\n<sub>⚠️ {error}</sub>"}
                yield shown, "", session_id, gr.update()

    cloud_note = (
        "Off keeps everything on this device; Auto sends hard questions to the cloud model."
        if settings.cloud_configured
        else "Disabled: no cloud model is configured (set CONFIDANT_CLOUD_BASE_URL and CONFIDANT_CLOUD_MODEL), "
        "so everything stays on this device."
    )
    bind_note = f"Single household · serving on {settings.host}"

    with gr.Blocks(title=settings.assistant_name, fill_height=True) as app:
        session_state = gr.State(None)
        gr.HTML(
            f'<div id="cf-header"><img src="/gradio_api/file={ASSETS / "icon.svg"}" alt="">'
            f"<div><h1>{settings.assistant_name}</h1><p>{bind_note}</p></div></div>"
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_id="cf-side"):
                person = gr.Dropdown(label="Who's speaking", choices=[], interactive=True, elem_id="cf-person")
                with gr.Group(visible=False) as new_person_box:
                    new_name = gr.Textbox(label="Name", placeholder="e.g. Alex", max_lines=1, elem_id="cf-new-name")
                    add_button = gr.Button("Add person", variant="primary", elem_id="cf-add-person")
                new_button = gr.Button("+ New conversation", elem_id="cf-new-conversation")
                conversations = gr.Radio(label="Conversations", choices=[], elem_id="cf-conversations")
                with gr.Accordion("Edit this person", open=False, elem_id="cf-edit-person"):
                    rename_to = gr.Textbox(label="New name", max_lines=1, elem_id="cf-rename-to")
                    rename_button = gr.Button("Rename", elem_id="cf-rename")
                    delete_button = gr.Button("Delete…", variant="stop", elem_id="cf-delete")
                    with gr.Group(visible=False) as confirm_box:
                        confirm_text = gr.Markdown(elem_id="cf-confirm-text")
                        with gr.Row():
                            confirm_button = gr.Button("Delete for good", variant="stop", elem_id="cf-confirm-delete")
                            cancel_button = gr.Button("Cancel", elem_id="cf-cancel-delete")
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(
                    elem_id="cf-chat", label="Chat", height="60vh", buttons=["copy"], feedback_options=None
                )
                with gr.Row(elem_id="cf-composer", equal_height=True):
                    message = gr.Textbox(
                        placeholder="Type a message and press Enter",
                        show_label=False,
                        scale=5,
                        min_width=200,
                        max_lines=8,
                        elem_id="cf-message",
                    )
                    send_button = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="cf-send")
                with gr.Row(elem_id="cf-cloud"):
                    mode = gr.Radio(
                        CLOUD_MODES,
                        value=settings.cloud_mode if settings.cloud_configured else "off",
                        label="Cloud escalation",
                        interactive=settings.cloud_configured,
                        elem_id="cf-cloud-mode",
                    )
                    gr.Markdown(cloud_note, elem_id="cf-cloud-note")

        app.load(on_load, outputs=[person, new_person_box, chat, session_state, conversations])
        person.input(open_person, person, [new_person_box, chat, session_state, conversations])
        add_event = add_button.click(add_person, new_name, [person, new_person_box, new_name])
        new_name.submit(add_person, new_name, [person, new_person_box, new_name])
        add_event.then(open_person, person, [new_person_box, chat, session_state, conversations])
        rename_button.click(rename_person, [person, rename_to], [person, rename_to])
        delete_button.click(ask_delete, person, [confirm_box, confirm_text])
        cancel_button.click(lambda: gr.update(visible=False), outputs=confirm_box)
        confirm_button.click(delete_person, person, [person, confirm_box]).then(
            open_person, person, [new_person_box, chat, session_state, conversations]
        )
        new_button.click(new_conversation, outputs=[chat, session_state, conversations])
        conversations.input(open_conversation, conversations, [chat, session_state])
        chat_inputs = [message, person, session_state, mode, chat]
        chat_outputs = [chat, message, session_state, conversations]
        message.submit(send, chat_inputs, chat_outputs)
        send_button.click(send, chat_inputs, chat_outputs)
    return app


def serve(settings: Settings) -> None:
    assistant = Assistant(settings)
    # Load the model while the server starts, so the first reply does not wait for it.
    threading.Thread(target=lambda: assistant.local, daemon=True).start()
    app = build_app(assistant)
    app.queue(default_concurrency_limit=settings.concurrency)
    print(f"Confidant is serving on http://{settings.host}:{settings.port} (data in {settings.data_dir})", flush=True)
    app.launch(
        server_name=settings.host,
        server_port=settings.port,
        favicon_path=str(ASSETS / "icon.svg"),
        allowed_paths=[str(ASSETS)],
        css_paths=[str(ASSETS / "style.css")],
        theme=gr.themes.Soft(primary_hue="emerald"),
        footer_links=[],
        show_error=True,
    )
