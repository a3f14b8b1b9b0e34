"""Obsidian's Markdown on top of CommonMark, as mistune plugins: one list, used by both the AST parser and
the HTML renderer (`PLUGINS`, used by `markdown.ast_parser` and `markdown.html_renderer`).

Token shapes added here (read by extract and render):

- `wikilink` / `embed`: attrs `target`, `label` (`[[Note|label]]`, `![[img.png|300]]`, `![[Note#Heading]]`)
- `inline_math`: raw TeX, attrs `display` (`$x$`, or `$$x$$` inside a paragraph); `block_math`: raw TeX
- `callout`: attrs `kind`, `fold` (`""`, `"+"`, `"-"`); children `callout_title` (inline) and `callout_body`
- `%%comments%%` and block ids (`^abc`) never reach the parser: `strip_hidden` removes them from the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from re import Match
from typing import Any

import mistune
from mistune.core import BlockState, InlineState
from mistune.inline_parser import InlineParser


def _inline_rule(md: mistune.Markdown, name: str, pattern: str, func: Any, before: str, starts: str) -> None:
    """Register an inline rule with the characters its matches start with, so mistune (3.4+) can skip
    plain text quickly; older mistune versions take the rule without them (same result, slower)."""
    try:
        md.inline.register(name, pattern, func, before=before, start_chars=set(starts))
    except TypeError:
        md.inline.register(name, pattern, func, before=before)


# --- links and embeds -------------------------------------------------------------------------------

# [[target]], [[target|label]], [[target\|label]] (escaped in tables), ![[file.png|300]], ![[Note#Heading]]
WIKILINK_PATTERN = r"(?P<wl_bang>!?)\[\[(?P<wl_body>[^\[\]\n]+?)\]\]"
_LABEL_SPLIT = re.compile(r"\\?\|")


def _split_wikilink(body: str) -> tuple[str, str]:
    parts = _LABEL_SPLIT.split(body, maxsplit=1)
    target = parts[0].strip()
    label = parts[1].strip() if len(parts) > 1 else ""
    return target, label


def _parse_wikilink(inline: InlineParser, m: Match[str], state: InlineState) -> int:
    target, label = _split_wikilink(m.group("wl_body"))
    kind = "embed" if m.group("wl_bang") else "wikilink"
    state.append_token({"type": kind, "attrs": {"target": target, "label": label}})
    return m.end()


# `__init__`, `__slots__`: Python names students write without backticks, never bold.
DUNDER_PATTERN = r"(?<![\w\\])__[A-Za-z][A-Za-z0-9_]*?__(?!\w)"


def _parse_dunder(inline: InlineParser, m: Match[str], state: InlineState) -> int:
    inline.process_text(m.group(0), state, parse_emphasis=False)
    return m.end()


# Hangul, kana and Han: languages written without spaces before particles (`**(괄호)**는`, `**O(1)**이다`)
_CJK = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# CommonMark's flanking rules refuse `**(괄호)**는` and `는**(괄호)**`: the mark sits between punctuation and
# a letter. Obsidian shows them bold, and Korean notes are full of them. This rule takes exactly those runs
# (a CJK letter outside, punctuation inside); every other emphasis is left to mistune.
CJK_EMPHASIS_PATTERN = (
    rf"(?<=[{_CJK}])(?P<cjk_open>\*{{1,2}})(?=[^\w\s*])(?P<cjk_a>[^*\n]*?[^\s*\\])(?P=cjk_open)(?!\*)"
    rf"|(?<![*\\])(?P<cjk_close>\*{{1,2}})(?=[^\s*])(?P<cjk_b>[^*\n]*?[^\w\s*\\])(?P=cjk_close)"
    rf"(?=[{_CJK}])"
)


def _parse_cjk_emphasis(inline: InlineParser, m: Match[str], state: InlineState) -> int | None:
    if state.depth >= inline.max_nested_level:
        return None
    marker = m.group("cjk_open") or m.group("cjk_close")
    inner = m.group("cjk_a") if m.group("cjk_a") is not None else m.group("cjk_b")
    child = state.copy()
    child.src = inner
    kind = "strong" if len(marker) == 2 else "emphasis"
    state.append_token({"type": kind, "children": inline.render(child)})
    return m.end()


def links(md: mistune.Markdown) -> None:
    _inline_rule(md, "wikilink", WIKILINK_PATTERN, _parse_wikilink, "link", "![")
    _inline_rule(md, "dunder", DUNDER_PATTERN, _parse_dunder, "emphasis", "_")
    _inline_rule(md, "cjk_emphasis", CJK_EMPHASIS_PATTERN, _parse_cjk_emphasis, "emphasis", "*")


# --- comments and block ids ---------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


class FenceTracker:
    """Line by line: is this line part of fenced code (its opening and closing lines included)?

    `uneven` turns true when a fence closes at another indent than it opened at: CommonMark may then read
    it differently (the list item holding the fence may have ended first)."""

    def __init__(self) -> None:
        self.fence: str | None = None
        self.indent = ""
        self.uneven = False

    def in_code(self, line: str) -> bool:
        m = _FENCE.match(line)
        if m is None:
            return self.fence is not None
        marker, indent = m.group(1), line[: m.start(1)]
        if self.fence is None:
            self.fence, self.indent = marker, indent
        elif marker[0] == self.fence[0] and len(marker) >= len(self.fence):
            self.uneven = self.uneven or indent != self.indent
            self.fence = None
        return True


# `^block-id` at the end of a line (after a space) or alone on its line
_BLOCK_ID = re.compile(r"(?:^|[ \t]+)\^[A-Za-z0-9-]+[ \t]*$")


@dataclass(frozen=True)
class Hidden:
    """`strip_hidden`'s result: the text left, and where comments misbehaved (0-based lines)."""

    text: str
    unclosed: int | None = None  # the line where a comment opens that is never closed
    #: (where a comment opened, the template heading it would have hidden): it was closed there instead
    cut: tuple[tuple[int, int], ...] = ()


