"""Parse only what cards need: a cheap line scan finds the template headings, and mistune reads the cue and
summary sections (and the first lines, for tag links) but never the main notes, most of a note's bytes.

The result must be exactly what parsing the whole note gives (tests/test_sections.py checks every fixture,
the samples and a generated vault). Wherever the line scan could disagree with CommonMark, it gives up and
the whole note is parsed: an HTML block or link reference definition, a template heading inside fenced
code, indented by 1-3 spaces, or written as a setext heading, a fence closed at another indent than it was
opened, or a template heading right under an HTML line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from note2anki import markdown as md
from note2anki.model import Token
from note2anki.obsidian import FenceTracker

#: heading role of a heading's plain text: "cue", "summary", "other" or None
RoleOf = Callable[[str], "str | None"]

_ATX = re.compile(r"(#{1,6})(?:[ \t]|$)")
_ATX_INDENTED = re.compile(r" {1,3}#{1,6}(?:[ \t]|$)")
_SETEXT = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_RAW_HTML = re.compile(r"<!--|<\?|<!\[CDATA\[|<(?:script|pre|style|textarea)\b", re.IGNORECASE)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:", re.MULTILINE)
# characters whose markup can make a heading's raw text read differently from its plain text
_MARKUP_WITH_LETTERS = re.compile(r"\]\(|\[\[|<|\\|`|\$")
_LINES_THAT_MATTER = re.compile(r"^(?:[ \t]*(?:`{3,}|~{3,})|#| {1,3}#| {0,3}(?:=+|-+)[ \t]*$)", re.MULTILINE)


#: called with each piece of text given to the parser and the index of its first line in the note body
Inspect = Callable[[str, int], None]


def parse_for_cards(
    text: str, role_of: RoleOf, card_roles: frozenset[str], inspect: Inspect | None = None
) -> list[Token]:
    """Block tokens of `text` (a note body), with every section that is not one of `card_roles` (and
    everything after the first paragraph that precedes the first template heading) left out. `inspect`
    sees exactly the text that is parsed (parse.py checks its limits there)."""

    def blocks(chunk: str, first_line: int) -> list[Token]:
        if inspect is not None:
            inspect(chunk, first_line)
        return md.parse_blocks(chunk)

    plan = _plan(text, role_of)
    if plan is None:
        return blocks(text, 0)
    lines, marks = plan
    first = marks[0][0] if marks else len(lines)
    tokens = blocks("\n".join(lines[: _first_paragraph_end(lines, first)]), 0)
    for n, (start, role) in enumerate(marks):
        if role in card_roles:
            end = marks[n + 1][0] if n + 1 < len(marks) else len(lines)
            tokens.extend(blocks("\n".join(lines[start:end]), start))
    return tokens


def _role(heading_line: str, role_of: RoleOf) -> str | None:
    """The role of an ATX heading line, read from its plain text as the parser would give it."""
    if _MARKUP_WITH_LETTERS.search(heading_line):
        tokens = md.parse_blocks(heading_line)
        if not tokens or md.kind(tokens[0]) != "heading":
            return None
        return role_of(md.plain_text(md.children(tokens[0])))
    return role_of(heading_line.lstrip("#"))


def _plan(text: str, role_of: RoleOf) -> tuple[list[str], list[tuple[int, str]]] | None:
    """The lines and the template headings (line index, role) that cut the note into sections, or None when
    the line scan cannot be sure to agree with the parser."""
    if _RAW_HTML.search(text) or _LINK_DEFINITION.search(text):
        return None
    lines = text.split("\n")
    marks: list[tuple[int, str]] = []
    fences = FenceTracker()
    i, at = 0, 0
    # Only fence lines change the fence state and only heading-like lines can cut: the other lines (most
    # of a note) are skipped by one regex search instead of a Python loop.
    for m in _LINES_THAT_MATTER.finditer(text):
        i += text.count("\n", at, m.start())
        at = m.start()
        line = lines[i]
        in_code = fences.in_code(line)
        head = line[0]
        if head == "#" and _ATX.match(line):
            role = _role(line, role_of)
            if role is None:
                continue
            if in_code:
                return None  # a template heading in code: only the parser can say
            marks.append((i, role))
        elif in_code:
            continue
        elif head == " " and _ATX_INDENTED.match(line):
            if _role(line.strip(), role_of) is not None:
                return None
        elif head in "=-" and i and _SETEXT.match(line) and role_of(_paragraph_above(lines, i)) is not None:
            return None
    if fences.uneven:
        return None
    for i, _ in marks:
        if _under_html(lines, i):
            return None
    return lines, marks


def _paragraph_above(lines: list[str], i: int) -> str:
    """The text of the run of lines right above line `i` (what a setext underline would make a heading)."""
    j = i - 1
    while j >= 0 and lines[j].strip():
        j -= 1
    return " ".join(line.strip() for line in lines[j + 1 : i])


def _under_html(lines: list[str], i: int) -> bool:
    """True when the paragraph-like run of lines right above line `i` starts with an HTML tag: the heading
    may then belong to an HTML block."""
    j = i - 1
    while j >= 0 and lines[j].strip():
        j -= 1
    return j + 1 < i and lines[j + 1].lstrip()[:1] == "<"


def _first_paragraph_end(lines: list[str], stop: int) -> int:
    """The end of the first paragraph before line `stop` (tag links live there), skipping leading blank
    lines and headings (`# Tags`)."""
    seen_text = False
    for i in range(stop):
        line = lines[i].strip()
        if not line:
            if seen_text:
                return i
            continue
        if not line.startswith("#"):
            seen_text = True
    return stop
