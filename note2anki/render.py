"""Stage 4: cards to Anki fields (sanitised HTML), tags, deck, and the media files they show."""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

import nh3

from note2anki import markdown as md
from note2anki.cloze import is_cloze_term
from note2anki.config import Config
from note2anki.media import _DRIVE, IMAGE_SUFFIXES, MediaIndex, outside
from note2anki.model import (
    Card,
    CardKind,
    Diagnostic,
    MediaFile,
    NoteMeta,
    RenderedCard,
    Severity,
    Token,
    Vault,
)

# What may reach a field (see README "What reaches a card"): nh3's default tags and attributes, plus `class`
# (the stylesheet styles callouts, code and links by class), `open` on <details> (foldable callouts) and
# `text-align` in table cells. Everything else (script, style, iframe, event handlers, javascript: and
# data: URLs) is removed.
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"class"},
    "details": {"open"},
    "th": {"style", *nh3.ALLOWED_ATTRIBUTES["th"]},
    "td": {"style", *nh3.ALLOWED_ATTRIBUTES["td"]},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "obsidian"})
# Characters Anki cannot store in a field (0x1f separates fields) or that are invisible junk.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|[\ud800-\udfff]")


_BLOCK_TAG = re.compile(r"</?(?:p|li|ul|ol|br|div|tr|td|th|h\d|pre|table|thead|tbody|blockquote)\b[^>]*>")
_TAG = re.compile(r"<[^>]+>")


def html_to_text(fragment: str) -> str:
    """A field's HTML as one line of plain text (for listings and the state file)."""
    return " ".join(html.unescape(_TAG.sub("", _BLOCK_TAG.sub(" ", fragment))).split())


# Built once: configuring a sanitiser costs more than running it on a field.
_CLEANER = nh3.Cleaner(
    attributes=_ALLOWED_ATTRIBUTES,
    filter_style_properties={"text-align"},
    url_schemes=set(URL_SCHEMES),
    link_rel=None,
)


#: an <img> in raw HTML whose source is on the web (`https://…`, `//host/…`): Anki would fetch it
_REMOTE_IMG = re.compile(r'<img\b[^>]*?\ssrc="(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)[^"]*"[^>]*>')
_SRC = re.compile(r'\ssrc="[^"]*"')


def sanitize(fragment: str, remote_images: bool = False) -> str:
    """The fragment with only allowed tags, attributes and URL schemes (see _ALLOWED_ATTRIBUTES), without
    remote image loads (unless `remote_images`) and with Anki's `[sound:` tags made inert."""
    out = _CLEANER.clean(fragment)
    if not remote_images and "<img" in out:  # nh3 writes attributes as name="value": one form to match
        out = _REMOTE_IMG.sub(lambda m: _SRC.sub("", m.group()), out)
    if "[sound:" in out:  # Anki plays `[sound:file]` in any field; text about it stays text
        out = out.replace("[sound:", "[sound&#58;")
    return clean_text(out)


def clean_text(text: str) -> str:
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def tag_name(text: str) -> str:
    """Anki tags are space-separated: NFC, whitespace runs become `_`, no leading `#`."""
    return "_".join(clean_text(text).lstrip("#").split())


def obsidian_url(vault: str, file: str) -> str:
    """A link that opens `file` (a vault path or a note name, `#Heading` allowed) in Obsidian."""
    return f"obsidian://open?vault={quote(vault, safe='')}&file={quote(file, safe='')}"


def vault_name(vault: Vault, config: Config) -> str:
    return config.obsidian_vault or vault.name


