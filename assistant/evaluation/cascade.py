"""Does a cascade on the local draft rank better than the fast score, and what does it cost?

Contract: ``measure(questions, answers, graded, scores, kinds, draft_s, model, budget, seed)``
takes the main stream of the routing benchmark (its questions come first, with the local
answers already made for grading) and compares, at the same budget and in the same shuffled
stream order through the app's online threshold, the fast score with a cascade: every turn
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

from assistant.difficulty import CONVERSATION, DifficultyModel
from assistant.evaluation.questions import Question, commits
from assistant.evaluation.stream_replay import arrange, replay

DRAFT_WEIGHT = 0.5  # how far the draft's verdict moves the fast score


def measure(questions: list[Question], answers: list[str], graded: np.ndarray, texts: list[str], vectors: np.ndarray,
            correct: np.ndarray, scores: np.ndarray, draft_s: float, model: DifficultyModel, budget: float,
            seed: int) -> dict:
    from sklearn.metrics import roc_auc_score

    n_q = len(questions)
    drafted = np.array([kind != CONVERSATION for kind in model.kind(texts, vectors)])
    committed = np.zeros(len(texts), dtype=bool)
    committed[:n_q] = [commits(a, q) for a, q in zip(answers, questions)]
    verdict = np.where(committed, 0.0, 1.0)
    cascade = np.where(drafted, scores * (1 - DRAFT_WEIGHT) + verdict * DRAFT_WEIGHT, scores)
    asked = arrange(np.r_[np.ones(n_q, dtype=bool), np.zeros(len(texts) - n_q, dtype=bool)], "shuffled", seed)

    def point(values: np.ndarray) -> dict:
        result = replay(values[asked], correct[asked], model.quantiles, budget)
        sent = np.empty(len(values), dtype=bool)
        sent[asked] = result.pop("decisions")
        auroc = roc_auc_score(~correct, values) if 0 < correct.sum() < len(correct) else None
        return {"auroc": None if auroc is None else round(float(auroc), 4), "sent": sent,
                **{k: result[k] for k in ("cloud_rate", "gap_recovered", "share_of_oracle")}}

    fast, slow = point(scores), point(cascade)
    escalated_drafts = drafted & slow.pop("sent")
    fast.pop("sent")
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
