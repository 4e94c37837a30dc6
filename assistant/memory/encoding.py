"""Turning exchanges into vectors: the query vector (general tower) and the dialogue vector
(both towers) of each, in batches.

``encode(encoders, queries, dialogues, progress)`` returns both arrays in input order. The
transformer's cost is its padded batch, so exchanges go through in chunks of ``CHUNK`` of
similar dialogue length (sorted once, over all of them), not in file order, where one long
exchange pads a whole batch to its length. ``batch_bf16(settings)`` says whether batches run in
bf16.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from assistant.settings import Settings
from profiles.encoding import Encoders
from profiles.tower import Dialogue, dialogue_text, wants_bf16

CHUNK = 512  # exchanges embedded together: a few hundred MB of token states at most


def batch_bf16(settings: Settings) -> bool:
    """Whether batches run in bf16: as set, or where the CPU has it natively ("auto")."""
    return wants_bf16(settings.batch_precision)


def encode(encoders: Encoders, queries: list[str], dialogues: list[Dialogue], progress: bool):
    """Query and dialogue vectors, in input order (see the module docstring)."""
    order = np.argsort([len(dialogue_text(d)) for d in dialogues], kind="stable")
    query = dialogue = None
    chunks = range(0, len(order), CHUNK)
    for start in tqdm(chunks, desc="embedding", unit="chunk", disable=not progress or len(chunks) < 2):
        rows = order[start : start + CHUNK]
        q = encoders.queries([queries[i] for i in rows])
        d = encoders.dialogues([dialogues[i] for i in rows])
        if query is None:
            query = np.empty((len(order), q.shape[1]), dtype=np.float32)
            dialogue = np.empty((len(order), d.shape[1]), dtype=np.float32)
        query[rows], dialogue[rows] = q, d
    return query, dialogue
