"""Model text made safe to show as markdown in the chat (OWASP LLM05, improper output handling).

A reply comes from a model, local or cloud, that may have been steered by text it was shown
(an imported chat, a recalled memory), so its text is untrusted. ``model_text(text)`` (a whole
message) and ``model_line(text)`` (a piece inside a line of our own markup) return markdown
that shows the same words but can neither run nor fetch anything:

- raw HTML shows as text: outside code every ``<`` becomes ``&lt;``, so no tag, comment or
  ``<url>`` autolink can form (``>`` is left alone: without ``<`` it opens nothing, and
  escaping it would break block quotes);
- images never load: ``![alt](url)`` becomes ``alt [image not loaded]``;
- links are not clickable: ``[text](url)`` becomes ``text (`url`)`` and a bare URL is put in a
  code span, so the renderer's autolinker (GFM) leaves it alone; every other ``[`` is escaped,
  so no reference link, reference image or link definition can form (task boxes ``- [ ]`` stay);
- code is shown as written: fenced and indented code blocks (found by a CommonMark parser) and
  one-line code spans keep their ``<``, because the renderer shows code literally; a
  ```` ```mermaid ```` fence is renamed so it stays code instead of being drawn.

The result is parsed again (CommonMark, HTML on): if any HTML, image, link or bare URL survived
(the two passes disagreed on some odd input), the text is shown literally instead, every
punctuation mark backslash-escaped (``as_plain``). Only the model's text goes through here; the
app adds its own markup (the ``<sub>`` status line) after.

What Gradio does itself (checked in gradio 6.31: ``components/chatbot.py`` and the front-end
bundle): ``gr.Chatbot(sanitize_html=True)`` is the default; the browser renders the markdown
with marked (GFM: bare URLs become links), then runs an allowlist HTML sanitizer that drops
``<script>``, ``<iframe>``, ``<style>``, event-handler attributes and ``javascript:``/``data:``
URLs. It keeps ``<img src=…>`` (a remote fetch whose URL can carry the conversation out) and
``<a href>`` to any site, and it inserts the text of ```` ```mermaid ```` blocks (drawn with
securityLevel "antiscript") and of ``$$…$$`` LaTeX blocks into the page as HTML. So we sanitise
regardless (defence in depth), and the chat turns LaTeX off (``latex_delimiters=[]``).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# The block structure the renderer will see in our output: HTML is escaped there and link
# definitions are disarmed, so they are switched off when finding code blocks in the input.
_BLOCKS = MarkdownIt("commonmark", {"html": False}).disable("reference")
_CHECK = MarkdownIt("commonmark", {"html": True})

_MERMAID = re.compile(r"```mermaid(?=[^\S\n]*\n)")
_URL = re.compile(r"(?<![\w.+-])(?:(?:https?|ftp)://|www\.)[^\s<>`|]+", re.IGNORECASE)
_NEXT = re.compile(r"\\[!-/:-@\[-`{-~]|`+|!?\[|" + _URL.pattern, re.IGNORECASE)
_TARGET = r"""\]\([ \t]*(?P<dest><[^<>\n]*>|[^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)
    (?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?[ \t]*\)"""
_LINK = re.compile(r"\[(?P<text>[^\[\]\n]*)" + _TARGET, re.VERBOSE)
_IMAGE = re.compile(r"!\[(?P<text>[^\[\]\n]*)" + _TARGET, re.VERBOSE)
_TASK_PREFIX = re.compile(r"[ \t>]*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_TASK_BOX = re.compile(r"\[[ xX]\](?=[ \t\n]|\Z)")
_UNSAFE = {"html_block", "html_inline", "image", "link_open"}
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
IMAGE_NOTE = "\\[image not loaded\\]"


def model_text(text: str | None) -> str:
    """``text`` as markdown blocks that show the same words without HTML, images or links.

    For a whole message (or the start of one): code blocks are recognised, and a code fence
    left open (a reply cut off mid-block) is closed, so markup added after stays markup.
    """
    if not text:
        return ""
    text = _MERMAID.sub("```mermaid-source", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines, code = text.split("\n"), set()
    for token in _BLOCKS.parse(text):
        if token.type not in ("fence", "code_block") or not token.map:
            continue
        start, end = token.map
        if token.type == "fence" and _left_open(lines, token):  # the last block: nothing after it moves
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1
            lines.insert(end, token.markup)
            end += 1
        code.update(range(start, end))
    out, prose = [], []
    for number, line in enumerate(lines):
        if number not in code:
            prose.append(line)
            continue
        if prose:
            out.append(_inline("\n".join(prose)))
            prose = []
        out.append(line)
    if prose:
        out.append(_inline("\n".join(prose)))
    safe = "\n".join(out)
    return safe if is_inert(safe) else as_plain(text)


def model_line(text: str | None) -> str:
    """``text`` folded onto one line, safe inside a line of other markup (a list item, a note)."""
    line = " ".join((text or "").split())
    safe = _inline(line)
    return safe if is_inert(f"x {safe}") else as_plain(line)


def is_inert(markdown: str) -> bool:
    """True when rendering ``markdown`` makes no HTML, image, link, bare URL or diagram."""
    pending = list(_CHECK.parse(markdown))
    while pending:
        token = pending.pop()
        if token.type in _UNSAFE or (token.type == "text" and _URL.search(token.content)):
            return False
        if token.type == "fence" and token.info.strip() == "mermaid":
            return False
        pending.extend(token.children or ())
    return True


def as_plain(text: str) -> str:
    """``text`` with every ASCII punctuation mark backslash-escaped: shown literally, as typed."""
    return _PUNCTUATION.sub(r"\\\g<0>", text)


def _left_open(lines: list[str], fence) -> bool:
    """A top-level fence that runs to the end of the text without its closing line."""
    opener, last = lines[fence.map[0]], lines[fence.map[1] - 1].strip()
    closed = fence.map[1] - fence.map[0] > 1 and last.startswith(fence.markup) and not last.strip(fence.markup[0])
    at_end = not any(line.strip() for line in lines[fence.map[1]:])
    return at_end and not closed and opener.lstrip(" ").startswith(fence.markup)


def _inline(text: str) -> str:
    """Prose (no code blocks): escape HTML, unlink links and URLs, drop images, keep code spans.

    Backticks that open no span here are escaped, and so is a final backslash, so the result
    can sit next to other text without a code span forming across the join.
    """
    out, i = [], 0
    while True:
        found = _NEXT.search(text, i)
        if found is None:
            tail = text[i:].replace("<", "&lt;")
            out.append(tail + "\\" if tail.endswith("\\") else tail)
            return "".join(out)
        start, token = found.start(), found.group()
        out.append(text[i:start].replace("<", "&lt;"))
        if token.startswith("\\"):  # a backslash escape shows its character literally
            out.append(token)
            i = found.end()
        elif token.startswith("`"):
            i = _code_span_end(text, start, len(token))
            out.append(text[start:i] if i > start + len(token) else "\\`" * len(token))
        elif token.startswith("!") or token == "[":
            i = _bracket(text, start, token, out)
        else:
            url = _trim_url(token)
            out.append(_code(url))
            i = start + len(url)


def _code_span_end(text: str, start: int, run: int) -> int:
    """End of the one-line code span opened at ``start``, or of the bare backticks if none.

    Spans holding ``|`` do not count: in a GFM table the pipe would split them into cells.
    """
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    j = start + run
    while (k := text.find("`", j, line_end)) != -1:
        end = k
        while end < line_end and text[end] == "`":
            end += 1
        if end - k == run:
            return end if "|" not in text[start:end] else start + run
        j = end
    return start + run


def _bracket(text: str, start: int, token: str, out: list[str]) -> int:
    """An image or link at ``start`` made harmless; any other ``[`` escaped (task boxes kept)."""
    image = token.startswith("!")
    found = (_IMAGE if image else _LINK).match(text, start)
    if found is not None:
        label, dest = _inline(found.group("text")), found.group("dest").strip("<>")
        said = found.group("text").strip()
        if image:
            out.append(f"{label} {IMAGE_NOTE}" if said else IMAGE_NOTE)
        elif not dest:
            out.append(label)
        else:
            out.append(_code(dest) if said in ("", dest) else f"{label} ({_code(dest)})")
        return found.end()
    bracket = start + 1 if image else start
    out.append("!" if image else "")
    line_start = text.rfind("\n", 0, bracket) + 1
    task = _TASK_PREFIX.fullmatch(text[line_start:bracket]) and _TASK_BOX.match(text, bracket)
    out.append("[" if task else "\\[")
    return bracket + 1


def _trim_url(url: str) -> str:
    """A bare URL without the punctuation that ends its sentence, as GFM's autolinker trims it."""
    while url and (url[-1] in ".,:;!?\"'*_~" or (url[-1] == ")" and url.count(")") > url.count("("))):
        url = url[:-1]
    return url


def _code(text: str) -> str:
    """``text`` as one code span (shown literally, never linked)."""
    fence = "`" * (_longest_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _longest_run(text: str) -> int:
    """The longest run of backticks in ``text``."""
    return max((len(run) for run in re.findall("`+", text)), default=0)
