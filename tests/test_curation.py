"""Managing people and memories on the real store, embedder and FAISS index: figures, search by
words and meaning, editing and deleting one memory, merging, the archive and the pictures."""

import json
import zipfile

import faiss

import pytest
from PIL import Image

from app import charts
from assistant.people import archive, curation
from assistant.errors import InputError, NotFoundError
from assistant.memory.recall import recall_memories
from assistant.people.service import People
from tests.test_portable import counts, memory_at, say


def searching(memory):
    """What ``curation.search`` is given: the memory's store, encoders and index, and the settings."""
    store, _, encoders, index = memory.parts()
    return store, encoders, index, memory.settings


def forgetting(memory):
    """What ``curation.edit`` and ``curation.delete`` are given: the memory's parts and the memory."""
    return (*memory.parts(), memory)


@pytest.fixture
def household(tmp_path):
    memory = memory_at(tmp_path / "data")
    store = memory.store
    store.db.execute("PRAGMA secure_delete = OFF")  # as in SQLite builds where it is not on by default
    ann, ben = store.add_profile("Ann"), store.add_profile("Ben")
    garden, cooking = store.new_session(ann.id), store.new_session(ann.id)
    say(memory, garden, "When should I prune the apple tree?", "Late winter, before the buds open.", "2024-02-01T10:00:00+00:00")
    say(memory, garden, "And the roses?", "Early spring too.", "2024-02-01T10:02:00+00:00")
    say(memory, cooking, "How long do I boil a soft egg?", "Six minutes from boiling.", "2024-05-03T08:00:00+00:00")
    chess = store.new_session(ben.id)
    say(memory, chess, "What is a good opening for black?", "The Sicilian defence is popular.", "2024-03-01T20:00:00+00:00")
    return memory, ann, ben


def test_stats_count_a_persons_exchanges_conversations_and_dates(household):
    memory, ann, _ = household
    stats = curation.person_stats(memory.store, ann.id)
    assert (stats.exchanges, stats.conversations) == (3, 2)
    assert stats.first_seen.startswith("2024-02-01") and stats.last_seen.startswith("2024-05-03")
    assert stats.cloud_share == 0.0


def test_search_finds_by_words_and_by_meaning_only_among_the_persons_own(household):
    memory, ann, ben = household
    by_words = curation.search(*searching(memory), ann.id, "ROSES")
    assert by_words[0].exchange.user_text == "And the roses?" and "words" in by_words[0].matched
    by_meaning = curation.search(*searching(memory), ann.id, "cooking breakfast eggs")
    assert by_meaning[0].exchange.user_text.startswith("How long do I boil") and by_meaning[0].matched == "meaning"
    assert all(f.exchange.profile_id == ann.id for f in curation.search(*searching(memory), ann.id, "opening for black"))
    assert [f.exchange.profile_id for f in curation.search(*searching(memory), ben.id, "")] == [ben.id]
    assert curation._word_matches(memory.store, ann.id, "% _", 10) == []  # wildcards are literal characters


def test_editing_a_memory_changes_recall_and_erases_the_old_words_from_the_file(household):
    memory, ann, _ = household
    egg = curation.search(*searching(memory), ann.id, "soft egg")[0].exchange
    curation.edit(*forgetting(memory), egg.id, "How long do I poach a salmon fillet?", "About ten minutes.", ann.id)
    found, _ = recall_memories(memory, memory.store.profile(ann.id), "poached fish dinner", [], memory.settings)
    assert found[0].exchange.id == egg.id and "salmon" in found[0].exchange.user_text
    assert b"soft egg" not in memory.settings.database_path.read_bytes()
    with pytest.raises(InputError):
        curation.edit(*forgetting(memory), egg.id, "Still here?", "   ", ann.id)


def test_a_memory_is_deleted_for_good_and_never_through_someone_elses_id(household):
    memory, ann, ben = household
    roses = curation.search(*searching(memory), ann.id, "roses")[0].exchange
    with pytest.raises(NotFoundError):
        curation.delete(*forgetting(memory), roses.id, ben.id)  # Ben cannot delete Ann's memory by sending its id
    assert curation.delete(*forgetting(memory), roses.id, ann.id) == 1
    assert roses.id not in memory.index.ids()
    assert all(f.exchange.id != roses.id for f in curation.search(*searching(memory), ann.id, "roses"))
    assert b"Early spring too" not in memory.settings.database_path.read_bytes()


def test_merging_moves_everything_and_keeps_the_stricter_consent(household):
    memory, ann, ben = household
    memory.store.set_cloud_allowed("Ben", False)
    before = counts(memory.store)
    merged = curation.merge(memory.store, memory, "Ben", "Ann")
    assert merged.id == ann.id and not merged.cloud_allowed
    assert [p.name for p in memory.store.profiles()] == ["Ann"]
    assert memory.store.count_exchanges(ann.id) == 4
    assert counts(memory.store) == {**before, "profiles": 1}
    ids, _, n = memory.vectors.prototypes()
    assert list(ids) == [ann.id] and list(n) == [4]
    with pytest.raises(InputError):
        curation.merge(memory.store, memory, "Ann", "ann")


