"""The one place that builds mistune, plus helpers over its tokens.

`ast_parser()` and `html_renderer()` are built from the same plugin list (`obsidian.PLUGINS`), so a token
the parser can produce is a token the renderer can draw.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import mistune
from mistune.core import BlockState

from note2anki.cardhtml import CardHTMLRenderer
from note2anki.model import ParsedNote, Token
from note2anki.obsidian import PLUGINS, FenceTracker


@functools.lru_cache(maxsize=1)
def ast_parser() -> mistune.Markdown:
    return mistune.create_markdown(renderer=None, plugins=list(PLUGINS))


@functools.lru_cache(maxsize=2)
def html_renderer(breaks: bool = False) -> mistune.HTMLRenderer:
    """`breaks`: a single newline inside a paragraph is a line break (Obsidian's default), not a space."""
    # escape=False keeps the HTML students paste from Notion (<br>, <details>); render.sanitize cleans it.
    md = mistune.create_markdown(
        renderer=CardHTMLRenderer(escape=False, breaks=breaks), plugins=list(PLUGINS)
    )
    renderer = md.renderer
    assert isinstance(renderer, mistune.HTMLRenderer)
    return renderer


_TAB_THEN_SPACES = re.compile(r"^(\t+) +(?=\S)")


def normalize_indentation(text: str) -> str:
    """Notion exports indent answers with a tab followed by spaces (`\\t    text`); CommonMark would read the
    spaces as an indented code block. Outside fenced code, spaces after leading tabs are dropped, so the tab
    alone sets the nesting. Lines are never added or removed, so line numbers stay true."""
    if "\t " not in text:
        return text
    lines = text.split("\n")
    fences = FenceTracker()
    for i, line in enumerate(lines):
        if not fences.in_code(line):
            lines[i] = _TAB_THEN_SPACES.sub(r"\1", line)
    return "\n".join(lines)


def parse_blocks(text: str) -> list[Token]:
    tokens = ast_parser()(text)
    assert isinstance(tokens, list)
    return cast("list[Token]", tokens)


def to_html(tokens: Iterable[Token], breaks: bool = False) -> str:
    return html_renderer(breaks).render_tokens(tokens, BlockState())  # type: ignore[arg-type]


# --- reading tokens -------------------------------------------------------------------------------


def kind(token: Token) -> str:
    kind: str = token.get("type", "")  # always a str: mistune's, the plugins' and ours
    return kind


def children(token: Token) -> list[Token]:
    value = token.get("children")
    return list(value) if isinstance(value, list) else []


def attr(token: Token, name: str, default: Any = None) -> Any:
    attrs = token.get("attrs")
    return attrs.get(name, default) if isinstance(attrs, dict) else default


def plain_text(tokens: Iterable[Token], media: bool = True) -> str:
    """The visible text of inline or block tokens, Markdown markers dropped; with `media=False` the
    names and alt texts of images and embeds are left out too."""
    return "".join(_plain(tokens, media))


def _plain(tokens: Iterable[Token], media: bool) -> Iterator[str]:
    for tok in tokens:
        t = kind(tok)
        if t in ("softbreak", "linebreak"):
            yield "\n"
        elif t in ("image", "embed") and not media:
            continue
        elif t in ("wikilink", "embed"):
            yield attr(tok, "label") or attr(tok, "target", "")
        elif t == "image":
            yield plain_text(children(tok))
        elif "raw" in tok and t not in ("block_html", "inline_html"):
            yield str(tok["raw"])
        else:
            yield from _plain(children(tok), media)
            if t in ("paragraph", "block_text", "heading", "list_item", "block_code"):
                yield "\n"


_MEDIA_TYPES = frozenset({"image", "embed", "block_code", "codespan", "table", "inline_math", "block_math"})


def has_content(tokens: Iterable[Token]) -> bool:
    """True when the tokens show something: text that is not whitespace, an image, code or a table."""
    for tok in tokens:
        if kind(tok) in _MEDIA_TYPES or (kind(tok) == "block_html" and str(tok.get("raw", "")).strip()):
            return True
        if kind(tok) in ("text", "wikilink") and plain_text([tok]).strip():
            return True
        if has_content(children(tok)):
            return True
    return False


def walk(tokens: Iterable[Token]) -> Iterator[Token]:
    for tok in tokens:
        yield tok
        yield from walk(children(tok))


def map_tokens(tokens: Sequence[Token], fn: Callable[[Token], Token]) -> Sequence[Token]:
    """The token tree with `fn` applied to every token, children first. `fn` returns its token unchanged or
    a new one (it never changes a token in place); only the tokens on the way to a changed one are copied,
    so a tree `fn` leaves alone is returned as it is, and no token of `tokens` is ever modified."""
    out: list[Token] | None = None
    for i, tok in enumerate(tokens):
        new = tok
        kids = tok.get("children")
        if isinstance(kids, list):
            mapped = map_tokens(kids, fn)
            if mapped is not kids:
                new = {**tok, "children": mapped}
        new = fn(new)
        if new is not tok and out is None:
            out = list(tokens[:i])
        if out is not None:
            out.append(new)
    return tokens if out is None else out


class Lines:
    """Line numbers for diagnostics, found honestly in the source text (mistune's AST has none)."""

    def __init__(self, note: ParsedNote) -> None:
        self.lines = note.body.split("\n")
        self.offset = note.body_line
        self.cursor = 0

    def find(self, tokens: list[Token]) -> int | None:
        needle = next(
            (str(t["raw"]).strip()[:40] for t in walk(tokens) if kind(t) == "text" and str(t["raw"]).strip()),
            None,
        )
        if needle is None:
            return None
        for i in range(self.cursor, len(self.lines)):
            if needle in self.lines[i]:
                self.cursor = i + 1  # the next thing looked for is further down: two equal questions differ
                return self.offset + i
        return None
