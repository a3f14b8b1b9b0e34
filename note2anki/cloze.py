"""Cloze cards from summary items: a marked term (`**bold**`, `==highlight==`) is hidden, one card per term.

An item becomes a cloze card only when it still says something with its terms hidden, and a label (a marked
title over nested bullets, a mark followed by a colon) is never hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from note2anki import markdown as md
from note2anki.model import Card, CardKind, Diagnostic, Fragment, ParsedNote, Severity, Token

#: the Markdown that marks a summary item's key terms (`**bold**`, `==highlight==`)
CLOZE_MARKS = frozenset({"strong", "mark"})
#: a cloze card must still say something with its terms hidden: at least this many visible words (the note
#: title above it is not enough)
CLOZE_MIN_WORDS = 2
_LABEL_END = re.compile(r"^\s*[:：]")
_WORD = re.compile(r"\w")


def is_cloze_term(tok: Token) -> bool:
    return (
        md.kind(tok) in CLOZE_MARKS and bool(md.plain_text(md.children(tok)).strip()) and not tok.get("label")
    )


def cloze_terms(tokens: Iterable[Token]) -> int:
    """How many terms are marked (outermost marks with text only; labels are not terms)."""
    count = 0
    for tok in tokens:
        if md.kind(tok) in CLOZE_MARKS:
            count += is_cloze_term(tok)
        else:
            count += cloze_terms(md.children(tok))
    return count


def _mark_labels(tokens: tuple[Token, ...]) -> tuple[Token, ...]:
    """The item with a leading label flagged `label`: a mark followed by a colon (`**정의**: …`,
    `**Why:** …`), or a marked title alone on the first line over nested content (`**AI 요약**` with
    bullets under it). A label names what follows, it is not a term to recall, so it is never hidden."""
    if not tokens or md.kind(tokens[0]) not in ("block_text", "paragraph"):
        return tokens
    inline = md.children(tokens[0])
    solid = [t for t in inline if not (md.kind(t) == "text" and not str(t["raw"]).strip(" :："))]
    if not solid or md.kind(solid[0]) not in CLOZE_MARKS or solid[0] is not inline[0]:
        return tokens
    text = md.plain_text(md.children(inline[0])).rstrip()
    after = md.plain_text(inline[1:2])
    title = len(solid) == 1 and len(tokens) > 1
    if not (title or text.endswith((":", "：")) or _LABEL_END.match(after)):
        return tokens
    first = {**tokens[0], "children": [{**inline[0], "label": True}, *inline[1:]]}
    return (first, *tokens[1:])


def _visible_words(tokens: Iterable[Token]) -> int:
    """Words left on the card when every marked term is hidden (punctuation alone is not a word)."""

    def text(tokens: Iterable[Token]) -> Iterator[str]:
        for tok in tokens:
            if is_cloze_term(tok):
                yield " "
            elif md.kind(tok) in ("image", "embed"):
                continue
            elif md.children(tok):
                yield from text(md.children(tok))
                yield " "
            else:
                yield md.plain_text([tok])

    return sum(1 for word in "".join(text(tokens)).split() if _WORD.search(word))


def clozes(note: ParsedNote, items: Iterable[Fragment]) -> tuple[list[Card], list[Diagnostic]]:
    """A cloze card for each summary item with marked terms and enough text around them; the others stay in
    the summary card only (N2A208 says why, for an item marked almost as a whole)."""
    lines = md.Lines(note)
    cards: list[Card] = []
    problems: list[Diagnostic] = []
    for item in items:
        tokens = _mark_labels(item.tokens)
        if not cloze_terms(tokens):
            continue
        line = lines.find(list(tokens))
        if _visible_words(tokens) < CLOZE_MIN_WORDS:
            shown = " ".join(md.plain_text(tokens, media=False).split())[:80]
            problems.append(
                Diagnostic(
                    note.source.rel,
                    line,
                    "N2A208",
                    Severity.WARNING,
                    f"“{shown}” is marked (bold or highlight) almost as a whole, so a cloze card would show "
                    "little but [...]; it stays on the summary card only. Mark just the key term and keep "
                    "the words around it",
                )
            )
            continue
        prompt = " ".join(md.plain_text(tokens, media=False).split())
        cards.append(
            Card(kind=CardKind.CLOZE, note=note, prompt=prompt, line=line, items=(Fragment(tokens),))
        )
    return cards, problems
