"""Stage 3: find the Cornell sections of a note and turn them into cards.

Cue section: each top-level bullet is a question and everything nested under it is the answer; sub-headings
and `**질문:**`/`**답변:**` paragraphs are questions too. Summary section: each top-level bullet (toggle and
label bullets unwrapped) is one item of the note's summary card, and an item with **bold** or ==highlighted==
terms is also a cloze card. No per-card markers are needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from note2anki import cornell
from note2anki import markdown as md
from note2anki.cloze import clozes
from note2anki.config import Config
from note2anki.cornell import CUE, SUMMARY, Keys, heading_key
from note2anki.model import Card, CardKind, Diagnostic, Fragment, ParsedNote, Severity, Token
from note2anki.obsidian import FenceTracker

_QUESTION_LABEL = re.compile(r"^\s*(?:질문|Q|Question)\s*\d*\s*[:：]\s*", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"^\s*(?:답변|답|A|Answer)\s*[:：]\s*", re.IGNORECASE)
_QUESTION_LIKE = re.compile(r"[?？]|^\s*(?:Q\s*\d+|질문\s*\d*)\s*[:.)：]", re.IGNORECASE)


@dataclass
class _Section:
    role: str
    level: int
    heading: Token
    blocks: list[Token] = field(default_factory=list)


def _near_misses(note: ParsedNote, keys: Keys, found: set[str]) -> Iterator[tuple[int, str, str, str]]:
    """(line, heading, role, name) for each heading that looks like a misspelt cue or summary heading, in a
    note without such a section (`found`: the roles it has). One regex search finds the heading lines (a
    note's main notes are most of its bytes); only a candidate is checked against fenced code."""
    if {CUE, SUMMARY} <= found:
        return
    body = note.body
    for m in _ATX_ANYWHERE.finditer(body):
        miss = keys.near_miss(heading_key(m.group(1)))
        if miss is None or miss[0] in found:
            continue
        index = body.count("\n", 0, m.start())
        fences, inside = FenceTracker(), False
        for line in body.split("\n")[: index + 1]:
            inside = fences.in_code(line)
        if inside:
            continue  # the line is inside fenced code
        yield note.body_line + index, m.group(1).strip(), *miss


_ATX_ANYWHERE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _sections(blocks: tuple[Token, ...], keys: Keys) -> list[_Section]:
    sections: list[_Section] = []
    current: _Section | None = None
    for tok in blocks:
        if md.kind(tok) == "heading":
            level = int(md.attr(tok, "level", 1))
            role = keys.role(heading_key(md.plain_text(md.children(tok))))
            # `text` underlined by `---` is a setext heading to CommonMark, but students mean a rule.
            if tok.get("style") == "setext" and role is None:
                if current is not None:
                    current.blocks.append(tok)
                continue
            if current is not None and (role is not None or level <= current.level):
                sections.append(current)
                current = None
            if (role == CUE and level <= 3) or role == SUMMARY:
                current = _Section(role, level, tok)
                continue
        if current is not None:
            current.blocks.append(tok)
    if current is not None:
        sections.append(current)
    return sections


def _lines_of(inline: list[Token]) -> list[list[Token]]:
    """Split a paragraph's inline tokens at soft line breaks."""
    lines: list[list[Token]] = [[]]
    for tok in inline:
        if md.kind(tok) == "softbreak":
            lines.append([])
        else:
            lines[-1].append(tok)
    return lines


def _join_lines(lines: list[list[Token]]) -> list[Token]:
    out: list[Token] = []
    for i, line in enumerate(lines):
        if i:
            out.append({"type": "softbreak"})
        out.extend(line)
    return out


def _strip_label(inline: list[Token], label: re.Pattern[str]) -> list[Token]:
    """Drop a leading `**질문:**` / `답변:` label from inline tokens."""
    if not inline:
        return inline
    first, rest = inline[0], inline[1:]
    if md.kind(first) in ("strong", "emphasis") and label.fullmatch(md.plain_text([first]).rstrip() + " "):
        if rest and md.kind(rest[0]) == "text":
            rest = [{**rest[0], "raw": str(rest[0]["raw"]).lstrip()}, *rest[1:]]
        return rest
    if md.kind(first) == "text":
        m = label.match(str(first["raw"]))
        if m:
            return [{**first, "raw": str(first["raw"])[m.end() :]}, *rest]
    return inline


def _unwrap_emphasis(inline: list[Token]) -> list[Token]:
    """`**Q1: ...?**`: bold around a whole question is decoration; the card template styles questions."""
    solid = [t for t in inline if not (md.kind(t) == "text" and not str(t["raw"]).strip())]
    if len(solid) == 1 and md.kind(solid[0]) in ("strong", "emphasis"):
        return md.children(solid[0])
    return inline


def _answer_blocks(blocks: list[Token]) -> list[Token]:
    """The blocks that make an answer: blank lines, rules and empty bullets are not content."""
    return [b for b in blocks if md.kind(b) not in ("blank_line", "thematic_break") and md.has_content([b])]


class _Extractor:
    def __init__(self, note: ParsedNote, keys: Keys) -> None:
        self.note = note
        self.keys = keys
        self.lines = md.Lines(note)
        self.diagnostics: list[Diagnostic] = []

    def warn(self, line: int | None, code: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.note.source.rel, line, code, Severity.WARNING, message))

    def card(self, question: list[Token], answer: list[Token], line: int | None) -> Card:
        question = _unwrap_emphasis(question)
        return Card(
            kind=CardKind.CUE,
            note=self.note,
            prompt=" ".join(md.plain_text(question).split()),
            line=line,
            question=Fragment(tuple(question), inline=True),
            answer=Fragment(tuple(answer)),
        )

    def question(self, question: list[Token], answer: list[Token]) -> Card | None:
        text = " ".join(md.plain_text(question).split())
        if not text:
            return None
        line = self.lines.find(question)
        if heading_key(text) in self.keys.placeholders:
            self.warn(
                line, "N2A202", f"template placeholder “{text}” left in; delete it or write a real question"
            )
            return None
        answer = _answer_blocks(answer)
        if not answer:
            self.warn(
                line,
                "N2A201",
                f"“{text}” has no answer, so no card is made; write the answer indented under the question",
            )
            return None
        return self.card(question, answer, line)

    # --- cue sections ----------------------------------------------------------------------------

    def cue_section(self, blocks: list[Token]) -> Iterator[Card]:
        i = 0
        while i < len(blocks):
            tok = blocks[i]
            t = md.kind(tok)
            if t == "list":
                for item in md.children(tok):
                    yield from self.cue_item(item)
            elif t == "heading" and tok.get("style") != "setext":
                end = next(
                    (j for j in range(i + 1, len(blocks)) if md.kind(blocks[j]) == "heading"), len(blocks)
                )
                yield from self.sub_heading(tok, blocks[i + 1 : end])
                i = end
                continue
            elif t == "paragraph" and _QUESTION_LABEL.match(md.plain_text(md.children(tok))):
                end = i + 1
                while end < len(blocks) and not self._ends_labelled_answer(blocks[end]):
                    end += 1
                card = self.labelled(tok, blocks[i + 1 : end])
                if card is not None:
                    yield card
                i = end
                continue
            i += 1

    @staticmethod
    def _ends_labelled_answer(tok: Token) -> bool:
        t = md.kind(tok)
        return t in ("heading", "thematic_break") or (
            t == "paragraph" and bool(_QUESTION_LABEL.match(md.plain_text(md.children(tok))))
        )

    def cue_item(self, item: Token) -> Iterator[Card]:
        kids = [c for c in md.children(item) if md.kind(c) != "blank_line"]
        # `question` over an empty bullet `-` is a setext heading to CommonMark; it is still the question.
        if not kids or not (
            md.kind(kids[0]) in ("paragraph", "block_text") or kids[0].get("style") == "setext"
        ):
            return
        first, *more = _lines_of(md.children(kids[0]))
        if heading_key(md.plain_text(first)) in self.keys.wrappers:
            for block in kids[1:]:
                if md.kind(block) == "list":
                    for sub in md.children(block):
                        yield from self.cue_item(sub)
            return
        # Lines continuing the question's paragraph (no blank line) are the start of the answer.
        lead = [{"type": "paragraph", "children": _join_lines(more)}] if more else []
        card = self.question(first, lead + kids[1:])
        if card is not None:
            yield card

    def sub_heading(self, heading: Token, blocks: list[Token]) -> Iterator[Card]:
        title = md.children(heading)
        text = md.plain_text(title)
        question_like = bool(_QUESTION_LIKE.search(text))
        holds_questions = any(
            md.kind(b) == "list" and any(len(_answer_blocks(md.children(it)[1:])) for it in md.children(b))
            for b in blocks
        )
        if not question_like and holds_questions:  # a group title over bullet questions
            yield from self.cue_section(blocks)
            return
        answer = _answer_blocks(blocks)
        if not answer or heading_key(text) in self.keys.closers:
            self.lines.find(title)
            return
        yield self.card(title, answer, self.lines.find(title))

    def labelled(self, para: Token, following: list[Token]) -> Card | None:
        lines = _lines_of(md.children(para))
        split = next(
            (i for i, line in enumerate(lines) if i and _ANSWER_LABEL.match(md.plain_text(line))), len(lines)
        )
        question = _strip_label(_join_lines(lines[:split]), _QUESTION_LABEL)
        answer: list[Token] = []
        if split < len(lines):
            answer.append(
                {"type": "paragraph", "children": _strip_label(_join_lines(lines[split:]), _ANSWER_LABEL)}
            )
        for tok in following:
            if md.kind(tok) == "paragraph":
                tok = {**tok, "children": _strip_label(md.children(tok), _ANSWER_LABEL)}
            answer.append(tok)
        return self.question(question, answer)

    # --- summary sections ------------------------------------------------------------------------

    def summary_section(self, blocks: list[Token]) -> Iterator[Fragment]:
        for tok in blocks:
            t = md.kind(tok)
            if t == "list":
                for item in md.children(tok):
                    yield from self.summary_item(item)
            elif t == "paragraph":
                yield from self.summary_paragraph(tok)

    def summary_paragraph(self, para: Token) -> Iterator[Fragment]:
        lines = _lines_of(md.children(para))
        if md.plain_text(lines[0]).lstrip().startswith("•"):
            for line in lines:
                if line and md.kind(line[0]) == "text":
                    line = [{**line[0], "raw": str(line[0]["raw"]).lstrip().lstrip("•").lstrip()}, *line[1:]]
                yield from self._item([{"type": "paragraph", "children": line}])
        else:
            yield from self._item([para])

    def summary_item(self, item: Token) -> Iterator[Fragment]:
        kids = [c for c in md.children(item) if md.kind(c) != "blank_line"]
        if not kids:
            return
        if md.kind(kids[0]) in ("paragraph", "block_text") and (
            heading_key(md.plain_text(md.children(kids[0]))) in self.keys.wrappers
        ):
            # a label (`**AI 요약**`) over the items, or alone above them: never an item itself
            yield from self.summary_section(kids[1:])
            return
        yield from self._item(kids)

    def _item(self, blocks: list[Token]) -> Iterator[Fragment]:
        text = md.plain_text(blocks, media=False).strip()
        if not text:  # empty bullets, lone images and empty callouts are not summary items
            return
        if heading_key(text) in self.keys.placeholders:
            self.warn(
                self.lines.find(blocks),
                "N2A203",
                f"template placeholder “{text}” left in the summary; replace it",
            )
            return
        if md.kind(blocks[0]) == "paragraph":  # items read the same whether the list was tight or loose
            blocks = [{**blocks[0], "type": "block_text"}, *blocks[1:]]
        yield Fragment(tuple(blocks))


