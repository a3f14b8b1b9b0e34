"""Stage 2: read a note file into frontmatter metadata and a Markdown AST."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from note2anki import markdown as md
from note2anki.config import Config
from note2anki.cornell import CARD_ROLES, heading_key, heading_role
from note2anki.model import Diagnostic, NoteMeta, ParsedNote, Severity, SourceFile, Token
from note2anki.obsidian import strip_hidden
from note2anki.reading import decode, read_note
from note2anki.sections import parse_for_cards

_YAML = YAMLHandler()
#: libyaml's loader when PyYAML was built with it (about 8x faster on a long frontmatter), else the same
#: safe loader in pure Python
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _error(source: SourceFile, line: int | None, code: str, message: str) -> Diagnostic:
    return Diagnostic(source.rel, line, code, Severity.ERROR, message)


#: frontmatter text used for a deck name or a tag is cut to this many characters
MAX_VALUE = 200
#: at most this many values of a frontmatter list are read (YAML aliases can make a small file hold a list
#: of a billion items)
_MAX_ITEMS = 100


def scalar_text(value: Any) -> str | None:
    """Frontmatter values are typed YAML: dates, numbers, booleans and lists (flattened, at most
    _MAX_ITEMS values in all) become text; a mapping is no text."""
    parts: list[str] = []
    budget = [_MAX_ITEMS * 5]  # values looked at, nested lists included

    def walk(v: Any) -> None:
        budget[0] -= 1
        if budget[0] < 0 or len(parts) >= _MAX_ITEMS:
            return
        if isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
                if budget[0] < 0 or len(parts) >= _MAX_ITEMS:
                    return
        elif isinstance(v, (dt.date, dt.datetime)):
            parts.append(v.isoformat())
        elif isinstance(v, bool):
            parts.append("true" if v else "false")
        elif v is not None and not isinstance(v, Mapping):
            text = str(v).strip()
            if text:
                parts.append(text)

    walk(value)
    return ", ".join(parts) or None


def _lookup(meta: Mapping[str, Any], keys: Iterable[str]) -> tuple[str, str] | None:
    """(key as written, text) of the first key in `keys` that has a value."""
    wanted = {heading_key(k) for k in keys}
    for key, value in meta.items():
        if heading_key(str(key)) in wanted:
            text = scalar_text(value)
            if text:
                return str(key), text
    return None


def _frontmatter_tags(meta: Mapping[str, Any]) -> tuple[str, ...]:
    for key, value in meta.items():
        if heading_key(str(key)) == "tags":
            items = value if isinstance(value, list) else str(value or "").split(",")
            return tuple(t for t in (scalar_text(i) for i in items[:_MAX_ITEMS]) if t)
    return ()


_CODE = re.compile(r"N2A\d{3}")


def _ignored_codes(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """The codes of `note2anki-ignore: [N2A202, N2A301]` (or a comma-separated string)."""
    for key, value in meta.items():
        if heading_key(str(key)) == "note2ankiignore":
            return tuple(sorted(set(_CODE.findall(scalar_text(value) or ""))))
    return ()


def _topic_links(blocks: list[Token]) -> tuple[str, ...]:
    """Tag links on the note's first lines: a paragraph made only of `[[...]]` links, possibly under a
    `# Tags` heading."""
    for tok in blocks:
        if md.kind(tok) == "blank_line":
            continue
        if md.kind(tok) == "heading" and heading_key(md.plain_text(md.children(tok))) in ("tags", "태그"):
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


_KEY_LINE = re.compile(r"^\s*(?:-\s+)?[^:#\s][^:#]*:(?:\s|$)")
_SPECIAL_START = re.compile(r"^\s*(?:-\s+)?[^:\s][^:]*:\s+([*&@`%!|>])")
_DATE_LIKE = re.compile(r"^\s*([^:\s][^:]*):\s*(\d{4}-\d{1,2}-\d{1,2}\S*)\s*$")


def _yaml_problem(exc: Exception, split: _Split) -> tuple[int, str]:
    """The line of the frontmatter that is wrong and a hint that fits what is wrong with it."""
    lines = (split.frontmatter or "").split("\n")
    first = split.frontmatter_line
    if not isinstance(exc, yaml.YAMLError):  # a value the YAML constructor rejects, such as a bad date
        for i, text in enumerate(lines):
            m = _DATE_LIKE.match(text)
            if m:
                return (
                    first + i,
                    f'`{m.group(2)}` reads as a date but is not one; quote it (`"{m.group(2)}"`)',
                )
        return first, "fix the YAML between the `---` lines"
    line = _yaml_error_line(exc, split) or first
    index = line - first
    # a `key value` line without its colon: YAML only notices on the next line
    if 0 < index < len(lines) and lines[index - 1].strip() and not _KEY_LINE.match(lines[index - 1]):
        previous = lines[index - 1].strip()
        if not previous.startswith(("-", "#", "[", "{", '"', "'")) and ":" not in previous:
            return line - 1, f"`{previous[:60]}` has no `:`; write it as `key: value`"
    text = lines[index] if 0 <= index < len(lines) else ""
    special = _SPECIAL_START.match(text)
    if special:
        return (
            line,
            f'a value starting with `{special.group(1)}` must be quoted (`key: "{special.group(1)}…"`)',
        )
    if text.count(": ") > 1 or (text.rstrip().endswith(":") and text.count(":") > 1):
        return line, 'the value has a `: ` in it; quote the value (`key: "a: b"`)'
    if "\t" in text[: len(text) - len(text.lstrip())]:
        return line, "YAML does not allow tabs for indentation; indent with spaces"
    return line, "fix the YAML between the `---` lines (quote values that contain `: ` or start with `#`)"


def parse(
    source: SourceFile, config: Config, *, whole: bool = False, data: bytes | Diagnostic | None = None
) -> tuple[ParsedNote | None, list[Diagnostic]]:
    """Read and parse one note. Only the sections that can hold cards are parsed (sections.py) unless
    `whole`, which parses everything (the reference the section-only parse is tested against). `data` is the
    file's bytes (or why they could not be read) when the caller already read them."""
    raw = read_note(source, config.max_note_mb * 1_000_000) if data is None else data
    if isinstance(raw, Diagnostic):
        return None, [raw]
    text, problems = decode(source, raw)
    if text is None:
        return None, problems
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    split = split_frontmatter(text)
    meta: Mapping[str, Any] = {}
    if split.frontmatter is not None:
        try:
            loaded = _YAML.load(split.frontmatter, Loader=_LOADER)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            # not only YAML syntax: `date: 2024-13-45` fails in the date constructor, deep nesting in Python
            reason = str(getattr(exc, "problem", None) or exc).strip() or type(exc).__name__
            line, hint = _yaml_problem(exc, split)
            return None, [
                *problems,
                _error(source, line, "N2A003", f"the frontmatter is not valid YAML ({reason[:200]}); {hint}"),
            ]
        if isinstance(loaded, Mapping):
            meta = loaded
        elif loaded is not None:
            return None, [
                *problems,
                _error(
                    source,
                    split.frontmatter_line,
                    "N2A004",
                    "the frontmatter is not a set of `key: value` lines; rewrite it as such",
                ),
            ]
    hidden = strip_hidden(split.body, functools.partial(_is_template_heading, config))
    body, unclosed = hidden.text, hidden.unclosed
    for opened, heading in hidden.cut:
        problems.append(
            Diagnostic(
                source.rel,
                split.body_line + opened,
                "N2A210",
                Severity.WARNING,
                f"a `%%` here opens an Obsidian comment that would hide everything down to the template "
                f"heading on line {split.body_line + heading} (Obsidian hides it all); note2anki ends the "
                "comment before that heading. Close it with another `%%`, or write a literal `%%` in `code`",
            )
        )
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

    def check_limits(chunk: str, first_line: int) -> None:
        for line, message in limits(chunk):
            problems.append(
                Diagnostic(
                    source.rel, split.body_line + first_line + line, "N2A207", Severity.WARNING, message
                )
            )

    if whole:
        check_limits(body, 0)
        blocks = md.parse_blocks(body)
    else:
        blocks = parse_for_cards(body, functools.partial(heading_role, config), CARD_ROLES, check_limits)
    subject = _value(source, split, _lookup(meta, config.subject_keys), problems)
    textbook = _value(source, split, _lookup(meta, config.textbook_keys), problems)
    note_meta = NoteMeta(
        subject=_nfc(subject),
        textbook=_nfc(textbook),
        tags=tuple(t[:MAX_VALUE] for t in _frontmatter_tags(meta)),
        topics=_topic_links(blocks),
        ignore=_ignored_codes(meta),
    )
    return ParsedNote(source, note_meta, split.body, split.body_line, tuple(blocks)), problems


