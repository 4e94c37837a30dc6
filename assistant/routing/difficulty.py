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
- ``train(examples, calibration, graded, embed, seed)`` fits the classifiers (scikit-learn
  logistic regression) and keeps the hashes of the questions it saw, so an evaluation can
  leave them out.

The score is P(task question) × P(the local model fails | task question), two classifiers over
the same inputs. Why: on the 135M default, conversation is answered fine and task questions
are not — so the first factor does most of the work, and the general-tower embedding separates
the two well, with a few surface features (numbers, operators, answer choices, length)
carrying it to formats the embedding has seen less of. But questions differ too: a
multiple-choice question is right by luck a quarter of the time, an arithmetic word problem
almost never. The second factor is trained on questions ``graded`` by actually running the
local model, so the budget goes to the questions it would get wrong. The local model's own
token log-probs separate its right and wrong answers only weakly and need a slow draft, so
they are not used.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from assistant.errors import ModelError
from assistant.files import written_atomically

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


def model_inputs(texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """What every classifier here reads: the general-tower embedding and the surface features."""
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    return np.hstack([vectors, np.stack([surface_features(t) for t in texts])])


def question_hash(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()[:16]


@dataclass
class DifficultyModel:
    weights: np.ndarray          # (d,) P(task question): logistic regression over [embedding, surface features]
    bias: float
    fail_weights: np.ndarray     # (d,) P(local model fails | task question), same inputs
    fail_bias: float
    kind_weights: np.ndarray     # (k, d) multinomial logistic regression over the same input
    kind_bias: np.ndarray        # (k,)
    kind_names: list[str]
    quantiles: np.ndarray        # scores of a held-out mixed stream at 0, 0.001, ..., 1
    trained_on: np.ndarray       # question hashes seen in training (strings)

    def score(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        return self._score(model_inputs(texts, vectors))

    def kind(self, texts: Sequence[str], vectors: np.ndarray) -> list[str]:
        return self._kind(model_inputs(texts, vectors))

    def assess(self, text: str, vector: np.ndarray) -> tuple[float, str]:
        """Score and kind of one message, its inputs built once (the router's per-turn call)."""
        x = model_inputs([text], vector)
        return float(self._score(x)[0]), self._kind(x)[0]

    def _score(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(x @ self.weights + self.bias) * _sigmoid(x @ self.fail_weights + self.fail_bias)

    def _kind(self, x: np.ndarray) -> list[str]:
        return [self.kind_names[i] for i in np.argmax(x @ self.kind_weights.T + self.kind_bias, axis=1)]

    def threshold(self, budget: float) -> float:
        """The score that sends ``budget`` of a typical stream to the cloud."""
        return float(np.quantile(self.quantiles, min(max(1.0 - budget, 0.0), 1.0)))

    def seen(self, text: str) -> bool:
        return question_hash(text) in self._seen

    @cached_property
    def _seen(self) -> set[str]:
        return set(self.trained_on.tolist())

    def save(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(Path(path), suffix=".npz") as tmp:
            np.savez_compressed(tmp, weights=self.weights, bias=np.float32(self.bias), fail_weights=self.fail_weights,
                                fail_bias=np.float32(self.fail_bias), kind_weights=self.kind_weights,
                                kind_bias=self.kind_bias, kind_names=np.array(self.kind_names),
                                quantiles=self.quantiles, trained_on=self.trained_on)

    @classmethod
    def load(cls, path: Path) -> "DifficultyModel":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(data["weights"], float(data["bias"]), data["fail_weights"], float(data["fail_bias"]),
                           data["kind_weights"], data["kind_bias"],
                           [str(k) for k in data["kind_names"]], data["quantiles"], data["trained_on"])
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"could not read the router model {path}: {error}") from None


@dataclass(frozen=True)
class Example:
    text: str
    needs_cloud: bool
    kind: str


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def train(examples: Sequence[Example], calibration: Sequence[Example], graded: Sequence[tuple[str, bool]],
          embed: Callable[[list[str]], np.ndarray], seed: int = 0) -> DifficultyModel:
    """Fit the two factors of the score and the kind, and calibrate the quantiles.

    ``examples``: task questions (needs_cloud) and conversation; ``graded``: (question, the local
    model failed it) pairs; ``calibration``: a held-out stream for the budget quantiles.
    """
    from sklearn.linear_model import LogisticRegression

    fit = lambda x, y, c=1.0: LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)  # noqa: E731
    texts = [e.text for e in examples]
    x = model_inputs(texts, embed(texts))
    task, kinds = fit(x, [e.needs_cloud for e in examples]), fit(x, [e.kind for e in examples])
    graded_texts = [t for t, _ in graded]
    fails = fit(model_inputs(graded_texts, embed(graded_texts)), [f for _, f in graded], c=0.3)
    model = DifficultyModel(
        task.coef_[0].astype(np.float32), float(task.intercept_[0]), fails.coef_[0].astype(np.float32),
        float(fails.intercept_[0]), kinds.coef_.astype(np.float32), kinds.intercept_.astype(np.float32),
        [str(c) for c in kinds.classes_], np.zeros(1),
        np.array(sorted({question_hash(t) for t in [*(e.text for e in examples if e.needs_cloud), *graded_texts]})),
    )
    held_out = [e.text for e in calibration]
    model.quantiles = np.quantile(model.score(held_out, embed(held_out)), np.linspace(0, 1, 1001)).astype(np.float32)
    return model
