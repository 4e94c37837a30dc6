"""A person's lines in other people's contexts (imported scenes and group chats): they keep who
said them, deleting or forgetting the person takes them out of every file of the data dir, the
dialogue vectors made from those contexts are recomputed, and merging keeps them."""

import gzip
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from assistant.people.importers import mqd, whatsapp
from assistant.people.service import People
from assistant.store import context_turns
from profiles.dialogue import dialogue_from
from tests.test_portable import memory_at

FIXTURES = Path(__file__).parent / "fixtures"
MQD = FIXTURES / "mqd" / "train.jsonl.gz"
GROUP = FIXTURES / "chats" / "whatsapp_group_privacy.txt"
LONG = 20  # the measure: every line of theirs at least this long must be gone


def people_at(data_dir: Path) -> People:
    memory = memory_at(data_dir)
    return People(memory.settings, memory.store, memory)


def monicas_lines() -> set[str]:
    """Every line Monica says in the fixture: her queries and her turns in anyone's context."""
    rows = [json.loads(line) for line in gzip.open(MQD, "rt", encoding="utf-8")]
    said = {r["query"].strip() for r in rows if r["querier"] == "monica_geller"}
    said |= {t["text"].strip() for r in rows for t in r["context"] if "monica_geller" in t["speaker"].split("@")}
    return {line for line in said if len(line) >= LONG}


def sams_lines() -> set[str]:
    lines = [line.split(" - Sam: ", 1)[1] for line in GROUP.read_text(encoding="utf-8").splitlines() if " - Sam: " in line]
    return {line for line in lines if len(line) >= LONG}


def files_holding(data_dir: Path, lines: set[str]) -> dict[str, list[str]]:
    """Which files of the data dir hold which lines, as UTF-8 or as they look inside JSON."""
    found = {}
    for path in (p for p in data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        hits = [line for line in lines if line.encode() in raw or json.dumps(line)[1:-1].encode() in raw]
        if hits:
            found[str(path.relative_to(data_dir))] = hits
    return found


def contexts_of_others(data_dir: Path, name: str) -> list[list[dict]]:
    with sqlite3.connect(data_dir / "confidant.db") as db:
        rows = db.execute("SELECT e.context FROM exchanges e JOIN profiles p ON p.id = e.profile_id "
                          "WHERE p.name != ?", (name,)).fetchall()
    return [context_turns.decode(raw) for (raw,) in rows]


def test_importers_record_who_said_each_context_turn(tmp_path):
    people = people_at(tmp_path)
    people.ingest(mqd.parse(MQD, "rachel_green"), progress=False)
    turns = [t for context in contexts_of_others(tmp_path, "") for t in context]
    monica = people.profile("Monica Geller")
    tagged = [t for t in turns if context_turns.said_by(t, monica)]
    assert tagged and all(s["profile_id"] == monica.id for t in tagged for s in t["speakers"] if s["name"] == monica.name)
    group = [t for t in turns if len(t["speakers"]) > 1]  # "a@b@c" lines are said by each of them
    assert group and all(all(s["name"] for s in t["speakers"]) for t in group)
    assert all(t["speakers"] for t in turns)  # the format names every speaker

    people.ingest(whatsapp.parse(GROUP, "Dana"), progress=False)
    sam = people.profile("Sam")
    bobs = [t for c in contexts_of_others(tmp_path, "Sam") for t in c if context_turns.said_by(t, sam)]
    assert any(t["text"].startswith("Please don't tell anyone") for t in bobs)


@pytest.mark.parametrize("source, person, lines", [
    ("mqd", "Monica Geller", monicas_lines),
    ("whatsapp", "Sam", sams_lines),
])
def test_deleting_a_person_leaves_no_line_of_theirs_in_any_file(tmp_path, source, person, lines):
    people = people_at(tmp_path)
    batch = mqd.parse(MQD, "rachel_green") if source == "mqd" else whatsapp.parse(GROUP, "Dana")
    people.ingest(batch, progress=False)
    theirs = lines()
    quoted = {t["text"] for c in contexts_of_others(tmp_path, person) for t in c} & theirs
    assert quoted, "the fixture must have the person speaking in other people's contexts"
    assert files_holding(tmp_path, theirs)  # the search finds them before

    people.delete(person)

    assert files_holding(tmp_path, theirs) == {}
    assert people.count_exchanges(None) > 0  # everyone else's exchanges stay, minus those lines


def test_forgetting_recomputes_the_dialogue_vectors_of_the_contexts_it_changed(tmp_path):
    people = people_at(tmp_path)
    people.ingest(whatsapp.parse(GROUP, "Dana"), progress=False)
    memory, bob = people.memory, people.profile("Bob")
    [before] = memory.store.session_exchanges(memory.store.sessions(bob.id)[0].id)
    assert any(t["text"].startswith("Please don't tell") for t in context_turns.decode(before.context))

    people.forget("Sam")

    after = memory.store.exchange(before.id)
    kept = context_turns.decode(after.context)
    assert [t["speakers"][0]["name"] for t in kept] == ["Carol", "Dana"]  # Sam's two lines are gone
    expected = memory.encoders.dialogues([dialogue_from(after.user_text, after.context, after.reply)])[0]
    stored = memory.vectors.get([after.id])[after.id][1]
    assert np.allclose(stored, expected, atol=1e-5)


def test_merging_keeps_the_lines_and_credits_them_to_the_person_kept(tmp_path):
    people = people_at(tmp_path)
    people.ingest(whatsapp.parse(GROUP, "Dana"), progress=False)
    people.add("Samuel")
    people.merge("Sam", "Samuel")
    samuel = people.profile("Samuel")
    credited = [t for c in contexts_of_others(tmp_path, "Samuel") for t in c if context_turns.said_by(t, samuel)]
    assert {t["text"] for t in credited} >= {"Please don't tell anyone but I am changing jobs in April"}
    assert all(s["profile_id"] == samuel.id for t in credited for s in t["speakers"])

    people.delete("Samuel")
    assert files_holding(tmp_path, sams_lines()) == {}


def test_old_contexts_become_turns_of_unknown_speakers(tmp_path):
    from assistant.store.migrations import MIGRATIONS, migrate
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "old.db")
    for step in MIGRATIONS[:6]:
        step(db)
    db.execute("PRAGMA user_version = 6")
    db.execute("INSERT INTO profiles (id, name, created_at) VALUES (1, 'Ann', 'x')")
    db.execute("INSERT INTO sessions (id, profile_id, created_at, updated_at) VALUES (1, 1, 'x', 'x')")
    db.execute("INSERT INTO exchanges (session_id, profile_id, user_text, status, created_at, context) "
               "VALUES (1, 1, 'q', 'complete', 'x', ?)", (json.dumps(["earlier line", "its reply"]),))
    assert migrate(db) == len(MIGRATIONS)
    [(raw,)] = db.execute("SELECT context FROM exchanges").fetchall()
    assert json.loads(raw) == [{"text": "earlier line", "speakers": []}, {"text": "its reply", "speakers": []}]
