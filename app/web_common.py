"""What the web app's tabs share: the assistant and the login check (``Shell``), the choice lists
of people, and the edge where a ``ConfidantError`` becomes a message on the page.

Every handler that names a person, a conversation or a memory resolves it through
``shell.access`` from the request (the login), never trusting the ids the page sends.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from app.auth import Access
from assistant.errors import ConfidantError
from assistant.pipeline import Assistant


@dataclass
class Shell:
    assistant: Assistant
    access: Access
    # Files made for download (exports, pictures) live here, never in the data directory.
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="confidant-")))

    @property
    def store(self):
        return self.assistant.store

    @property
    def people(self):
        return self.assistant.people

    def choices(self, request) -> list[tuple[str, int]]:
        return [(p.name, p.id) for p in self.access.people(request)]

    def add_person(self, request, name: str):
        """A new profile that becomes this login's own (refused if the name is someone else's)."""
        self.access.may_claim(request, name or "")
        profile = self.people.add(name)
        self.access.created(request, profile)
        gr.Info(f"Added {profile.name}.")
        return profile

    def file(self, request, name: str) -> Path:
        """A fresh path for a download, in a folder of this login's own."""
        folder = self.scratch / (self.access.login(request) or "household")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


def guarded(outputs: int):
    """Run a handler; a ``ConfidantError`` becomes a warning on the page and its ``outputs``
    components stay as they were (so nothing the user typed is lost)."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except ConfidantError as error:
                gr.Warning(str(error))
                return gr.update() if outputs == 1 else tuple(gr.update() for _ in range(outputs))

        return run

    return wrap
