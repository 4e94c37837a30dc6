"""Training the questioner tower on everything stored, and keeping the vectors it made current.

Contract:
- ``train(memory, vectors, encoders, ...)`` trains on every complete exchange with vectors (``profiles.contrastive``),
  saves the encoder atomically in ``data_dir/encoder`` and refreshes the dialogue vectors and
  every prototype. Too little to learn from is an ``InputError`` saying what is missing.
- ``frozen_pass(vectors, encoders, settings)`` is the expensive half (the frozen transformer over every stored
  dialogue), for callers that train several variants on copies of one store.
- ``sync_dialogue_vectors(memory, store, vectors, encoders)`` recomputes every dialogue vector
  and prototype if the encoder changed since they were made (at start-up, and ``confidant doctor
  --repair``).
``memory`` is used only for its own jobs (reclustering, the timed frozen pass, replacing the
dialogue vectors with every prototype); the store, the stored vectors and the encoders are
passed in (``Memory`` hands them over).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from tqdm.auto import tqdm

from assistant.errors import InputError
from assistant.memory.encoding import CHUNK
from profiles.dialogue import Dialogue, dialogue_from


@dataclass(frozen=True)
class FrozenPass:
    """One pass of the frozen transformer over stored exchanges (see ``frozen_pass``)."""

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


def train(memory, vectors, encoders, seed: int = 0, progress: bool = True, use_clusters: bool = True, augment: bool = True,
          frozen: FrozenPass | None = None) -> TrainOutcome:
    """Train on every stored exchange; the flags switch off parts of the method (ablations).
    The new dialogue vectors come from the same transformer pass, so it runs once."""
    from profiles.augment import Strength
    from profiles.contrastive import TooLittleData, train_questioner

    memory.recluster(force=vectors.centroids() is None)
    rows = vectors.remembered()
    frozen = frozen or memory.frozen_pass(progress)  # through Memory, where a benchmark times it
    if frozen.ids != [r["id"] for r in rows]:
        raise ValueError("the frozen pass was made over other exchanges than this store holds")
    try:
        encoder, report = train_questioner(
            frozen.dialogues,
            [r["profile_id"] for r in rows],
            cluster_labels=[r["cluster"] if use_clusters else 0 for r in rows],
            model_path=memory.settings.embedder_path,
            general=encoders.general,
            cached=(frozen.states, frozen.token_ids),
            seed=seed,
            progress=progress,
            strength=Strength() if augment else Strength(*(0.0,) * len(fields(Strength))),
        )
    except TooLittleData as error:
        raise InputError(str(error)) from None
    encoder.save(encoders.encoder_dir)
    dialogue_vectors = encoder.combine(frozen.general, encoder.embed_states(frozen.states))
    memory.replace_dialogue_vectors(frozen.ids, dialogue_vectors)
    return TrainOutcome(report.n, report.n_queriers, report.n_clusters, report.seconds, report.losses)


def frozen_pass(vectors, encoders, settings, progress: bool = False) -> FrozenPass:
    """The frozen transformer over every stored dialogue: the expensive half of training."""
    from profiles.tower import QuestionerEncoder

    rows = vectors.remembered()
    dialogues = [dialogue_from(r["user_text"], r["context"], r["reply"]) for r in rows]
    encoder = QuestionerEncoder(settings.embedder_path, general=encoders.general)
    # in the precision the vectors stored later are made in
    general, states, token_ids = encoder.frozen_pass(dialogues, progress=progress, bf16=encoders.bf16)
    return FrozenPass([r["id"] for r in rows], dialogues, general, states, token_ids)


def sync_dialogue_vectors(memory, store, vectors, encoders, progress: bool = False) -> None:
    """Recompute every dialogue vector and prototype if the encoder changed since they were made."""
    if store.state("dialogue_encoder") == encoders.version:
        return
    rows = vectors.remembered()
    dialogues = [dialogue_from(r["user_text"], r["context"], r["reply"]) for r in rows]
    parts = [
        encoders.dialogues(dialogues[s : s + CHUNK])
        for s in tqdm(range(0, len(dialogues), CHUNK), desc="re-encoding", disable=not progress)
    ]
    memory.replace_dialogue_vectors([r["id"] for r in rows], np.vstack(parts) if parts else None, save=False)