def strip_hidden(text: str, boundary: Callable[[str], bool] | None = None) -> Hidden:
    """What Obsidian never shows, removed before parsing: comments (`%%hidden%%`, on one line or over many;
    a comment can hide whole list items or headings) and block ids (`text ^abc`, a `^abc` line). Fenced code
    and code spans are left alone. A line that held nothing else is dropped; an unclosed `%%` hides the rest
    of the note (as in Obsidian). Diagnostics find their lines in the original text, so dropped lines never
    shift a line number.

    `boundary` says which lines are template headings: a comment never runs past one (a stray `%%`, such as a
    shell note's `${var%%pattern}`, would otherwise hide the next sections and let a card take their text);
    it is closed before the heading and the heading stays."""
    comments, ids = "%%" in text, "^" in text
    if not (comments or ids):
        return Hidden(text)
    cut: list[tuple[int, int]] = []
    out: list[str] = []
    fences = FenceTracker()
    hidden = False
    opened: int | None = None
    for number, line in enumerate(text.split("\n")):
        if not hidden and fences.in_code(line):
            out.append(line)
            continue
        kept, touched = line, False
        if hidden and opened is not None and boundary is not None and boundary(line):
            cut.append((opened, number))
            hidden = False
        if comments:
            was_hidden = hidden
            kept, hidden, touched = _uncomment(line, hidden)
            if hidden and not was_hidden:
                opened = number
        if ids and "^" in kept:
            without = _BLOCK_ID.sub("", kept)
            touched = touched or without != kept
            kept = without
        if not (touched and not kept.strip()):
            out.append(kept)
    return Hidden("\n".join(out), opened if hidden else None, tuple(cut))


def _uncomment(line: str, hidden: bool) -> tuple[str, bool, bool]:
    """The visible part of one line, whether a comment is still open after it, and whether it had one."""
    if not hidden and "%%" not in line:
        return line, False, False
    kept: list[str] = []
    i, touched = 0, hidden
    while i < len(line):
        if hidden:
            end = line.find("%%", i)
            if end < 0:
                return "".join(kept), True, True
            hidden, i = False, end + 2
        elif line[i] == "`":  # a code span: copied whole, `%%` inside is code
            run = len(line) - len(line[i:].lstrip("`"))
            close = line.find("`" * run, i + run)
            stop = close + run if close >= 0 else i + run
            kept.append(line[i:stop])
            i = stop
        elif line.startswith("%%", i):
            hidden, touched, i = True, True, i + 2
        else:
            kept.append(line[i])
            i += 1
    return "".join(kept), hidden, touched


