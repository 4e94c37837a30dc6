"""Does a cascade on the local draft rank better than the fast score, and what does it cost?

Contract: ``measure(questions, answers, graded, texts, vectors, correct, scores, draft_s, model, budget)``
takes the main stream of the routing benchmark (its questions come first, with the local
answers already made for grading) and compares, as rankings at exactly the budget's cloud rate
(the shipped calibration is the fast score's, so an online threshold on another score would
compare different rates), the fast score with a cascade: every turn
the router calls a task question gets a local draft first, and the draft checks itself — does
it commit to an answer at all (exactly one option of a multiple-choice question, a yes or a
no, a number, a short answer that is not the question echoed back)? No gold answer is read.
The cascade's score is the fast score moved halfway towards 1 when the draft commits to
nothing and halfway towards 0 when it commits. Returned: AUROC and gap recovered for both, how
well commitment alone tells right from wrong drafts, the share of turns drafted and the seconds
a draft adds before an escalated turn's cloud answer can start (``draft_s`` per draft).
"""

from __future__ import annotations

import numpy as np

from assistant.routing.difficulty import CONVERSATION, DifficultyModel
from assistant.evaluation.questions import Question, commits
from assistant.evaluation.stream_replay import accuracy_escalating, gap_recovered, top

DRAFT_WEIGHT = 0.5  # how far the draft's verdict moves the fast score


def measure(questions: list[Question], answers: list[str], graded: np.ndarray, texts: list[str], vectors: np.ndarray,
            correct: np.ndarray, scores: np.ndarray, draft_s: float, model: DifficultyModel, budget: float) -> dict:
    from sklearn.metrics import roc_auc_score

    n_q = len(questions)
    drafted = np.array([kind != CONVERSATION for kind in model.kind(texts, vectors)])
    committed = np.ones(len(texts), dtype=bool)  # conversation has no answer to commit to; it is answered fine
    committed[:n_q] = [commits(a, q) for a, q in zip(answers, questions)]
    verdict = np.where(committed, 0.0, 1.0)
    cascade = np.where(drafted, scores * (1 - DRAFT_WEIGHT) + verdict * DRAFT_WEIGHT, scores)
    k, local = int(round(budget * len(texts))), float(correct.mean())
    oracle = gap_recovered(accuracy_escalating(correct, top((~correct).astype(float), k)), local)

    def point(values: np.ndarray) -> dict:
        gap = gap_recovered(accuracy_escalating(correct, top(values, k)), local)
        auroc = roc_auc_score(~correct, values) if 0 < correct.sum() < len(correct) else None
        return {"auroc": None if auroc is None else round(float(auroc), 4), "cloud_rate": round(k / len(texts), 4),
                "gap_recovered": gap, "share_of_oracle": round(gap / oracle, 4) if oracle > 0 else None}

    fast, slow = point(scores), point(cascade)
    escalated_drafts = drafted & top(cascade, k)
    right = graded[committed[:n_q]]
    return {
        "fast_score": fast, "cascade": slow, "draft_weight": DRAFT_WEIGHT,
        "drafted_share": round(float(drafted.mean()), 4),
        "draft_s_mean": round(draft_s, 3),
        "draft_s_added_per_turn": round(float(escalated_drafts.mean()) * draft_s, 3),
        "committed_share_of_questions": round(float(committed[:n_q].mean()), 4) if n_q else None,
        "local_accuracy_when_committed": round(float(right.mean()), 4) if len(right) else None,
        "local_accuracy_when_not": round(float(graded[~committed[:n_q]].mean()), 4) if (~committed[:n_q]).any() else None,
    }
