"""Sharper template checks, in plain words. Pure functions on sources and rendered text;
`worker/template_check.py` runs them on the whole set.

- `outside_blocks`: text in a template that extends a layout but sits outside every
  `{% block %}` is dropped by Jinja without a word: an error.
- `unclosed_tag`: Jinja reports an unclosed `{% if %}` where it gives up (often the end of
  the file); we name the line where the tag opens.
- `did_you_mean`: the known variable closest to a misspelt one.
- `drift`: sentences the HTML part has and the text part lacks, or the other way round.
- `text_from_html`: a text part's source generated from an HTML part's source.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser

from jinja2 import Environment, TemplateSyntaxError, nodes

# Tags that need an {% end... %}; `set` only in its block form ({% set x %}...{% endset %}).
_PAIRED = {"if", "for", "block", "macro", "call", "filter", "with", "autoescape", "trans"}
_INNERMOST = re.compile(r"innermost block that needs to be closed is '(\w+)'")
_UNKNOWN_TAG = re.compile(r"unknown tag '(\w+)'")
_URL = re.compile(r"""\b[a-z][a-z0-9+.-]*://[^\s<>"')\]]+""", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
# A link's words in the HTML part are often its address in the text part: marked, so a
# sentence matches with or without them.
LINK_START, LINK_END = "\x01", "\x02"
_LINK_WORDS = re.compile("\x01[^\x02]*\x02?")
MIN_WORDS = 3  # shorter fragments ("Hello, Maria.") are not worth a warning


# --- content outside blocks ---------------------------------------------------------------


