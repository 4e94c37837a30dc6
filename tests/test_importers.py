"""The chat importers (WhatsApp, ChatGPT, transcripts) on small realistic exports, and the CLI."""

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from assistant.errors import InputError
from assistant.people.importers import chatgpt, transcript, whatsapp
from assistant.store import context_turns

CHATS = Path(__file__).parent / "fixtures" / "chats"
ROOT = Path(__file__).parent.parent


def exchanges(batch):
    """(person, key, query, reply, context) of every exchange, in batch order."""
    return [(c.person, c.key, e.query, e.reply, e.context) for c in batch.conversations for e in c.exchanges]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# WhatsApp


def test_android_12h_export_merges_turns_drops_media_and_splits_after_a_night():
    batch = whatsapp.parse(CHATS / "whatsapp_android_12h.txt", "Sam")
    party = "Are you still coming to the party tomorrow?"
    snacks = "Yes! I'll bring the snacks.\nAlso my cousin, if that's ok"
    assert exchanges(batch) == [
        ("Alice", "2023-12-30 20:02", party, snacks, []),
        ("Alice", "2023-12-30 20:02", "Of course, the more the merrier", "Great, see you at 9", [party, snacks]),
        ("Alice", "2023-12-31 09:41", "Happy new year's eve! Did you sleep?", "Barely 😅", []),
    ]
    assert batch.source == "whatsapp:whatsapp_android_12h" and batch.problems == [] and batch.people == ["Alice"]


def test_android_24h_group_chat_gives_each_exchange_to_the_person_answered():
    batch = whatsapp.parse(CHATS / "whatsapp_android_24h.txt", "sam")  # names match regardless of case
    assert exchanges(batch) == [
        ("Carol", "2024-01-03 18:16", "Me! Which gym?", "I'm in too. The one on Main St?", ["Who's in for Saturday?"]),
        ("Bob", "2024-01-03 18:16", "Yes, 10:00 there", "👍",
         ["Who's in for Saturday?", "Me! Which gym?", "I'm in too. The one on Main St?"]),
        ("Carol", "2024-01-15 07:05", "Look at this route", "Wow, what grade is that?", []),
    ]
    assert batch.people == ["Bob", "Carol"] and batch.problems == []


def test_ios_export_with_marks_seconds_optional_and_attachments():
    batch = whatsapp.parse(CHATS / "whatsapp_ios.txt", "Sam")
    dinner, answer = "Are you coming for dinner tonight?", "Yes, around 7\nShould I bring anything?"
    assert exchanges(batch) == [
        ("Mum", "2023-12-24 10:00", dinner, answer, []),
        # Sam's photo is dropped, so Mum's two messages around it are one turn
        ("Mum", "2023-12-24 10:00", "Just yourself ❤️\nIs that the new coat?\nIt looks warm", "It is! Got it on sale",
         [dinner, answer]),
    ]
    assert batch.problems == []


def test_an_exported_zip_is_read_like_its_chat(tmp_path):
    archive = tmp_path / "WhatsApp Chat - Mum.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(CHATS / "whatsapp_ios.txt", "_chat.txt")
        zipped.writestr("00000012-PHOTO-2023-12-24-10-06-00.jpg", b"\xff\xd8\xff\xe0 not a real photo")
    batch = whatsapp.parse(archive, "Sam")
    assert exchanges(batch) == exchanges(whatsapp.parse(CHATS / "whatsapp_ios.txt", "Sam"))
    assert batch.source == "whatsapp:WhatsApp Chat - Mum"


def test_more_than_six_hours_of_silence_starts_a_new_conversation(tmp_path):
    chat = write(tmp_path, "gap.txt", "\n".join([
        "[05.03.24, 08:00] Lee: Morning!",
        "[05.03.24, 08:01] Sam: Hi Lee",
        "[05.03.24, 14:01] Lee: Exactly six hours later",  # not more than six: same conversation
        "[05.03.24, 14:02] Sam: Still here",
        "[05.03.24, 20:03] Lee: Six hours and a minute later",
        "[05.03.24, 20:04] Sam: New conversation",
    ]))
    assert [(key, query, context) for _, key, query, _, context in exchanges(whatsapp.parse(chat, "Sam"))] == [
        ("2024-03-05 08:00", "Morning!", []),
        ("2024-03-05 08:00", "Exactly six hours later", ["Morning!", "Hi Lee"]),
        ("2024-03-05 20:03", "Six hours and a minute later", []),
    ]


