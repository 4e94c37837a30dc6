"""The privacy chokepoint: nothing goes to the cloud without passing through ``redact()``.

Contract:
- ``redact(messages, deny_names)`` returns a ``Redacted``: ``.messages`` (copies, safe to send),
  ``.mapping`` (placeholder → original; never sent, never logged), ``.payload`` (the exact JSON
  of the messages sent, for logging), ``restore(text)`` and ``restore_stream(chunks)`` for the
  reply. Personal data becomes placeholders like ``[PERSON_1]``, ``[EMAIL_1]``, ``[PHONE_1]``;
  the same value gets the same placeholder everywhere in the conversation.
- Detected: the deny-listed names (whole names and each part alone, any case, on word
  boundaries), emails, phone numbers, street addresses and apartment numbers, card numbers,
  IBANs and account numbers, US SSNs, IP addresses and URLs carrying secrets (tokens, keys,
  passwords in the query string or user info). Presidio's pattern recognizers (no spaCy model,
  no network) plus our own patterns; overlapping finds are merged, the longest winning.
- Fail closed: any failure while detecting raises ``PrivacyError``; the caller answers locally.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Callable, Iterable, Iterator, NamedTuple

from assistant.errors import PrivacyError

KINDS = ("EMAIL", "URL", "CARD", "IBAN", "SSN", "PHONE", "ADDRESS", "PERSON", "IP", "ACCOUNT")  # tie order
PLACEHOLDER = re.compile(r"\[(?:%s)_\d+\]" % "|".join(KINDS))
_PARTIAL = re.compile(r"\[[A-Z]*(?:_\d*)?\Z")  # what a placeholder cut by a chunk boundary looks like
_LONGEST_PLACEHOLDER = max(len(kind) for kind in KINDS) + 8
_NAME_PARTICLES = {"van", "von", "der", "den", "de", "da", "di", "del", "la", "le", "du", "dos", "bin", "al"}


class Span(NamedTuple):
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Redacted:
    messages: list[dict]
    mapping: dict[str, str] = field(repr=False)  # the originals: keep out of logs and tracebacks

    @property
    def payload(self) -> str:
        return json.dumps(self.messages, ensure_ascii=False)

    def restore(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda match: self.mapping.get(match.group(0), match.group(0)), text)

    def restore_stream(self, chunks: Iterable[str]) -> Iterator[str]:
        """Restore a streamed reply, holding back a placeholder until its last character arrives."""
        pending = ""
        for chunk in chunks:
            pending += chunk
            partial = _PARTIAL.search(pending, max(0, len(pending) - _LONGEST_PLACEHOLDER))
            cut = partial.start() if partial else len(pending)
            if cut:
                yield self.restore(pending[:cut])
                pending = pending[cut:]
        if pending:
            yield self.restore(pending)


def redact(messages: list[dict], deny_names: Iterable[str] = ()) -> Redacted:
    """``messages`` with personal data replaced by placeholders; raises ``PrivacyError``."""
    try:
        names = _name_pattern(tuple(deny_names))
        texts = [_content(message) for message in messages]
        taken = {found for text in texts if text for found in PLACEHOLDER.findall(text)}
        labels = _Labels(taken)
        out = []
        for message, text in zip(messages, texts):
            if text is not None:
                text = _replace(text, _merge(detect(text, names)), labels)
            out.append({**message, "content": text})
        return Redacted(out, labels.mapping)
    except PrivacyError:
        raise
    except Exception as error:  # any surprise means we cannot vouch for the text: fail closed
        raise PrivacyError(
            f"could not check the message for personal data ({type(error).__name__}); it stays on this device"
        ) from error


def detect(text: str, names: re.Pattern | None = None) -> list[Span]:
    """Every find of every detector, overlaps included."""
    found = [Span(m.start(), m.end(), "PERSON") for m in names.finditer(text)] if names else []
    for detector in DETECTORS:
        found.extend(detector(text))
    return found


def prepare() -> None:
    """Load presidio now (importing it takes seconds) instead of on the first cloud turn."""
    _recognizers()


def _content(message: dict) -> str | None:
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise PrivacyError("only text messages can be checked for personal data; this one stays on this device")
    return content


class _Labels:
    """Hands out placeholders: one per distinct value, skipping any already typed in the text."""

    def __init__(self, taken: set[str]):
        self.mapping: dict[str, str] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._taken = taken
        self._counts: dict[str, int] = {}

    def __call__(self, kind: str, original: str) -> str:
        key = (kind, _normalise(kind, original))
        if key not in self._by_value:
            while True:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                label = f"[{kind}_{self._counts[kind]}]"
                if label not in self._taken:
                    break
            self._by_value[key] = label
            self.mapping[label] = original
        return self._by_value[key]


def _normalise(kind: str, value: str) -> str:
    if kind in ("PHONE", "CARD", "IBAN", "ACCOUNT", "SSN"):
        return re.sub(r"[^0-9A-Za-z+]", "", value).upper()  # same number however it is spaced
    return " ".join(value.split()).casefold()


def _merge(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, longest first, ties broken by ``KINDS`` order; in text order."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, KINDS.index(s.kind), s.start)):
        if span.end > span.start and all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept)


def _replace(text: str, spans: list[Span], labels: _Labels) -> str:
    parts, last = [], 0
    for span in spans:
        parts += [text[last:span.start], labels(span.kind, text[span.start:span.end])]
        last = span.end
    return "".join(parts) + text[last:]


@lru_cache(maxsize=64)  # deny lists repeat turn after turn
def _name_pattern(names: tuple[str, ...]) -> re.Pattern | None:
    variants = set()
    for name in names:
        words = name.split()
        if words:
            variants.add(r"\s+".join(re.escape(word) for word in words))
        # first names (and other parts) alone, but not "van" or an initial
        variants.update(re.escape(w) for w in words if len(w.strip(".")) > 1 and w.casefold() not in _NAME_PARTICLES)
    if not variants:
        return None
    alternatives = "|".join(sorted(variants, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


# --- detectors ------------------------------------------------------------------------------

_PRESIDIO_KINDS = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
                   "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP", "US_SSN": "SSN", "US_BANK_NUMBER": "ACCOUNT",
                   "URL": "URL"}


@cache
def _recognizers() -> list:
    # Imported here: presidio takes seconds to import. Only pattern recognizers: no spaCy model.
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer,
        UrlRecognizer, UsBankRecognizer, UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text):  # upstream checks the TLD with tldextract, which
            return None  # downloads the public suffix list: a network call from the privacy code

    regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "AU", "NL", "ES", "IT", "MX")
    return [OfflineEmailRecognizer(), PhoneRecognizer(supported_regions=regions), CreditCardRecognizer(),
            IbanRecognizer(), IpRecognizer(), UsSsnRecognizer(), UsBankRecognizer(), UrlRecognizer()]


def _presidio(text: str) -> list[Span]:
    spans = []
    for recognizer in _recognizers():
        # Every find counts, however low its score: sending a false negative costs more than a
        # placeholder too many.
        for result in recognizer.analyze(text, entities=recognizer.supported_entities, nlp_artifacts=None):
            kind = _PRESIDIO_KINDS[result.entity_type]
            if kind != "URL":
                spans.append(Span(result.start, result.end, kind))
            elif secret_url := _secret_url(text, result.start):
                spans.append(secret_url)
    return spans


_STREET_TYPES = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|"
                 r"Terrace|Ter|Way|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Row|Alley")
_UNIT = r"(?i:apt|apartment|suite|ste|unit|flat|room|rm|floor|fl)\.?\s*#?\s*[A-Za-z]?\d+[A-Za-z]?\b"
_PATTERNS = [
    # "123 Main Street", "42B Baker St., Apt 4B", "1600 Pennsylvania Avenue NW": capitalised (or
    # ordinal) street words keep "3 miles down the road" out
    ("ADDRESS", re.compile(
        rf"\b\d{{1,6}}[A-Za-z]?\s+(?:(?:[A-Z][\w'-]*|\d+(?:st|nd|rd|th))\.?\s+){{1,4}}(?i:{_STREET_TYPES})\b"
        rf"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?(?:,?\s*{_UNIT})?")),
    ("ADDRESS", re.compile(rf"(?<!\w){_UNIT}|\b(?i:p\.?\s?o\.?\s+box)\s+\d+\b")),
    ("PHONE", re.compile(r"(?<![\w+])(?:\+?1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}(?!\w)")),
    ("PHONE", re.compile(r"(?<![\w+])\+\d(?:[ .()-]{0,2}\d){6,14}(?!\w)")),  # any +<country> number
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("ACCOUNT", re.compile(r"(?<![\w-])(?:\d{8,19}|\d{3,6}(?:[ -]\d{3,6}){2,5})(?![\w-])")),
    ("ACCOUNT", re.compile(r"(?i)\b(?:account|acct|routing|sort code|a/c)\b(?:\s*(?:number|no\.?|#))?"
                           r"\s*[:#]?\s*\d[\d -]{3,}\d")),  # "account no. 12-345-67": the label goes too
    ("IP", re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")),
]


def _patterns(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), kind) for kind, pattern in _PATTERNS for m in pattern.finditer(text)]


_URL_START = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)")
_SECRET = re.compile(
    r"(?i)(?:[?&#;][\w.-]*(?:token|key|secret|passw|pwd|sig|auth|session|sid|code|credential|jwt)[\w.-]*=[^&#\s]"
    r"|://[^/\s:@]+:[^/\s@]+@)")  # a query parameter that looks secret, or user:password@host


def _secret_urls(text: str) -> list[Span]:
    return [span for m in _URL_START.finditer(text) if (span := _secret_url(text, m.start()))]


def _secret_url(text: str, start: int) -> Span | None:
    """The URL starting at ``start``, to the next whitespace, if it carries a secret."""
    end = start
    while end < len(text) and not text[end].isspace() and text[end] not in "<>\"'`":
        end += 1
    url = text[start:end].rstrip(".,;:!?)]}")
    return Span(start, start + len(url), "URL") if _SECRET.search(url) else None


DETECTORS: list[Callable[[str], list[Span]]] = [_presidio, _patterns, _secret_urls]
