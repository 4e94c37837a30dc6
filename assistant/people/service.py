"""``People``: the one door ``app/`` uses to look after people and what is remembered of them.

The web app gets it as ``Assistant.people``; a command without an assistant opens one with
``People.open(settings)``. It hands each request to the module that does the job: profiles to
the store, figures, search, edits and merges to ``curation``, forgetting to ``forgetting``, one
person's export and import to ``portable``, the household archive to ``archive``, conversations
from other apps to ``Memory.ingest``, training the questioner tower to ``Memory.train``,
teaching the local model to ``training.teach``, corrections of who said something to
``identification``, and the figures the charts draw to the store. Deleting, editing,
forgetting and merging also delete a tuned adapter that learned from what they change
(``training.adapter``) and every file made from the person's data outside the data directory
(``copies``: downloads and the web server's copies of them). ``memory`` (the embedder and the
index) is made on first use, so commands that only touch profiles stay light; each job is handed
only the memory's parts it uses (``Memory.parts()``). Errors are the engine's own
(``assistant.errors``).
"""

from __future__ import annotations

from pathlib import Path

from assistant.people import archive, curation, forgetting, identification, portable
from assistant.people.copies import Copies
from assistant.people.curation import Found, PersonStats, Topic  # noqa: F401 (what app/ shows)
from assistant.settings import Settings
from assistant.store import people as records
from assistant.store.store import Profile, Store
from assistant.store.vectors import VectorStore
from assistant.training.adapter import adapter_path, forget_trained_on


