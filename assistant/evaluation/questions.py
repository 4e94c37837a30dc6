"""Questions with gold answers, conversational turns, and the checkers that grade answers.

Contract:
- ``read_questions(path)`` reads a routing file (JSONL: ``question``, ``answers``, ``type``,
  optional ``id`` and ``source``; the source defaults to the file's stem) and raises
  ``InputError`` naming the line of the first malformed record.
- ``read_chat(path)`` reads the ``query`` fields of an mqd-style file (JSONL, optionally .gz).
- ``commits(answer, question)`` tells, without the gold answer, whether an answer puts forward
  exactly one answer of the question's kind (what a cascade can check on a local draft).
- ``is_correct(answer, question)`` grades a free-text answer with the checker of the question's
  type: ``numeric`` (the final number in the answer, relative tolerance 1e-4), ``short``
  (SQuAD-normalised: a gold answer appears as a whole-word run in the answer), ``mc`` and
  ``yesno`` (the answer must commit to exactly one option, and that option is the gold one).

An answer commits to a choice by a letter standing alone ("B", "(B)"), a letter marked as the
answer ("The answer is B", "Answer: (B)"), a letter opening the answer as an option line whose
text, if any, is that choice's ("B. carbon dioxide"), or, with no letter at all, by naming
exactly one choice's text. Listing several options ("A. 62\nB. 70"), a letter whose text is
another choice's, or a sentence that merely starts with "A" commits to nothing and is wrong.
A yes/no answer commits by opening with yes or no (true/false count as yes/no), by marking it
("the answer is no"), or by saying only one of the two; "yes or no", or both with neither
leading, is wrong. The small local model often answers this way, and a lenient checker would
credit it with choices it never made (and teach the router wrong labels).
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
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")  # a minus after a digit is an operator: "5-3"
_CHOICE = re.compile(r"^\s*\(?([A-Ea-e])[.)]\s*(.+?)\s*$", re.MULTILINE)
_ALONE = re.compile(r"^[\W_]*([A-E])[\W_]*$")  # a line that is only a letter: "B", "(B).", "**B**"
_OPTION_LINE = re.compile(r"^[^\w\n]*\(?([A-E])\s*[.):][*_]*(?:[ \t]+(.*?))?[ \t]*$", re.MULTILINE)  # "B. carbon dioxide"
_MARKED = re.compile(  # "the answer is B", "Answer: (B)", "correct option is B because", but not "is A hollow cube"
    r"(?i:\b(?:answer|option|choice)\s*(?:is|would\s+be|:|=)\s*(?:option\s+|choice\s+)?)[(\[*]*([A-E])(?![\w'])"
    r"(?!\s+(?!because\b|since\b|as\b)[a-z])")
_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_LEADING_YES_NO = re.compile(r"^\W*(yes|no|true|false)\b(?!\s*(?:or|and|/)\s*(?:yes|no)\b)", re.IGNORECASE)
_MARKED_YES_NO = re.compile(r"\banswer\s*(?:is|:)\s*\W*(yes|no|true|false)\b", re.IGNORECASE)


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
    gold = next((a.strip().upper() for a in question.answers if a.strip().upper() in choices), None)
    letters = chosen_letters(answer, choices)
    if not letters:
        letters = named_choices(answer, choices)
    return gold is not None and letters == {gold}


def chosen_letters(answer: str, choices: dict[str, str]) -> set[str]:
    """Every letter the answer puts forward: alone on a line, marked as the answer, or opening
    an option line (with the letter of the choice whose text that line gives, if another's)."""
    letters = {m.group(1) for m in map(_ALONE.match, answer.splitlines()) if m}
    letters |= set(_MARKED.findall(answer))
    for letter, text in _OPTION_LINE.findall(answer):
        letters.add(letter)
        said = normalise(text)
        letters |= {other for other, choice in choices.items() if said and choice == said}
    return letters


def named_choices(answer: str, choices: dict[str, str]) -> set[str]:
    """Choices whose text the answer says, a choice inside a longer named one not counted."""
    said = f" {normalise(answer)} "
    named = {k for k, text in choices.items() if text and f" {text} " in said}
    return {k for k in named if not any(k != o and f" {choices[k]} " in f" {choices[o]} " for o in named)}


def _yesno(answer: str, question: Question) -> bool:
    said = yes_or_no(answer)
    return said is not None and said == _YES_NO.get(normalise(question.answers[0]))


def yes_or_no(answer: str) -> str | None:
    """"yes" or "no" when the answer commits to one of them (see the module docstring), else None."""
    committed = _LEADING_YES_NO.match(answer) or _MARKED_YES_NO.search(answer)
    if committed:
        return _YES_NO[committed.group(1).lower()]
    said = {_YES_NO[w] for w in re.findall(r"\b(yes|no|true|false)\b", answer.lower())}
    return said.pop() if len(said) == 1 else None


def commits(answer: str, question: Question) -> bool:
    """Whether ``answer`` puts forward exactly one answer of the question's kind (no gold read)."""
    if question.type == "mc":
        choices = {letter.upper(): normalise(text) for letter, text in _CHOICE.findall(question.text)}
        return len(chosen_letters(answer, choices) or named_choices(answer, choices)) == 1
    if question.type == "yesno":
        return yes_or_no(answer) is not None
    if question.type == "numeric":
        return bool(_NUMBER.search(answer))
    said = normalise(answer)
    return bool(said) and said not in normalise(question.text)
