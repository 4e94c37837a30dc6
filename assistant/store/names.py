"""Validation of the names people are known by.

A name is trimmed, must not be empty, must fit ``max_chars`` and may not contain control
characters; inner runs of whitespace collapse to one space. Emoji and right-to-left scripts
are welcome. Uniqueness (case-insensitive) is the store's job.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.errors import InputError

_WHITESPACE = re.compile(r"\s+")


def clean_name(raw: object, max_chars: int = 60) -> str:
    """The name as it will be stored, or ``InputError`` saying what is wrong with it."""
    if not isinstance(raw, str):
        raise InputError("A name must be text.")
    name = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    if not name:
        raise InputError("Please enter a name.")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in name):
        raise InputError("A name cannot contain control characters.")
    if len(name) > max_chars:
        raise InputError(f"A name can be at most {max_chars} characters (this one has {len(name)}).")
    return name
