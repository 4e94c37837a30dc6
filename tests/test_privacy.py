"""The privacy chokepoint on planted personal data: nothing planted survives, everything restores."""

from __future__ import annotations

import json
import re
import socket

import pytest

from assistant.models import privacy
from assistant.errors import PrivacyError
from assistant.models.privacy import redact

NAMES = ["Alice Smith", "Bob", "José Álvarez", "Mary-Jane van der Berg"]

PLANTED = {
    "PERSON": ["Alice Smith", "ALICE", "smith", "Bob", "José", "Álvarez", "Mary-Jane"],
    "EMAIL": ["alice.smith@example.com", "bob+news@corp.io", "j.alvarez@correo.es"],
    "PHONE": ["+1 (415) 555-0132", "415-555-0199", "(555) 123-4567", "415.555.0110",
              "+44 20 7946 0958", "+49 30 901820", "+33 1 42 68 53 00"],
    "ADDRESS": ["123 Main Street", "42 Baker St", "1600 Pennsylvania Avenue NW", "Apt 4B", "Suite 210",
                "77 5th Ave"],
    "CARD": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
    "IBAN": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"],
    "ACCOUNT": ["000123456789", "account number 12-345-678"],
    "SSN": ["078-05-1120"],
    "IP": ["192.168.1.20", "10.0.0.7", "2001:db8::1"],
    "URL": ["https://api.example.com/v1/data?token=abc123XYZ", "https://x.io/cb?code=4/0Ab&state=q",
            "http://files.example.net/f.pdf?X-Amz-Signature=deadbeef", "https://svc.example.org/?access_token=eyJhbGci",
            "https://user:hunter2@host.example.com/path", "https://maps.example.com/?api_key=K-99"],
}


def conversation() -> list[dict]:
    values = [value for kind in PLANTED.values() for value in kind]
    user = " and ".join(f"item {i}: {value}" for i, value in enumerate(values))
    return [
        {"role": "system", "content": "You are talking with Alice Smith. Her friend is Bob."},
        {"role": "user", "content": f"Remember these: {user}. Thanks!"},
        {"role": "assistant", "content": "Noted, alice. I'll write to alice.smith@example.com."},
        {"role": "user", "content": "Also, Mary-Jane van der Berg lives at 9 Elm Road, Flat 3."},
    ]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_planted_personal_data_never_survives():
    redacted = redact(conversation(), NAMES)
    sent = redacted.payload
    for kind, values in PLANTED.items():
        for value in values:
            assert value.casefold() not in sent.casefold(), (kind, value)
            if len(digits(value)) >= 7:  # the number must not survive re-spaced either
                assert digits(value) not in digits(sent), (kind, value)
            assert f"[{kind}_" in sent, kind
    for leftover in ("Mary-Jane", "van der Berg", "9 Elm Road", "Flat 3", "hunter2", "abc123XYZ"):
        assert leftover.casefold() not in sent.casefold()


def test_payload_is_the_json_of_exactly_what_is_sent_and_the_input_is_untouched():
    original = conversation()
    before = json.dumps(original)
    redacted = redact(original, NAMES)
    assert json.loads(redacted.payload) == redacted.messages
    assert [m["role"] for m in redacted.messages] == [m["role"] for m in original]
    assert json.dumps(original) == before
    assert "Alice" not in repr(redacted)  # the mapping stays out of reprs (logs, tracebacks)


def test_every_message_restores_exactly():
    original = [
        {"role": "system", "content": "Talking with Alice Smith (alice.smith@example.com)."},
        {"role": "user", "content": "Call +1 (415) 555-0132 or write to 123 Main Street, Apt 4B. "
                                    "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, IP 10.0.0.7, "
                                    "link https://api.example.com/v1/data?token=abc123XYZ."},
    ]
    redacted = redact(original, NAMES)
    for sent, message in zip(redacted.messages, original):
        assert sent["content"] != message["content"]
        assert redacted.restore(sent["content"]) == message["content"]


