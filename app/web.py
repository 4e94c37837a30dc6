"""The Gradio web app: chat, who's speaking (chosen or detected), conversations, memories used,
the questioner encoder and the cloud control.

It holds no logic of its own: every action calls the ``Assistant``, its store or its memory,
and every ``ConfidantError`` becomes a visible message without losing what the user typed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from app import render
from app.sanitize import model_line, model_text
from assistant.errors import ConfidantError
from assistant.pipeline import Assistant, Chunk, Finished, Rerouted, Started, Unsure
from assistant.settings import Settings
from profiles.identify import AUTO, correct

ASSETS = Path(__file__).resolve().parent.parent / "assets"
NEW_PERSON = "__new__"
CLOUD_MODES = [("Off", "off"), ("Auto", "auto"), ("Always", "always")]


def build_app(assistant: Assistant) -> gr.Blocks:
    settings, store, memory = assistant.settings, assistant.store, assistant.memory

    def people_choices() -> list[tuple[str, int | str]]:
        people = [(p.name, p.id) for p in store.profiles()]
        return people + [("🔍 Detect automatically", AUTO), ("➕ New person…", NEW_PERSON)]

    def conversation_choices(person) -> list[tuple[str, int]]:
        return [(render.session_label(s), s.id) for s in store.sessions(person)] if isinstance(person, int) else []

    def history(session_id) -> list[dict]:
        return render.chat_messages(store.session_exchanges(session_id), store.exchanges) if session_id else []

    def open_person(person):
        """Show a person's latest conversation (the new-person form, or an empty chat to detect)."""
        if not isinstance(person, int):
            return gr.update(visible=person == NEW_PERSON), [], None, gr.update(choices=[], value=None)
        sessions = store.sessions(person)
        session_id = sessions[0].id if sessions else None
        return gr.update(visible=False), history(session_id), session_id, gr.update(
            choices=conversation_choices(person), value=session_id
        )

    def on_load():
        people = store.profiles()
        person = people[0].id if people else NEW_PERSON
        return gr.update(choices=people_choices(), value=person), *open_person(person), render.encoder_status(memory.encoders.meta)

    def add_person(name):
        try:
            profile = store.add_profile(name)
        except ConfidantError as error:
            gr.Warning(str(error))
            return gr.update(), gr.update(), gr.update(value=name)
        gr.Info(f"Added {profile.name}.")
        return gr.update(choices=people_choices(), value=profile.id), gr.update(visible=False), gr.update(value="")

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
        return gr.update(visible=True), f"Delete **{profile.name}** and their {store.count_exchanges(profile.id)} exchanges for good?"

    def delete_person(person):
        try:
            profile = memory.delete_profile(store.profile(person).name)
        except ConfidantError as error:
            gr.Warning(str(error))
            return gr.update(), gr.update(visible=False)
        gr.Info(f"Deleted {profile.name}.")
        people = store.profiles()
        return gr.update(choices=people_choices(), value=people[0].id if people else NEW_PERSON), gr.update(visible=False)

    def send(message, person, session_id, mode, shown_before):
        shown_before = list(shown_before or [])
        if person == NEW_PERSON or person is None:
            gr.Warning("Choose who is speaking first, or add a new person.")
            yield {message_box: message}
            return
        shown = shown_before + [{"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
        reply = ""
        try:
            for event in assistant.turn(message, person, session_id, mode):
                if isinstance(event, Unsure):
                    yield ask_who(event, message)
                    return
                if isinstance(event, Started):
                    session_id = event.session.id
                    note = render.memories_message(event.recollection.summary(), store.exchanges)
                    if note:
                        shown.insert(-1, note)
                    yield {chat: shown, message_box: "", session_state: session_id, **guess_updates(event)}
                elif isinstance(event, Chunk):
                    reply += event.text
                    shown[-1] = {"role": "assistant", "content": model_text(reply)}  # model output: untrusted
                    yield {chat: shown}
                elif isinstance(event, Rerouted):  # the cloud failed: its partial text goes, the local answer follows
                    reply = ""
                    shown[-1] = {"role": "assistant", "content": f"<sub>⚠️ {event.note}</sub>"}
                    yield {chat: shown}
                elif isinstance(event, Finished):
                    sent = render.payload_message(event.exchange.cloud_payload)
                    if sent:
                        shown.insert(-1, sent)
                    shown[-1] = {"role": "assistant", "content": render.reply_content(event.exchange)}
                    owner = event.exchange.profile_id
                    yield {chat: shown, conversations: gr.update(choices=conversation_choices(owner), value=session_id)}
        except ConfidantError as error:
            gr.Warning(str(error))
            if not reply:  # nothing was answered: give the text back to edit
                yield {chat: shown_before, message_box: message}
            else:
                content = f"{model_text(reply)}\n\n<sub>⚠️ {model_line(str(error))}</sub>"
                shown[-1] = {"role": "assistant", "content": content}
                yield {chat: shown}

    def ask_who(event: Unsure, message):
        names = [(f"{p.name} ({c:.0%})", p.id) for p, c in event.identification.candidates]
        others = [(p.name, p.id) for p in store.profiles() if p.id not in {i for _, i in names}]
        if not names and not others:
            gr.Warning("Nobody is known yet: add a person first.")
            return {message_box: message}
        return {
            message_box: message,
            who_box: gr.update(visible=True),
            who_pick: gr.update(choices=names + others, value=None),
        }

    def guess_updates(event: Started) -> dict:
        if event.identification is None:
            return {guess_box: gr.update(visible=False)}
        others = [(p.name, p.id) for p in store.profiles() if p.id != event.person.id]
        return {
            guess_box: gr.update(visible=True),
            guess_text: f"🔍 {event.identification.describe().capitalize()}. Not {event.person.name}? It was:",
            guess_pick: gr.update(choices=others, value=None),
            last_exchange: event.exchange_id,
        }

    def speaker_chosen(chosen):
        return gr.update(value=chosen), gr.update(visible=False)

    def correct_speaker(exchange_id, chosen, person):
        if exchange_id is None or chosen is None:
            return gr.update(), gr.update(), gr.update()
        correct(memory, exchange_id, chosen)
        moved = store.exchange(exchange_id)
        gr.Info(f"Noted: that was {store.profile(chosen).name}. I'll learn from it.")
        return gr.update(visible=False), moved.session_id, history(moved.session_id)

    def consent_of(person):
        if not isinstance(person, int):
            return gr.update(value=False, interactive=False)
        return gr.update(value=not store.profile(person).cloud_allowed, interactive=True)

    def set_consent(person, never):
        if not isinstance(person, int):
            return
        profile = store.set_cloud_allowed(store.profile(person).name, not never)
        gr.Info(f"{profile.name}'s messages {'never go' if never else 'may go'} to the cloud.")

    def retrain():
        try:
            outcome = memory.train(progress=False)
        except ConfidantError as error:
            gr.Warning(str(error))
            return render.encoder_status(memory.encoders.meta)
        gr.Info(f"Trained on {outcome.n_dialogues} exchanges of {outcome.n_people} people in {outcome.seconds:.0f} s.")
        return render.encoder_status(memory.encoders.meta)

    cloud_note = (
        "Off keeps everything on this device; Auto sends hard questions to the cloud model."
        if settings.cloud_configured
        else "Disabled: no cloud model is configured (set CONFIDANT_CLOUD_BASE_URL and CONFIDANT_CLOUD_MODEL), "
        "so everything stays on this device."
    )
    bind_note = f"Single household · serving on {settings.host}"

    with gr.Blocks(title=settings.assistant_name, fill_height=True) as app:
        session_state = gr.State(None)
        last_exchange = gr.State(None)
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
                    never_cloud = gr.Checkbox(label="Never send this person's messages to the cloud",
                                              elem_id="cf-never-cloud")
                    delete_button = gr.Button("Delete…", variant="stop", elem_id="cf-delete")
                    with gr.Group(visible=False) as confirm_box:
                        confirm_text = gr.Markdown(elem_id="cf-confirm-text")
                        with gr.Row():
                            confirm_button = gr.Button("Delete for good", variant="stop", elem_id="cf-confirm-delete")
                            cancel_button = gr.Button("Cancel", elem_id="cf-cancel-delete")
                with gr.Accordion("Who-is-asking encoder", open=False, elem_id="cf-encoder"):
                    encoder_text = gr.Markdown(elem_id="cf-encoder-status")
                    retrain_button = gr.Button("Retrain", elem_id="cf-retrain")
            with gr.Column(scale=3, min_width=300):
                # LaTeX off: Gradio puts the text of $$…$$ blocks into the page as HTML (see app/sanitize.py).
                chat = gr.Chatbot(elem_id="cf-chat", label="Chat", height="60vh", buttons=["copy"],
                                  feedback_options=None, latex_delimiters=[])
                with gr.Group(visible=False, elem_id="cf-who") as who_box:
                    who_pick = gr.Radio(label="I'm not sure who is speaking. Who are you?", choices=[], elem_id="cf-who-pick")
                with gr.Group(visible=False, elem_id="cf-guess") as guess_box:
                    guess_text = gr.Markdown(elem_id="cf-guess-text")
                    guess_pick = gr.Radio(show_label=False, choices=[], elem_id="cf-guess-pick")
                with gr.Row(elem_id="cf-composer", equal_height=True):
                    message_box = gr.Textbox(
                        placeholder="Type a message and press Enter", show_label=False, scale=5, min_width=200,
                        max_lines=8, elem_id="cf-message",
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

        person_view = [new_person_box, chat, session_state, conversations]
        app.load(on_load, outputs=[person, *person_view, encoder_text])
        person.input(open_person, person, person_view)
        person.change(consent_of, person, never_cloud)
        never_cloud.input(set_consent, [person, never_cloud])
        add_button.click(add_person, new_name, [person, new_person_box, new_name]).then(open_person, person, person_view)
        new_name.submit(add_person, new_name, [person, new_person_box, new_name]).then(open_person, person, person_view)
        rename_button.click(rename_person, [person, rename_to], [person, rename_to])
        delete_button.click(ask_delete, person, [confirm_box, confirm_text])
        cancel_button.click(lambda: gr.update(visible=False), outputs=confirm_box)
        confirm_button.click(delete_person, person, [person, confirm_box]).then(open_person, person, person_view)
        new_button.click(lambda: ([], None, gr.update(value=None)), outputs=[chat, session_state, conversations])
        conversations.input(lambda s: (history(s), s), conversations, [chat, session_state])
        retrain_button.click(retrain, outputs=encoder_text)

        chat_inputs = [message_box, person, session_state, mode, chat]
        chat_outputs = [chat, message_box, session_state, conversations, who_box, who_pick, guess_box, guess_text,
                        guess_pick, last_exchange]
        message_box.submit(send, chat_inputs, chat_outputs)
        send_button.click(send, chat_inputs, chat_outputs)
        who_pick.input(speaker_chosen, who_pick, [person, who_box]).then(send, chat_inputs, chat_outputs)
        guess_pick.input(correct_speaker, [last_exchange, guess_pick, person], [guess_box, session_state, chat])
    return app


def serve(settings: Settings) -> None:
    assistant = Assistant(settings)

    def warm_up():  # load the models while the server starts, so the first reply does not wait
        assistant.local
        assistant.memory.index
        if settings.cloud_configured:
            from assistant import privacy

            privacy.prepare()

    threading.Thread(target=warm_up, daemon=True).start()
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