def test_ambiguous_dates_are_month_first_with_am_pm_and_day_first_otherwise(tmp_path):
    us = write(tmp_path, "us.txt", "01/02/24, 9:00 PM - Kim: hello\n01/02/24, 9:05 PM - Sam: hey\n")
    eu = write(tmp_path, "eu.txt", "01/02/24, 21:00 - Kim: hello\n01/02/24, 21:05 - Sam: hey\n")
    assert exchanges(whatsapp.parse(us, "Sam"))[0][1] == "2024-01-02 21:00"
    assert exchanges(whatsapp.parse(eu, "Sam"))[0][1] == "2024-02-01 21:00"


def test_stray_lines_and_impossible_dates_are_reported_with_line_numbers(tmp_path):
    chat = write(tmp_path, "chat.txt", "\n".join([
        "Chat history with Kim",
        "",
        "31/01/2024, 10:00 - Kim: Lunch?",
        "31/02/2024, 10:01 - Kim: typo date",
        "this line belonged to the impossible message",
        "31/01/2024, 10:02 - Sam: Sure",
        "31/01/2024, 10:02 - Kim changed their phone number to a new number. Tap to message or add the new number.",
        "31/01/2024, 10:03 - ~\u202fRobin: can I come?",
        "31/01/2024, 10:04 - Sam: of course",
    ]))
    batch = whatsapp.parse(chat, "Sam")
    assert batch.problems == [
        (1, 'expected "date, time - Name: message" or "[date, time] Name: message"'),
        (4, "31/02/2024, 10:01 is not a valid date and time"),
    ]
    assert [(person, query, reply) for person, _, query, reply, _ in exchanges(batch)] == [
        ("Kim", "Lunch?", "Sure"), ("Robin", "can I come?", "of course")
    ]


def test_me_must_speak_and_answer_someone(tmp_path):
    with pytest.raises(InputError, match=r"^whatsapp_android_12h.txt: 'Zed' never speaks \(speakers found: Alice, Sam\)$"):
        whatsapp.parse(CHATS / "whatsapp_android_12h.txt", "Zed")
    monologue = write(tmp_path, "monologue.txt", "1/5/24, 10:00 - Sam: anyone there?\n1/5/24, 10:01 - Sam: hello?\n")
    with pytest.raises(InputError, match="'Sam' never answers anyone"):
        whatsapp.parse(monologue, "Sam")


# ChatGPT


def test_chatgpt_follows_the_current_branch_and_keeps_only_visible_text():
    batch = chatgpt.parse(CHATS / "chatgpt_conversations.json", "Sam")
    starter = "My sourdough starter smells like nail polish. Is it dead?"
    hungry = "Not dead, just hungry: that smell is acetone from a starved starter. Feed it and it will recover."
    assert exchanges(batch) == [
        ("Sam", "6f1c-sourdough", starter, hungry, []),
        # the other branch ("How often should I feed it?") is not current; the image part, the
        # browsing call and the tool's result are left out
        ("Sam", "6f1c-sourdough", "Can I keep it in the fridge? This is how it looks now.",
         "Yes. Feed it, let it rise for an hour, then refrigerate it and feed it once a week.", [starter, hungry]),
        ("Sam", "7a2d-japanese", "How do I say 'thank you' in Japanese?",
         "ありがとう (arigatou), or more politely ありがとうございます (arigatou gozaimasu).", []),
    ]
    assert batch.people == ["Sam"] and batch.source == "chatgpt:chatgpt_conversations" and batch.problems == []