# --- math -------------------------------------------------------------------------------------------

BLOCK_MATH_PATTERN = (
    r"^ {0,3}\$\$(?P<math_single>[^\n]*?)\$\$[ \t]*(?:\n|$)|"
    r"^ {0,3}\$\$[ \t]*\n(?P<math_multi>[\s\S]*?)\n {0,3}\$\$[ \t]*(?:\n|$)"
)
# Pandoc's rule, so prices and shell variables stay text: the opening `$` is followed by a non-space, the
# closing `$` follows a non-space and is not followed by a digit (`$1.18 or $2` and `$((a+b)) $HOME` are
# not math).
INLINE_MATH_PATTERN = (
    r"\$\$(?P<math_display>(?:[^$\\]|\\.)+?)\$\$|"
    r"\$(?![$\s])(?P<math_inline>(?:[^$\\\n]|\\.)+?)(?<!\s)\$(?!\d)"
)


def _parse_block_math(block: Any, m: Match[str], state: BlockState) -> int:
    text = m.group("math_single")
    if text is None:
        text = m.group("math_multi")
    state.append_token({"type": "block_math", "raw": text.strip()})
    return m.end()


def _parse_inline_math(inline: InlineParser, m: Match[str], state: InlineState) -> int:
    display = m.group("math_display")
    text = display if display is not None else m.group("math_inline")
    state.append_token(
        {"type": "inline_math", "raw": text.strip(), "attrs": {"display": display is not None}}
    )
    return m.end()


def math(md: mistune.Markdown) -> None:
    md.block.register("block_math", BLOCK_MATH_PATTERN, _parse_block_math, before="list")
    for rules in (md.block.list_rules, md.block.block_quote_rules):
        md.block.insert_rule(rules, "block_math", before="list")
    _inline_rule(md, "inline_math", INLINE_MATH_PATTERN, _parse_inline_math, "codespan", "$")


# --- callouts ---------------------------------------------------------------------------------------

_CALLOUT_HEAD = re.compile(r"\A[ \t]*\[!([A-Za-z][\w-]*)\]([+-]?)[ \t]*([^\n]*)(?:\n|\Z)")


def _callout(token: dict[str, Any]) -> dict[str, Any]:
    kids = token.get("children") or []
    first = kids[0] if kids else None
    if first is None or first.get("type") != "paragraph" or "text" not in first:
        return token
    m = _CALLOUT_HEAD.match(first["text"])
    if m is None:
        return token
    kind, fold, title = m.group(1).lower(), m.group(2), m.group(3).strip()
    rest = first["text"][m.end() :]
    body = ([{"type": "paragraph", "text": rest}] if rest.strip() else []) + kids[1:]
    return {
        "type": "callout",
        "attrs": {"kind": kind, "fold": fold},
        "children": [
            {"type": "callout_title", "text": title, "attrs": {"kind": kind, "fold": fold}},
            {"type": "callout_body", "children": body},
        ],
    }


def _callouts_in(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tok in tokens:
        if isinstance(tok.get("children"), list):
            tok["children"] = _callouts_in(tok["children"])
        out.append(_callout(tok) if tok.get("type") == "block_quote" else tok)
    return out


def _callout_hook(md: mistune.Markdown, state: BlockState) -> None:
    state.tokens = _callouts_in(state.tokens)


def callouts(md: mistune.Markdown) -> None:
    """`> [!kind] Title` (and foldable `[!kind]-` / `[!kind]+`) block quotes become `callout` tokens, before
    inline parsing, so the title is parsed as Markdown and the marker never reaches a card's text."""
    md.before_render_hooks.append(_callout_hook)


PLUGINS: tuple[Any, ...] = (
    "table",
    "mistune.plugins.table.table_in_list",
    "mistune.plugins.table.table_in_quote",
    "strikethrough",
    "mark",
    links,
    math,
    callouts,
)
