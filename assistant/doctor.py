"""``confidant doctor``: check a data directory for damage and, when asked, repair it.

Contract:
- ``diagnose(settings, repair=False)`` runs every check in a fixed order and returns one
  ``Finding`` per check: its ``name``, ``ok``, a ``detail`` for a person, whether ``--repair``
  can fix it (``fixable``) and whether it did (``repaired``).
- Without ``repair`` nothing is written: the database is only read (never migrated), the FAISS
  file is read with faiss directly (never rebuilt), the encoder is loaded but not used.
- With ``repair`` the fixable problems are fixed in dependency order, each checked again just
  before (a fix can settle a later problem), then every check runs once more: a problem reads
  ``repaired`` only if that last run found it gone. Repairs go through the engine (``Store``,
  ``Memory``, ``MemoryIndex``), so they are as atomic as the app's own writes.
- A database that fails its integrity or foreign-key check, or whose schema is newer than this
  Confidant, is not repaired (restore a backup, or upgrade); the checks that need it are skipped.
- Run it while Confidant is stopped: a reply being written is ``pending`` and a training leaves
  ``.encoder.*`` until it ends, and doctor cannot tell those from leftovers of a crash.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from assistant.errors import ConfidantError
from assistant.memory.index import MemoryIndex, check_file
from assistant.store.migrations import MIGRATIONS
from assistant.settings import Settings
from assistant.store import inspect
from assistant.store.store import Store
from assistant.store.vectors import VectorStore
from assistant.store.turn_log import TurnLog

STUCK_ERROR = "interrupted (found by doctor)"
INDEX_FILE = "memory.faiss"


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str = ""
    fixable: bool = False
    repaired: bool = False


def diagnose(settings: Settings, repair: bool = False, progress: bool = False) -> list[Finding]:
    """Every check's finding, in order; with ``repair``, after fixing what can be fixed."""
    checkup = _Checkup(settings, progress)
    try:
        before = checkup.run()
        if not repair or all(f.ok for f in before):
            return before
        checkup.run(fix=True)
        after = checkup.run()
    finally:
        checkup.close()
    earlier, merged = {f.name: f for f in before}, []
    for new in after:  # in check order, with the checks that could run only once something was fixed
        old = earlier.pop(new.name, None)
        if old is not None and not old.ok and new.ok:
            new = replace(old, ok=True, repaired=True)
        elif not new.ok and new.name in checkup.failures:
            new = replace(new, detail=f"{new.detail} (repair failed: {checkup.failures[new.name]})")
        merged.append(new)
    return merged + list(earlier.values())


