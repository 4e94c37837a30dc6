"""Plain transcripts: ``Speaker: text`` lines, UTF-8.

- A speaker line is a name of at most ``MAX_NAME_WORDS`` words (no ``:`` or ``#``), a colon,
  a space and some text, e.g. ``Alice: are you coming?``.
- A line that is not a speaker line continues the turn before it (multi-line turns).
- A blank line ends a conversation; the next speaker line starts a new one, keyed by its
  line number.
- Lines starting with ``#`` are comments and are ignored.

``me`` is the person whose replies become the assistant's side. Consecutive turns of one
speaker are merged; an exchange is another speaker's turn answered by ``me``'s next turn
(context: up to four earlier turns) and belongs to that speaker. A line that starts a
conversation without a speaker is skipped and reported with its line number; a file without
any speaker line, or in which ``me`` never speaks, raises ``InputError``.
"""

from __future__ import annotations

import re
from pathlib import Path

from assistant.errors import InputError
from assistant.people.importers import ImportBatch, clean_speaker, conversations_from, read_lines, require_answers

MAX_NAME_WORDS = 4
SPEAKER = re.compile(r"^(?P<name>[^\s:#][^:#]{0,59}?)\s*:\s+(?P<text>\S.*)$")
EXPECTED = 'expected "Speaker: text"'


def parse(path: Path, me: str) -> ImportBatch:
    """Every turn of another speaker in the transcript at ``path`` that ``me`` answered."""
    path = Path(path)
    chats, problems = _chats(read_lines(path))
    speakers = [speaker for _, turns in chats for speaker, _ in turns]
    if not speakers:
        if problems:
            raise InputError(f"{path.name} line {problems[0][0]}: {EXPECTED}")
        raise InputError(f'{path.name} has no "Speaker: text" lines')
    conversations = [c for start, turns in chats for c in conversations_from(turns, me, f"line-{start}")]
    require_answers(path, me, speakers, conversations)
    return ImportBatch(f"transcript:{path.stem}", conversations, problems)


def speaker_line(line: str) -> tuple[str, str] | None:
    match = SPEAKER.match(line.strip())
    if not match or len(match["name"].split()) > MAX_NAME_WORDS or not clean_speaker(match["name"]):
        return None
    return clean_speaker(match["name"]), match["text"].strip()


def _chats(lines: list[str]):
    """(first line number, [(speaker, text), ...]) per conversation, and the problems."""
    chats: list[tuple[int, list[tuple[str, str]]]] = []
    problems, open_chat = [], False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            open_chat = False
        elif line.lstrip().startswith("#"):
            continue
        elif turn := speaker_line(line):
            if not open_chat:
                chats.append((number, []))
                open_chat = True
            chats[-1][1].append(turn)
        elif open_chat:
            speaker, text = chats[-1][1][-1]
            chats[-1][1][-1] = (speaker, f"{text}\n{line.strip()}")
        else:
            problems.append((number, EXPECTED))
    return chats, problems