_HEADING_LINE = re.compile(r" {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")


def _is_template_heading(config: Config, line: str) -> bool:
    """True for a line that is a heading of the Cornell template (cue, summary, main notes, review)."""
    if "#" not in line[:4]:
        return False
    m = _HEADING_LINE.match(line)
    return m is not None and heading_role(config, m.group(1)) is not None


def _value(
    source: SourceFile, split: _Split, found: tuple[str, str] | None, problems: list[Diagnostic]
) -> str | None:
    """A frontmatter value for a deck name or tag, cut (with a warning) when it is absurdly long."""
    if found is None:
        return None
    key, text = found
    if len(text) <= MAX_VALUE:
        return text
    lines = (split.frontmatter or "").split("\n")
    at = next((i for i, line in enumerate(lines) if line.lstrip(" \"'").startswith(key)), 0)
    problems.append(
        Diagnostic(
            source.rel,
            split.frontmatter_line + at,
            "N2A207",
            Severity.WARNING,
            f"the value of `{key[:40]}` is {len(text):,} characters long; only the first {MAX_VALUE} are "
            "used for the deck name and tags (shorten it)",
        )
    )
    return text[:MAX_VALUE].strip()


#: mistune reads lists and quotes this deep; deeper levels become plain text
MAX_NESTING = 20
#: a line this long is still read, but slowly: it is reported
MAX_LINE = 100_000
_LONG_LINE = re.compile(rf"[^\n]{{{MAX_LINE}}}")
_DEEP = re.compile(
    rf"^(?:[ \t]{{{4 * MAX_NESTING}}}|[ \t]*(?:>[ \t]*|(?:[-*+]|\d{{1,9}}[.)])[ \t]+){{{MAX_NESTING}}})",
    re.MULTILINE,
)


def limits(text: str) -> list[tuple[int, str]]:
    """(0-based line, message) for each line of `text` past the limits on nesting and line length."""
    found = []
    m = _DEEP.search(text)
    if m is not None:
        found.append(
            (
                text.count("\n", 0, m.start()),
                f"lists or quotes nested more than {MAX_NESTING} levels deep start here; the deeper levels "
                "are shown as plain text (flatten the nesting)",
            )
        )
    m = _LONG_LINE.search(text)
    if m is not None:
        end = text.find("\n", m.start())
        length = (len(text) if end < 0 else end) - text.rfind("\n", 0, m.start()) - 1
        found.append(
            (
                text.count("\n", 0, m.start()),
                f"this line is {length:,} characters long; it is read, but slowly (over {MAX_LINE:,} "
                "characters): split it into paragraphs",
            )
        )
    return found


def _nfc(text: str | None) -> str | None:
    return unicodedata.normalize("NFC", text) if text else None