def test_names_match_in_any_case_on_word_boundaries_including_first_names():
    text = "ALICE met alice and Alice's cat; Smith too. Malice, Alicea and Bobby are not names here."
    sent = redact([{"role": "user", "content": text}], ["Alice Smith", "Bob"]).messages[0]["content"]
    assert sent == ("[PERSON_1] met [PERSON_1] and [PERSON_1]'s cat; [PERSON_2] too. "
                    "Malice, Alicea and Bobby are not names here.")


def test_the_same_value_gets_the_same_placeholder_across_messages():
    redacted = redact([{"role": "user", "content": "Mail bob@corp.io, Bob."},
                       {"role": "assistant", "content": "I wrote to bob@corp.io for bob."}], ["Bob"])
    assert redacted.messages[0]["content"] == "Mail [EMAIL_1], [PERSON_1]."
    assert redacted.messages[1]["content"] == "I wrote to [EMAIL_1] for [PERSON_1]."


def test_ordinary_text_is_left_alone():
    text = ("On 2024-03-15 I walked 3 miles down the road with 2 kids on the way; version 1.2.3 "
            "of https://example.org/docs?page=2 says [see note] costs $1,250.")
    assert redact([{"role": "user", "content": text}], NAMES).messages[0]["content"] == text


def test_a_placeholder_typed_by_the_user_is_not_reused_or_restored():
    redacted = redact([{"role": "user", "content": "What does [PERSON_1] mean? Ask Bob."}], ["Bob"])
    assert redacted.messages[0]["content"] == "What does [PERSON_1] mean? Ask [PERSON_2]."
    assert redacted.restore("[PERSON_1] and [PERSON_2]") == "[PERSON_1] and Bob"


def test_restore_across_every_chunk_boundary():
    redacted = redact([{"role": "user", "content": "Bob at bob@corp.io, 10.0.0.7"}], ["Bob"])
    reply = "Hi [PERSON_1]! I mailed [EMAIL_1] from [IP_1]; [see note], [PERSON_9] and a [ bracket.["
    expected = redacted.restore(reply)
    assert expected == "Hi Bob! I mailed bob@corp.io from 10.0.0.7; [see note], [PERSON_9] and a [ bracket.["
    for cut in range(len(reply) + 1):
        assert "".join(redacted.restore_stream([reply[:cut], reply[cut:]])) == expected, cut
    assert "".join(redacted.restore_stream(list(reply))) == expected
    for first, second in [(5, 9), (10, 30), (3, 60)]:
        pieces = [reply[:first], reply[first:second], reply[second:]]
        assert "".join(redacted.restore_stream(pieces)) == expected


def test_restore_stream_does_not_hold_back_ordinary_text():
    redacted = redact([{"role": "user", "content": "Hello Bob"}], ["Bob"])
    out = list(redacted.restore_stream(["Hello ", "there, ", "[PER", "SON_1]", "!"]))
    assert out == ["Hello ", "there, ", "Bob", "!"]


def test_fails_closed_when_a_presidio_recognizer_breaks(monkeypatch):
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    def broken(*args, **kwargs):
        raise RuntimeError("recognizer exploded")

    privacy.prepare()
    monkeypatch.setattr(EmailRecognizer, "analyze", broken)
    with pytest.raises(PrivacyError, match="stays on this device"):
        redact([{"role": "user", "content": "mail alice@example.com"}], ["Alice"])


def test_fails_closed_when_any_detector_breaks(monkeypatch):
    def broken(text):
        raise ValueError("bad pattern")

    monkeypatch.setattr(privacy, "DETECTORS", [*privacy.DETECTORS, broken])
    with pytest.raises(PrivacyError):
        redact([{"role": "user", "content": "hello"}], [])


def test_content_that_cannot_be_checked_is_refused():
    with pytest.raises(PrivacyError):
        redact([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], [])


def test_detection_never_touches_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the privacy code tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    sent = redact([{"role": "user", "content": "mail carol@example.co.uk or dan@intranet.lan"}], []).payload
    assert "carol@" not in sent and "dan@" not in sent
