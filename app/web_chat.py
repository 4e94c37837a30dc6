"""The Chat tab: who is speaking (chosen or detected), their conversations, the streamed reply
with the memories it used and where it was answered, the cloud control, and a temporary-chat
switch whose turns neither read nor write memory.

The page opens on a neutral start: nobody chosen and no conversation shown (the screen may be
shared), unless the login stands for one person. "Delete this conversation…" asks first, then
forgets its exchanges for good (``People.delete_conversation``, as forgetting a person does).
The cloud mode a login chose is kept while the server runs.

A detected speaker's guess shows "Not Tom? It was: …": choosing the right person forgets the
reply made for the guess (it may come from Tom's memories) and answers the message again as
them, in the chat, in the store and in the sidebar (``Assistant.correct``).
"""

from __future__ import annotations

import gradio as gr

from app import native_memory, render
from app.sanitize import model_line, model_text
from app.web_common import Shell, guarded, info, plural, warn
from assistant.errors import ConfidantError, NotFoundError
from assistant.pipeline import AUTO, Chunk, Finished, Rerouted, Started, Unsure

NEW_PERSON = "__new__"
CLOUD_MODES = [("Off", "off"), ("Auto", "auto"), ("Always", "always")]
TEMPORARY_NOTE = "<sub>🕶️ temporary · not remembered · answered on this device</sub>"


