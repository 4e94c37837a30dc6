"""Multi-view text augmentation of one dialogue, for contrastive training.

Contract: ``augment(dialogue, rng, strength)`` returns a new ``Dialogue`` built only from the
words of the one given (nothing is invented, no speaker names are added); ``views(dialogue,
seed, n=2)`` returns ``n`` different augmentations, reproducible from ``seed``.

Why these operations: the questioner tower must recognise a person from *how* they talk and
are talked to, whatever the topic and however much of the exchange is available. So a view
may lose single words (word dropout), a contiguous span of the query (span deletion), some or
all earlier turns (context dropping, and shuffling so that turn order is not memorised), or
the reply (which is not known yet when the app encodes an incoming message). The query is
never emptied: it is the one part that is always there in the product.

``token_view`` applies the same operations to a dialogue that has already been through the
frozen transformer, by hiding tokens (segment 0 = query, 1 = reply, 2+ = earlier turns, as
``profiles.tower.segment_ids`` numbers them). Training uses it because running the frozen
layers again for every text view would cost more CPU than all of training; only the context
shuffle has no token-level twin (positions are already baked into the states).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from profiles.tower import Dialogue


@dataclass(frozen=True)
class Strength:
    word_dropout: float = 0.10    # each word of each text
    span_delete: float = 0.30     # chance of deleting one span of the query
    span_frac: float = 0.25       # at most this share of the query's words
    turn_dropout: float = 0.30    # each earlier turn
    shuffle_context: float = 0.20
    drop_context: float = 0.15    # all earlier turns at once
    drop_reply: float = 0.15


def _word_dropout(text: str, p: float, rng: random.Random) -> str:
    words = text.split()
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else (rng.choice(words) if words else "")


def _span_delete(text: str, frac: float, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 4:  # too short: a deleted span would leave next to nothing
        return text
    n = rng.randint(1, max(1, int(len(words) * frac)))
    start = rng.randint(0, len(words) - n)
    return " ".join(words[:start] + words[start + n:])


def augment(d: Dialogue, rng: random.Random, s: Strength = Strength()) -> Dialogue:
    """One random view of ``d`` (see the module docstring for the operations)."""
    query = d.query
    if rng.random() < s.span_delete:
        query = _span_delete(query, s.span_frac, rng)
    query = _word_dropout(query, s.word_dropout, rng) or d.query

    context = [] if rng.random() < s.drop_context else [t for t in d.context if rng.random() >= s.turn_dropout]
    if len(context) > 1 and rng.random() < s.shuffle_context:
        rng.shuffle(context)
    context = [c for c in (_word_dropout(t, s.word_dropout, rng) for t in context) if c]

    reply = "" if rng.random() < s.drop_reply else _word_dropout(d.reply, s.word_dropout, rng)
    return Dialogue(query=query, context=context, reply=reply)


def views(d: Dialogue, seed: int, n: int = 2, s: Strength = Strength()) -> list[Dialogue]:
    """``n`` augmentations of ``d``, the same for the same seed."""
    rng = random.Random(seed)
    return [augment(d, rng, s) for _ in range(n)]


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
