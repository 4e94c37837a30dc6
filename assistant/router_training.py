"""Training the router's difficulty model from labelled files (``confidant router train``).

Contract: ``train_router(question_files, chat_file, out, embedder_path, seed)`` splits every
file 80/20 by a hash of the text (so the split is the same on any machine and never depends on
file order), trains ``assistant.difficulty`` on the 80% — task questions labelled "needs the
cloud", conversational turns "local", as many turns as questions — calibrates the score
quantiles on the 20% mixed half and half, saves the model atomically to ``out`` and returns a
report (counts, held-out AUROC). The shipped ``assistant/data/router.npz`` is made by exactly
this, with the command in docs/routing.md.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from assistant.difficulty import CONVERSATION, KINDS, Example, question_hash, train
from assistant.evaluation.questions import read_chat, read_questions
from profiles.encoding import shared_general_tower


def held_out(text: str) -> bool:
    """The fixed 20% of any data set that training never sees."""
    return int(question_hash(text), 16) % 5 == 0


def _examples(question_files, chat_file, seed: int) -> tuple[list[Example], list[Example]]:
    train_set, calibration = [], []
    for path in question_files:
        for q in read_questions(path):
            example = Example(q.text, True, KINDS.get(q.source, "question"))
            (calibration if held_out(q.text) else train_set).append(example)
    chat = sorted(set(read_chat(chat_file)))
    random.Random(seed).shuffle(chat)
    chat_train = [t for t in chat if not held_out(t)][: len(train_set)]
    chat_calibration = [t for t in chat if held_out(t)][: len(calibration)]
    train_set += [Example(t, False, CONVERSATION) for t in chat_train]
    calibration += [Example(t, False, CONVERSATION) for t in chat_calibration]
    return train_set, calibration


def train_router(question_files, chat_file, out: Path, embedder_path: Path, seed: int = 0, progress: bool = True) -> dict:
    from sklearn.metrics import roc_auc_score

    examples, calibration = _examples(question_files, chat_file, seed)
    tower = shared_general_tower(embedder_path)

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(tower.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=progress),
                          dtype=np.float32)

    model = train(examples, calibration, embed, seed)
    model.save(out)
    texts = [e.text for e in calibration]
    scores = model.score(texts, embed(texts))
    return {
        "out": str(out),
        "train": {"questions": sum(e.needs_cloud for e in examples), "conversation": sum(not e.needs_cloud for e in examples)},
        "held_out": {"questions": sum(e.needs_cloud for e in calibration), "conversation": sum(not e.needs_cloud for e in calibration)},
        "held_out_auroc_question_vs_conversation": round(float(roc_auc_score([e.needs_cloud for e in calibration], scores)), 4),
        "threshold_at_30pct": round(model.threshold(0.3), 4),
        "kinds": model.kind_names,
        "seed": seed,
    }