class _Checkup:
    def __init__(self, settings: Settings, progress: bool):
        self.settings, self.progress = settings, progress
        self.data_dir = Path(settings.data_dir)
        self.store: Store | None = None
        self.memory = None
        self.version: str | None = None  # of the encoder, once it loaded
        self.failures: dict[str, str] = {}

    def run(self, fix: bool = False) -> list[Finding]:
        found = []
        steps = [
            (self.leftovers, self.remove_leftovers), (self.encoder, self.set_encoder_aside),
            (self.integrity, None), (self.foreign_keys, None), (self.schema, self.migrate),
            (self.pending, self.fail_pending), (self.dialogue_vectors, self.reencode),
            (self.vectors, self.fill_vectors), (self.index, self.rebuild_index),
        ]
        for check, repair in steps:
            finding = check()
            if finding is None:
                continue
            if fix and repair and not finding.ok and finding.fixable:
                try:
                    repair()
                    finding = check() or finding
                except (ConfidantError, OSError, sqlite3.Error, RuntimeError) as error:
                    self.failures[finding.name] = (str(error).strip().splitlines() or [repr(error)])[-1]
            found.append(finding)
            if self.halted(finding):
                break
        return found

    def halted(self, finding: Finding) -> bool:
        """Whether the checks after this one cannot run (no database, or one to leave alone)."""
        blocking = finding.name in ("database integrity", "foreign keys", "schema version") and not finding.ok
        return blocking or (finding.name == "database integrity" and not self.settings.database_path.exists())

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    # Files

    def leftovers(self) -> Finding:
        found = _leftovers(self.data_dir)
        if not found:
            return Finding("leftover files", True)
        names = ", ".join(p.name for p in found[:5]) + (", …" if len(found) > 5 else "")
        return Finding("leftover files", False, f"{len(found)} left by interrupted writes: {names}", fixable=True)

    def remove_leftovers(self) -> None:
        for path in _leftovers(self.data_dir):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    def encoder(self) -> Finding:
        from profiles.encoding import Encoders

        directory = self.data_dir / "encoder"
        self.version = None
        if not directory.exists():
            self.version = "general"
            return Finding("encoder", True, "none trained yet (people are told apart by the general tower)")
        try:
            import torch

            from profiles.tower import QuestionerHead

            version = Encoders(self.settings.embedder_path, directory).version
            meta = json.loads((directory / "meta.json").read_text())
            QuestionerHead(**meta["head"]).load_state_dict(
                torch.load(directory / "head.pt", map_location="cpu", weights_only=True))
        except Exception as error:  # anything that stops it loading is the finding itself
            detail = f"{directory} cannot be loaded ({type(error).__name__}: {error})"
            return Finding("encoder", False, detail.splitlines()[0][:200], fixable=True)
        self.version = version
        return Finding("encoder", True, f"trained {meta.get('trained_at', '?')}")

    def set_encoder_aside(self) -> None:
        directory = self.data_dir / "encoder"
        directory.rename(directory.with_name(f"encoder.broken-{datetime.now():%Y%m%d-%H%M%S}"))

    # The database

    def integrity(self) -> Finding:
        path = self.settings.database_path
        if not path.exists():
            return Finding("database integrity", True, "no database yet: nothing stored")
        try:
            problems = inspect.integrity_problems(path)
        except sqlite3.DatabaseError as error:
            detail = f"{path.name} cannot be read ({error}); restore it from a backup"
            return Finding("database integrity", False, detail)
        if problems:
            detail = f"{'; '.join(problems[:3])} — restore {path.name} from a backup"
            return Finding("database integrity", False, detail)
        return Finding("database integrity", True)

    def foreign_keys(self) -> Finding:
        rows = inspect.broken_references(self.settings.database_path)
        if not rows:
            return Finding("foreign keys", True)
        pairs = sorted({f"{table} → {parent}" for table, parent in rows})
        said = "row points" if len(rows) == 1 else "rows point"
        return Finding("foreign keys", False, f"{len(rows)} {said} at rows that are gone ({', '.join(pairs)})")

    def schema(self) -> Finding:
        version, current = inspect.schema_version(self.settings.database_path), len(MIGRATIONS)
        if version == current:
            return Finding("schema version", True, f"{version}")
        if version > current:
            return Finding("schema version", False, f"{version} is newer than this Confidant ({current}): upgrade it")
        return Finding("schema version", False, f"{version}, this Confidant needs {current}", fixable=True)

    def migrate(self) -> None:
        self._store()  # opening the store applies the pending migrations

    def pending(self) -> Finding:
        ids = self._store().pending_ids()
        if not ids:
            return Finding("pending exchanges", True)
        shown = ", ".join(map(str, ids[:5])) + (", …" if len(ids) > 5 else "")
        return Finding("pending exchanges", False, f"{len(ids)} never finished (ids {shown})", fixable=True)

    def fail_pending(self) -> None:
        store = self._store()
        with store.transaction():
            for exchange_id in store.pending_ids():
                TurnLog(store).fail_exchange(exchange_id, STUCK_ERROR)  # the user's text stays

    def dialogue_vectors(self) -> Finding | None:
        if self.version is None:
            return None  # the encoder does not load: nothing to compare with
        store = self._store()
        made_by = store.state("dialogue_encoder")
        if VectorStore(store).count() == 0 or made_by == self.version:
            return Finding("dialogue vectors", True)
        detail = f"made by {made_by or 'an unknown encoder'}, the encoder now is {self.version}"
        return Finding("dialogue vectors", False, detail, fixable=True)

    def reencode(self) -> None:
        self._memory().sync_dialogue_vectors(progress=self.progress)

    def vectors(self) -> Finding:
        missing = VectorStore(self._store()).missing_ids()
        if not missing:
            return Finding("exchange vectors", True)
        said = "exchange has" if len(missing) == 1 else "exchanges have"
        detail = f"{len(missing)} complete {said} none (recall cannot find them)"
        return Finding("exchange vectors", False, detail, fixable=True)

    def fill_vectors(self) -> None:
        self._memory().fill_missing(progress=self.progress)

    def index(self) -> Finding:
        path, loaded = self.data_dir / INDEX_FILE, VectorStore(self._store()).load()
        problems = check_file(path, loaded.ids, loaded.query)
        if problems:
            return Finding("index", False, problems, fixable=True)
        return Finding("index", True, f"{len(loaded.ids)} exchanges")

    def rebuild_index(self) -> None:
        loaded = VectorStore(self._store()).load()
        general = None if len(loaded.ids) else self._memory().parts().encoders.general
        dim = loaded.query.shape[1] if general is None else int(general.get_embedding_dimension())
        MemoryIndex.rebuild(loaded.ids, loaded.query, dim, self.data_dir / INDEX_FILE).save()

    def _store(self) -> Store:
        if self.store is None:
            self.store = Store(self.settings.database_path, self.settings.max_name_chars)
        return self.store

    def _memory(self):
        from assistant.memory.memory import Memory

        if self.memory is None:
            self.memory = Memory(self.settings, self._store())
        return self.memory


def _leftovers(data_dir: Path) -> list[Path]:
    """Temporary files and folders of atomic writes (``MemoryIndex.save``, encoder saves, adapters)."""
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.iterdir() if p.name.startswith(".encoder.") or p.name.endswith((".tmp", ".partial")))
