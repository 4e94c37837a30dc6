"""Questions with gold answers, conversational turns, and the checkers that grade answers.

Contract:
- ``read_questions(path)`` reads a routing file (JSONL: ``question``, ``answers``, ``type``,
  optional ``id`` and ``source``; the source defaults to the file's stem) and raises
  ``InputError`` naming the line of the first malformed record.
- ``read_chat(path)`` reads the ``query`` fields of an mqd-style file (JSONL, optionally .gz).
- ``is_correct(answer, question)`` grades a free-text answer with the checker of the question's
  type: ``numeric`` (the last number in the answer, relative tolerance 1e-4), ``short``
  (SQuAD-normalised: a gold answer appears as a whole-word run in the answer), ``mc`` (the
  chosen letter, or the gold choice's text and no other choice's), ``yesno`` (the first yes/no).
"""

from __future__ import annotations

import gzip
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import InputError

TYPES = ("numeric", "short", "mc", "yesno")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_CHOICE = re.compile(r"^\s*\(?([A-Ea-e])[.)]\s*(.+?)\s*$", re.MULTILINE)
_LETTER = re.compile(r"^\W*(?:the\s+)?(?:answer\s*(?:is)?\s*:?\s*)?\(?([A-E])(?:[.):]|\s|$)|\banswer\s+is\s*:?\s*\(?([A-E])\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    id: str
    source: str
    text: str
    answers: tuple[str, ...]
    type: str


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")


def read_questions(path) -> list[Question]:
    path = Path(path)
    out = []
    try:
        with _open(path) as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    out.append(_question(json.loads(line), path.stem, number))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as error:
        raise InputError(f"{path}: could not read it ({error})") from None
    return out


def _question(record: dict, source: str, number: int) -> Question:
    kind = record.get("type") if isinstance(record, dict) else None
    if kind not in TYPES or not isinstance(record.get("question"), str) or not record.get("answers"):
        raise InputError(f"line {number}: expected question, answers and a type among {', '.join(TYPES)}")
    return Question(str(record.get("id", f"{source}-{number}")), str(record.get("source", source)), record["question"],
                    tuple(str(a) for a in record["answers"]), kind)


def read_chat(path) -> list[str]:
    path = Path(path)
    try:
        with _open(path) as lines:
            records = [json.loads(line) for line in lines if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as error:
        raise InputError(f"{path}: could not read it ({error})") from None
    return [r["query"].strip() for r in records if isinstance(r, dict) and isinstance(r.get("query"), str) and r["query"].strip()]


def is_correct(answer: str, question: Question) -> bool:
    return {"numeric": _numeric, "short": _short, "mc": _choice, "yesno": _yesno}[question.type](answer, question)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _numeric(answer: str, question: Question) -> bool:
    found = [n for n in (_number(m) for m in _NUMBER.findall(answer)) if n is not None]
    if not found:
        return False
    golds = [g for g in (_number(a) for a in question.answers) if g is not None]
    return any(abs(found[-1] - g) <= 1e-4 * max(1.0, abs(g)) for g in golds)


def normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _short(answer: str, question: Question) -> bool:
    said = f" {normalise(answer)} "
    return any(gold and f" {gold} " in said for gold in map(normalise, question.answers))


def _choice(answer: str, question: Question) -> bool:
    choices = {letter.upper(): normalise(text) for letter, text in _CHOICE.findall(question.text)}
    gold_letter = next((a.strip().upper() for a in question.answers if a.strip().upper() in choices), None)
    letter = _LETTER.search(answer.strip())
    if letter:
        return (letter.group(1) or letter.group(2)).upper() == gold_letter
    said = f" {normalise(answer)} "
    named = {k for k, text in choices.items() if text and f" {text} " in said}
    return named == {gold_letter}


def _yesno(answer: str, question: Question) -> bool:
    said = re.search(r"\b(yes|no)\b", answer.lower())
    return bool(said) and said.group(1) == normalise(question.answers[0])
