"""Validation of the messages people send.

``clean_message`` returns the text that will be stored and answered, or raises
``InputError`` with what to do: empty or whitespace-only messages are refused, messages over
the size limit are refused (never silently cut), control characters other than newlines and
tabs are removed, and unpaired surrogates (from invalid UTF-8) become U+FFFD.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.errors import InputError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_message(raw: object, max_chars: int) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise InputError("A message must be text.")
    if len(raw) > max_chars:
        raise InputError(f"This message is {len(raw):,} characters long; the limit is {max_chars:,}. Please shorten it.")
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", raw.replace("\r\n", "\n")))
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise InputError("The message is empty; type something to send.")
    return text
