"""Memory: the vectors, query clusters, FAISS index and prototypes behind the exchanges.

Contract:
- ``ingest(batch)`` imports conversations: vectors are computed first (in batches, with a
  progress bar), then exchanges and vectors are written in ONE transaction, so a failure
  leaves nothing half-written; clusters, index and prototypes follow.
- ``add_written(dialogues, write)`` does the same for a caller that writes its own rows (the
  profile import of ``assistant.portable``).
- ``remember(exchange)`` adds one finished chat exchange the same way; ``fill_missing()`` adds
  complete exchanges that have no vectors yet (when the index is opened at start-up, after a
  crash between reply and vectors; and ``confidant doctor --repair``).
- Clusters are recomputed when memory has grown by ``recluster_growth`` since the last
  clustering; the FAISS index always holds exactly the complete exchanges with vectors.
- ``train()`` trains the questioner tower on everything stored, saves it atomically in
  ``data_dir/encoder`` and refreshes the dialogue vectors and every prototype.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from assistant.importers import ImportBatch, store_batch
from assistant.index import MemoryIndex
from assistant.settings import Settings
from assistant.store import Exchange, Store
from assistant.vectors import VectorStore
from assistant.training.adapter import forget_trained_on
from profiles.clusters import cluster_queries
from profiles.encoding import Encoders, dialogue_from
from profiles.tower import Dialogue, dialogue_text, native_bf16

RECOUNT_EVERY = 1000  # exchanges added between two exact counts of what is clustered
CHUNK = 512  # exchanges embedded together: a few hundred MB of token states at most


def batch_bf16(settings: Settings) -> bool:
    """Whether batches run in bf16: as set, or where the CPU has it natively ("auto")."""
    return settings.batch_precision == "bf16" or (settings.batch_precision == "auto" and native_bf16())


@dataclass(frozen=True)
class FrozenPass:
    """One pass of the frozen transformer over stored exchanges (see ``Memory.frozen_pass``)."""

    ids: list[int]
    dialogues: list[Dialogue]
    general: np.ndarray
    states: list
    token_ids: list


@dataclass(frozen=True)
class TrainOutcome:
    n_dialogues: int
    n_people: int
    n_clusters: int
    seconds: float
    losses: list[float]


class Memory:
    def __init__(self, settings: Settings, store: Store, encoders: Encoders | None = None):
        self.settings = settings
        self.store = store
        self.vectors = VectorStore(store)
        self.encoders = encoders or Encoders(settings.embedder_path, settings.data_dir / "encoder", bf16=batch_bf16(settings))
        self._index: MemoryIndex | None = None
        self._unsaved = 0
        self._sums: dict[int, tuple[str, int, np.ndarray]] = {}  # person -> (encoder, n, sum of dialogue vectors)
        self._counts: list[int] | None = None  # [exchanges with vectors, clustered ones] (``recluster``)
        self._since_count = 0
        self._lock = threading.RLock()

    # The FAISS index, opened (and repaired) on first use

    @property
    def index(self) -> MemoryIndex:
        with self._lock:
            if self._index is None:
                self.sync_dialogue_vectors()
                ids, dim = self.vectors.ids(), self.vectors.query_dim() or self._query_dim()
                # the vectors themselves are read only if the saved index must be rebuilt: at a
                # million exchanges that read is most of the start-up
                self._index = MemoryIndex.open(self.settings.data_dir / "memory.faiss", ids, self._query_vectors, dim)
                self.fill_missing()  # replies committed just before a crash, before their vectors were
            return self._index

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
        query, dialogue = self._encode([d.query for d in dialogues], dialogues, progress)
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
        query, vector = self._encode([exchange.user_text], [dialogue], progress=False)
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
            query, dialogue = self._encode([e.user_text for e in chosen], dialogues, progress)
            self.vectors.put(ids, query, dialogue)
            self._after_adding(ids, query, dialogue)
            self.save()
        return ids

    def _encode(self, queries: list[str], dialogues: list[Dialogue], progress: bool):
        """Query and dialogue vectors, in input order. The transformer's cost is its padded batch,
        so exchanges go through in chunks of similar dialogue length (sorted once, over all of
        them), not in file order where one long exchange pads a whole batch to its length."""
        order = np.argsort([len(dialogue_text(d)) for d in dialogues], kind="stable")
        query = dialogue = None
        chunks = range(0, len(order), CHUNK)
        for start in tqdm(chunks, desc="embedding", unit="chunk", disable=not progress or len(chunks) < 2):
            rows = order[start : start + CHUNK]
            q = self.encoders.queries([queries[i] for i in rows])
            d = self.encoders.dialogues([dialogues[i] for i in rows])
            if query is None:
                query = np.empty((len(order), q.shape[1]), dtype=np.float32)
                dialogue = np.empty((len(order), d.shape[1]), dtype=np.float32)
            query[rows], dialogue[rows] = q, d
        return query, dialogue

    def _after_adding(self, ids: list[int], query: np.ndarray, dialogue: np.ndarray) -> None:
        with self._lock:
            if not self.recluster():
                centroids = self.vectors.centroids()
                if centroids is not None:
                    self.vectors.assign_clusters(ids, np.argmax(query @ centroids.T, axis=1))
                self._count_added(len(ids), clustered=centroids is not None)
            self.index.add(ids, query)
            self._unsaved += len(ids)
            if self._unsaved >= self.settings.index_save_every:
                self.save()
            self._grow_prototypes(ids, dialogue)

    def save(self) -> None:
        """Write the index to disk (it is rebuilt from the store at start-up if this was missed)."""
        with self._lock:
            self.index.save()
            self._unsaved = 0

    def delete_profile(self, name: str):
        """Delete a person with everything they said, drop their exchanges from the index, and
        rewrite the database file so their words are gone from it too (not just unlinked); a tuned
        adapter trained on them is deleted too."""
        profile = self.store.profile(name)
        ids = self.store.memory_ids(profile.id)
        self.store.delete_profile(profile.name)
        with self._lock:
            self._sums.pop(profile.id, None)
            self._counts = None
            if self._index is not None:  # an index not opened yet is rebuilt from the store when it is
                self._index.remove(ids)
                self.save()
        self.store.scrub()
        forget_trained_on(self.settings.data_dir, profile_ids=[profile.id])  # it holds their words too
        return profile

    # Clusters and prototypes

    def recluster(self, force: bool = False) -> bool:
        """Cluster all queries again when memory grew enough since the last time (or ``force``).

        Whether it grew enough is judged on counts kept here as exchanges are added (counting a
        million rows after every turn was most of the turn's bookkeeping), confirmed from the
        store before acting on them, and read from it afresh every ``RECOUNT_EVERY`` additions
        (deletions elsewhere make them drift)."""
        if not force and not self._due(*self._cluster_counts()):
            return False
        total, clustered = self._cluster_counts(exact=True)
        if total == 0 or not (force or self._due(total, clustered)):
            return False
        loaded = self.vectors.load()
        clusters = cluster_queries(loaded.query, seed=0)
        self.vectors.set_clusters(clusters.centroids, loaded.ids, clusters.labels)
        self._counts = [len(loaded.ids), len(loaded.ids)]
        return True

    def _due(self, total: int, clustered: int) -> bool:
        return total >= self.settings.recluster_min and total >= clustered * (1 + self.settings.recluster_growth)

    def _cluster_counts(self, exact: bool = False) -> tuple[int, int]:
        """(exchanges with vectors, how many are clustered): kept here, from the store when asked."""
        if exact or self._counts is None or self._since_count >= RECOUNT_EVERY:
            self._counts, self._since_count = list(self.vectors.counts()), 0
        return self._counts[0], self._counts[1]

    def _count_added(self, n: int, clustered: bool) -> None:
        if self._counts is not None:
            self._counts[0] += n
            self._counts[1] += n if clustered else 0
            self._since_count += n

    def refresh_prototypes(self, profile_ids=None) -> None:
        """Prototype of a person = normalised mean of their dialogue vectors (everyone if None),
        read in full from the store; the sums are kept for ``_grow_prototypes``."""
        people = self.store.profile_ids() if profile_ids is None else sorted(profile_ids)
        version = self.encoders.version
        with self._lock:
            if profile_ids is None:
                self._sums.clear()
            for person in people:
                self._sums.pop(person, None)
                mine = self.vectors.load(person).dialogue
                if mine is not None and len(mine):
                    self._sums[person] = (version, len(mine), mine.sum(axis=0, dtype=np.float64))
            self._write_prototypes([p for p in people if p in self._sums])

    def _grow_prototypes(self, ids: list[int], dialogue: np.ndarray) -> None:
        """Add new exchanges' dialogue vectors to their people's prototypes through the running
        sums, so remembering a turn costs the same at 10 memories or 100,000. A sum is read again
        in full when it is not held or no longer matches the stored prototype (another encoder, or
        a count changed elsewhere: a forget, a correction, another process)."""
        owner = self.vectors.owners(ids)
        version, counts = self.encoders.version, self.vectors.prototype_counts(set(owner.values()))
        stale, grown = [], []
        for person in sorted(set(owner.values())):
            rows = [k for k, i in enumerate(ids) if owner.get(int(i)) == person]
            held = self._sums.get(person)
            if held is None or held[0] != version or held[1] != counts.get(person) or len(held[2]) != dialogue.shape[1]:
                stale.append(person)
                continue
            self._sums[person] = (version, held[1] + len(rows), held[2] + dialogue[rows].sum(axis=0, dtype=np.float64))
            grown.append(person)
        self._write_prototypes(grown)
        if stale:
            self.refresh_prototypes(stale)

    def _write_prototypes(self, people: list[int]) -> None:
        if not people:
            return
        sums = np.stack([self._sums[p][2] for p in people])
        unit = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        self.vectors.set_prototypes(people, unit.astype(np.float32), [self._sums[p][1] for p in people])

    # The questioner tower

    def train(self, seed: int = 0, progress: bool = True, use_clusters: bool = True, augment: bool = True,
              frozen: "FrozenPass | None" = None) -> TrainOutcome:
        """Train on every stored exchange; the flags switch off parts of the method (ablations).

        ``frozen`` is the transformer pass of these same exchanges (``frozen_pass()``), for
        callers that train several variants on one store's copies; it is made here otherwise.
        The new dialogue vectors come from that same pass, so the transformer runs once.
        """
        from profiles.augment import Strength
        from profiles.contrastive import train_questioner

        self.recluster(force=self.vectors.centroids() is None)
        rows = self._training_rows()
        frozen = frozen or self.frozen_pass(progress)
        if frozen.ids != [r["id"] for r in rows]:
            raise ValueError("the frozen pass was made over other exchanges than this store holds")
        encoder, report = train_questioner(
            frozen.dialogues,
            [r["profile_id"] for r in rows],
            cluster_labels=[r["cluster"] if use_clusters else 0 for r in rows],
            model_path=self.settings.embedder_path,
            general=self.encoders.general,
            cached=(frozen.states, frozen.token_ids),
            seed=seed,
            progress=progress,
            strength=Strength() if augment else Strength(*(0.0,) * len(fields(Strength))),
        )
        encoder.save(self.encoders.encoder_dir)
        with self._lock:
            vectors = encoder.combine(frozen.general, encoder.embed_states(frozen.states))
            with self.store.transaction():
                self.vectors.set_dialogue_vectors(frozen.ids, vectors)
                self.store.set_state("dialogue_encoder", self.encoders.version)
            self.refresh_prototypes()
            self.save()
        return TrainOutcome(report.n, report.n_queriers, report.n_clusters, report.seconds, report.losses)

    def _training_rows(self):
        return self.store.rows(
            "SELECT e.id, e.profile_id, e.user_text, e.context, e.reply, COALESCE(e.cluster, 0) AS cluster "
            "FROM exchanges e JOIN vectors v ON v.exchange_id = e.id WHERE e.status = 'complete' ORDER BY e.id"
        )

    def frozen_pass(self, progress: bool = False) -> "FrozenPass":
        """The frozen transformer over every stored dialogue: the expensive half of training."""
        from profiles.tower import QuestionerEncoder

        rows = self._training_rows()
        dialogues = [dialogue_from(r["user_text"], r["context"], r["reply"]) for r in rows]
        encoder = QuestionerEncoder(self.settings.embedder_path, general=self.encoders.general)
        # in the precision the vectors stored later are made in
        general, states, token_ids = encoder.frozen_pass(dialogues, progress=progress, bf16=self.encoders.bf16)
        return FrozenPass([r["id"] for r in rows], dialogues, general, states, token_ids)

    def sync_dialogue_vectors(self, progress: bool = False) -> None:
        """Recompute every dialogue vector and prototype if the encoder changed since they were made."""
        version = self.encoders.version
        if self.store.state("dialogue_encoder") == version:
            return
        rows = self.store.rows(
            "SELECT e.id, e.user_text, e.context, e.reply FROM exchanges e JOIN vectors v ON v.exchange_id = e.id "
            "WHERE e.status = 'complete' ORDER BY e.id"
        )
        dialogues = [dialogue_from(r["user_text"], r["context"], r["reply"]) for r in rows]
        parts = [
            self.encoders.dialogues(dialogues[s : s + CHUNK])
            for s in tqdm(range(0, len(dialogues), CHUNK), desc="re-encoding", disable=not progress)
        ]
        with self.store.transaction():
            if parts:
                self.vectors.set_dialogue_vectors([r["id"] for r in rows], np.vstack(parts))
            self.store.set_state("dialogue_encoder", version)
        self.refresh_prototypes()
