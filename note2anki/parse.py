"""Stage 2: read a note file into frontmatter metadata and a Markdown AST."""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from note2anki import markdown as md
from note2anki.config import Config
from note2anki.extract import CARD_ROLES, heading_role
from note2anki.model import Diagnostic, NoteMeta, ParsedNote, Severity, SourceFile, Token
from note2anki.obsidian import strip_hidden
from note2anki.sections import parse_for_cards

_YAML = YAMLHandler()
#: libyaml's loader when PyYAML was built with it (about 8x faster on a long frontmatter), else the same
#: safe loader in pure Python
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _error(source: SourceFile, line: int | None, code: str, message: str) -> Diagnostic:
    return Diagnostic(source.rel, line, code, Severity.ERROR, message)


def scalar_text(value: Any) -> str | None:
    """Frontmatter values are typed YAML: dates, numbers, booleans and lists all become text."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        parts = [scalar_text(v) for v in value]
        return ", ".join(p for p in parts if p) or None
    text = str(value).strip()
    return text or None


def _lookup(meta: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    wanted = {md.heading_key(k) for k in keys}
    for key, value in meta.items():
        if md.heading_key(str(key)) in wanted:
            text = scalar_text(value)
            if text:
                return text
    return None


def _frontmatter_tags(meta: Mapping[str, Any]) -> tuple[str, ...]:
    for key, value in meta.items():
        if md.heading_key(str(key)) == "tags":
            items = value if isinstance(value, list) else str(value or "").split(",")
            return tuple(t for t in (scalar_text(i) for i in items) if t)
    return ()


def _topic_links(blocks: list[Token]) -> tuple[str, ...]:
    """Tag links on the note's first lines: a paragraph made only of `[[...]]` links, possibly under a
    `# Tags` heading."""
    for tok in blocks:
        if md.kind(tok) == "blank_line":
            continue
        if md.kind(tok) == "heading" and md.heading_key(md.plain_text(md.children(tok))) in ("tags", "태그"):
            continue
        if md.kind(tok) != "paragraph":
            return ()
        inline = [t for t in md.children(tok) if not (md.kind(t) == "text" and not t["raw"].strip())]
        inline = [t for t in inline if md.kind(t) != "softbreak"]
        if inline and all(md.kind(t) == "wikilink" for t in inline):
            return tuple(md.attr(t, "label") or md.attr(t, "target").rsplit("/", 1)[-1] for t in inline)
        return ()
    return ()


@dataclass(frozen=True)
class _Split:
    frontmatter: str | None
    frontmatter_line: int  # 1-based line of the file where the YAML starts
    body: str
    body_line: int  # 1-based line of the file where the body starts


def split_frontmatter(text: str) -> _Split:
    """Separate the `---` fenced YAML from the body, keeping track of line numbers."""
    boundary = _YAML.FM_BOUNDARY
    start = boundary.match(text)
    end = boundary.search(text, start.end()) if start else None
    if start is None or end is None:  # no frontmatter, or an opening `---` never closed
        return _Split(None, 1, text, 1)
    line = functools.partial(text.count, "\n", 0)
    return _Split(
        text[start.end() : end.start()], line(start.end()) + 1, text[end.end() :], line(end.end()) + 1
    )


def _yaml_error_line(exc: yaml.YAMLError, split: _Split) -> int | None:
    # Where the broken construct began (an unclosed `[`) says more than where the parser gave up; a parser
    # that gave up at the end of the YAML points at its last line, not at the closing `---`.
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    last = split.frontmatter_line + max(len((split.frontmatter or "").rstrip("\n").split("\n")) - 1, 0)
    return min(int(mark.line) + split.frontmatter_line, last)


def parse(
    source: SourceFile, config: Config, *, whole: bool = False, data: bytes | None = None
) -> tuple[ParsedNote | None, list[Diagnostic]]:
    """Read and parse one note. Only the sections that can hold cards are parsed (sections.py) unless
    `whole`, which parses everything (the reference the section-only parse is tested against). `data` is the
    file's bytes when the caller already read them."""
    try:
        raw = source.path.read_bytes() if data is None else data
    except OSError as exc:
        return None, [
            _error(source, None, "N2A001", f"cannot read the file ({exc.strerror}); check its permissions")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, [
            _error(source, line, "N2A002", "the file is not valid UTF-8; re-save it as UTF-8 in your editor")
        ]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    split = split_frontmatter(text)
    meta: Mapping[str, Any] = {}
    if split.frontmatter is not None:
        try:
            loaded = _YAML.load(split.frontmatter, Loader=_LOADER)
        except yaml.YAMLError as exc:
            reason = str(getattr(exc, "problem", None) or exc).strip()
            return None, [
                _error(
                    source,
                    _yaml_error_line(exc, split),
                    "N2A003",
                    f"the frontmatter is not valid YAML ({reason}); fix the YAML between the `---` lines "
                    "(quote values that contain `:` or `#`)",
                )
            ]
        if isinstance(loaded, Mapping):
            meta = loaded
        elif loaded is not None:
            return None, [
                _error(
                    source,
                    split.frontmatter_line,
                    "N2A004",
                    "the frontmatter is not a set of `key: value` lines; rewrite it as such",
                )
            ]
    body, unclosed = strip_hidden(split.body)
    problems: list[Diagnostic] = []
    if unclosed is not None:
        problems.append(
            Diagnostic(
                source.rel,
                split.body_line + unclosed,
                "N2A206",
                Severity.WARNING,
                "a `%%` comment opens here and is never closed, so the rest of the note is hidden (as in "
                "Obsidian); close it with another `%%`",
            )
        )
    body = md.normalize_indentation(body)
    if whole:
        blocks = md.parse_blocks(body)
    else:
        blocks = parse_for_cards(body, functools.partial(heading_role, config), CARD_ROLES)
    note_meta = NoteMeta(
        subject=_nfc(_lookup(meta, config.subject_keys)),
        textbook=_nfc(_lookup(meta, config.textbook_keys)),
        tags=_frontmatter_tags(meta),
        topics=_topic_links(blocks),
    )
    return ParsedNote(source, note_meta, split.body, split.body_line, tuple(blocks)), problems


def _nfc(text: str | None) -> str | None:
    return unicodedata.normalize("NFC", text) if text else None
