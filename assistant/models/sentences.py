"""Ending a streamed reply at a sentence, not mid-word, when ``max_tokens`` runs out.

Contract: ``end_at_sentence(chunks, max_tokens)`` takes llama.cpp's streamed completion chunks and
yields their text unchanged while the reply is short of the limit. In the last ``headroom(max_tokens)``
tokens it stops right after the first sentence end it sees (". ", "! ", "? ", "…", a closing quote
after one), so a reply that would have been cut ends on a whole sentence instead. If the model
still stops for length (no sentence ended in the headroom), a visible ``CUT_MARK`` ("…") is added
to the last chunk, so the reader sees the reply was cut. Chunks pass straight through until the
headroom; inside it they stream one behind the model (a chunk is held until it is known whether
the mark belongs on it), so the time to the first text is the model's. There are as many chunks
as the model's, which is how the API tells ``finish_reason: "length"`` from ``"stop"``.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

CUT_MARK = "…"
# a sentence end: after a letter, a closing bracket or quote (not "3." in "3.5" or a list number)
SENTENCE_END = re.compile(r"(?<=[A-Za-z)\]\"'’”])[.!?…]+[\"'’”)\]]*(?=\s|$)")


def headroom(max_tokens: int) -> int:
    """How many of the last tokens may end the reply early at a sentence end."""
    return min(32, max_tokens // 4)


def end_at_sentence(chunks: Iterable[dict], max_tokens: int) -> Iterator[str]:
    soft_limit = max_tokens - headroom(max_tokens)
    count, tail, pending = 0, "", ""
    for chunk in chunks:
        choice = chunk["choices"][0]
        text = choice["text"]
        if text:
            count += 1
            end = last_sentence_end(tail + text) if count > soft_limit else None
            if end is not None and end > len(tail):
                yield pending + text[: end - len(tail)]
                return
            if pending:
                yield pending
                pending = ""
            if count < soft_limit:  # far from the limit: no mark can belong on this chunk
                yield text
            else:
                pending = text
            tail = (tail + text)[-8:]  # the tail shows the letter before a lone "."
        if choice.get("finish_reason") == "length":
            yield pending + CUT_MARK
            return
    if pending:
        yield pending


def last_sentence_end(text: str) -> int | None:
    """Index just past the last sentence end in ``text``, or None."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return ends[-1] if ends else None
