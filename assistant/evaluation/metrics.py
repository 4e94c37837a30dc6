"""Scores and confidence intervals shared by the evaluations.

ROUGE-L F1 ×100 comes from the ``rouge-score`` package (stemming on), BLEU from ``sacrebleu``;
intervals are percentile bootstraps over items (paired when comparing two systems).
"""

from __future__ import annotations

import numpy as np
from rouge_score import rouge_scorer
from sklearn.metrics import balanced_accuracy_score

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
BOOTSTRAP = 2000


def rouge_l(predictions: list[str], references: list[str]) -> np.ndarray:
    """Per-item ROUGE-L F1 ×100."""
    return np.array([_ROUGE.score(ref, pred)["rougeL"].fmeasure * 100 for pred, ref in zip(predictions, references)])


def bleu(predictions: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def bootstrap_ci(values: np.ndarray, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def paired_delta(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Mean of a − b over the same items, with its paired bootstrap 95% interval."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return {"rougeL": round(float(diff.mean()), 3), "ci95": bootstrap_ci(diff, seed)}


def balanced_accuracy(truth, predicted) -> float:
    return round(float(balanced_accuracy_score(truth, predicted)), 4) if len(truth) else 0.0
