"""WhatsApp "Export chat" text files (the ``.txt``, or the ``.zip`` holding it).

Both line forms are read: Android ``12/31/23, 9:41 PM - Alice: text`` (day or month first,
12 h with AM/PM or 24 h, any space before AM/PM, including U+202F) and iOS
``[31.12.23, 21:41:05] Alice: text`` (bracketed, dots or slashes, seconds optional, lines may
start with U+200E). Whether dates are day- or month-first is decided once for the whole file.

- A line without a timestamp continues the message before it.
- System lines (no ``Name:`` part) are skipped, and so are iOS notices, which carry a name
  but whose text starts with U+200E (e.g. a group's "Bob added Sam", sent as the group).
- Media placeholders (``<Media omitted>``, ``image omitted``, ``<attached: ...>``, ``This
  message was deleted``...) are dropped from a message; a message left empty is dropped.
- A chat is split into conversations wherever more than ``GAP`` passes between two messages;
  a conversation's key is the time of its first message.

``me`` is the person whose replies become the assistant's side. Consecutive messages of one
speaker are one turn; an exchange is another person's turn answered by ``me``'s next turn and
belongs to that person (also in group chats). Lines before the first message and lines with an
impossible date are skipped and reported with their line numbers; a file with no message line
at all, or in which ``me`` never speaks, raises ``InputError``.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from assistant.errors import InputError
from assistant.people.importers import ImportBatch, clean_speaker, conversations_from, read_lines, require_answers

GAP = timedelta(hours=6)
_STAMP = (
    r"(?P<date>\d{1,4}([./-])\d{1,2}\2\d{1,4}),?\s+"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)(?:\s*(?P<half>[AaPp])\.?\s?[Mm]\.?)?"
)
ANDROID = re.compile(rf"^{_STAMP}\s+-\s+(?P<rest>.*)$")
IOS = re.compile(rf"^\[{_STAMP}\]\s+(?P<rest>.*)$")
SENDER = re.compile(r'^(?P<name>[^:"“”]{1,80}?):(?:\s(?P<text>.*))?$')
DROPPED = re.compile(
    r"^(?:<[^>]*omitted>|<attached: [^>]*>|.*\b(?:image|video|audio|sticker|GIF|document|Contact card) omitted"
    r"|.*\(file attached\)|This message was deleted\.?|You deleted this message\.?|<This message was edited>"
    r"|Missed (?:voice|video|group voice|group video) call.*|Messages and calls are end-to-end encrypted.*)$",
    re.IGNORECASE,
)
EXPECTED = 'expected "date, time - Name: message" or "[date, time] Name: message"'


def parse(path: Path, me: str) -> ImportBatch:
    """Every turn of another person in the chat at ``path`` that ``me`` answered."""
    path = Path(path)
    lines = read_lines(path, _unzipped(path))
    stamped = {n: m for n, line in enumerate(lines, start=1) if (m := _match(line))}
    if not stamped:
        first = next((n for n, line in enumerate(lines, start=1) if line.strip()), None)
        raise InputError(f"{path.name} line {first}: {EXPECTED}" if first else f"{path.name} is empty")
    order = _date_order([m["date"] for m in stamped.values()], any(m["half"] for m in stamped.values()))
    messages, problems = _messages(lines, stamped, order)
    speakers = [speaker for _, speaker, _ in messages]
    conversations = []
    for segment in _segments([m for m in messages if m[2]]):
        key = segment[0][0].strftime("%Y-%m-%d %H:%M")
        conversations += conversations_from([(speaker, text) for _, speaker, text in segment], me, key)
    require_answers(path, me, speakers, conversations)
    return ImportBatch(f"whatsapp:{path.stem}", conversations, problems)


def _unzipped(path: Path) -> bytes | None:
    """The chat text inside an exported ``.zip`` (None if ``path`` is not a zip file)."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            texts = [name for name in archive.namelist() if name.lower().endswith(".txt")]
            if len(texts) != 1:
                raise InputError(f"{path.name}: expected exactly one .txt chat inside the zip, found {len(texts)}")
            return archive.read(texts[0])
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"could not read {path}: {error}") from None


def _match(line: str) -> re.Match | None:
    line = line.lstrip("\u200e\ufeff")
    return ANDROID.match(line) or IOS.match(line)


def _date_order(dates: list[str], twelve_hour: bool) -> str:
    """``"ymd"``, ``"dmy"`` or ``"mdy"``: what the file's dates must be, judged from all of them."""
    fields = [[int(x) for x in re.split(r"[./-]", date)] for date in dates]
    if any(f[0] > 31 for f in fields):
        return "ymd"
    if any(f[0] > 12 for f in fields):
        return "dmy"
    if any(f[1] > 12 for f in fields):
        return "mdy"
    return "mdy" if twelve_hour and "/" in dates[0] else "dmy"


def _when(match: re.Match, order: str) -> datetime:
    """The message's time; ``ValueError`` if the date or time cannot be."""
    parts = dict(zip(order, (int(x) for x in re.split(r"[./-]", match["date"]))))
    year = parts["y"] + 2000 if parts["y"] < 100 else parts["y"]
    hour, minute, *second = (int(x) for x in re.split(r"[:.]", match["time"]))
    if match["half"]:
        if not 1 <= hour <= 12:
            raise ValueError("hour out of range")
        hour = hour % 12 + (12 if match["half"] in "Pp" else 0)
    return datetime(year, parts["m"], parts["d"], hour, minute, second[0] if second else 0)


def _messages(lines: list[str], stamped: dict, order: str):
    """(time, speaker, text) for every message, and the problems; text is "" for media only."""
    messages, problems, current, started = [], [], None, False
    for number, line in enumerate(lines, start=1):
        match = stamped.get(number)
        if match is None:  # continues the message (or skipped system line) before it
            if current is not None:
                current[2].append(line)
            elif line.strip() and not started:
                problems.append((number, EXPECTED))
            continue
        started, current = True, None
        try:
            when = _when(match, order)
        except ValueError:
            problems.append((number, f"{match['date']}, {match['time']} is not a valid date and time"))
            continue
        sender = SENDER.match(match["rest"])
        name = clean_speaker(sender["name"]).removeprefix("~").strip() if sender else ""  # "~ Name": not a contact
        if name:
            current = (when, name, [sender["text"] or ""])
            messages.append(current)
    return [(when, speaker, _content(parts)) for when, speaker, parts in messages], problems


def _content(parts: list[str]) -> str:
    """The message's own text: iOS marks WhatsApp's notices and attachments with a leading U+200E."""
    kept = [part.strip() for part in parts if not part.startswith("\u200e")]
    kept = [re.sub(r"[\s\u200e]*<This message was edited>$", "", part) for part in kept if not DROPPED.match(part)]
    return "\n".join(kept).strip()


def _segments(messages: list) -> list[list]:
    """Messages split where more than ``GAP`` passes between two of them."""
    segments: list[list] = []
    for message in messages:
        if not segments or message[0] - segments[-1][-1][0] > GAP:
            segments.append([])
        segments[-1].append(message)
    return segments