#: the src of an <img> in raw HTML: (everything before it, the quote, the value)
_RAW_IMG_SRC = re.compile(r"""(<img\b[^>]*?\s)src=(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


class _Renderer:
    def __init__(
        self,
        card: Card,
        media: MediaIndex,
        vault: str,
        lookups: list[tuple[str, str]],
        remote_images: bool = False,
        breaks: bool = False,
    ) -> None:
        self.card = card
        self.breaks = breaks
        self.remote_images = remote_images
        self.index = media
        self.vault = vault
        self.media: dict[str, MediaFile] = {}
        self.diagnostics: list[Diagnostic] = []
        self.lookups = lookups

    def warn(self, code: str, message: str) -> None:
        rel = self.card.note.source.rel
        self.diagnostics.append(Diagnostic(rel, self.card.line, code, Severity.WARNING, message))

    def resolve(self, target: str) -> str | None:
        """The deck media name for a local file reference, or None (warned) when it cannot be packaged:
        not found, not an image, or outside the vault (an absolute path, `..` past the vault's root, a
        `file://` URL, a link to a file outside), which is never read."""
        note_rel = self.card.note.source.rel
        where = outside(target, note_rel)
        rel = self.index.from_root(target) if where else self.index.find(target, note_rel)
        if rel is not None:
            where = ""
        found = self.index.media(rel) if rel is not None else None
        self.lookups.append((target, rel if found is not None and rel is not None else ""))
        if found is not None:
            self.media[found.name] = found
            return found.name
        if rel is not None and rel in self.index.outside:
            where = "a link (symlink) to a file outside the vault"
        if where:
            self.warn(
                "N2A302",
                f"“{target}” points outside the vault ({where}); note2anki never reads or packages such "
                "files, so the card is kept without it (copy the file into the vault and link that)",
            )
        else:
            self.warn(
                "N2A301",
                f"image “{target}” not found in the vault; the card is kept without it "
                "(add the file to the vault or fix the name)",
            )
        return None

    def _raw_images(self, raw: str) -> str:
        """`<img src="local.png">` in pasted HTML: a vault image is packaged like any other (its src becomes
        the deck's name for it); one that is not found loses its src, with the same warning."""

        def local(m: re.Match[str]) -> str:
            src = html.unescape(m.group(3))
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|//", src) and not src.lower().startswith("file:"):
                return m.group(0)  # on the web (sanitize drops its load) or another scheme
            name = self.resolve(unquote(src))
            return f"{m.group(1)}src={m.group(2)}{html.escape(name)}{m.group(2)}" if name else m.group(1)

        return _RAW_IMG_SRC.sub(local, raw)

    def _token(self, tok: Token) -> Token:
        t = md.kind(tok)
        if t in ("block_html", "inline_html") and "<img" in str(tok.get("raw", "")).lower():
            return {**tok, "raw": self._raw_images(str(tok["raw"]))}
        if t == "embed":
            target = str(md.attr(tok, "target", ""))
            suffix = PurePosixPath(target.split("#", 1)[0]).suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                name = self.resolve(target)
                attrs = {**tok["attrs"], "src": name} if name else {**tok["attrs"], "missing": True}
                return {**tok, "attrs": attrs}
            if suffix in ("", ".md"):  # another note (or a heading of it): a link that opens it
                return {**tok, "attrs": {**tok["attrs"], "href": obsidian_url(self.vault, target)}}
        elif t == "wikilink":
            target = str(md.attr(tok, "target", ""))
            if target and not target.startswith("#"):
                return {**tok, "attrs": {**tok["attrs"], "href": obsidian_url(self.vault, target)}}
        elif t == "image":
            return self._image(tok)
        return tok

    def _image(self, tok: Token) -> Token:
        """`![alt](url)`: a vault image is packaged; a web image is a link unless `remote_images`; pasted
        data and anything else become the alt text."""
        url = str(md.attr(tok, "url", ""))
        alt = {"type": "text", "raw": md.plain_text(md.children(tok)) or url}
        scheme = urlsplit(url).scheme.lower() if not _DRIVE.match(url) else ""
        if scheme in ("http", "https") or url.startswith("//"):
            if self.remote_images:
                return tok
            self.warn(
                "N2A303",
                f"image “{url[:200]}” is on the web; it is shown as a link, because Anki would fetch it "
                "each time the card is shown (set `remote_images = true` in note2anki.toml to load it)",
            )
            return {"type": "link", "attrs": {"url": url}, "children": md.children(tok) or [alt]}
        if scheme == "data":
            self.warn(
                "N2A303",
                "an image pasted as `data:` text is not shown; save it as a file in the vault and link that",
            )
            return alt
        if scheme and scheme != "file":
            return alt  # javascript:, mailto: ... never an image
        target = unquote(url)
        if not scheme and PurePosixPath(target.split("#", 1)[0]).suffix.lower() not in IMAGE_SUFFIXES:
            self.warn(
                "N2A301",
                f"“{target[:200]}” is not an image note2anki can show ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                "the card keeps its text (link it with [text](…) instead)",
            )
            return alt
        name = self.resolve(target)
        if name is None:
            return alt
        return {**tok, "attrs": {**tok["attrs"], "url": name}}

    def html(self, tokens: Sequence[Token]) -> str:
        html = md.to_html(md.map_tokens(tokens, self._token), self.breaks)
        return sanitize(html, self.remote_images).strip()

    def fields(self) -> tuple[str, ...]:
        """The note type's fields, in its order (notetypes.py: CUE_MODEL, SUMMARY_MODEL, CLOZE_MODEL)."""
        card, note = self.card, self.card.note
        subject, textbook, title, source_link = _note_fields(note.source.rel, note.meta, self.vault)
        if card.kind is CardKind.CUE:
            assert card.question is not None and card.answer is not None
            question, answer = self.html(card.question.tokens), self.html(card.answer.tokens)
            return (question, answer, subject, textbook, title, source_link)
        if card.kind is CardKind.SUMMARY:
            items = "".join(f"<li>{self.html(item.tokens)}</li>" for item in card.items)
            return (title, f"<ul>{items}</ul>", subject, textbook, source_link)
        text = self.html(_cloze_tokens(card.items[0].tokens))
        return (text, subject, textbook, title, source_link)


@functools.lru_cache(maxsize=64)
def _note_fields(rel: str, meta: NoteMeta, vault: str) -> tuple[str, str, str, str]:
    """Subject, textbook, title and the link back to the note: the same for every card of a note, and made
    once, so that a big vault's cards share these strings instead of each holding a copy."""
    subject, textbook = (
        clean_text(html.escape(meta.subject or "")),
        clean_text(html.escape(meta.textbook or "")),
    )
    title = clean_text(html.escape(PurePosixPath(rel).stem))
    link = obsidian_url(vault, rel.removesuffix(".md"))
    return (
        subject,
        textbook,
        title,
        clean_text(f'<a class="n2a-open" href="{html.escape(link)}">{html.escape(rel)}</a>'),
    )


def _cloze_tokens(tokens: Iterable[Token]) -> list[Token]:
    """The item with each marked term (outermost `**bold**` / `==mark==` with text) wrapped in a cloze
    token numbered in reading order: one card per term."""
    count = 0

    def walk(tokens: Iterable[Token]) -> list[Token]:
        nonlocal count
        out: list[Token] = []
        for tok in tokens:
            if is_cloze_term(tok):
                count += 1
                out.append({"type": "cloze", "attrs": {"n": count}, "children": [tok]})
            elif md.children(tok):
                out.append({**tok, "children": walk(md.children(tok))})
            else:
                out.append(tok)
        return out

    return walk(tokens)


def _values(meta: NoteMeta) -> dict[str, str]:
    return {"subject": meta.subject or "", "textbook": meta.textbook or ""}


def deck_name(meta: NoteMeta, config: Config, vault: Vault) -> str:
    return _deck_name(meta, config, vault.name)


@functools.lru_cache(maxsize=1024)  # every card of a note asks the same question
def _deck_name(meta: NoteMeta, config: Config, fallback: str) -> str:
    values = _values(meta)
    parts = []
    for part in config.deck.split("::"):
        names = [f for _, f, _, _ in string.Formatter().parse(part) if f]
        if names and not any(values.get(n) for n in names):
            continue
        text = part.format_map(values).strip()
        if text:
            parts.append(clean_text(text))
    return "::".join(parts) or config.default_deck or fallback


@functools.lru_cache(maxsize=1024)
def tags(meta: NoteMeta, config: Config) -> tuple[str, ...]:
    values = _values(meta)
    out: list[str] = []
    for template in config.tags:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if all(values.get(n) for n in names):
            out.append(tag_name(template.format_map(values)))
    if not (meta.subject or meta.textbook):
        out.extend(tag_name(f"topic::{t}") for t in meta.topics)
    out.extend(tag_name(t) for t in meta.tags)
    return tuple(dict.fromkeys(t for t in out if t))


EXCERPT = 120  # characters of the answer kept in the state file, to recognise a reworded card
_VAULT_PARAM = re.compile(r"(obsidian://open\?vault=)[^&\"]*")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def identity_material(
    kind: CardKind, fields: tuple[str, ...], deck: str, tags: tuple[str, ...]
) -> dict[str, str]:
    """A card's identity material (see RenderedCard): the hashes of its content and of its answer, and the
    start of its answer. The vault name in `obsidian://` links does not count as content: it is the
    checkout's folder name by default, and a clone under another name (a CI runner) must not change the
    state file.

    Each hash is of the JSON text `json.dumps(parts, ensure_ascii=False)` gives: for the content, parts
    `[kind, fields, tags, deck]`; for the answer, `[answer]`. That text is put together here from each
    string's JSON encoding, made once (the answer's serves both hashes, and the fields every card of a
    note shares are encoded once for all of them): the same bytes, half the work."""
    at = 0 if kind is CardKind.CLOZE else 1
    answer = fields[at]
    encoded = [
        _json_string(f) if _VAULT_LINK not in f else _json_shared(_VAULT_PARAM.sub(r"\1", f)) for f in fields
    ]
    listed = ", ".join(_json_shared(t) for t in tags)
    content = f"[{_json_shared(kind.value)}, [{', '.join(encoded)}], [{listed}], {_json_shared(deck)}]"
    answer_json = encoded[at] if _VAULT_LINK not in answer else _json_string(answer)
    return {
        "content_hash": _sha(content),
        "answer_hash": _sha(f"[{answer_json}]"),
        "excerpt": html_to_text(answer)[:EXCERPT],
    }


_VAULT_LINK = "obsidian://open?vault="
#: json.dumps's encoder of a string when ensure_ascii=False (the C one)
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _json_shared(text: str) -> str:
    """The JSON encoding of a string that every card of a note has (its deck, tags, link), made once; a
    long one (an answer with a link in it) is no one's to share, and is not kept."""
    return _json_remembered(text) if len(text) <= _SHARED_MAX else _json_string(text)


_SHARED_MAX = 500


@functools.lru_cache(maxsize=4096)
def _json_remembered(text: str) -> str:
    return _json_string(text)


def render(
    card: Card, vault: Vault, config: Config, media: MediaIndex, lookups: list[tuple[str, str]] | None = None
) -> tuple[RenderedCard, list[Diagnostic]]:
    """The card's fields, deck, tags and media. Every image lookup is appended to `lookups` as (link as
    written, vault path found or "") so a cached card can be checked against the vault later."""
    r = _Renderer(
        card,
        media,
        vault_name(vault, config),
        [] if lookups is None else lookups,
        config.remote_images,
        vault.settings.breaks,
    )
    meta = card.note.meta
    fields = tuple(clean_text(f) for f in r.fields())
    deck, card_tags = deck_name(meta, config, vault), tags(meta, config)
    rendered = RenderedCard(
        kind=card.kind,
        source=card.note.source.rel,
        line=card.line,
        prompt=clean_text(card.prompt),
        fields=fields,
        deck=deck,
        tags=card_tags,
        subject=meta.subject,
        media=tuple(sorted(r.media.values(), key=lambda m: m.name)),
        **identity_material(card.kind, fields, deck, card_tags),  # made once, with the card
    )
    return rendered, r.diagnostics
