"""The Compare tab: one question answered as each of several chosen people, side by side.

The "same question, different person" feature made visible: 2 to ``MAX_PEOPLE`` people, one card
each, labelled with the person's name and the model that answered, filled in as each answer
streams (``Assistant.preview_turn``, one after another on the one local model). It is a preview:
the answers are not stored and not added to anyone's memories, and they are made on this device
(never the cloud), which the tab says. Only people this login may use can be chosen; every name,
question and answer is escaped where shown.
"""

from __future__ import annotations

import html

import gradio as gr

from app.web_common import Shell, warn
from assistant.errors import ConfidantError, InputError
from assistant.pipeline import Answering

MIN_PEOPLE, MAX_PEOPLE = 2, 4
NOTE = ("A preview: these answers are not stored and not added to anyone's memories. Each person's own memories "
        "are read to answer as them; everything is answered on this device, never by the cloud.")


def cards_html(question: str, cards: list[dict]) -> str:
    shown = "".join(
        f"<div class='cf-cmp-card'><h4>{html.escape(c['name'])}</h4><p class='cf-cmp-model'>{html.escape(c['model'])}</p>"
        f"<p class='cf-cmp-answer'>{html.escape(' '.join(c['text'].split())) or '…'}</p></div>" for c in cards)
    return f"<p class='cf-cmp-question'>“{html.escape(question)}”</p><div class='cf-cmp-cards'>{shown}</div>"


def build(shell: Shell, tab: gr.Tab) -> None:
    access = shell.access

    def on_show(chosen, request: gr.Request):
        choices = shell.choices(request)
        ids = {i for _, i in choices}
        return gr.update(choices=choices, value=[c for c in chosen or [] if c in ids])

    def ask(question, chosen, request: gr.Request):
        try:
            if not question or not question.strip():
                raise InputError("Type a question to compare.")
            if not MIN_PEOPLE <= len(chosen or []) <= MAX_PEOPLE:
                raise InputError(f"Choose {MIN_PEOPLE} to {MAX_PEOPLE} people to compare.")
            profiles = [access.person(request, person) for person in chosen]
            tuned = shell.tuned_choices.get(shell.login_key(request), True)
            cards = [{"name": p.name, "model": "waiting…", "text": ""} for p in profiles]
            yield cards_html(question, cards)
            for card, profile in zip(cards, profiles):
                for event in shell.assistant.preview_turn(question, profile, tuned=tuned):
                    if isinstance(event, Answering):
                        card["model"] = event.model
                    else:
                        card["text"] += event.text
                    yield cards_html(question, cards)
        except ConfidantError as error:
            warn(str(error))
            yield gr.update()

    with tab:
        gr.Markdown("### Same question, different person\nAsk once and see how the assistant answers each "
                    "person: their own memories, and the tuned model's sense of who is asking.", elem_id="cf-cmp-intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240):
                people = gr.Dropdown(label=f"People ({MIN_PEOPLE} to {MAX_PEOPLE})", choices=[], multiselect=True,
                                     max_choices=MAX_PEOPLE, interactive=True, elem_id="cf-cmp-people")
                question = gr.Textbox(label="Question", placeholder="e.g. What should I do this weekend?", max_lines=4,
                                      elem_id="cf-cmp-question")
                ask_button = gr.Button("Ask each of them", variant="primary", elem_id="cf-cmp-ask")
                gr.Markdown(NOTE, elem_id="cf-cmp-note")
            with gr.Column(scale=3, min_width=300):
                answers = gr.HTML(elem_id="cf-cmp-answers")

    tab.select(on_show, people, people)
    ask_button.click(ask, [question, people], answers, api_name=False)
    question.submit(ask, [question, people], answers, api_name=False)
