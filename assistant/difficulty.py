"""How likely the small local model is to fail a message: the router's trained score.

Contract:
- ``DifficultyModel.load(path)`` reads a model saved by ``train()`` (the one shipped in the
  package is ``settings.bundled_router_path()``); ``score(texts, vectors)`` gives, for each message and its
  general-tower embedding, a probability in [0, 1] that it needs the cloud, and ``kind()`` the
  most likely kind of request ("arithmetic word problem", "conversation", ...) for the reason
  shown to the user. Pure numpy: scoring one message costs well under a millisecond once its
  embedding exists (recall computes it anyway).
- ``threshold(budget)`` is the score above which ``budget`` of a typical stream (half
  questions, half conversation, held out from training) goes to the cloud.
- ``train(questions, chat, embed, seed)`` fits both classifiers (scikit-learn logistic
  regression) and keeps the hashes of the questions it saw, so an evaluation can leave them out.

Why these signals: on the 135M default, task questions (arithmetic, trivia, science, multiple
choice) are answered at about chance, conversation is answered fine. The general-tower
embedding separates the two well, and a few surface features (numbers, operators, answer
choices, length) carry it to formats the embedding has seen less of. The local model's own
token log-probs separate its right and wrong answers only weakly and need a slow draft, so
they are not used.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from assistant.errors import ModelError

KINDS = {  # source of a training question -> what the reason calls it
    "gsm8k": "arithmetic word problem", "svamp": "arithmetic word problem", "nq-open": "factual question",
    "arc-easy": "science question", "arc-challenge": "science question", "commonsenseqa": "common-sense question",
}
CONVERSATION = "conversation"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_OPERATOR = re.compile(r"[+\-*/=×÷%$]")
_CHOICE_LINE = re.compile(r"^\s*\(?[A-Ea-e][.)]\s", re.MULTILINE)
_WH = re.compile(r"^\s*(who|what|when|where|which|why|how|is|are|does|do|can|did)\b", re.IGNORECASE)


def surface_features(text: str) -> np.ndarray:
    """A few cheap signals of a task question, each roughly in [0, 1]."""
    words = text.split()
    return np.array([
        min(math.log1p(len(words)) / 5.0, 1.5),
        min(len(_NUMBER.findall(text)) / 5.0, 1.5),
        min(len(_OPERATOR.findall(text)) / 3.0, 1.5),
        min(len(_CHOICE_LINE.findall(text)) / 4.0, 1.5),
        float(text.rstrip().endswith("?")),
        float(bool(_WH.match(text))),
        sum(c.isupper() for c in text) / max(len(text), 1),
    ], dtype=np.float32)


def question_hash(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()[:16]


@dataclass
class DifficultyModel:
    weights: np.ndarray          # (d,) logistic regression over [embedding, surface features]
    bias: float
    kind_weights: np.ndarray     # (k, d) multinomial logistic regression over the same input
    kind_bias: np.ndarray        # (k,)
    kind_names: list[str]
    quantiles: np.ndarray        # scores of a held-out mixed stream at 0, 0.001, ..., 1
    trained_on: np.ndarray       # question hashes seen in training (strings)

    def inputs(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        return np.hstack([vectors, np.stack([surface_features(t) for t in texts])])

    def score(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        logits = self.inputs(texts, vectors) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def kind(self, texts: Sequence[str], vectors: np.ndarray) -> list[str]:
        logits = self.inputs(texts, vectors) @ self.kind_weights.T + self.kind_bias
        return [self.kind_names[i] for i in np.argmax(logits, axis=1)]

    def threshold(self, budget: float) -> float:
        """The score that sends ``budget`` of a typical stream to the cloud."""
        return float(np.quantile(self.quantiles, min(max(1.0 - budget, 0.0), 1.0)))

    def seen(self, text: str) -> bool:
        return question_hash(text) in self._seen

    @property
    def _seen(self) -> set[str]:
        if not hasattr(self, "_seen_set"):
            self._seen_set = set(self.trained_on.tolist())
        return self._seen_set

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, weights=self.weights, bias=np.float32(self.bias), kind_weights=self.kind_weights,
                            kind_bias=self.kind_bias, kind_names=np.array(self.kind_names), quantiles=self.quantiles,
                            trained_on=self.trained_on)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "DifficultyModel":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(data["weights"], float(data["bias"]), data["kind_weights"], data["kind_bias"],
                           [str(k) for k in data["kind_names"]], data["quantiles"], data["trained_on"])
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"could not read the router model {path}: {error}") from None


@dataclass(frozen=True)
class Example:
    text: str
    needs_cloud: bool
    kind: str


def train(examples: Sequence[Example], calibration: Sequence[Example], embed: Callable[[list[str]], np.ndarray],
          seed: int = 0) -> DifficultyModel:
    """Fit the score (task question vs conversation) and the kind, and calibrate the quantiles."""
    from sklearn.linear_model import LogisticRegression

    texts = [e.text for e in examples]
    skeleton = DifficultyModel(np.zeros(1), 0.0, np.zeros((1, 1)), np.zeros(1), [], np.zeros(1), np.array([]))
    x = skeleton.inputs(texts, embed(texts))
    score = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, [e.needs_cloud for e in examples])
    kinds = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, [e.kind for e in examples])
    model = DifficultyModel(
        score.coef_[0].astype(np.float32), float(score.intercept_[0]), kinds.coef_.astype(np.float32),
        kinds.intercept_.astype(np.float32), [str(c) for c in kinds.classes_], np.zeros(1),
        np.array(sorted(question_hash(e.text) for e in examples if e.needs_cloud)),
    )
    held_out = [e.text for e in calibration]
    model.quantiles = np.quantile(model.score(held_out, embed(held_out)), np.linspace(0, 1, 1001)).astype(np.float32)
    return model
