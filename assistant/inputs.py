"""Validation of the messages people send, and of the size of files they bring in.

``clean_message`` returns the text that will be stored and answered, or raises
``InputError`` with what to do: empty or whitespace-only messages are refused, messages over
the size limit are refused (never silently cut), control characters other than newlines and
tabs are removed, and unpaired surrogates (from invalid UTF-8) become U+FFFD.
``check_file_size`` refuses a missing file or one over the import limit before it is read.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

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


def check_file_size(path, max_bytes: int) -> Path:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if size > max_bytes:
        raise InputError(f"{path.name} is {size:,} bytes; the import limit is {max_bytes:,} "
                         "(setting max_import_bytes)")
    return path
