"""Multi-view augmentation of one dialogue's tokens, for contrastive training.

Contract: ``token_view(segments, rng, strength)`` says which tokens of one dialogue a random
view keeps, built only from the tokens given (nothing is invented, no speaker names are added).

Why these operations: the questioner tower must recognise a person from *how* they talk and
are talked to, whatever the topic and however much of the exchange is available. So a view
may lose single words (word dropout), a contiguous span of the query (span deletion), some or
all earlier turns (context dropping), or
the reply (which is not known yet when the app encodes an incoming message). The query is
never emptied: it is the one part that is always there in the product.

The operations work on a dialogue that has already been through the frozen transformer, by
hiding tokens (segment 0 = query, 1 = reply, 2+ = earlier turns, as
``profiles.tower.segment_ids`` numbers them). Training uses it because running the frozen
layers again for every text view would cost more CPU than all of training (so there is no
context shuffle: positions are already baked into the states).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Strength:
    word_dropout: float = 0.10    # each word of each text
    span_delete: float = 0.30     # chance of deleting one span of the query
    span_frac: float = 0.25       # at most this share of the query's words
    turn_dropout: float = 0.30    # each earlier turn
    drop_context: float = 0.15    # all earlier turns at once
    drop_reply: float = 0.15


def token_view(segments: np.ndarray, rng: np.random.Generator, s: Strength = Strength()) -> np.ndarray:
    """Which tokens a random view keeps (bool per token), given each token's segment."""
    seg = np.asarray(segments)
    keep = rng.random(len(seg)) >= s.word_dropout
    query = np.flatnonzero(seg == 0)[1:]  # [CLS] stays: it is never hidden
    if len(query) >= 4 and rng.random() < s.span_delete:
        n = int(rng.integers(1, max(1, int(len(query) * s.span_frac)) + 1))
        start = int(rng.integers(0, len(query) - n + 1))
        keep[query[start: start + n]] = False
    if rng.random() < s.drop_reply:
        keep[seg == 1] = False
    turns = np.unique(seg[seg >= 2])
    dropped = turns if rng.random() < s.drop_context else turns[rng.random(len(turns)) < s.turn_dropout]
    keep[np.isin(seg, dropped)] = False
    keep[0] = True
    if len(query) and not keep[query].any():  # the query is never emptied
        keep[query[int(rng.integers(len(query)))]] = True
    return keep