class People:
    def __init__(self, settings: Settings, store: Store, memory=None):
        self.settings, self.store, self._memory = settings, store, memory
        self.vectors = VectorStore(store)
        self.copies = Copies(settings.copies_root)  # files made for download from people's data

    @classmethod
    def open(cls, settings: Settings) -> "People":
        return cls(settings, Store(settings.database_path, settings.max_name_chars))

    @property
    def memory(self):
        if self._memory is None:
            from assistant.memory.memory import Memory  # heavy (the embedder): only for what encodes

            self._memory = Memory(self.settings, self.store)
        return self._memory

    @property
    def parts(self):
        """The memory's store, stored vectors, encoders and index (``Memory.parts()``)."""
        return self.memory.parts()

    def _forgetting(self) -> tuple:
        """What forgetting, deleting and editing a memory are given: the memory's parts and the memory."""
        return (*self.parts, self.memory)

    # Profiles

    def everyone(self) -> list[Profile]:
        return self.store.profiles()

    def profile(self, key: int | str) -> Profile:
        return self.store.profile(key)

    def add(self, name: str) -> Profile:
        return self.store.add_profile(name)

    def find(self, name: str) -> Profile | None:
        """The person called ``name``, or None."""
        return self.store.find_profile(name)

    def get_or_add(self, name: str) -> Profile:
        return self.store.get_or_add_profile(name)

    def rename(self, old: str, new: str) -> Profile:
        return self.store.rename_profile(old, new)

    def set_cloud_allowed(self, name: str, allowed: bool) -> Profile:
        return self.store.set_cloud_allowed(name, allowed)

    def count_exchanges(self, profile_id: int | None) -> int:
        """One person's exchanges, or everyone's (None)."""
        return self.store.count_exchanges(profile_id)

    def delete(self, name: str) -> Profile:
        """The person with everything they said, for good: first forgotten (which also takes their
        lines out of everyone else's contexts, ``forgetting``), then deleted (``Memory.delete_profile``),
        and a tuned adapter trained on them (it holds their words; the base model answers until retrained)."""
        forgetting.forget(*self._forgetting(), name)
        profile = self.memory.delete_profile(name)
        forget_trained_on(self.settings.data_dir, profile_ids=[profile.id])
        self.copies.remove_for([profile.id])
        return profile

    def merge(self, source: str, target: str) -> Profile:
        moving = self.store.profile(source)
        kept = curation.merge(self.store, self.memory, source, target)
        self.copies.credit(moving.id, kept.id)
        return kept

    # Their memories

    def stats(self, profile_id: int) -> curation.PersonStats:
        return curation.person_stats(self.store, profile_id)

    def search(self, profile_id: int, text: str, limit: int) -> list[curation.Found]:
        store, _, encoders, index = self.parts
        return curation.search(store, encoders, index, self.settings, profile_id, text, limit)

    def owned(self, exchange_id, owner: int):
        return curation.owned(self.store, exchange_id, owner)

    def edit(self, exchange_id: int, user_text: str, reply: str, owner: int):
        edited = curation.edit(*self._forgetting(), exchange_id, user_text, reply, owner, self.settings.max_message_chars)
        self.copies.remove_for([owner])  # an export or chart made before holds the old words
        return edited

    def delete_memory(self, exchange_id: int, owner: int) -> int:
        count = curation.delete(*self._forgetting(), exchange_id, owner)
        self.copies.remove_for([owner])
        return count

    def matching(self, profile_id: int, before=None, after=None) -> list[int]:
        return forgetting.matching(self.store, profile_id, before, after)

    def forget(self, name: str, before=None, after=None) -> int:
        count = forgetting.forget(*self._forgetting(), name, before=before, after=after)
        self.copies.remove_for([self.store.profile(name).id])
        return count

    def delete_conversation(self, session_id: int, owner: Profile) -> int:
        """Forget every exchange of ``owner``'s conversation for good, as forgetting a person does."""
        exchanges = self.store.session_exchanges(session_id)
        count = forgetting.forget_exchanges(*self._forgetting(), owner, [e.id for e in exchanges])
        self.copies.remove_for([owner.id])
        return count

    # Teaching the local model from what they said (``assistant.training``)

    def learnable_counts(self) -> dict[str, dict[str, int]]:
        """``{person: {"imported": n, "corrected": n, "cloud": n}}``: what the local model may learn from."""
        from assistant.training.dialogues import source_counts

        return source_counts(self.store)

    def teach(self, seed: int = 0, minutes: float | None = None, cancel=None) -> dict:
        """Train and save the tuned adapter (``training.teach``); returns its metadata."""
        from assistant.training.teach import teach  # torch: only when teaching

        return teach(self.settings, self.store, seed=seed, minutes=minutes, cancel=cancel)

    def teach_config(self, seed: int = 0):
        """The run the Teach tab starts: one epoch, or the ``teach_max_steps`` / ``teach_minutes`` caps."""
        from assistant.training.trainer import TuneConfig

        s = self.settings
        return TuneConfig.from_settings(s, seed=seed, minutes=s.teach_minutes, steps=s.teach_max_steps)

    def teach_plan(self):
        """What teaching would learn from (per person and source), whether it is enough, and how long
        it would take (``training.teaching.plan``)."""
        from assistant.training.teaching import plan

        return plan(self.settings, self.store, self.teach_config())

    def start_teaching(self, seed: int = 0) -> None:
        """Teach in the background (``training.teaching``); ``TrainingError`` if a run is going."""
        from assistant.training.teaching import Teaching

        Teaching.of(self.settings).start(self.store, seed=seed, config=self.teach_config(seed))

    def teaching_status(self):
        from assistant.training.teaching import Teaching

        return Teaching.of(self.settings).status()

    def cancel_teaching(self) -> None:
        from assistant.training.teaching import Teaching

        Teaching.of(self.settings).cancel()

    def tuned_adapter(self) -> dict | None:
        """The tuned adapter's metadata (``None``: there is none); ``AdapterError`` if it is refused."""
        from assistant.training.adapter import load_info

        return load_info(self.settings.data_dir, self.settings.model_path)

    def discard_misattributed(self, exchange_id: int):
        """Forget an exchange answered for the wrong person (``identification.discard_misattributed``)."""
        return identification.discard_misattributed(*self._forgetting(), exchange_id)

    def ingest(self, batch, progress: bool = True) -> list[int]:
        return self.memory.ingest(batch, progress=progress)

    # Export, import, archive

    def write_export(self, name: str, path: Path | str) -> dict:
        return portable.write_export(self.store, name, path)

    @staticmethod
    def load_export(source):
        """The export checked (``InputError`` naming the first problem), nothing written."""
        return portable.load_export(source)

    def import_profile(self, source, as_name: str | None = None, progress: bool = False) -> portable.ImportReport:
        return portable.import_profile(self.store, self.memory, source, as_name, progress)

    def write_archive(self, path: Path | str) -> dict:
        return archive.write_archive(self.store, self._encoder_dir(), path, adapter_path(self.settings.data_dir))

    @staticmethod
    def read_archive(path: Path | str):
        """The archive checked (``InputError`` naming the first problem), nothing written."""
        return archive.read_archive(path)

    @staticmethod
    def describe_archive(path: Path | str) -> str:
        return archive.describe(path)

    def import_archive(self, path: Path | str, progress: bool = False) -> archive.ArchiveReport:
        return archive.import_archive(self.store, self.parts.encoders, self.memory, path, progress)

    # The questioner tower

    def train(self, seed: int = 0, progress: bool = True):
        return self.memory.train(seed=seed, progress=progress)

    def _encoder_dir(self) -> Path:
        """Where the trained encoder is, without loading the memory for it (a light command)."""
        return self.parts.encoders.encoder_dir if self._memory is not None else self.settings.data_dir / "encoder"

    def encoder_meta(self):
        return self.parts.encoders.meta

    # Files made from their data outside the data directory (``copies``)

    def new_download(self, login: str, people, name: str) -> Path:
        return self.copies.new_file(login, people, name)

    def download_owner(self, name: str) -> str | None:
        return self.copies.owner(name)

    def discard_upload(self, path) -> None:
        self.copies.discard(path)

    def fresh_copies(self) -> Path:
        """Delete every copy an earlier server left; returns where the web server keeps its own."""
        self.copies.clear()
        self.copies.served_dir.mkdir(parents=True, exist_ok=True)
        return self.copies.served_dir

    def clear_copies(self) -> None:
        self.copies.clear()

    # What the charts draw

    def topic_sizes(self, profile_id: int, top: int) -> list[dict]:
        return records.cluster_sizes(self.store, profile_id, top)

    def activity(self, profile_id: int) -> list[str]:
        return [r["created_at"] for r in records.created_times(self.store, profile_id)]

    def answered_routes(self, people: list[int]) -> list[dict]:
        return records.answered_routes(self.store, people)
