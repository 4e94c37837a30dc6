"""Replaying an evaluation stream in order through the app's online budget threshold.

Contract:
- ``arrange(kinds, order, seed)`` puts a stream's items (``kinds``: True for a question, False
  for a conversational turn) in the order they are asked: ``shuffled`` (a seeded permutation)
  or ``bursts`` (runs of questions and runs of conversation, 1 to 40 items each, as when
  someone pastes a batch of homework and then chats).
- ``replay(scores, correct, prior, budget)`` asks the items in that order, each routed by
  ``assistant.routing.budget.Calibration`` (the very code the app's router uses, one turn at a time),
  and returns the operating point: cloud rate, budget adherence ``|cloud_rate − budget|``,
  accuracy and gap recovered (an escalated item counts as answered correctly), the oracle's
  gap at the same cloud rate and the share of it recovered, the cloud rate of the first 50
  turns, and how the threshold moved; ``decisions`` holds what was sent, in stream order.
"""

from __future__ import annotations

import numpy as np

from assistant.routing.budget import Calibration

EARLY = 50  # turns counted as "the first turns"


def arrange(kinds: np.ndarray, order: str, seed: int) -> np.ndarray:
    """Indices of the items in the order they are asked."""
    rng = np.random.default_rng(seed)
    if order == "shuffled":
        return rng.permutation(len(kinds))
    if order != "bursts":
        raise ValueError(f"unknown stream order {order!r}")
    pools = [list(rng.permutation(np.flatnonzero(kinds == kind))) for kind in (True, False)]
    out, turn = [], int(rng.integers(2))
    while any(pools):
        pool = pools[turn] if pools[turn] else pools[1 - turn]
        out += [pool.pop() for _ in range(min(int(rng.integers(1, 41)), len(pool)))]
        turn = 1 - turn
    return np.array(out, dtype=int)


def gap_recovered(accuracy: float, local_accuracy: float) -> float:
    return round((accuracy - local_accuracy) / (1 - local_accuracy), 4) if local_accuracy < 1 else 0.0


def accuracy_escalating(correct: np.ndarray, escalated: np.ndarray) -> float:
    return float(np.where(escalated, True, correct).mean())


def top(scores: np.ndarray, k: int) -> np.ndarray:
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.argsort(-scores, kind="stable")[:k]] = True
    return chosen


def replay(scores: np.ndarray, correct: np.ndarray, prior: np.ndarray, budget: float) -> dict:
    """The stream asked in the given order (``scores`` and ``correct`` already in that order)."""
    calibration = Calibration(prior, budget)
    decided = [calibration.route(s) for s in scores]
    sent = np.array([d for d, _ in decided], dtype=bool)
    thresholds = np.array([t for _, t in decided])
    local = float(correct.mean())
    gap = gap_recovered(accuracy_escalating(correct, sent), local)
    oracle = gap_recovered(accuracy_escalating(correct, top((~correct).astype(float), int(sent.sum()))), local)
    settled = thresholds[EARLY:] if len(thresholds) > EARLY else thresholds
    return {
        "n": len(scores), "budget": budget,
        "cloud_rate": round(float(sent.mean()), 4),
        "budget_adherence": round(abs(float(sent.mean()) - budget), 4),
        "cloud_rate_first_50": round(float(sent[:EARLY].mean()), 4),
        "accuracy": round(accuracy_escalating(correct, sent), 4),
        "gap_recovered": gap, "oracle_gap_recovered": oracle,
        "share_of_oracle": round(gap / oracle, 4) if oracle > 0 else None,
        "threshold": {"first": round(float(thresholds[0]), 4), "last": round(float(thresholds[-1]), 4),
                      "min_after_50": round(float(settled.min()), 4), "max_after_50": round(float(settled.max()), 4),
                      "std_after_50": round(float(settled.std()), 4)},
        "decisions": sent,
    }
