"""Memory: every exchange's vectors, and the FAISS index, clusters and prototypes on them.

Contract:
- ``ingest(batch)`` imports conversations: vectors are computed first (in batches, with a
  progress bar), then exchanges and vectors are written in ONE transaction, so a failure
  leaves nothing half-written; clusters, index and prototypes follow.
- ``add_written(dialogues, write)`` does the same for a caller that writes its own rows (the
  profile import of ``assistant.people.portable``).
- ``remember(exchange)`` adds one finished chat exchange the same way; ``fill_missing()`` adds
  complete exchanges that have no vectors yet (when the index is opened at start-up, after a
  crash between reply and vectors; and ``confidant doctor --repair``).
- The FAISS index always holds exactly the complete exchanges with vectors.
- ``delete_profile(name)`` deletes a person with everything they said, from the index too.
- ``parts()`` hands the engine's assembly (``Assistant``, ``People``, an evaluation) the
  collaborators the other parts are given: the store, the stored vectors, the encoders and the
  index (a ``LazyIndex``, opened on first use). Nothing outside ``assistant/memory/`` reaches
  through a ``Memory`` for them (``tests/test_layout.py``).
The parts, each its own module: ``encoding`` (texts to vectors), ``index`` (FAISS),
``lazy_index`` (opened on first use), ``clusters`` (the query clusters), ``prototypes`` (one per
person), ``recall``; the vectors are stored by ``assistant.store.vectors``; training the
questioner tower, and re-encoding after it, is ``assistant.training.encoder`` (``train``,
``frozen_pass`` and ``sync_dialogue_vectors`` here hand over to it, with the parts it uses).
"""

from __future__ import annotations

import threading
from typing import Callable, NamedTuple

import numpy as np

from assistant.memory.clusters import Clusters
from assistant.memory.encoding import batch_bf16, encode
from assistant.memory.index import MemoryIndex
from assistant.memory.lazy_index import LazyIndex
from assistant.memory.prototypes import Prototypes
from assistant.people.importers import ImportBatch, store_batch
from assistant.settings import Settings
from assistant.store.store import Exchange, Store
from assistant.store.vectors import VectorStore
from profiles.encoding import Encoders, dialogue_from
from profiles.tower import Dialogue


class Parts(NamedTuple):
    """A memory's collaborators, as the engine's assembly hands them to the parts that use them."""

    store: Store
    vectors: VectorStore
    encoders: Encoders
    index: LazyIndex