def test_the_archive_round_trips_everyone_and_reports_conflicts(household, tmp_path):
    memory, _, _ = household
    path = tmp_path / "all.zip"
    manifest = archive.write_archive(memory.store, memory.encoders.encoder_dir, path)
    assert manifest["format"] == "confidant.archive" and len(manifest["people"]) == 2

    fresh = memory_at(tmp_path / "elsewhere")
    report = archive.import_archive(fresh.store, fresh.encoders, fresh, path)
    assert sorted(r.name for r in report.people) == ["Ann", "Ben"] and all(r.created for r in report.people)
    assert counts(fresh.store) == counts(memory.store)

    fresh.store.set_cloud_allowed("Ann", False)
    again = archive.import_archive(fresh.store, fresh.encoders, fresh, path)
    assert sum(r.imported for r in again.people) == 0 and sum(r.duplicates for r in again.people) == 4
    assert any("cloud consent differs" in c for c in again.conflicts)


def test_a_broken_archive_is_refused_before_anything_is_written(household, tmp_path):
    memory, _, _ = household
    path = tmp_path / "all.zip"
    archive.write_archive(memory.store, memory.encoders.encoder_dir, path)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(broken, "w") as bad:
        for item in good.infolist():
            data = good.read(item.filename)
            if item.filename == "people/0002.json":
                person = json.loads(data)
                del person["conversations"][0]["exchanges"][0]["user_text"]
                data = json.dumps(person).encode()
            bad.writestr(item.filename, data)
    fresh = memory_at(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"people/0002.json: conversations\[0\].exchanges\[0\].user_text is missing"):
        archive.import_archive(fresh.store, fresh.encoders, fresh, broken)
    assert fresh.store.profiles() == []
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="not a readable zip"):
        archive.read_archive(tmp_path / "junk.zip")


def test_pictures_are_drawn_for_the_people_asked_for_only(household, tmp_path):
    memory, ann, ben = household
    people = People(memory.settings, memory.store, memory)
    drawn = charts.people_map(people, [ann.id, ben.id], tmp_path / "map.png")
    assert Image.open(drawn).size[0] > 300
    assert charts.people_map(people, [ben.id], tmp_path / "ben.png") is None  # one dot is no map
    assert Image.open(charts.activity(people, ann.id, tmp_path / "a.png")).format == "PNG"
    assert Image.open(charts.cloud_share(people, [ann.id], tmp_path / "c.png")).format == "PNG"
    memory.recluster(force=True)
    assert Image.open(charts.topics(people, ann.id, tmp_path / "t.png")).format == "PNG"


def test_cli_archives_everyone_and_merges_people(household, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    memory, _, _ = household
    memory.store.close()
    confidant = str(Path(sys.executable).parent / "confidant")
    source, target = str(memory.settings.data_dir), str(tmp_path / "copy")

    def run(*args):
        return subprocess.run([confidant, *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "CONFIDANT_CONFIG": str(tmp_path / "absent.toml")})

    done = run("archive", "export", "--out", str(tmp_path / "all.zip"), "--data-dir", source)
    assert done.returncode == 0 and "2 people, 4 exchanges, no encoder" in done.stdout, done.stderr
    done = run("archive", "import", str(tmp_path / "all.zip"), "--data-dir", target)
    assert done.returncode == 0 and "2 people" in done.stdout, done.stderr
    done = run("profiles", "merge", "Ben", "Ann", "--yes", "--data-dir", target)
    assert done.returncode == 0 and "merged Ben into Ann: 4 exchanges now" in done.stdout, done.stderr
    refused = run("archive", "import", str(tmp_path / "absent.zip"), "--data-dir", target)
    assert refused.returncode == 1 and refused.stderr.startswith("confidant: cannot read") and "Traceback" not in refused.stderr


def test_the_first_remember_after_start_up_adds_its_exchange_once(tmp_path):
    """Opening the index fills in complete exchanges without vectors; the turn that was about to
    remember its own exchange must not add it a second time."""
    memory = memory_at(tmp_path / "data")
    session = memory.store.new_session(memory.store.add_profile("Ann").id)
    say(memory, session, "When should I prune the apple tree?", "Late winter.", "2024-02-01T10:00:00+00:00")
    index = memory.index
    held = faiss.vector_to_array(index.index.id_map) if hasattr(index.index, "id_map") else None
    assert len(index) == 1 and (held is None or list(held) == [1])
    assert [i for i, _ in index.search(memory.encoders.queries(["apple"])[0], 10)] == [1]
