"""Tokens to card HTML: mistune's HTML renderer plus Obsidian's tokens, MathJax and Pygments.

The output is not trusted yet: render.sanitize cleans it. Classes used here are styled by `card.css`.
"""

from __future__ import annotations

import functools
import html
import re

import mistune
from mistune.util import striptags
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)
_SIZE = re.compile(r"(\d{1,5})(?:x(\d{1,5}))?")


@functools.lru_cache(maxsize=256)
def _lexer(name: str) -> Lexer | None:
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def size_attrs(label: str) -> str:
    """` width="300"` for Obsidian's `|300`, ` width="300" height="200"` for `|300x200`, else empty."""
    m = _SIZE.fullmatch(label.strip())
    if m is None:
        return ""
    return f' width="{m.group(1)}"' + (f' height="{m.group(2)}"' if m.group(2) else "")


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


class CardHTMLRenderer(mistune.HTMLRenderer):
    def __init__(self, escape: bool = True, breaks: bool = False) -> None:
        super().__init__(escape=escape)
        self.breaks = breaks

    def softbreak(self) -> str:
        """A newline inside a paragraph: a line break as Obsidian shows it, unless strict line breaks."""
        return "<br />\n" if self.breaks else "\n"

    def block_code(self, code: str, info: str | None = None) -> str:
        """Fenced code highlighted by Pygments (classes only, colours come from the stylesheet); a language
        Pygments does not know, or none, stays plain text in the same box."""
        lang = info.split(None, 1)[0].strip() if info and info.strip() else ""
        lexer = _lexer(lang.lower()) if lang else None
        body = highlight(code, lexer, _FORMATTER) if lexer is not None else _escape(code)
        css = f' class="language-{_escape(lang)}"' if lang else ""
        return f'<pre class="n2a-code"><code{css}>{body}</code></pre>\n'

    def image(self, text: str, url: str, title: str | None = None) -> str:
        """`![alt|300](file.png)`: Obsidian's size in the alt text, as for embeds."""
        alt = striptags(text)
        head, _, label = alt.rpartition("|")
        dims = size_attrs(label) if head or label else ""
        if dims:
            alt = head
        tip = f' title="{_escape(title)}"' if title else ""
        return f'<img src="{self.safe_url(url)}" alt="{alt}"{dims}{tip}>'

    # --- Obsidian ---------------------------------------------------------------------------------

    def wikilink(self, target: str, label: str, href: str = "") -> str:
        text = label or _link_text(target)
        if href:
            return f'<a class="n2a-link" href="{_escape(href)}">{_escape(text)}</a>'
        return f'<span class="n2a-link">{_escape(text)}</span>'

    def embed(self, target: str, label: str, src: str = "", href: str = "", missing: bool = False) -> str:
        """Embeds reach the renderer after render has resolved them: `src` for a packaged image, `href` for
        an embedded note (shown as a link to it), `missing` for an image that is not in the vault."""
        if src:
            return f'<img src="{_escape(src)}" alt="{_escape(target)}"{size_attrs(label)}>'
        if href:
            text = label or _link_text(target)
            return f'<a class="n2a-embed" href="{_escape(href)}">{_escape(text)}</a>'
        css = "n2a-missing" if missing else "n2a-embed"
        return f'<span class="{css}">{_escape(label or target)}</span>'

    def cloze(self, text: str, n: int) -> str:
        """`{{cN::…}}`; `::` and `}}` inside would end the hidden text early, so they are split."""
        hidden = text.replace("::", ":\u200b:").replace("}}", "} }")
        return f"{{{{c{n}::{hidden}}}}}"

    def inline_math(self, text: str, display: bool = False) -> str:
        # MathJax as Anki's editor writes it; `<`, `&` escaped, MathJax reads the text content
        tex = _escape(text)
        return f"\\[{tex}\\]" if display else f"\\({tex}\\)"

    def block_math(self, text: str) -> str:
        return f'<div class="n2a-math">\\[{_escape(text)}\\]</div>\n'

    def callout(self, text: str, kind: str, fold: str = "") -> str:
        css = f"callout callout-{_escape(kind)}"
        if fold:  # foldable: a <details> box, open when the author wrote `+`
            opened = " open" if fold == "+" else ""
            return f'<details class="{css}"{opened}>{text}</details>\n'
        return f'<div class="{css}">{text}</div>\n'

    def callout_title(self, text: str, kind: str, fold: str = "") -> str:
        tag = "summary" if fold else "div"
        return f'<{tag} class="callout-title">{text or _escape(kind.capitalize())}</{tag}>'

    def callout_body(self, text: str) -> str:
        return f'<div class="callout-body">{text.strip()}</div>' if text.strip() else ""


def _link_text(target: str) -> str:
    """`Folder/Note#Heading` reads as `Note › Heading`; `Note#^block` as `Note`."""
    page, _, heading = target.partition("#")
    name = page.rsplit("/", 1)[-1] or page
    heading = heading.strip()
    if heading and not heading.startswith("^"):
        return f"{name} › {heading}" if name else heading
    return name or target
