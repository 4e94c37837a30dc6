"""Scores of one reply in the conversation evaluation: names, copying, facts, cut-offs.

Pure functions over strings, each a heuristic stated here so a reader can judge the figures:
- ``names_in(reply, household, allowed)``: capitalised words that read as names. A word counts
  when it is a household member's name, or when it is capitalised in mid-sentence (or right
  after a greeting such as "Hi", or opening the reply before a comma and not in ``OPENERS``:
  "Celeste, …"), is not in ``COMMON_CAPITALISED`` and is not among the words
  the asking person wrote themselves (``allowed``: their city, their message). What is left are
  invented names ("Amara") and other proper nouns the person never mentioned.
- ``name_verdict``: "none" (no name), "right" (only the asker's), "other" (another member of the
  household — the worst case), "invented" (a name nobody in the household said).
- ``overlap(reply, earlier)``: ROUGE-L F1 ×100 (``metrics.rouge_l``) against the closest of
  ``earlier`` texts, and ``ngram_precision``: the share of the reply's word 4-grams found in them.
- ``reflects(reply, keywords)``: one of the keywords (lower case, whole words at the start: "cycl"
  is not a keyword, "cycling" matches "cycling") appears in the reply.
- ``is_cut(reply)``: the reply does not end like a sentence (. ! ? … a closing quote or bracket
  after one, or an emoji).
"""

from __future__ import annotations

import re

from assistant.evaluation.metrics import rouge_l

WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
SENTENCE_START = re.compile(r"(^|[.!?…:;\n\"“(\U0001F300-\U0001FAFF\u2600-\u27BF]\s*|[-*•]\s+|\d+[.)]\s+)$")
GREETING = re.compile(r"\b(hi|hello|hey|dear|thanks|thank you|welcome|morning|evening|afternoon),?\s+$", re.IGNORECASE)
ENDS_SENTENCE = re.compile(r"([.!?…]|[.!?…][\"'”’)\]*]+|[\U0001F300-\U0001FAFF\u2600-\u27BF])$")

COMMON_CAPITALISED = frozenset("""
i i'm i'll i've i'd ok okay mr mrs ms dr st confidant ai english french spanish italian mexican indian thai
chinese japanese greek american british canadian european asian mediterranean monday tuesday wednesday thursday
friday saturday sunday january february march april may june july august september october november december
christmas easter god internet tv wifi earth moon sun pacific atlantic ocean paris france london england europe
america spain italy germany german mexico india china japan greece canada portugal portuguese catalan asia africa
""".split())


# words that open a reply followed by a comma without being someone's name ("Sure, …")
OPENERS = frozenset("""
sure yes yeah yep no nope well oh ah ahh wow okay ok alright great good perfect absolutely certainly of as first
then also however sorry thanks thank indeed now so but and if when since because after before while here there
this that these those what why how hmm um haha hey hi hello welcome congratulations cheers please remember honestly
unfortunately actually finally additionally
""".split())
OPENING_NAME = re.compile(r"^[^A-Za-z]*([A-Z][a-z]+),")


def words_of(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def names_in(reply: str, household: list[str], allowed: set[str]) -> list[str]:
    """The words of ``reply`` that read as names (see the module's heuristic), in order."""
    members = {name.lower() for name in household}
    found = []
    for match in WORD.finditer(reply):
        word = match.group().rstrip("'’-")
        bare = re.sub(r"['’]s$", "", word)
        lower = bare.lower()
        if lower in members:
            found.append(bare)
            continue
        if not bare[:1].isupper() or bare.isupper() and len(bare) > 1 or lower in COMMON_CAPITALISED or lower in allowed:
            continue
        before = reply[: match.start()]
        if not SENTENCE_START.search(before) or GREETING.search(before) or addressed(reply, match.start()):
            found.append(bare)
    return found


def addressed(reply: str, start: int) -> bool:
    """The reply opens by addressing someone: "Celeste, I'm glad…" (not "Sure, …", not "Usually, …")."""
    opening = OPENING_NAME.match(reply)
    if not opening or opening.start(1) != start:
        return False
    word = opening.group(1).lower()
    return word not in OPENERS and not word.endswith("ly")


def name_verdict(names: list[str], speaker: str, household: list[str]) -> str:
    if not names:
        return "none"
    others = {n.lower() for n in household} - {speaker.lower()}
    if any(n.lower() in others for n in names):
        return "other"
    if any(n.lower() != speaker.lower() for n in names):
        return "invented"
    return "right"


def ngrams(text: str, n: int = 4) -> list[tuple[str, ...]]:
    tokens = [w.lower() for w in WORD.findall(text)]
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def ngram_precision(reply: str, earlier: list[str], n: int = 4) -> float:
    """Share of the reply's word n-grams that occur in any of ``earlier`` (0 when it has none)."""
    mine = ngrams(reply, n)
    if not mine:
        return 0.0
    seen = {g for text in earlier for g in ngrams(text, n)}
    return sum(g in seen for g in mine) / len(mine)


def overlap(reply: str, earlier: list[str]) -> float:
    """ROUGE-L F1 ×100 against the closest of ``earlier`` (0 when there is nothing earlier)."""
    texts = [t for t in earlier if t.strip()]
    if not texts or not reply.strip():
        return 0.0
    return float(max(rouge_l([reply] * len(texts), texts)))


def reflects(reply: str, keywords: list[str]) -> bool:
    lower = reply.lower()
    return any(re.search(r"\b" + re.escape(k.lower()), lower) for k in keywords)


def is_cut(reply: str) -> bool:
    text = reply.strip()
    return bool(text) and not ENDS_SENTENCE.search(text)
