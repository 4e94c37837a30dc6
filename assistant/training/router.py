"""Training the router's difficulty model from labelled files (``confidant router train``).

Contract: ``train_router(question_files, chat_file, out, settings, graded_per_file, seed)``
splits every file 80/20 by a hash of the text (so the split is the same on any machine and
never depends on file order), trains ``assistant.routing.difficulty`` on the 80% — task questions
labelled "needs the cloud", conversational turns "local", as many turns as questions; and
``graded_per_file`` questions of each file answered by the local model and graded, for the
failure factor — calibrates the score quantiles on the 20% mixed half and half, saves the
model atomically to ``out`` and returns a report (counts, held-out AUROC, graded accuracy).
The shipped ``assistant/data/router.npz`` is made by exactly this, with the command in
docs/routing.md.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from tqdm.auto import tqdm

from assistant.routing.difficulty import CONVERSATION, KINDS, Example, question_hash, train
from assistant.errors import InputError
from assistant.evaluation.questions import is_correct, read_chat, read_questions
from assistant.models.local import LocalModel
from assistant.settings import Settings
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
    if not train_set:
        raise InputError("no questions to train on: check the --data files")
    chat = sorted(set(read_chat(chat_file)))
    random.Random(seed).shuffle(chat)
    chat_train = [t for t in chat if not held_out(t)][: len(train_set)]
    chat_calibration = [t for t in chat if held_out(t)][: len(calibration)]
    train_set += [Example(t, False, CONVERSATION) for t in chat_train]
    calibration += [Example(t, False, CONVERSATION) for t in chat_calibration]
    return train_set, calibration


def graded_questions(question_files, settings: Settings, per_file: int, seed: int, progress: bool) -> list[tuple[str, bool]]:
    """(question, the local model got it wrong) for ``per_file`` training questions of each file."""
    from assistant.evaluation.routing import answer_locally

    rng, chosen = random.Random(seed), []
    for path in question_files:
        pool = [q for q in read_questions(path) if not held_out(q.text)]
        chosen += rng.sample(pool, min(per_file, len(pool)))
    local = LocalModel.shared(settings.model_copy(update={"max_tokens": 64, "temperature": 0.0, "seed": seed}))
    return [(q.text, not is_correct(answer_locally(local, settings, q, seed), q))
            for q in tqdm(chosen, desc="grading local answers", disable=not progress)]


def train_router(question_files, chat_file, out: Path, settings: Settings, graded_per_file: int = 60, seed: int = 0,
                 progress: bool = True) -> dict:
    from sklearn.metrics import roc_auc_score

    examples, calibration = _examples(question_files, chat_file, seed)
    graded = graded_questions(question_files, settings, graded_per_file, seed, progress)
    tower, seen = shared_general_tower(settings.embedder_path), {}

    def embed(texts: list[str]) -> np.ndarray:  # memoised: the calibration set is embedded twice
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            vectors = tower.encode(new, batch_size=64, normalize_embeddings=True, show_progress_bar=progress)
            seen.update(zip(new, np.asarray(vectors, dtype=np.float32)))
        return np.stack([seen[t] for t in texts])

    model = train(examples, calibration, graded, embed, seed)
    model.save(out)
    texts = [e.text for e in calibration]
    scores = model.score(texts, embed(texts))
    return {
        "out": str(out),
        "train": {"questions": sum(e.needs_cloud for e in examples), "conversation": sum(not e.needs_cloud for e in examples)},
        "held_out": {"questions": sum(e.needs_cloud for e in calibration), "conversation": sum(not e.needs_cloud for e in calibration)},
        "held_out_auroc_question_vs_conversation": round(float(roc_auc_score([e.needs_cloud for e in calibration], scores)), 4),
        "graded": {"questions": len(graded), "local_accuracy": round(1 - sum(f for _, f in graded) / max(len(graded), 1), 4)},
        "threshold_at_30pct": round(model.threshold(0.3), 4),
        "kinds": model.kind_names,
        "seed": seed,
    }