class Memory:
    def __init__(self, settings: Settings, store: Store, encoders: Encoders | None = None):
        self.settings = settings
        self.store = store
        self.vectors = VectorStore(store)
        self.encoders = encoders or Encoders(settings.embedder_path, settings.data_dir / "encoder", bf16=batch_bf16(settings))
        self.clusters = Clusters(settings, self.vectors)
        self.prototypes = Prototypes(store, self.vectors, self.encoders)
        self._lock = threading.RLock()
        # replies committed just before a crash, before their vectors were, are added on opening
        self.lazy_index = LazyIndex(self._open_index, self.fill_missing, self._lock, settings.index_save_every)

    def parts(self) -> Parts:
        return Parts(self.store, self.vectors, self.encoders, self.lazy_index)

    # The FAISS index, opened (and repaired) on first use

    @property
    def index(self) -> MemoryIndex:
        return self.lazy_index.get()

    def _open_index(self) -> MemoryIndex:
        self.sync_dialogue_vectors()
        ids, dim = self.vectors.ids(), self.vectors.query_dim() or self._query_dim()
        # the vectors themselves are read only if the saved index must be rebuilt: at a
        # million exchanges that read is most of the start-up
        return MemoryIndex.open(self.settings.data_dir / "memory.faiss", ids, self._query_vectors, dim)

    def warm_up(self) -> None:
        """Open the index, load the towers and run each once now (a server's start-up), not in the
        first turn: a transformer's first forward pass also sets up its kernels."""
        self.index
        self.encoders.queries(["warming up"])
        self.encoders.dialogues([Dialogue("warming up", [], "")])

    def _query_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        loaded = self.vectors.load()
        return loaded.ids, loaded.query

    def _query_dim(self) -> int:
        return int(self.encoders.general.get_embedding_dimension())

    # Adding memories

    def ingest(self, batch: ImportBatch, progress: bool = True) -> list[int]:
        dialogues = [Dialogue(e.query, e.context, e.reply) for e in batch.exchanges]
        return self.add_written(dialogues, lambda: store_batch(self.store, batch), progress)

    def add_written(self, dialogues: list[Dialogue], write: Callable[[], list[int]], progress: bool = True) -> list[int]:
        """Store exchanges that ``write()`` inserts, with vectors of ``dialogues`` (same order).

        The vectors are computed first; ``write`` then runs inside ONE store transaction with
        them, so a failure anywhere leaves nothing half-written. ``write`` must return the new
        exchange ids in ``dialogues`` order (it may also write other rows, e.g. a profile).
        """
        if not dialogues:
            with self._lock, self.store.transaction():
                if write():
                    raise ValueError("write() added exchanges that have no dialogues to encode")
            return []
        query, dialogue = self.encode([d.query for d in dialogues], dialogues, progress)
        self.index  # opened (from the store) before the write, so the new ids are added exactly once
        with self._lock, self.store.transaction():
            ids = write()
            if len(ids) != len(dialogues):
                raise ValueError(f"write() added {len(ids)} exchanges for {len(dialogues)} dialogues")
            self.vectors.put(ids, query, dialogue)
        self._after_adding(ids, query, dialogue)
        self.save()
        return ids

    def remember(self, exchange: Exchange) -> None:
        dialogue = dialogue_from(exchange.user_text, exchange.context, exchange.reply)
        query, vector = self.encode([exchange.user_text], [dialogue], progress=False)
        self.index  # opened before the write, so the new id is added exactly once
        with self._lock:
            if self.vectors.get([exchange.id]):  # opening the index just filled it in (fill_missing)
                return
            self.vectors.put([exchange.id], query, vector)
            self._after_adding([exchange.id], query, vector)

    def fill_missing(self, progress: bool = False) -> list[int]:
        """Vectors for complete exchanges that have none (a crash between reply and ``remember``),
        added like new memories and the index saved; returns their ids. Runs under the memory's
        lock from the first read on, so a ``remember`` of the same exchange cannot add it twice."""
        with self._lock:
            self.index  # opened before the write, so the new ids are added exactly once
            ids = self.vectors.missing_ids()
            if not ids:
                return []
            found = self.store.exchanges(ids)
            chosen = [found[i] for i in ids]
            dialogues = [dialogue_from(e.user_text, e.context, e.reply) for e in chosen]
            query, dialogue = self.encode([e.user_text for e in chosen], dialogues, progress)
            self.vectors.put(ids, query, dialogue)
            self._after_adding(ids, query, dialogue)
            self.save()
        return ids

    def encode(self, queries: list[str], dialogues: list[Dialogue], progress: bool):
        """Query and dialogue vectors, in input order (``assistant.memory.encoding``)."""
        return encode(self.encoders, queries, dialogues, progress)

    def _after_adding(self, ids: list[int], query: np.ndarray, dialogue: np.ndarray) -> None:
        with self._lock:
            self.clusters.assign(ids, query)
            self.lazy_index.add(ids, query)  # saved every ``index_save_every`` ids
            self.prototypes.grow(ids, dialogue)

    def save(self) -> None:
        """Write the index to disk (it is rebuilt from the store at start-up if this was missed)."""
        self.lazy_index.save()

    def delete_profile(self, name: str):
        """Delete a person with everything they said, drop their exchanges from the index, and
        rewrite the database file so their words are gone from it too (not just unlinked)."""
        profile = self.store.profile(name)
        ids = self.store.memory_ids(profile.id)
        self.store.delete_profile(profile.name)
        with self._lock:
            self.prototypes.forget(profile.id)
            self.clusters.forget()
            if self.lazy_index.opened is not None:  # an index not opened yet is rebuilt from the store when it is
                self.lazy_index.remove(ids)
                self.save()
        self.store.scrub()
        return profile

    # Clusters, prototypes and the dialogue vectors they are made of

    def recluster(self, force: bool = False) -> bool:
        """Cluster all queries again if memory grew enough since the last time (or ``force``)."""
        with self._lock:
            return self.clusters.recluster(force)

    def refresh_prototypes(self, profile_ids=None) -> None:
        """Prototypes read in full from the store (everyone's if None)."""
        with self._lock:
            self.prototypes.refresh(profile_ids)

    def replace_dialogue_vectors(self, ids: list[int], vectors: np.ndarray | None, save: bool = True) -> None:
        """New dialogue vectors from the current encoder (None: there are none), then every prototype."""
        with self._lock:
            with self.store.transaction():
                if vectors is not None:
                    self.vectors.set_dialogue_vectors(ids, vectors)
                self.store.set_state("dialogue_encoder", self.encoders.version)
            self.refresh_prototypes()
            if save:
                self.save()

    # The questioner tower (assistant.training.encoder)

    def train(self, seed: int = 0, progress: bool = True, use_clusters: bool = True, augment: bool = True,
              frozen=None):
        from assistant.training import encoder

        return encoder.train(self, self.vectors, self.encoders, seed, progress, use_clusters, augment, frozen)

    def frozen_pass(self, progress: bool = False):
        from assistant.training import encoder

        return encoder.frozen_pass(self.vectors, self.encoders, self.settings, progress)

    def sync_dialogue_vectors(self, progress: bool = False) -> None:
        from assistant.training import encoder

        encoder.sync_dialogue_vectors(self, self.store, self.vectors, self.encoders, progress)