def outside_blocks(env: Environment, source: str) -> list[tuple[int, str]]:
    """(line, what) for each piece of output outside every block in a template that
    extends another. Empty for a template that does not extend, or does not parse."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return []
    if not any(isinstance(node, nodes.Extends) for node in tree.body):
        return []
    found: list[tuple[int, str]] = []
    for node in tree.body:
        if isinstance(node, nodes.Block | nodes.Extends | nodes.Macro | nodes.Assign):
            continue
        for output in [node] if isinstance(node, nodes.Output) else node.find_all(nodes.Output):
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    text = child.data.strip()
                    if text:
                        line = child.lineno + child.data[: child.data.find(text)].count("\n")
                        found.append((line, _snippet(text)))
                else:
                    found.append((child.lineno, "{{ … }}"))
    return found


def outside_blocks_message(what: str) -> str:
    return (
        f"{what!r} is outside every {{% block %}}: this template extends a layout, which "
        "shows only what is inside the blocks, so this is silently dropped. Move it inside "
        "{% block content %} … {% endblock %}"
    )


def _snippet(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- unclosed tags ------------------------------------------------------------------------


def unclosed_tag(env: Environment, source: str, exc: TemplateSyntaxError) -> tuple[int, str] | None:
    """(line where the tag opens, message) for a syntax error that is an unclosed tag."""
    innermost = _INNERMOST.search(exc.message or "")
    if innermost is None:
        return None
    tag = innermost.group(1)
    stack: list[tuple[str, int]] = []
    try:
        tokens = list(env.lex(source))
    except TemplateSyntaxError:
        return None
    expect_name = False
    for lineno, kind, value in tokens:
        if exc.lineno and lineno > exc.lineno:
            break
        if kind == "block_begin":
            expect_name = True
            continue
        if not expect_name or kind == "whitespace":
            continue
        expect_name = False
        if kind != "name":
            continue
        if value in _PAIRED:
            stack.append((value, lineno))
        elif value.startswith("end") and stack and stack[-1][0] == value[3:]:
            stack.pop()
    opened = next((line for name, line in reversed(stack) if name == tag), None)
    if opened is None:
        return None
    stray = _UNKNOWN_TAG.search(exc.message or "")
    if stray and stray.group(1)[3:] in _PAIRED:
        noticed = f" (line {exc.lineno} closes {{% {stray.group(1)[3:]} %}} before it)"
    elif stray:
        noticed = f" (line {exc.lineno} has {{% {stray.group(1)} %}}, which is not a tag)"
    elif exc.lineno != opened:
        noticed = f" (Jinja noticed at line {exc.lineno})"
    else:
        noticed = ""
    return opened, (
        f"{{% {tag} %}} opened on line {opened} is never closed: add {{% end{tag} %}} where "
        f"it should end{noticed}"
    )


# --- unknown variables --------------------------------------------------------------------


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return matches[0] if matches else None


# --- drift between the parts --------------------------------------------------------------


class _TextOf(HTMLParser):
    """The words of an HTML fragment, a line per block element."""

    _BREAKS = {"p", "div", "br", "h1", "h2", "h3", "h4", "li", "tr", "table", "td"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self._skip += 1
        if tag in self._BREAKS:
            self.parts.append("\n")
        if tag == "a":
            self.parts.append(LINK_START)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip = max(0, self._skip - 1)
        if tag in self._BREAKS:
            self.parts.append("\n")
        if tag == "a":
            self.parts.append(LINK_END)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))  # HTML line breaks are spaces


def html_words(fragment: str) -> str:
    """The words of an HTML fragment, one line per block; link words between markers."""
    parser = _TextOf()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def _unmarked(text: str) -> str:
    return text.replace(LINK_START, "").replace(LINK_END, "")


def _normal(text: str) -> str:
    text = _URL.sub(" ", _unmarked(text))
    return " ".join(re.findall(r"\w+", text.lower()))


def sentences(text: str) -> list[str]:
    """Sentences of at least MIN_WORDS words, as written (link markers kept)."""
    out = []
    for piece in _SENTENCE_END.split(_URL.sub(" ", text)):
        piece = " ".join(piece.split()).strip(" -\u2013\u2014\u2022*:")
        if len(_normal(piece).split()) >= MIN_WORDS:
            out.append(piece)
    return out


def _present(sentence: str, other: str, other_sentences: list[str]) -> bool:
    """Said in the other part: word for word (links' words optional), or nearly."""
    forms = {_normal(sentence), _normal(_LINK_WORDS.sub(" ", sentence))}
    if any(form in other for form in forms):
        return True
    return any(
        difflib.SequenceMatcher(None, form, _normal(s)).ratio() >= 0.8
        for form in forms
        for s in other_sentences
    )


def drift(html_part: str, text_part: str) -> tuple[list[str], list[str]]:
    """(sentences of the HTML part missing from the text part, and the other way round).
    `html_part` is HTML (its words are compared), `text_part` plain text."""
    words = html_words(html_part)
    html_sentences, text_sentences = sentences(words), sentences(text_part)
    html_all, text_all = _normal(words), _normal(text_part)
    return (
        [_unmarked(s) for s in html_sentences if not _present(s, text_all, text_sentences)],
        [s for s in text_sentences if not _present(s, html_all, html_sentences)],
    )


# --- the text part from the HTML part -----------------------------------------------------

_JINJA = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.DOTALL)
_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(.*?)\1[^>]*>(.*?)</a\s*>", re.I | re.S)
_BLOCK_TAG = re.compile(r"</?(p|div|h[1-6]|li|ul|ol|tr|table|td|blockquote)\b[^>]*>", re.I)
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]+>")


def text_from_html(source: str) -> str:
    """A text part's source from an HTML part's source: the same Jinja tags and words,
    links written as `words: address`, one paragraph per block, `_layout.html` -> `.txt`.
    A starting point for the marketer, to read over."""
    source = re.sub(r"""(extends\s+["'][^"']*?)\.html(["'])""", r"\1.txt\2", source)
    source = re.sub(r"\{% block (subject|preheader) %\}.*?\{% endblock %\}\n?", "", source)
    # Keep Jinja tags out of the HTML clean-up: swap them for markers, then back.
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    body = _JINJA.sub(keep, source)

    def link(match: re.Match[str]) -> str:
        words = _TAG.sub("", match.group(3)).strip()
        address = match.group(2).strip()
        return f"{words}: {address}" if words and words != address else address

    body = _LINK.sub(link, body)
    body = _BR.sub("\n", body)
    body = _BLOCK_TAG.sub("\n", body)
    body = _TAG.sub("", body)
    body = html.unescape(body)
    lines = [line.strip() for line in body.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    body = "\n".join(out).strip() + "\n"
    body = re.sub(r"\n{3,}", "\n\n", body)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], body)
