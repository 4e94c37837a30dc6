"""The earlier turns kept with an exchange (``exchanges.context``), each with who said it.

Stored as a JSON list, oldest first, of ``{"text": str, "speakers": [{"name": str,
"profile_id": int | None}]}``. ``speakers`` is empty when nobody knows (rows older than schema
version 7 were bare strings and read as such; the assistant's own replies); a line said by
several people together (an mqd group line) names each of them and is the words of each. A
speaker's ``profile_id`` is set when a person of that name existed when the turn was stored;
otherwise the name alone says who it was (matched as importers compare names).

Contract: ``encode`` writes turns (a bare string is a turn of unknown speaker), ``decode``
reads what any schema version stored, ``texts`` is what the encoders and prompts read, and
``said_by`` / ``without`` / ``moved`` are what forgetting, deleting and merging do to the turns
of one person. The column holds profile ids inside its JSON, so ``person_tables.QUOTING``
declares it.
"""

from __future__ import annotations

import json
import unicodedata

QUOTE_MIN_CHARS = 20  # a forgotten text this long is taken out of any turn that quotes it


def turn(text: str, speakers=()) -> dict:
    """One turn; ``speakers`` are names or ``(name, profile_id)`` pairs."""
    named = [{"name": s, "profile_id": None} if isinstance(s, str) else {"name": s[0], "profile_id": s[1]}
             for s in speakers]
    return {"text": text, "speakers": named}


def _as_turn(item) -> dict:
    return dict(item, speakers=list(item.get("speakers") or [])) if isinstance(item, dict) else turn(str(item))


def encode(turns) -> str:
    return json.dumps([_as_turn(t) for t in turns])


def decode(raw: str | list | None) -> list[dict]:
    items = json.loads(raw or "[]") if isinstance(raw, str) or raw is None else list(raw)
    return [_as_turn(t) for t in items]


def texts(raw: str | list | None) -> list[str]:
    return [t["text"] for t in decode(raw)]


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name or "").replace("_", " ").split()).casefold()


def is_person(speaker: dict, profile) -> bool:
    if speaker.get("profile_id") is not None:
        return speaker["profile_id"] == profile.id
    return _key(speaker.get("name", "")) == _key(profile.name)


def said_by(item: dict, profile) -> bool:
    return any(is_person(s, profile) for s in item["speakers"])


def quotes(item: dict, gone_texts) -> bool:
    """Whether the turn is, or quotes at length, one of these texts (the speaker aside)."""
    text = item["text"]
    return any(t == text or (len(t) >= QUOTE_MIN_CHARS and t in text) for t in gone_texts)


def without(turns: list[dict], profile, gone_texts, tagged: bool = True) -> list[dict]:
    """The turns minus those ``profile`` said (when ``tagged``) and those quoting ``gone_texts``."""
    return [t for t in turns if not ((tagged and said_by(t, profile)) or quotes(t, gone_texts))]


def moved(turns: list[dict], source, target) -> list[dict]:
    """The turns with ``source``'s lines credited to ``target`` (a merge: the same person)."""
    out = []
    for t in turns:
        speakers = [{"name": target.name, "profile_id": target.id} if is_person(s, source) else s
                    for s in t["speakers"]]
        out.append(dict(t, speakers=speakers))
    return out