def test_chatgpt_conversations_that_cannot_be_followed_are_reported(tmp_path):
    items = json.loads((CHATS / "chatgpt_conversations.json").read_text(encoding="utf-8"))
    cycle = {"a": {"message": None, "parent": "b", "children": []}, "b": {"message": None, "parent": "a", "children": []}}
    items += [
        {"title": "Lost", "mapping": {}, "current_node": "gone"},
        {"title": "Loop", "mapping": cycle, "current_node": "a"},
        {"title": "Orphan", "mapping": {"x": {"message": None, "parent": "missing"}}, "current_node": "x"},
        "not a conversation",
    ]
    batch = chatgpt.parse(write(tmp_path, "conversations.json", json.dumps(items)), "Sam")
    assert batch.problems == [
        (3, "conversation 'Lost': its 'current_node' is missing from the mapping"),
        (4, "conversation 'Loop': its messages form a cycle"),
        (5, "conversation 'Orphan': node 'missing' is missing"),
        (6, "conversation '?': not a conversation (no 'mapping')"),
    ]
    assert len(batch.exchanges) == 3


def test_chatgpt_files_that_are_not_conversations_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"^broken_truncated.json line 171: not valid JSON \(Expecting ',' delimiter\)$"):
        chatgpt.parse(CHATS / "broken_truncated.json", "Sam")
    with pytest.raises(InputError, match=r"^wrong.json: expected a list of conversations with a 'mapping'"):
        chatgpt.parse(write(tmp_path, "wrong.json", '{"conversations": []}'), "Sam")
    unanswered = [{"title": "t", "current_node": "q", "mapping": {"q": {"parent": None, "message": {
        "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["anyone?"]}}}}}]
    with pytest.raises(InputError, match="no prompt answered by ChatGPT in 1 conversations"):
        chatgpt.parse(write(tmp_path, "unanswered.json", json.dumps(unanswered)), "Sam")


# Transcripts


def test_transcript_with_comments_continuations_and_two_conversations():
    batch = transcript.parse(CHATS / "transcript.txt", "Sam")
    thai = "Thai, definitely.\nThe place on 5th closes at 10 though"
    assert exchanges(batch) == [
        ("Jo", "line-4", "Are we still on for Friday?", "Yes! Thai or pizza?", []),
        ("Jo", "line-4", thai, "Then let's meet at 7.", ["Are we still on for Friday?", "Yes! Thai or pizza?"]),
        ("Priya", "line-11", "Did you send the slides?", "Not yet, tonight", []),  # nothing from the first chat
        ("Jo", "line-11", "Can I see them too?", "Sure, I'll add you.",
         ["Did you send the slides?", "Not yet, tonight", "Thanks!"]),
    ]
    assert batch.people == ["Jo", "Priya"] and batch.source == "transcript:transcript" and batch.problems == []


def test_transcript_context_is_the_four_turns_before_the_query(tmp_path):
    turns = [f"{'Ann' if i % 2 else 'Sam'}: turn {i}" for i in range(1, 10)]  # lines 1-9: Ann: turn 1 ... Ann: turn 9
    stray = "\n\nno speaker starts this conversation\nAnn: ok?\nSam: ok."  # lines 10 (blank) to 13
    batch = transcript.parse(write(tmp_path, "long.txt", "\n".join(turns) + stray), "Sam")
    assert [(key, query, reply, context) for _, key, query, reply, context in exchanges(batch)] == [
        ("line-1", "turn 1", "turn 2", []),
        ("line-1", "turn 3", "turn 4", ["turn 1", "turn 2"]),
        ("line-1", "turn 5", "turn 6", ["turn 1", "turn 2", "turn 3", "turn 4"]),
        ("line-1", "turn 7", "turn 8", ["turn 3", "turn 4", "turn 5", "turn 6"]),
        ("line-12", "ok?", "ok.", []),
    ]
    assert batch.problems == [(11, 'expected "Speaker: text"')]


# Files that are not what they claim to be


@pytest.mark.parametrize("parser", [whatsapp.parse, chatgpt.parse, transcript.parse])
def test_binary_files_are_refused(parser):
    with pytest.raises(InputError, match=r"^broken_binary.txt is not a text file \(it contains binary data\)$"):
        parser(CHATS / "broken_binary.txt", "Sam")


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Jo: hi\nSam: très bien\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"^latin1.txt line 2: not UTF-8 text \(byte 0xe8\)$"):
        transcript.parse(path, "Sam")


def test_files_in_another_format_name_the_first_line_that_does_not_fit():
    with pytest.raises(InputError, match=r'^broken_no_speakers.txt line 3: expected "Speaker: text"$'):
        transcript.parse(CHATS / "broken_no_speakers.txt", "Sam")
    with pytest.raises(InputError, match=r'^transcript.txt line 1: expected "date, time - Name: message"'):
        whatsapp.parse(CHATS / "transcript.txt", "Sam")
    with pytest.raises(InputError, match=r"^whatsapp_ios.txt line 1: not valid JSON"):
        chatgpt.parse(CHATS / "whatsapp_ios.txt", "Sam")


# The command line, end to end


def confidant(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )


def snapshot(data_dir):
    conn = sqlite3.connect(Path(data_dir) / "confidant.db")
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("profiles", "sessions", "exchanges", "vectors")
        }
    finally:
        conn.close()


def test_cli_imports_a_whatsapp_chat_and_a_broken_file_changes_nothing(tmp_path):
    data = ["--data-dir", str(tmp_path / "data")]
    result = confidant("import", str(CHATS / "whatsapp_android_24h.txt"), "--format", "whatsapp", "--me", "Sam", *data)
    assert result.returncode == 0, result.stderr
    assert "imported 3 exchanges with 2 people (0 skipped)" in result.stdout
    before = snapshot(tmp_path / "data")
    assert [row[1] for row in before["profiles"]] == ["Bob", "Carol"]
    conn = sqlite3.connect(tmp_path / "data" / "confidant.db")
    stored = conn.execute(
        "SELECT p.name, e.user_text, e.reply, e.context, e.source, e.model, e.status "
        "FROM exchanges e JOIN profiles p ON p.id = e.profile_id ORDER BY e.id"
    ).fetchall()
    conn.close()
    tag = ("import", "whatsapp:whatsapp_android_24h", "complete")
    bob, carol, sam = ("Bob", 1), ("Carol", 2), ("Sam", None)  # "me" is nobody's profile: named only
    said = lambda *turns: context_turns.encode([context_turns.turn(text, [who]) for who, text in turns])  # noqa: E731
    assert stored == [
        ("Carol", "Me! Which gym?", "I'm in too. The one on Main St?", said((bob, "Who's in for Saturday?")), *tag),
        ("Bob", "Yes, 10:00 there", "👍", said((bob, "Who's in for Saturday?"), (carol, "Me! Which gym?"),
                                                (sam, "I'm in too. The one on Main St?")), *tag),
        ("Carol", "Look at this route", "Wow, what grade is that?", json.dumps([]), *tag),
    ]
    assert len(before["sessions"]) == 3 and len(before["vectors"]) == 3

    broken = confidant("import", str(CHATS / "broken_binary.txt"), "--format", "whatsapp", "--me", "Sam", *data)
    assert broken.returncode == 1
    assert broken.stderr.strip() == "confidant: broken_binary.txt is not a text file (it contains binary data)"
    assert snapshot(tmp_path / "data") == before

    fresh = tmp_path / "fresh"
    refused = confidant(
        "import", str(CHATS / "transcript.txt"), "--format", "transcript", "--me", "Nobody", "--data-dir", str(fresh)
    )
    assert refused.returncode == 1 and "'Nobody' never speaks (speakers found: Jo, Priya, Sam)" in refused.stderr
    assert not (fresh / "confidant.db").exists()  # the file is checked before the store is even opened


def test_cli_needs_me_for_chat_formats_and_takes_it_for_mqd_too(tmp_path):
    missing = confidant("import", str(CHATS / "chatgpt_conversations.json"), "--format", "chatgpt")
    assert missing.returncode == 1 and "--format chatgpt needs --me NAME" in missing.stderr
    responder_only = confidant("import", str(CHATS / "transcript.txt"), "--format", "transcript", "--responder", "Sam")
    assert responder_only.returncode == 1 and "needs --me" in responder_only.stderr
    broken_mqd = tmp_path / "broken.jsonl.gz"
    broken_mqd.write_bytes(b"\x1f\x8b not really gzip")
    alias = confidant("import", str(broken_mqd), "--format", "mqd", "--me", "rachel_green", "--data-dir", str(tmp_path))
    assert alias.returncode == 1 and "could not read" in alias.stderr  # got past the name check into mqd's reader
