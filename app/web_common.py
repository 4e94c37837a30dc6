"""What the web app's tabs share: the assistant and the login check (``Shell``), the choice lists
of people, and the edge where a ``ConfidantError`` becomes a message on the page.

Every handler that names a person, a conversation or a memory resolves it through
``shell.access`` from the request (the login), never trusting the ids the page sends.

Notifications go through ``info`` and ``warn``: Gradio shows a toast's text as HTML, and these
messages quote names and memories people typed, so they are HTML-escaped first.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from app.auth import Access
from assistant.errors import ConfidantError
from assistant.pipeline import Assistant
from assistant.turn_options import TurnOptions


@dataclass
class Shell:
    assistant: Assistant
    access: Access
    # The cloud mode each login chose last, kept while the server runs (the chat's note says so).
    cloud_modes: dict[str, str] = field(default_factory=dict)
    # Whether each login answers with the tuned model (the Teach tab's switch; on unless turned off).
    tuned_choices: dict[str, bool] = field(default_factory=dict)

    def turn_options(self, request) -> TurnOptions:
        """This login's choices for a turn (the tuned model on or off)."""
        return TurnOptions(tuned=self.tuned_choices.get(self.login_key(request), True))

    @property
    def store(self):
        return self.assistant.store

    @property
    def people(self):
        return self.assistant.people

    def choices(self, request) -> list[tuple[str, int]]:
        return [(p.name, p.id) for p in self.access.people(request)]

    def own_person(self, request) -> int | None:
        """The person a login stands for (a login allowed exactly one profile), else None."""
        if self.access.users is None or self.access.is_admin(request):
            return None
        people = self.access.people(request)
        return people[0].id if len(people) == 1 else None

    def login_key(self, request) -> str:
        return self.access.login(request) or "household"

    def add_person(self, request, name: str):
        """A new profile that becomes this login's own (refused if the name is someone else's)."""
        self.access.may_claim(request, name or "")
        profile = self.people.add(name)
        self.access.created(request, profile)
        info(f"Added {profile.name}.")
        return profile

    def file(self, request, name: str, people) -> Path:
        """A fresh path for a download made from ``people``'s data, in a folder of this login's own,
        never in the data directory; deleting or forgetting any of them deletes it (``People.copies``)."""
        return self.people.new_download(self.login_key(request), people, name)


def info(text: str) -> None:
    """A toast with ``text`` shown as typed (never as HTML)."""
    gr.Info(html.escape(text))


def warn(text: str) -> None:
    """A warning toast with ``text`` shown as typed (never as HTML)."""
    gr.Warning(html.escape(text))


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 exchange``, ``2 exchanges`` (``many`` for irregular plurals)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised and the rest as it was (names keep their case)."""
    return text[:1].upper() + text[1:]


def guarded(outputs: int):
    """Run a handler; a ``ConfidantError`` becomes a warning on the page and its ``outputs``
    components stay as they were (so nothing the user typed is lost)."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except ConfidantError as error:
                warn(str(error))
                return gr.update() if outputs == 1 else tuple(gr.update() for _ in range(outputs))

        return run

    return wrap
