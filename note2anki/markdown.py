"""The one place that knows mistune: the plugin list, Obsidian syntax, and helpers over its tokens.

`ast_parser()` and `html_renderer()` are built from the same plugin list, so a token the parser can
produce is a token the renderer can draw.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from re import Match
from typing import Any, cast

import mistune
from mistune.core import BlockState, InlineState
from mistune.inline_parser import InlineParser

from note2anki.model import Token

# Obsidian links and embeds: [[target]], [[target|label]], [[target\|label]] (escaped inside tables),
# ![[file.png]], ![[file.png|300]], ![[Note#Heading]].
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


def _wikilink_plugin(md: mistune.Markdown) -> None:
    md.inline.register("wikilink", WIKILINK_PATTERN, _parse_wikilink, before="link")
    md.inline.register("dunder", DUNDER_PATTERN, _parse_dunder, before="emphasis")
    if md.renderer is not None and md.renderer.NAME == "html":
        md.renderer.register("wikilink", _render_wikilink)
        md.renderer.register("embed", _render_embed)


def _render_wikilink(renderer: Any, target: str, label: str) -> str:
    text = label or target.split("#", 1)[0].rsplit("/", 1)[-1] or target
    return f'<span class="n2a-link">{html.escape(text)}</span>'


def _render_embed(renderer: Any, target: str, label: str, src: str = "", missing: bool = False) -> str:
    """Embeds reach the renderer after render.resolve_media has filled `src` for files it packaged."""
    if src:
        size = ""
        m = re.fullmatch(r"(\d+)(?:x(\d+))?", label)
        if m:
            size = f' width="{m.group(1)}"' + (f' height="{m.group(2)}"' if m.group(2) else "")
        return f'<img src="{html.escape(src)}" alt="{html.escape(target)}"{size}>'
    css = "n2a-missing" if missing else "n2a-embed"
    return f'<span class="{css}">{html.escape(label or target)}</span>'


_CALLOUT = re.compile(r"\A\s*<p>\[!([\w-]+)\]([+-]?)[ \t]*([^\n<]*)(?:\n|</p>\n?)", re.IGNORECASE)


class CardHTMLRenderer(mistune.HTMLRenderer):
    """mistune's HTML renderer plus Obsidian callouts (`> [!tip] Title`, foldable `[!tip]-`) as boxes."""

    def block_quote(self, text: str) -> str:
        m = _CALLOUT.match(text)
        if m is None:
            return super().block_quote(text)
        kind, title = m.group(1).lower(), m.group(3).strip() or m.group(1).capitalize()
        body = text[m.end() :].strip()
        if body and not body.startswith("<"):  # the title paragraph went on over more lines
            body = "<p>" + body if body.endswith("</p>") else f"<p>{body}</p>"
        return (
            f'<div class="callout callout-{html.escape(kind)}"><div class="callout-title">{title}</div>'
            f'<div class="callout-body">{body}</div></div>\n'
        )


PLUGINS: tuple[Any, ...] = (
    "table",
    "mistune.plugins.table.table_in_list",
    "mistune.plugins.table.table_in_quote",
    "strikethrough",
    "mark",
    _wikilink_plugin,
)


@functools.lru_cache(maxsize=1)
def ast_parser() -> mistune.Markdown:
    return mistune.create_markdown(renderer=None, plugins=list(PLUGINS))


@functools.lru_cache(maxsize=1)
def html_renderer() -> mistune.HTMLRenderer:
    # escape=False keeps the HTML students paste from Notion (<br>, <details>); render.sanitize cleans it.
    md = mistune.create_markdown(renderer=CardHTMLRenderer(escape=False), plugins=list(PLUGINS))
    renderer = md.renderer
    assert isinstance(renderer, mistune.HTMLRenderer)
    return renderer


_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_TAB_THEN_SPACES = re.compile(r"^(\t+) +(?=\S)")


def normalize_indentation(text: str) -> str:
    """Notion exports indent answers with a tab followed by spaces (`\\t    text`); CommonMark would read the
    spaces as an indented code block. Outside fenced code, spaces after leading tabs are dropped, so the tab
    alone sets the nesting. Lines are never added or removed, so line numbers stay true."""
    if "\t " not in text:
        return text
    lines = text.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None:
            lines[i] = _TAB_THEN_SPACES.sub(r"\1", line)
    return "\n".join(lines)


def parse_blocks(text: str) -> list[Token]:
    tokens = ast_parser()(text)
    assert isinstance(tokens, list)
    return cast("list[Token]", tokens)


def to_html(tokens: Iterable[Token]) -> str:
    return html_renderer().render_tokens(tokens, BlockState())  # type: ignore[arg-type]


# --- reading tokens -------------------------------------------------------------------------------


def kind(token: Token) -> str:
    return str(token.get("type", ""))


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


_MEDIA_TYPES = frozenset({"image", "embed", "block_code", "codespan", "table"})


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


def map_tokens(tokens: Iterable[Token], fn: Callable[[Token], Token]) -> list[Token]:
    """A copy of the token tree with `fn` applied to every token, children first."""
    out = []
    for tok in tokens:
        new = dict(tok)
        if isinstance(tok.get("children"), list):
            new["children"] = map_tokens(tok["children"], fn)
        out.append(fn(new))
    return out


def heading_key(text: str) -> str:
    """Compare headings and labels loosely: `### ✅ **핵심 요약** ` and `핵심요약` have the same key.

    Keeps letters and digits only (case-folded, NFKC), so emoji, symbols, punctuation, emphasis
    markers and spacing never decide whether a heading is recognised.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")
