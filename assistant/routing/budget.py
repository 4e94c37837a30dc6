"""The cloud budget as a promise: an online threshold on the household's own difficulty scores.

Contract: ``online_threshold(prior, budget, scores, sent)`` returns the score at or above which
the next Auto turn goes to the cloud, given ``prior`` (the shipped router's score quantiles
of a held-out stream, ``DifficultyModel.quantiles``) and this household's scored turns so far,
oldest first: their scores and whether each went to the cloud. With no history it is the
shipped threshold; every scored turn moves it. ``Calibration`` is the same thing kept for a
stream replayed in order (the routing benchmark): ``threshold()``, then ``observe(score, sent)``.
The app's router calls ``online_threshold`` on the turns it reads back from the store, so the
state survives a restart, is shared by every process on the same data, and follows a person's
deletion (their turns are gone from the history) without being stored anywhere else.

How: the threshold is the (1 − r) quantile of a weighted sample — the household's recent scores,
weighted by age (half-life ``HALF_LIFE`` turns, the last ``WINDOW`` turns), plus the shipped
quantiles counted as ``PRIOR_TURNS`` turns, so the first turns already move it and the shipped
calibration fades as the household's own traffic accrues. ``r`` is the budget corrected by what
was actually sent over the same weighted window (follow-ups kept on their side, a stream that
changes its mix): over budget lowers it, under budget raises it, within ``[budget / 2,
budget × 3 / 2]`` so that a burst of hard questions cannot shut the cloud or open it wide.
One threshold for the household, not one per login: the budget is the shared cloud account's,
and a person's few turns alone would calibrate it slowly and noisily.
"""

from __future__ import annotations

import numpy as np

PRIOR_TURNS = 20.0   # how many household turns the shipped calibration is worth
HALF_LIFE = 200.0    # turns after which a score counts half as much
WINDOW = 1000        # scored turns read back from the store
CORRECTION = 1.0     # how strongly over- or under-spending moves the target share


def online_threshold(prior: np.ndarray, budget: float, scores, sent) -> float:
    """The score at or above which the next turn goes to the cloud (see the module contract)."""
    if budget <= 0.0:
        return float("inf")
    if budget >= 1.0:
        return float("-inf")
    scores = np.asarray(scores, dtype=np.float64)[-WINDOW:]
    sent = np.asarray(sent, dtype=np.float64)[-WINDOW:]
    weights = 0.5 ** (np.arange(len(scores))[::-1] / HALF_LIFE)
    spent = (PRIOR_TURNS * budget + weights @ sent) / (PRIOR_TURNS + weights.sum())
    share = float(np.clip(budget + CORRECTION * (budget - spent), budget / 2, min(budget * 1.5, 1.0)))
    prior = np.asarray(prior, dtype=np.float64)
    values = np.concatenate([prior, scores])
    mass = np.concatenate([np.full(len(prior), PRIOR_TURNS / len(prior)), weights])
    return weighted_quantile(values, mass, 1.0 - share)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The ``level`` quantile of ``values`` weighted by ``weights`` (midpoint interpolation)."""
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    cumulative = (np.cumsum(weights) - weights / 2) / weights.sum()
    return float(np.interp(level, cumulative, values))


class Calibration:
    """``online_threshold`` over a stream replayed in order, one turn at a time."""

    def __init__(self, prior: np.ndarray, budget: float):
        self.prior, self.budget = prior, budget
        self.scores: list[float] = []
        self.sent: list[bool] = []

    def threshold(self) -> float:
        return online_threshold(self.prior, self.budget, self.scores, self.sent)

    def observe(self, score: float, sent: bool) -> None:
        self.scores.append(float(score))
        self.sent.append(bool(sent))

    def route(self, score: float) -> tuple[bool, float]:
        """Decide one turn (cloud when ``score`` reaches the current threshold) and learn from it."""
        threshold = self.threshold()
        self.observe(score, score >= threshold)
        return self.sent[-1], threshold