def extract(note: ParsedNote, config: Config) -> tuple[list[Card], list[Diagnostic]]:
    """The cue cards of `note` in document order, then its summary card (if it has summary items)."""
    ex = _Extractor(note, cornell.keys(config))
    cards: list[Card] = []
    items: list[Fragment] = []
    summary_line: int | None = None
    sections = _sections(note.blocks, ex.keys)
    for section in sections:
        heading_line = ex.lines.find(md.children(section.heading))
        if section.role == CUE:
            reported = len(ex.diagnostics)
            found = list(ex.cue_section(section.blocks))
            # Only when nothing more specific (no answer, placeholder) already explains the empty section.
            if not found and md.has_content(section.blocks) and len(ex.diagnostics) == reported:
                ex.warn(
                    heading_line,
                    "N2A205",
                    "the cue section has content but no question with an answer under it; "
                    "write each question as a bullet with its answer indented below",
                )
            cards.extend(found)
        else:
            summary_line = summary_line or heading_line
            items.extend(ex.summary_section(section.blocks))
    roles = {section.role for section in sections}
    for line, heading, role, name in _near_misses(note, ex.keys, roles):
        what = "cue questions" if role == CUE else "summary"
        ex.warn(
            line,
            "N2A209",
            f"the heading “{heading[:80]}” looks like the {what} heading “{name}” but is not one, so nothing "
            f"under it becomes a card; fix the spelling (or add it to `{role}_headings` in note2anki.toml)",
        )
    seen: dict[str, int | None] = {}
    for card in cards:
        key = heading_key(card.prompt)
        if key in seen:
            ex.warn(
                card.line,
                "N2A204",
                f"the question “{card.prompt}” appears twice in this note (first at line {seen[key]}); "
                "merge them or reword one",
            )
        else:
            seen[key] = card.line
    if items:
        cards.append(
            Card(
                kind=CardKind.SUMMARY,
                note=note,
                prompt=note.source.title,
                line=summary_line,
                items=tuple(items),
            )
        )
    if config.cloze:
        found, problems = clozes(note, items)
        cards.extend(found)
        ex.diagnostics.extend(problems)
    return cards, ex.diagnostics