def build(shell: Shell, tab: gr.Tab, app: gr.Blocks) -> None:
    settings, store, people, access = shell.assistant.settings, shell.store, shell.people, shell.access

    def people_choices(request) -> list[tuple[str, int | str]]:
        return shell.choices(request) + [("🔍 Detect automatically", AUTO), ("➕ New person…", NEW_PERSON)]

    def conversation_choices(person_id: int) -> list[tuple[str, int]]:
        return [(render.session_label(s), s.id) for s in store.sessions(person_id)]

    def history(session_id) -> list[dict]:
        return render.chat_messages(store.session_exchanges(session_id), store.exchanges) if session_id else []

    @guarded(4)
    def open_person(person, request: gr.Request):
        """Show a person's latest conversation (the new-person form, or an empty chat to detect)."""
        if person in (AUTO, NEW_PERSON, None):
            return gr.update(visible=person == NEW_PERSON), [], None, gr.update(choices=[], value=None)
        profile = access.person(request, person)
        sessions = store.sessions(profile.id)
        session_id = sessions[0].id if sessions else None
        return gr.update(visible=False), history(session_id), session_id, gr.update(
            choices=conversation_choices(profile.id), value=session_id)

    def start_person(request):
        """A neutral start: nobody chosen (or "new person" when there is nobody), unless the login says who it is."""
        ids = [i for _, i in shell.choices(request)]
        return shell.own_person(request) or (None if ids else NEW_PERSON)

    def on_load(request: gr.Request):
        """The page opens on the neutral start, with no conversation shown."""
        person = start_person(request)
        mode_value = shell.cloud_modes.get(shell.login_key(request), default_mode)
        return (gr.update(choices=people_choices(request), value=person), *open_person(person, request),
                gr.update(value=mode_value))

    def on_show(person, request: gr.Request):
        """Back on the tab: the same person as before if they are still there (the list may have changed)."""
        # The tab's select can also arrive while the page loads, before on_load's choice reaches the
        # browser: falling back to the start person (the login's own) keeps the two from racing.
        if person not in [i for _, i in shell.choices(request)] and person != AUTO:
            person = start_person(request)
        return gr.update(choices=people_choices(request), value=person), *open_person(person, request)

    @guarded(3)
    def add_person(name, request: gr.Request):
        profile = shell.add_person(request, name)
        return gr.update(choices=people_choices(request), value=profile.id), gr.update(visible=False), ""

    @guarded(2)
    def open_conversation(session_id, person, request: gr.Request):
        profile = access.person(request, person)
        if store.session(session_id).profile_id != profile.id:
            raise NotFoundError(f"No conversation {session_id}.")
        return history(session_id), session_id

    def send(message, person, session_id, mode, shown_before, temporary, earlier, request: gr.Request):
        shown_before = list(shown_before or [])
        if person == NEW_PERSON or person is None:
            warn("Choose who is speaking first, or add a new person.")
            yield {message_box: message}
            return
        if temporary:
            yield from send_temporary(message, person, shown_before, earlier, request)
            return
        among = {p.id for p in access.people(request)}
        yield from stream_turn(lambda: shell.assistant.turn(
            message, AUTO if person == AUTO else access.person(request, person).id, session_id, mode, among=among,
            options=shell.turn_options(request)), message, shown_before, session_id, request)

    def stream_turn(start, message, shown_before, asked_from, request):
        """Show the turn ``start()`` runs as it streams (after ``shown_before``, the conversation
        shown when it was asked from conversation ``asked_from``)."""
        shown = shown_before + [{"role": "user", "content": model_text(message)}, {"role": "assistant", "content": "…"}]
        reply, session_id = "", asked_from
        try:
            for event in start():
                if isinstance(event, Unsure):
                    yield ask_who(event, message, request)
                    return
                if isinstance(event, Started):
                    session_id = event.session.id
                    note = render.memories_message(event.recollection.summary(), store.exchanges)
                    if note:
                        shown.insert(-1, note)
                    yield {chat: shown, message_box: "", session_state: session_id,
                           **guess_updates(event, asked_from, request)}
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
            yield failed(error, message, reply, shown, shown_before)
        finally:
            native_memory.trim()  # a turn frees what it allocated; give the pages back (docs/performance.md §5)

    def send_temporary(message, person, shown_before, earlier, request):
        reply = ""
        shown = shown_before + [{"role": "user", "content": model_text(message)}, {"role": "assistant", "content": "…"}]
        try:
            if person == AUTO:
                raise NotFoundError("A temporary chat does not guess who is speaking: choose a person.")
            profile = access.person(request, person)
            yield {chat: shown, message_box: ""}
            for chunk in shell.assistant.temporary_turn(message, profile, earlier or []):
                reply += chunk.text
                shown[-1] = {"role": "assistant", "content": model_text(reply)}
                yield {chat: shown}
            shown[-1] = {"role": "assistant", "content": f"{model_text(reply.strip())}\n\n{TEMPORARY_NOTE}"}
            yield {chat: shown, temporary_turns: [*(earlier or []), (message, reply.strip())]}
        except ConfidantError as error:
            yield failed(error, message, reply, shown, shown_before)

    def failed(error, message, reply, shown, shown_before) -> dict:
        warn(str(error))
        if not reply:  # nothing was answered: give the text back to edit
            return {chat: shown_before, message_box: message}
        shown[-1] = {"role": "assistant", "content": f"{model_text(reply)}\n\n<sub>⚠️ {model_line(str(error))}</sub>"}
        return {chat: shown}

    def ask_who(event: Unsure, message, request):
        allowed = {p.id for p in access.people(request)}
        names = [(f"{p.name} ({c:.0%})", p.id) for p, c in event.identification.candidates if p.id in allowed]
        others = [(name, i) for name, i in shell.choices(request) if i not in {i for _, i in names}]
        if not names and not others:
            warn("Nobody is known yet: add a person first.")
            return {message_box: message}
        return {message_box: message, who_box: gr.update(visible=True), who_pick: gr.update(choices=names + others, value=None)}

    def guess_updates(event: Started, asked_from, request) -> dict:
        if event.identification is None:
            return {guess_box: gr.update(visible=False), last_exchange: None}
        others = [(name, i) for name, i in shell.choices(request) if i != event.person.id]
        return {
            guess_box: gr.update(visible=True),
            guess_text: render.guess_line(event.identification, event.person),
            guess_pick: gr.update(choices=others, value=None),
            last_exchange: (event.exchange_id, asked_from),
        }

    def correct_speaker(guessed, chosen, mode, request: gr.Request):
        """"It was: Maya": the reply made for the guessed person is forgotten from them and the
        message is answered again as Maya, in the conversation it was asked from if it is hers."""
        if not guessed or chosen is None:
            yield {}
            return
        exchange_id, asked_from = guessed
        try:
            target = access.person(request, chosen)
            access.person(request, store.exchange(exchange_id).profile_id)  # only a turn this login could have made
            message = store.exchange(exchange_id).user_text
            if asked_from is not None and store.session(asked_from).profile_id != target.id:
                asked_from = None
        except ConfidantError as error:
            warn(str(error))
            yield {guess_box: gr.update(visible=False), last_exchange: None}
            return
        info(f"Answering again as {target.name}; the reply made for the guess is forgotten.")
        yield {guess_box: gr.update(visible=False), last_exchange: None}
        yield from stream_turn(lambda: shell.assistant.correct(exchange_id, target.id, asked_from, mode,
                                                               options=shell.turn_options(request)),
                               message, history(asked_from), asked_from, request)

    def toggle_temporary(temporary, person, request: gr.Request):
        """Start a fresh temporary chat, or go back to the person's stored conversations."""
        if temporary:
            return [], None, [], gr.update(choices=[], value=None), gr.update(visible=True)
        _, shown, session_id, listed = open_person(person, request)
        return shown, session_id, [], listed, gr.update(visible=False)

    def choose_person(person, temporary, request: gr.Request):
        if temporary:  # a temporary chat stays temporary: a fresh one for the new speaker
            return gr.update(visible=person == NEW_PERSON), [], None, gr.update(choices=[], value=None), []
        return (*open_person(person, request), [])

    default_mode = settings.cloud_mode if settings.cloud_configured else "off"

    def remember_mode(chosen, request: gr.Request):
        shell.cloud_modes[shell.login_key(request)] = chosen

    @guarded(2)
    def ask_delete_conversation(session_id, person, request: gr.Request):
        profile = access.person(request, person)
        if session_id is None or store.session(session_id).profile_id != profile.id:
            raise NotFoundError("Open one of your conversations first.")
        count = len(store.session_exchanges(session_id))
        return gr.update(visible=True), (f"Delete this conversation ({plural(count, 'exchange')}) for good? "
                                         "Its words are erased from the database file too; this cannot be undone.")

    @guarded(5)
    def delete_conversation(session_id, person, request: gr.Request):
        profile = access.person(request, person)
        if session_id is None or store.session(session_id).profile_id != profile.id:
            raise NotFoundError("Open one of your conversations first.")
        count = people.delete_conversation(session_id, profile)
        info(f"Deleted the conversation and its {plural(count, 'exchange')} for good.")
        return gr.update(visible=False), [], None, gr.update(choices=conversation_choices(profile.id), value=None), []

    cloud_note = (
        "Off keeps everything on this device; Auto sends only hard questions to the cloud model; Always sends every "
        "message there. Personal details are replaced by placeholders first, and people who said never stay local. "
        "Your choice is kept for this login until the server restarts."
        if settings.cloud_configured
        else "Disabled: no cloud model is configured (set CONFIDANT_CLOUD_BASE_URL and CONFIDANT_CLOUD_MODEL), "
        "so everything stays on this device."
    )

    with tab:
        session_state = gr.State(None)
        last_exchange = gr.State(None)
        temporary_turns = gr.State([])  # (message, reply) pairs of the temporary chat: held here, never stored
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_id="cf-side"):
                person = gr.Dropdown(label="Who's speaking", choices=[], interactive=True, elem_id="cf-person")
                with gr.Group(visible=False) as new_person_box:
                    new_name = gr.Textbox(label="Name", placeholder="e.g. Alex", max_lines=1, elem_id="cf-new-name")
                    add_button = gr.Button("Add person", variant="primary", elem_id="cf-add-person")
                new_button = gr.Button("+ New conversation", elem_id="cf-new-conversation")
                temporary = gr.Checkbox(label="Temporary chat (not remembered, memories not used)", elem_id="cf-temporary")
                conversations = gr.Radio(label="Conversations", choices=[], elem_id="cf-conversations")
                delete_button = gr.Button("Delete this conversation…", variant="stop", size="sm",
                                          elem_id="cf-delete-conversation")
                with gr.Group(visible=False, elem_id="cf-delete-box") as delete_box:
                    delete_text = gr.Markdown(elem_id="cf-delete-text")
                    with gr.Row():
                        delete_yes = gr.Button("Yes, delete it", variant="stop", size="sm", elem_id="cf-delete-confirm")
                        delete_no = gr.Button("Cancel", size="sm", elem_id="cf-delete-cancel")
            with gr.Column(scale=3, min_width=300):
                # LaTeX off: Gradio puts the text of $$…$$ blocks into the page as HTML (see app/sanitize.py).
                # Gradio's own trash icon only empties the view, which looks like deleting: it is hidden
                # (assets/style.css); "Delete this conversation…" really deletes.
                chat = gr.Chatbot(elem_id="cf-chat", label="Chat", show_label=False, height="60vh", buttons=["copy"],
                                  feedback_options=None, latex_delimiters=[])
                temporary_banner = gr.Markdown("🕶️ **Temporary chat**: nothing here is stored or used as memory.",
                                               visible=False, elem_id="cf-temporary-banner")
                with gr.Group(visible=False, elem_id="cf-who") as who_box:
                    who_pick = gr.Radio(label="I'm not sure who is speaking. Who are you?", choices=[], elem_id="cf-who-pick")
                with gr.Group(visible=False, elem_id="cf-guess") as guess_box:
                    guess_text = gr.Markdown(elem_id="cf-guess-text")
                    guess_pick = gr.Radio(show_label=False, choices=[], elem_id="cf-guess-pick")
                with gr.Row(elem_id="cf-composer", equal_height=True):
                    message_box = gr.Textbox(placeholder="Type a message", show_label=False, scale=5,
                                             min_width=200, max_lines=8, elem_id="cf-message")
                    send_button = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="cf-send")
                with gr.Row(elem_id="cf-cloud"):
                    mode = gr.Radio(CLOUD_MODES, value=default_mode,
                                    label="Cloud escalation", interactive=settings.cloud_configured, elem_id="cf-cloud-mode")
                    gr.Markdown(cloud_note, elem_id="cf-cloud-note")

    person_view = [new_person_box, chat, session_state, conversations]
    app.load(on_load, None, [person, *person_view, mode])
    tab.select(on_show, person, [person, *person_view])
    person.input(choose_person, [person, temporary], [*person_view, temporary_turns])
    add_button.click(add_person, new_name, [person, new_person_box, new_name], api_name="add_person").then(
        open_person, person, person_view)
    new_name.submit(add_person, new_name, [person, new_person_box, new_name], api_name=False).then(
        open_person, person, person_view)
    new_button.click(lambda: ([], None, gr.update(value=None), []), outputs=[chat, session_state, conversations, temporary_turns])
    conversations.input(open_conversation, [conversations, person], [chat, session_state])
    temporary.input(toggle_temporary, [temporary, person], [chat, session_state, temporary_turns, conversations, temporary_banner])

    mode.input(remember_mode, mode, None)
    delete_button.click(ask_delete_conversation, [session_state, person], [delete_box, delete_text])
    delete_no.click(lambda: gr.update(visible=False), outputs=delete_box)
    delete_yes.click(delete_conversation, [session_state, person],
                     [delete_box, chat, session_state, conversations, temporary_turns])

    chat_inputs = [message_box, person, session_state, mode, chat, temporary, temporary_turns]
    chat_outputs = [chat, message_box, session_state, conversations, who_box, who_pick, guess_box, guess_text,
                    guess_pick, last_exchange, temporary_turns]
    message_box.submit(send, chat_inputs, chat_outputs, api_name="send")
    send_button.click(send, chat_inputs, chat_outputs, api_name=False)
    who_pick.input(lambda chosen: (gr.update(value=chosen), gr.update(visible=False)), who_pick, [person, who_box]).then(
        send, chat_inputs, chat_outputs)
    guess_pick.input(correct_speaker, [last_exchange, guess_pick, mode], chat_outputs)
